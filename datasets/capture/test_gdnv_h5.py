#!/usr/bin/env python3
"""Tests for gdnv_h5 (numpy + h5py only; no torch needed).

    /usr/bin/python3 datasets/capture/test_gdnv_h5.py

Prints one line per failure and 'N passed, M failed' at the end; exit status 1 on any failure.
"""

import hashlib
import os
import subprocess
import sys
import tempfile
import time
import traceback

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gdnv_h5  # noqa: E402

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


def bits32(*values):
    return np.array(values, dtype=np.uint32).view(np.float32)


# ---- bf16 rounding ----------------------------------------------------------------------------

@test
def bf16_edge_values():
    cases = [  # float32 bits -> expected bf16 bits
        (0x3F800000, 0x3F80),  # 1.0
        (0x3F808000, 0x3F80),  # 1 + 2^-8: tie, 0x3F80 is even -> down
        (0x3F818000, 0x3F82),  # tie, 0x3F81 is odd -> up
        (0x3F808001, 0x3F81),  # just above the tie -> up
        (0x3F807FFF, 0x3F80),  # just below the tie -> down
        (0xBF808000, 0xBF80),  # negative tie -> even
        (0xBF818000, 0xBF82),
        (0x80000000, 0x8000),  # -0
        (0x00000001, 0x0000),  # smallest f32 subnormal -> +0
        (0x00008000, 0x0000),  # subnormal tie -> even (0)
        (0x00018000, 0x0002),  # subnormal tie -> even (2)
        (0x00008001, 0x0001),  # subnormal just above the tie
        (0x007FFFFF, 0x0080),  # largest subnormal rounds up to the smallest normal
        (0x7F7F7FFF, 0x7F7F),  # stays finite
        (0x7F7FFFFF, 0x7F80),  # FLT_MAX rounds to +inf (correct RNE overflow)
        (0x7F800000, 0x7F80),  # +inf
        (0xFF800000, 0xFF80),  # -inf
    ]
    got = gdnv_h5.f32_to_bf16_bits(bits32(*[c[0] for c in cases]))
    for (src, want), g in zip(cases, got):
        assert int(g) == want, f"{src:#010x} -> {int(g):#06x}, want {want:#06x}"


@test
def bf16_nan_stays_nan():
    src = bits32(0x7FC00000, 0xFFC00000, 0x7F800001, 0x7F80FFFF, 0xFF800001, 0x7FFFFFFF)
    back = gdnv_h5.bf16_bits_to_f32(gdnv_h5.f32_to_bf16_bits(src))
    assert np.all(np.isnan(back)), back
    assert np.array_equal(np.signbit(back), np.signbit(src)), "NaN sign changed"


