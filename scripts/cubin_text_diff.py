#!/usr/bin/env python3
"""Compare the machine code of two cubins kernel by kernel (no cuobjdump needed).

usage: cubin_text_diff.py OLD.cubin NEW.cubin [--rename OLD_SUBSTR=NEW_SUBSTR ...]

Prints, for every `.text.<kernel>` section, whether its bytes are identical in both files, differ, or exist in one
only. --rename maps names whose template arguments changed spelling (e.g. a bool parameter that became an int:
`Lb0EE=Li1EE`; applied in order, each to the old name) so that the same kernel is compared under both names. Exit status 0 when every kernel present in both
is byte-identical, 1 otherwise. A kernel's .text holds its instructions only; relocations to other symbols are
patched in other sections, so identical .text means identical code for a kernel that calls nothing.
"""
import re
import struct
import sys

# an anonymous namespace's mangled name carries a hash of the source path: the same kernel compiled from two
# checkouts gets two names
ANON = re.compile(r"_GLOBAL__N__[0-9a-f]+_[0-9]+_\w+?_cu_[0-9a-f]+")


def text_sections(path):
    data = open(path, "rb").read()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        sys.exit(f"{path}: not a 64-bit ELF cubin")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    headers = []
    for i in range(shnum):
        name, _type, _flags, _addr, off, size = struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize)
        headers.append((name, off, size))
    stroff = headers[shstrndx][1]
    out = {}
    for name, off, size in headers:
        end = data.index(b"\0", stroff + name)
        sname = data[stroff + name:end].decode()
        if sname.startswith(".text."):
            out[ANON.sub("_GLOBAL__N_", sname[len(".text."):])] = data[off:off + size]
    return out


def main():
    args = sys.argv[1:]
    renames = []
    files = []
    i = 0
    while i < len(args):
        if args[i] == "--rename":
            old, new = args[i + 1].split("=", 1)
            renames.append((old, new))
            i += 2
        else:
            files.append(args[i])
            i += 1
    if len(files) != 2:
        sys.exit(__doc__)
    old = text_sections(files[0])
    new = text_sections(files[1])
    mapped = {}
    for k, v in old.items():
        for a, b in renames:
            k = k.replace(a, b)
        mapped[k] = v
    bad = 0
    for k in sorted(set(mapped) | set(new)):
        if k not in new:
            print(f"only in old: {k}")
        elif k not in mapped:
            print(f"only in new: {k}")
        elif mapped[k] == new[k]:
            print(f"identical ({len(new[k]) // 16} instructions): {k}")
        else:
            bad += 1
            print(f"DIFFERENT ({len(mapped[k]) // 16} -> {len(new[k]) // 16} instructions): {k}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
