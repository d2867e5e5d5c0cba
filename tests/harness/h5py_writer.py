#!/usr/bin/env python3
"""h5py side of the dataset I/O tests (run with /usr/bin/python3, which has h5py and numpy).

  h5py_writer.py write OUT.h5 DTYPE    one case "c0" whose every float is a known bit pattern
                                       (see pattern()), stored as DTYPE (bf16, fp16, fp32, fp64)
  h5py_writer.py dump FILE.h5          prints every attribute and dataset, one per line:
      attr <object path>@<name> <python type name> <value>
      dataset <path> <numpy dtype> <d0,d1,...> <values>   floats as float.hex(), ints in decimal

The C++ test (test_dataset_io.cpp) computes the same patterns and compares exactly, so the
formula here and there must stay identical.
"""
import sys

import h5py
import numpy as np

# Layout of each dtype: total bits, exponent position and size.
LAYOUT = {"bf16": (16, 7, 8), "fp16": (16, 10, 5), "fp32": (32, 23, 8), "fp64": (64, 52, 11)}
MULT = {16: 40503, 32: 2654435761, 64: 11400714819323198485}
# Zero, -0, smallest subnormal, most negative subnormal, max, -max, 1.0, smallest normal.
SPECIALS = {
    "bf16": [0x0000, 0x8000, 0x0001, 0x807F, 0x7F7F, 0xFF7F, 0x3F80, 0x0080],
    "fp16": [0x0000, 0x8000, 0x0001, 0x83FF, 0x7BFF, 0xFBFF, 0x3C00, 0x0400],
    "fp32": [0x0, 0x80000000, 0x1, 0x807FFFFF, 0x7F7FFFFF, 0xFF7FFFFF, 0x3F800000, 0x00800000],
    "fp64": [0x0, 1 << 63, 0x1, 0x800FFFFFFFFFFFFF, 0x7FEFFFFFFFFFFFFF, 0xFFEFFFFFFFFFFFFF,
             0x3FF0000000000000, 0x0010000000000000],
}
# Case dimensions and the order of the tensors (tensor j uses pattern indices 1000 j + i).
B, T, H, HV, K, V = 2, 5, 1, 2, 4, 3
TENSORS = [("inputs/q", (B, T, H, K)), ("inputs/k", (B, T, H, K)), ("inputs/v", (B, T, HV, V)),
           ("inputs/g", (B, T, HV)), ("inputs/beta", (B, T, HV)), ("inputs/initial_state", (B, HV, K, V)),
           ("captured/h5py/o", (B, T, HV, V)), ("captured/h5py/final_state", (B, HV, K, V))]


def pattern(dtype, index):
    """Bit pattern number `index`: the specials first, then a multiplicative hash that never
    produces Inf or NaN (an all-ones exponent gets its top bit cleared)."""
    bits, epos, esize = LAYOUT[dtype]
    if index < len(SPECIALS[dtype]):
        return SPECIALS[dtype][index]
    x = (index * MULT[bits] + 12345) % (1 << bits)
    emask = (1 << esize) - 1
    if (x >> epos) & emask == emask:
        x ^= 1 << (bits - 2)
    return x


def bits_array(dtype, j, shape):
    n = int(np.prod(shape))
    utype = {16: np.uint16, 32: np.uint32, 64: np.uint64}[LAYOUT[dtype][0]]
    return np.array([pattern(dtype, 1000 * j + i) for i in range(n)], dtype=utype).reshape(shape)


def bf16_type():
    tid = h5py.h5t.IEEE_F32LE.copy()
    tid.set_fields(15, 7, 8, 0, 7)  # fields first, then precision and size
    tid.set_precision(16)
    tid.set_size(2)
    tid.set_ebias(127)
    return tid


def write_array(group, name, dtype, bits):
    if dtype == "bf16":
        tid = bf16_type()
        space = h5py.h5s.create_simple(bits.shape)
        dsid = h5py.h5d.create(group.id, name.encode(), tid, space)
        dsid.write(h5py.h5s.ALL, h5py.h5s.ALL, bits, mtype=tid)
    else:
        view = {"fp16": np.float16, "fp32": np.float32, "fp64": np.float64}[dtype]
        group.create_dataset(name, data=bits.view(view))


def write(path, dtype):
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "gdnv-dataset"
        f.attrs["version"] = 1
        f.attrs["created_by"] = "h5py_writer.py"
        c = f.create_group("cases/c0")
        c.attrs["scale"] = 0.5
        c.attrs["chunk_size"] = 64
        c.attrs["qk_l2norm"] = np.bool_(True)  # h5py stores this as an int8 enum
        c.attrs["family"] = "h5py"
        c.attrs["seed"] = 42
        cap = c.create_group("captured/h5py")
        cap.attrs["implementation"] = "h5py-writer"
        cap.attrs["version"] = "1"
        cap.attrs["arithmetic"] = dtype + " everywhere"
        for j, (path_in_case, shape) in enumerate(TENSORS):
            grp_name, name = path_in_case.rsplit("/", 1)
            write_array(c.require_group(grp_name), name, dtype, bits_array(dtype, j, shape))


def fmt_value(x):
    if isinstance(x, (np.floating, float)):
        return float(x).hex()
    return str(int(x))


def dump(path):
    lines = []

    def attrs(name, obj):
        for key in sorted(obj.attrs.keys()):
            value = obj.attrs[key]
            shown = value.decode() if isinstance(value, bytes) else str(value)
            lines.append(f"attr {name}@{key} {type(value).__name__} {shown}")

    def visit(name, obj):
        attrs(name, obj)
        if isinstance(obj, h5py.Dataset):
            data = obj[()]
            shape = ",".join(str(d) for d in data.shape)
            values = " ".join(fmt_value(x) for x in data.reshape(-1))
            lines.append(f"dataset {name} {data.dtype} {shape} {values}")

    with h5py.File(path, "r") as f:
        attrs("/", f)
        f.visititems(visit)
    print("\n".join(lines))


def main(argv):
    if len(argv) == 4 and argv[1] == "write":
        write(argv[2], argv[3])
    elif len(argv) == 3 and argv[1] == "dump":
        dump(argv[2])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