@test
def bf16_random_is_nearest_even():
    # Independent check: the result must be one of the two bf16 neighbours, the nearer one,
    # and the even one on a tie (distances compared in float64, where they are exact).
    rng = np.random.default_rng(1)
    x = rng.integers(0, 2**32, size=200_000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    x = x[np.isfinite(x)]
    x = x[np.abs(x) < np.float32(3.38e38)]  # keep away from the overflow to inf
    got = gdnv_h5.f32_to_bf16_bits(x)
    lo = (x.view(np.uint32) >> 16).astype(np.uint16)  # truncation toward zero
    hi = lo + np.uint16(1)
    xd = x.astype(np.float64)
    d_lo = np.abs(xd - gdnv_h5.bf16_bits_to_f32(lo).astype(np.float64))
    d_hi = np.abs(xd - gdnv_h5.bf16_bits_to_f32(hi).astype(np.float64))
    want = np.where(d_lo < d_hi, lo, np.where(d_hi < d_lo, hi, np.where(lo % 2 == 0, lo, hi)))
    assert np.array_equal(got, want), f"{np.count_nonzero(got != want)} mismatches"


@test
def bf16_widening_is_exact():
    bits = np.arange(0, 2**16, dtype=np.uint32).astype(np.uint16)
    f = gdnv_h5.bf16_bits_to_f32(bits)
    finite = np.isfinite(f)
    assert np.array_equal(gdnv_h5.f32_to_bf16_bits(f[finite]), bits[finite])


# ---- files ------------------------------------------------------------------------------------

def sample_case(rng, dtype="bfloat16", B=2, T=70, H=2, HV=4, K=8, V=16, cu=None, init=True):
    """Inputs whose values are exactly representable in `dtype` (as float32 arrays)."""
    def rnd(*shape):
        a = rng.standard_normal(shape).astype(np.float32)
        if dtype == "bfloat16":
            return gdnv_h5.bf16_bits_to_f32(gdnv_h5.f32_to_bf16_bits(a))
        return a.astype(np.float16).astype(np.float32) if dtype == "float16" else a
    N = B if cu is None else len(cu) - 1
    arrays = {"q": rnd(B, T, H, K), "k": rnd(B, T, H, K), "v": rnd(B, T, HV, V),
              "g": -np.abs(rnd(B, T, HV)).astype(np.float32) * 0.1,
              "beta": rng.uniform(0, 1, (B, T, HV)).astype(np.float32)}
    dtypes = {"q": dtype, "k": dtype, "v": dtype, "g": "float32", "beta": "float32"}
    if init:
        arrays["initial_state"] = rng.standard_normal((N, HV, K, V)).astype(np.float32)
        dtypes["initial_state"] = "float32"
    if cu is not None:
        arrays["cu_seqlens"] = np.array(cu, dtype=np.int32)
        dtypes["cu_seqlens"] = "int32"
    attrs = {"scale": K ** -0.5, "chunk_size": 64, "qk_l2norm": 1, "family": "test"}
    return attrs, arrays, dtypes


def make_file(path, cases):
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "gdnv-dataset"
        f.attrs["version"] = 1
        for name, (attrs, arrays, dtypes) in cases.items():
            gdnv_h5.write_case_inputs(f, name, attrs, arrays, dtypes)


def sha(path):
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


@test
def write_and_read_inputs_all_dtypes():
    rng = np.random.default_rng(2)
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "in.h5")
        cases = {"bf": sample_case(rng, "bfloat16"), "h": sample_case(rng, "float16"),
                 "f": sample_case(rng, "float32", B=1, T=130, cu=[0, 5, 5, 130])}
        make_file(p, cases)
        with gdnv_h5.open_dataset(p) as f:
            assert gdnv_h5.case_names(f) == ["bf", "f", "h"]
            for name, (attrs, arrays, dtypes) in cases.items():
                c = gdnv_h5.read_case(f, name, p)
                for field in ("q", "k", "v", "g", "beta", "initial_state"):
                    assert c.dtypes[field] == dtypes[field], (name, field, c.dtypes[field])
                    assert c.arrays[field].dtype == np.float32
                    assert np.array_equal(c.arrays[field], arrays[field]), (name, field)
                assert (c.B, c.H, c.HV, c.K, c.V) == (arrays["q"].shape[0], 2, 4, 8, 16)
                assert c.qk_l2norm == 1 and c.chunk_size == 64 and c.scale == 8 ** -0.5
            c = gdnv_h5.read_case(f, "f", p)
            assert c.N == 3 and list(c.cu_seqlens) == [0, 5, 5, 130]
            # The stored types carry the schema's bit fields; h5py itself reads bf16 as float32.
            tq = f["cases/bf/inputs/q"].id.get_type()
            assert (tq.get_size(), tuple(tq.get_fields()), tq.get_ebias()) == (2, (15, 7, 8, 0, 7), 127)
            assert f["cases/bf/inputs/q"].dtype == np.float32
            assert np.array_equal(f["cases/bf/inputs/q"][()], cases["bf"][1]["q"])
            th = f["cases/h/inputs/q"].id.get_type()
            assert (th.get_size(), tuple(th.get_fields()), th.get_ebias()) == (2, (15, 10, 5, 0, 10), 15)


