#!/usr/bin/env python3
"""Writes one small HDF5 file per error of the dataset schema (docs/dataset-schema.md, "Errors"),
plus a valid good.h5, into DIR. Run with /usr/bin/python3 (h5py + numpy). Prints nothing on success.

  make_bad_files.py DIR            every file of BAD, plus good.h5
  make_bad_files.py DIR NAME...    only these (e.g. missing_q.h5 good.h5 ok_varlen.h5)

The file names are stable: tests of the reader and of the CLI's exit codes use them. Every file
except good.h5 must be rejected. The ok_*.h5 files are valid corner cases (NaN in a captured
output, varlen with captured h, chunk_size 32); they are written only when named.
"""
import copy
import io
import os
import sys

import h5py
import numpy as np


class Custom:
    """An array stored through a custom HDF5 float type from raw bits (bf16, fp8, ...)."""

    def __init__(self, bits, make_type):
        self.bits = np.ascontiguousarray(bits)
        self.make_type = make_type

    def write(self, group, name):
        tid = self.make_type()
        space = h5py.h5s.create_simple(self.bits.shape)
        dsid = h5py.h5d.create(group.id, name.encode(), tid, space)
        dsid.write(h5py.h5s.ALL, h5py.h5s.ALL, self.bits, mtype=tid)


def fp8_type():
    """An E4M3-like 8-bit float: sign bit 7, exponent bits 3..6, mantissa bits 0..2, bias 7."""
    tid = h5py.h5t.IEEE_F32LE.copy()
    tid.set_fields(7, 3, 4, 0, 3)
    tid.set_precision(8)
    tid.set_size(1)
    tid.set_ebias(7)
    return tid


def case_spec(B=1, T=70, H=2, HV=4, K=8, V=6, cu=None, h0=False, captured=False):
    rng = np.random.default_rng(20261124)
    f32 = np.float32
    n = len(cu) - 1 if cu is not None else B
    inputs = {
        "q": rng.standard_normal((B, T, H, K)).astype(f32),
        "k": rng.standard_normal((B, T, H, K)).astype(f32),
        "v": rng.standard_normal((B, T, HV, V)).astype(f32),
        "g": -rng.random((B, T, HV)).astype(f32),
        "beta": rng.random((B, T, HV)).astype(f32),
    }
    if cu is not None:
        inputs["cu_seqlens"] = np.array(cu, dtype=np.int32)
    if h0:
        inputs["initial_state"] = rng.standard_normal((n, HV, K, V)).astype(f32)
    spec = {"attrs": {"scale": K ** -0.5, "chunk_size": 64, "qk_l2norm": 1, "family": "make_bad_files", "seed": 7},
            "inputs": inputs, "captured": {}}
    if captured:
        spec["captured"]["fla"] = {
            "attrs": {"implementation": "fla", "version": "0.0-test", "arithmetic": "fp32"},
            "members": {"o": rng.standard_normal((B, T, HV, V)).astype(f32)},
        }
    return spec


def file_spec(**kw):
    return {"attrs": {"format": "gdnv-dataset", "version": 1, "description": "make_bad_files.py"},
            "cases": {"c0": case_spec(**kw)}}


def write_members(group, members):
    for name, value in members.items():
        if isinstance(value, Custom):
            value.write(group, name)
        else:
            group.create_dataset(name, data=value)


def write_spec(path, spec):
    with h5py.File(path, "w") as f:
        for k, v in spec["attrs"].items():
            f.attrs[k] = v
        if "cases" not in spec:
            return
        cases = f.create_group("cases")
        for name, c in spec["cases"].items():
            g = cases.create_group(name)
            for k, v in c["attrs"].items():
                g.attrs[k] = v
            if c["inputs"] is not None:
                write_members(g.create_group("inputs"), c["inputs"])
            if c["captured"]:
                cap = g.create_group("captured")
                for impl, grp in c["captured"].items():
                    gg = cap.create_group(impl)
                    for k, v in grp["attrs"].items():
                        gg.attrs[k] = v
                    write_members(gg, grp["members"])


