#!/usr/bin/python3
"""Nsight Compute's per-instruction source page summed between block barriers.

    ncu --import K.ncu-rep --page source --csv --print-source sass > src-K.csv
    /usr/bin/python3 scripts/ncu_regions.py src-K.csv --per 4096 > regions-K.txt

A region is the run of SASS instructions up to and including a BAR (bar.sync / barrier.sync), in program order; per
region one line: first and last instruction index, executed warp instructions divided by --per (the launch's work
items, e.g. B * chunks * value heads, so that the numbers read "per chunk and head"), the warp stall samples, and the
opcodes (predicate and modifiers dropped) with the most executed instructions. The kernels' phases are separated by
block barriers, so the lines map onto them (cuda/NOTES.md, tenth session). Made bench/results/ncu-*-regions.txt."""
import argparse
import collections
import csv
import sys


def number(text):
    text = (text or "").strip().replace(",", "")
    try:
        return float(text)
    except ValueError:
        return 0.0


def column(header, wanted, path):
    """Index of the column named `wanted` (ignoring surrounding spaces, quotes and '#'), else of the first one whose
    name starts with it (ncu versions add qualifiers)."""
    names = [h.strip().strip('"').strip("# ").strip() for h in header]
    for match in (lambda n: n == wanted, lambda n: n.startswith(wanted)):
        for i, name in enumerate(names):
            if match(name):
                return i
    sys.exit(f"{path}: no column '{wanted}' in the source page's header (has: {', '.join(h.strip() for h in header)})")


def opcode(source):
    tokens = source.split()
    if tokens and tokens[0].startswith("@"):  # predicate
        tokens = tokens[1:]
    return tokens[0].split(".")[0] if tokens else "?"


def read_rows(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    for n, row in enumerate(rows):  # ncu may print lines before the header
        if any(c.strip() == "Source" for c in row):
            return rows[n], rows[n + 1:]
    sys.exit(f"{path}: no header row with a 'Source' column (is this `ncu --page source --csv --print-source sass`?)")


def regions(path, per, top):
    header, rows = read_rows(path)
    src = column(header, "Source", path)
    executed = column(header, "Instructions Executed", path)
    samples = column(header, "Warp Stall Sampling (All", path)
    out, start, instr, smp, ops = [], 0, 0.0, 0.0, collections.Counter()
    rows = [r for r in rows if len(r) > max(src, executed, samples)]
    for i, r in enumerate(rows):
        op = opcode(r[src])
        n = number(r[executed])
        instr += n
        smp += number(r[samples])
        ops[op] += n
        if op == "BAR" or i == len(rows) - 1:
            listed = " ".join(f"{o}:{c / per:.0f}" for o, c in ops.most_common(top))
            out.append(f"{start:5d}-{i:5d} instr/head {instr / per:9.1f} samples {smp:8.0f}  {listed}")
            start, instr, smp, ops = i + 1, 0.0, 0.0, collections.Counter()
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("csv", help="`ncu --page source --csv --print-source sass` output of one kernel")
    p.add_argument("--per", type=float, default=1.0, help="work items of the launch (divides the counts)")
    p.add_argument("--top", type=int, default=9, help="opcodes listed per region")
    a = p.parse_args()
    if a.per <= 0:
        sys.exit("--per must be positive")
    print("\n".join(regions(a.csv, a.per, a.top)))


if __name__ == "__main__":
    main()