@test
def captured_group_added_input_unchanged():
    rng = np.random.default_rng(3)
    with tempfile.TemporaryDirectory() as d:
        src, out = os.path.join(d, "in.h5"), os.path.join(d, "out.h5")
        make_file(src, {"a": sample_case(rng), "b": sample_case(rng, B=1)})
        before = sha(src)
        o32 = rng.standard_normal((2, 70, 4, 16)).astype(np.float32)
        o32[0, 0, 0, :3] = [np.nan, np.inf, -np.inf]
        o_bits = gdnv_h5.f32_to_bf16_bits(o32)
        fs = rng.standard_normal((2, 4, 8, 16)).astype(np.float32)
        attrs = {"implementation": "x.y", "version": "1", "device": "cpu", "arithmetic": "fp32"}
        for _ in range(2):  # the second pass replaces the group
            with gdnv_h5.CapturedWriter(src, out) as w:
                w.add("a", "impl-one", attrs, [("o", o_bits, "bfloat16"), ("final_state", fs, "float32")])
        assert sha(src) == before, "input file changed"
        assert sorted(os.listdir(d)) == ["in.h5", "out.h5"], os.listdir(d)
        with h5py.File(out, "r") as f:
            g = f["cases/a/captured/impl-one"]
            assert dict(g.attrs) == attrs, dict(g.attrs)
            o = g["o"][()]
            assert o.dtype == np.float32 and o.shape == o32.shape
            assert np.array_equal(o, gdnv_h5.bf16_bits_to_f32(o_bits), equal_nan=True)
            assert np.isnan(o[0, 0, 0, 0]) and o[0, 0, 0, 1] == np.inf and o[0, 0, 0, 2] == -np.inf
            assert np.array_equal(g["final_state"][()], fs)
            assert "captured" not in f["cases/b"]
            assert np.array_equal(f["cases/a/inputs/v"][()], sample_case(np.random.default_rng(3))[1]["v"])
        # The same work on the same input gives the same bytes (no time stamps): write it again
        # more than a second later (HDF5 times have 1 s resolution).
        out2 = os.path.join(d, "out2.h5")
        with gdnv_h5.CapturedWriter(src, out2) as w:
            w.add("a", "impl-one", attrs, [("o", o_bits, "bfloat16"), ("final_state", fs, "float32")])
        time.sleep(1.1)
        with gdnv_h5.CapturedWriter(src, out) as w:
            w.add("a", "impl-one", attrs, [("o", o_bits, "bfloat16"), ("final_state", fs, "float32")])
        assert sha(out) == sha(out2), "not deterministic"
        os.remove(out2)
        # In place (output = input) works too.
        with gdnv_h5.CapturedWriter(src, src) as w:
            w.add("b", "impl-two", {"implementation": "z"}, [("o", o32[:1], "float32")])
        with h5py.File(src, "r") as f:
            assert f["cases/b/captured/impl-two/o"].shape == (1, 70, 4, 16)


@test
def failure_leaves_nothing_behind():
    rng = np.random.default_rng(4)
    with tempfile.TemporaryDirectory() as d:
        src, out = os.path.join(d, "in.h5"), os.path.join(d, "out.h5")
        make_file(src, {"a": sample_case(rng)})
        before = sha(src)
        try:
            with gdnv_h5.CapturedWriter(src, out) as w:
                w.add("a", "impl", {"implementation": "x"}, [("o", np.zeros((2, 70, 4, 16), np.float32), "float32")])
                raise RuntimeError("boom")
        except RuntimeError:
            pass
        else:
            raise AssertionError("exception swallowed")
        for bad in ([("o", np.zeros(3, np.float64), "bfloat16")],):  # refused: double rounding
            try:
                with gdnv_h5.CapturedWriter(src, out) as w:
                    w.add("a", "impl", {"implementation": "x"}, bad)
            except TypeError:
                pass
            else:
                raise AssertionError("float64 -> bf16 accepted")
        try:
            with gdnv_h5.CapturedWriter(src, out) as w:
                w.add("nope", "impl", {}, [])
        except KeyError:
            pass
        else:
            raise AssertionError("unknown case accepted")
        assert sha(src) == before
        assert os.listdir(d) == ["in.h5"], os.listdir(d)
        # An existing output stays as it was after a failed rewrite.
        with gdnv_h5.CapturedWriter(src, out) as w:
            pass
        kept = sha(out)
        try:
            with gdnv_h5.CapturedWriter(src, out) as w:
                raise ValueError("x")
        except ValueError:
            pass
        assert sha(out) == kept and sorted(os.listdir(d)) == ["in.h5", "out.h5"]