# --- one function per file: each returns a spec (or writes the file itself) ------------------

def edit(fn, **kw):
    """A spec from file_spec(**kw), changed by fn(spec, case, inputs)."""
    def make():
        spec = file_spec(**kw)
        c = spec["cases"]["c0"]
        fn(spec, c, c["inputs"])
        return spec
    return make


def set_item(d, key, value):
    d[key] = value


def nan_in_v(s, c, i):
    i["v"][0, 5, 1, 2] = np.nan  # flat index ((0*70 + 5)*4 + 1)*6 + 2 = 128


def inf_in_g(s, c, i):
    i["g"][0, 3, 2] = -np.inf  # flat index (0*70 + 3)*4 + 2 = 14


def captured_o_wrong_shape(s, c, i):
    c["captured"]["fla"]["members"]["o"] = np.zeros((1, 70, 4, 7), np.float32)


def captured_missing_o(s, c, i):
    c["captured"]["fla"]["members"] = {"w": np.zeros((1, 70, 4, 8), np.float32)}


def captured_missing_impl(s, c, i):
    del c["captured"]["fla"]["attrs"]["implementation"]


def captured_int_o(s, c, i):
    c["captured"]["fla"]["members"]["o"] = np.zeros((1, 70, 4, 6), np.int32)


def captured_h_wrong_shape(s, c, i):
    # cu [0, 30, 100, 150]: chunks 1 + 2 + 1 = 4, so h must be [1, 4, 4, 8, 6]
    c["captured"]["fla"]["members"]["o"] = np.zeros((1, 150, 4, 6), np.float32)
    c["captured"]["fla"]["members"]["h"] = np.zeros((1, 3, 4, 8, 6), np.float32)


def ok_captured_nan(s, c, i):
    o = c["captured"]["fla"]["members"]["o"]
    o[0, 1, 2, 3] = np.nan
    c["captured"]["fla"]["members"]["debug_scratch"] = np.arange(5, dtype=np.int32)  # unknown: ignored
    c["captured"]["fla"]["members"]["final_state"] = np.full((1, 4, 8, 6), np.inf, np.float32)


def ok_varlen(s, c, i):
    m = c["captured"]["fla"]["members"]
    m["o"] = np.zeros((1, 150, 4, 6), np.float32)
    m["h"] = np.zeros((1, 4, 4, 8, 6), np.float32)
    m["final_state"] = np.zeros((3, 4, 8, 6), np.float32)
    m["A_inv"] = np.zeros((1, 150, 4, 64), np.float32)
    m["g_cumsum"] = np.zeros((1, 150, 4), np.float32)


def truncated(path):
    buf = io.BytesIO()
    spec = file_spec(T=512, captured=True)
    write_spec(buf, spec)
    data = buf.getvalue()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])


def not_hdf5(path):
    with open(path, "w") as f:
        f.write("this is a text file, not an HDF5 dataset\n")


def no_cases(s, c, i):
    s["cases"] = {}


def missing_cases(s, c, i):
    del s["cases"]


