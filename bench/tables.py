#!/usr/bin/python3
"""Markdown tables of `gdnv bench` JSON files (bench/README.md's tables are made with it).

    /usr/bin/python3 bench/tables.py bench/results/bench-H100-qwen3-next.json bench/results/bench-H100-B4-T4096-H16-HV16.json

One table per shape: cold-L2 median, x memory floor, x our unfused (the entry computing the same
outputs, same run), FLA's time and the ratio to it (targets.md)."""
import json
import sys


def fmt(x, nd):
    return "-" if x is None else f"{x:.{nd}f}"


def tables(path):
    d = json.load(open(path))
    commit = d.get("git", {}).get("commit", "?")[:7]
    print(f"<!-- {path}: {d['device']['name']}, tree {commit} -->")
    for c in d["configs"]:
        if c.get("status", "ok") != "ok" and "entries" not in c:
            continue
        print(f"\n**B={c['B']} T={c['T']} H={c['H']} HV={c['HV']} K=V={c['K']}**\n")
        print("| entry | µs (cold L2) | x memory floor | x our unfused | FLA µs | x FLA |")
        print("|---|---:|---:|---:|---:|---:|")
        for e in c["entries"]:
            m = e.get("cold") or e["warm"]
            print(f"| {e['name']} | {m['median']:.1f} | {fmt(m.get('x_floor'), 2)} | {fmt(m.get('x_unfused'), 2)} "
                  f"| {fmt(e.get('fla_us'), 0)} | {fmt(m.get('x_fla'), 2)} |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: tables.py BENCH.json...")
    for p in sys.argv[1:]:
        tables(p)