@test
def bad_files_are_rejected():
    rng = np.random.default_rng(5)
    with tempfile.TemporaryDirectory() as d:
        def expect(path, fragment, case="a"):
            try:
                with gdnv_h5.open_dataset(path) as f:
                    gdnv_h5.read_case(f, case, path)
            except gdnv_h5.DatasetError as e:
                msg = str(e)
                assert fragment in msg and "\n" not in msg and path in msg, msg
            else:
                raise AssertionError(f"accepted ({fragment})")

        expect(os.path.join(d, "missing.h5"), "no such file")
        p = os.path.join(d, "text.h5")
        with open(p, "w") as fh:
            fh.write("not hdf5")
        expect(p, "not a readable HDF5 file")

        def variant(tag, edit, fragment):
            path = os.path.join(d, tag + ".h5")
            attrs, arrays, dtypes = sample_case(rng, B=1, cu=[0, 30, 70])
            edit(attrs, arrays, dtypes)
            make_file(path, {"a": (attrs, arrays, dtypes)})
            if fragment is not None:
                expect(path, fragment)
            return path

        variant("nan", lambda a, x, t: x["v"].__setitem__((0, 3, 1, 2), np.nan), "inputs/v: contains NaN")
        variant("inf", lambda a, x, t: x["g"].__setitem__((0, 3, 1), -np.inf), "inputs/g: contains NaN or Inf")
        variant("shape", lambda a, x, t: x.__setitem__("beta", x["beta"][:, :, :3].copy()), "inputs/beta: shape")
        variant("hv", lambda a, x, t: (x.__setitem__("v", x["v"][:, :, :3].copy()),
                                       x.__setitem__("g", x["g"][:, :, :3].copy()),
                                       x.__setitem__("beta", x["beta"][:, :, :3].copy()),
                                       x.pop("initial_state")), "does not divide")
        variant("cu_end", lambda a, x, t: x.__setitem__("cu_seqlens", np.array([0, 30, 69], np.int32)), "not T")
        variant("cu_dec", lambda a, x, t: x.__setitem__("cu_seqlens", np.array([0, 40, 30, 70], np.int32)),
                "decreasing")
        variant("cu_start", lambda a, x, t: x.__setitem__("cu_seqlens", np.array([1, 70], np.int32)), "not 0")
        variant("init", lambda a, x, t: x.__setitem__("initial_state", x["initial_state"][:1].copy()),
                "inputs/initial_state: shape")
        variant("int_q", lambda a, x, t: (x.__setitem__("q", x["q"].astype(np.int32)), t.__setitem__("q", "int32")),
                "inputs/q: unsupported element type")
        variant("noscale", lambda a, x, t: a.pop("scale"), "attribute scale")
        variant("nok", lambda a, x, t: (x.pop("k"), t.pop("k")), "inputs/k: missing")
        variant("rank", lambda a, x, t: x.__setitem__("g", x["g"][..., None].copy()), "inputs/g: shape")
        p = variant("fmt", lambda a, x, t: None, None)  # a valid file, spoiled below
        expect(p, "no such case", case="zz")
        with h5py.File(p, "r+") as f:
            f.attrs["format"] = "something-else"
        expect(p, "format")
        with h5py.File(p, "r+") as f:
            f.attrs["format"] = "gdnv-dataset"
            f.attrs["version"] = 2
        expect(p, "unsupported version")
        # A truncated file.
        good = os.path.join(d, "good.h5")
        make_file(good, {"a": sample_case(rng)})
        with open(good, "rb") as fh:
            data = fh.read()
        trunc = os.path.join(d, "trunc.h5")
        with open(trunc, "wb") as fh:
            fh.write(data[: len(data) // 2])
        expect(trunc, "")


@test
def capture_cli_rejects_bad_input_without_torch():
    # The input is validated before torch is imported, so this runs here too.
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "bad.h5")
        with h5py.File(p, "w") as f:
            f.attrs["format"] = "gdnv-dataset"
            f.attrs["version"] = 1
        r = subprocess.run([sys.executable, os.path.join(HERE, "capture_transformers.py"), p,
                            "--out", os.path.join(d, "o.h5")], capture_output=True, text=True)
        assert r.returncode == 2, (r.returncode, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "missing group /cases" in lines[0], r.stderr
        assert os.listdir(d) == ["bad.h5"]


# ---- slice_heads.py ----------------------------------------------------------------------------

def run_slice(src, dst, heads):
    return subprocess.run([sys.executable, os.path.join(HERE, "slice_heads.py"), src, dst, "--key-heads", heads],
                          capture_output=True, text=True)


@test
def slice_heads_keeps_values_and_stored_types():
    rng = np.random.default_rng(9)
    with tempfile.TemporaryDirectory() as d:
        src, dst = os.path.join(d, "in.h5"), os.path.join(d, "out.h5")
        cases = {"bf": sample_case(rng, "bfloat16", H=3, HV=6),
                 "var": sample_case(rng, "float16", B=1, T=130, H=3, HV=6, cu=[0, 5, 5, 130])}
        make_file(src, cases)
        with h5py.File(src, "a") as f:  # a captured group too: its o and final_state are sliced alike
            grp = gdnv_h5.create_group(gdnv_h5.create_group(f["cases/bf"], "captured"), "impl")
            grp.attrs["arithmetic"] = "fp32"
            gdnv_h5.write_array(grp, "o", rng.standard_normal((2, 70, 6, 16)).astype(np.float32), "float32")
            gdnv_h5.write_array(grp, "final_state", rng.standard_normal((2, 6, 8, 16)).astype(np.float32), "float32")
        r = run_slice(src, dst, "2,0")
        assert r.returncode == 0, r.stderr
        value_heads = [4, 5, 0, 1]  # key head 2 -> value heads 4, 5; key head 0 -> 0, 1 (G = 2)
        with h5py.File(src, "r") as a, h5py.File(dst, "r") as b:
            for case in ("bf", "var"):
                for name, ax, idx in (("q", 2, [2, 0]), ("k", 2, [2, 0]), ("v", 2, value_heads), ("g", 2, value_heads),
                                      ("beta", 2, value_heads), ("initial_state", 1, value_heads)):
                    x, y = a[f"cases/{case}/inputs/{name}"], b[f"cases/{case}/inputs/{name}"]
                    assert np.array_equal(np.take(x[()], idx, axis=ax), y[()]), (case, name)
                    assert (gdnv_h5.float_type_name(x.id.get_type()) == gdnv_h5.float_type_name(y.id.get_type())), name
                assert dict(a[f"cases/{case}"].attrs).items() <= dict(b[f"cases/{case}"].attrs).items(), case
                assert "value heads [4, 5, 0, 1] of 6" in b[f"cases/{case}"].attrs["sliced_heads"]
            assert np.array_equal(b["cases/var/inputs/cu_seqlens"][()], [0, 5, 5, 130])
            for name, ax in (("o", 2), ("final_state", 1)):
                x, y = a[f"cases/bf/captured/impl/{name}"][()], b[f"cases/bf/captured/impl/{name}"][()]
                assert np.array_equal(np.take(x, value_heads, axis=ax), y), name
            assert b["cases/bf/captured/impl"].attrs["arithmetic"] == "fp32"
        with gdnv_h5.open_dataset(dst) as f:  # the slice is a valid dataset
            assert gdnv_h5.read_case(f, "bf", dst).arrays["q"].shape == (2, 70, 2, 8)


@test
def slice_heads_rejects_bad_input_and_writes_nothing():
    rng = np.random.default_rng(10)
    with tempfile.TemporaryDirectory() as d:
        src, dst = os.path.join(d, "in.h5"), os.path.join(d, "out.h5")
        make_file(src, {"bf": sample_case(rng, "bfloat16")})
        for heads, needle in (("2", "key heads [2] outside 0..1"), ("1,1", "distinct"), ("x", "distinct")):
            r = run_slice(src, dst, heads)
            assert r.returncode == 2, (heads, r.returncode, r.stderr)
            lines = r.stderr.strip().splitlines()
            assert len(lines) == 1 and needle in lines[0], (heads, r.stderr)
        r = run_slice(os.path.join(d, "missing.h5"), dst, "0")
        assert r.returncode == 2 and "missing.h5" in r.stderr, r.stderr
        assert sorted(os.listdir(d)) == ["in.h5"], os.listdir(d)


def main():
    passed = failed = 0
    for fn in TESTS:
        try:
            fn()
            passed += 1
        except Exception:
            failed += 1
            print(f"FAIL {fn.__name__}:\n{traceback.format_exc()}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