BAD = {
    "missing_q.h5": edit(lambda s, c, i: i.pop("q")),
    "wrong_format.h5": edit(lambda s, c, i: set_item(s["attrs"], "format", "gdnv-results")),
    "missing_format.h5": edit(lambda s, c, i: s["attrs"].pop("format")),
    "bad_version.h5": edit(lambda s, c, i: set_item(s["attrs"], "version", 2)),
    "missing_cases.h5": edit(missing_cases),
    "no_cases.h5": edit(no_cases),
    "missing_inputs.h5": edit(lambda s, c, i: set_item(c, "inputs", None)),
    "q_int32.h5": edit(lambda s, c, i: set_item(i, "q", np.ones((1, 70, 2, 8), np.int32))),
    "q_big_endian.h5": edit(lambda s, c, i: set_item(i, "q", i["q"].astype(">f4"))),
    "complex_q.h5": edit(lambda s, c, i: set_item(i, "q", i["q"].astype(np.complex64))),
    "fp8_q.h5": edit(lambda s, c, i: set_item(i, "q", Custom(np.full((1, 70, 2, 8), 0x38, np.uint8), fp8_type))),
    "h_not_dividing.h5": edit(lambda s, c, i: None, H=2, HV=3),
    "t_zero.h5": edit(lambda s, c, i: None, T=0),
    "cu_not_zero.h5": edit(lambda s, c, i: None, cu=[1, 30, 70]),
    "cu_decreasing.h5": edit(lambda s, c, i: None, cu=[0, 40, 30, 70]),
    "cu_not_T.h5": edit(lambda s, c, i: None, cu=[0, 30, 60]),
    "cu_with_B2.h5": edit(lambda s, c, i: None, B=2, cu=[0, 70]),
    "cu_float.h5": edit(lambda s, c, i: set_item(i, "cu_seqlens", np.array([0.0, 70.0])), cu=[0, 70]),
    "cu_2d.h5": edit(lambda s, c, i: set_item(i, "cu_seqlens", np.array([[0, 70]], np.int64)), cu=[0, 70]),
    "nan_in_v.h5": edit(nan_in_v),
    "inf_in_g.h5": edit(inf_in_g),
    "missing_scale.h5": edit(lambda s, c, i: c["attrs"].pop("scale")),
    "scale_nan.h5": edit(lambda s, c, i: set_item(c["attrs"], "scale", float("nan"))),
    "missing_chunk_size.h5": edit(lambda s, c, i: c["attrs"].pop("chunk_size")),
    "qk_l2norm_bad.h5": edit(lambda s, c, i: set_item(c["attrs"], "qk_l2norm", 2)),
    "wrong_rank_k.h5": edit(lambda s, c, i: set_item(i, "k", i["k"][0])),
    "shape_mismatch_v.h5": edit(lambda s, c, i: set_item(i, "v", i["v"][:, :69])),
    "h0_wrong_shape.h5": edit(lambda s, c, i: set_item(i, "initial_state", np.zeros((1, 4, 9, 6), np.float32)),
                              h0=True),
    "captured_o_wrong_shape.h5": edit(captured_o_wrong_shape, captured=True),
    "captured_missing_o.h5": edit(captured_missing_o, captured=True),
    "captured_missing_impl.h5": edit(captured_missing_impl, captured=True),
    "captured_int_o.h5": edit(captured_int_o, captured=True),
    "captured_h_wrong_shape.h5": edit(captured_h_wrong_shape, T=150, cu=[0, 30, 100, 150], captured=True),
    "truncated.h5": truncated,
    "not_hdf5.h5": not_hdf5,
}

GOOD = {"good.h5": edit(lambda s, c, i: None, h0=True)}

OPTIONAL = {
    "ok_captured_nan.h5": edit(ok_captured_nan, captured=True),
    "ok_varlen.h5": edit(ok_varlen, T=150, cu=[0, 30, 100, 150], h0=True, captured=True),
    "ok_chunk32.h5": edit(lambda s, c, i: set_item(c["attrs"], "chunk_size", 32)),
}


def make(directory, name):
    maker = {**BAD, **GOOD, **OPTIONAL}[name]
    path = os.path.join(directory, name)
    if maker in (truncated, not_hdf5):
        maker(path)
    else:
        write_spec(path, maker())


def main(argv):
    if len(argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    directory = argv[1]
    os.makedirs(directory, exist_ok=True)
    names = argv[2:] or list(BAD) + list(GOOD)
    known = {**BAD, **GOOD, **OPTIONAL}
    unknown = [n for n in names if n not in known]
    if unknown:
        sys.stderr.write("unknown file name(s): " + ", ".join(unknown) + "\n")
        return 2
    for n in names:
        make(directory, n)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
