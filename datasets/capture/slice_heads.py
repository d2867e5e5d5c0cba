#!/usr/bin/python3
"""Writes the key-head subset of a gdnv dataset: every case keeps the chosen key heads and the value
heads that read them, and nothing else changes (gated-delta heads are independent: value head hv reads
key head hv // G only, G = HV / H). A slice of a captured file is still exactly what the model computed
on those heads, so a large capture can be shipped as a small one and regenerated whole
(capture_qwen3_next_layers.py writes the full file).

    /usr/bin/python3 datasets/capture/slice_heads.py IN.h5 OUT.h5 --key-heads 2,6

Head axis by dataset name: q, k [B,T,H,K] and v, g, beta, o, g_cumsum, A, A_inv, w, u, v_new
[B,T,HV,...] and h [B,NT,HV,K,V] on axis 2; initial_state, final_state [N,HV,K,V] on axis 1; anything
else (cu_seqlens, ...) is copied. Exit status: 0 written, 2 bad input (one line naming file, case and
field; nothing written).
"""
import argparse
import os
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gdnv_h5  # noqa: E402  (the schema's types and its time-stamp-free writer)

KEY_AXIS2 = {"q", "k"}
VALUE_AXIS2 = {"v", "g", "beta", "o", "g_cumsum", "A", "A_inv", "w", "u", "v_new", "h"}
VALUE_AXIS1 = {"initial_state", "final_state"}


class BadInput(Exception):
    pass


def stored_type(ds, where):
    """The schema type name a dataset is stored as (16-bit floats by their bit fields)."""
    name = gdnv_h5.float_type_name(ds.id.get_type())
    if name:
        return name
    if ds.dtype in (np.int32, np.int64):
        return str(ds.dtype)
    raise BadInput(f"{where}: unsupported element type {ds.dtype}")


def copy_attrs(src, dst):
    for k, v in src.attrs.items():
        dst.attrs[k] = v


def copy_sliced(src, dst, key_idx, value_idx, where):
    for name, item in src.items():
        path = f"{where}/{name}"
        if isinstance(item, h5py.Group):
            sub = gdnv_h5.create_group(dst, name)
            copy_sliced(item, sub, key_idx, value_idx, path)
            copy_attrs(item, sub)
            continue
        type_name = stored_type(item, path)
        data = item[()]  # 16-bit floats widen to float32 exactly; write_array stores them back unchanged
        if name in KEY_AXIS2 or name in VALUE_AXIS2 or name in VALUE_AXIS1:
            axis = 1 if name in VALUE_AXIS1 else 2
            if data.ndim <= axis:
                raise BadInput(f"{path}: expected a head axis {axis}, got shape {data.shape}")
            data = np.take(data, key_idx if name in KEY_AXIS2 else value_idx, axis=axis)
        copy_attrs(item, gdnv_h5.write_array(dst, name, data, type_name))


def slice_file(src_path, dst_path, key_heads):
    try:
        src = gdnv_h5.open_dataset(src_path)
    except gdnv_h5.DatasetError as e:
        raise BadInput(str(e))
    tmp = f"{dst_path}.tmp-{os.getpid()}"
    try:
        with src, h5py.File(tmp, "w", track_order=False) as dst:
            copy_attrs(src, dst)
            cases = gdnv_h5.create_group(dst, "cases")
            for cname in gdnv_h5.case_names(src):
                case = src["cases"][cname]
                where = f"{src_path}: case '{cname}'"
                try:
                    H, HV = case["inputs/q"].shape[2], case["inputs/v"].shape[2]
                except KeyError as e:
                    raise BadInput(f"{where}: field inputs/q or inputs/v missing ({e})")
                if any(h < 0 or h >= H for h in key_heads):
                    raise BadInput(f"{where}: field inputs/q: key heads {key_heads} outside 0..{H - 1}")
                G = HV // H
                value_heads = [h * G + j for h in key_heads for j in range(G)]
                out = gdnv_h5.create_group(cases, cname)
                copy_sliced(case, out, key_heads, value_heads, where)
                copy_attrs(case, out)
                out.attrs["sliced_heads"] = (f"key heads {key_heads} of {H}, value heads {value_heads} of {HV} "
                                             f"(datasets/capture/slice_heads.py)")
        os.replace(tmp, dst_path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--key-heads", required=True, help="comma-separated key head indices, e.g. 2,6")
    args = ap.parse_args()
    try:
        heads = [int(x) for x in args.key_heads.split(",") if x.strip()]
        if not heads or len(set(heads)) != len(heads):
            raise ValueError
    except ValueError:
        print(f"slice_heads: --key-heads: expected distinct comma-separated integers, got {args.key_heads!r}",
              file=sys.stderr)
        return 2
    try:
        slice_file(args.src, args.dst, heads)
    except BadInput as e:
        print(f"slice_heads: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"slice_heads: {args.src}: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
