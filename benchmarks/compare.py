#!/usr/bin/env python
"""Put the ratios rnnkit/PyTorch of several bench_cpu.py runs side by side.

    python benchmarks/compare.py benchmarks/results/cpu-baseline.json benchmarks/results/cpu.json \\
        --labels "NumPy loops" "compiled loops"

Prints a markdown table (one row per grid point, one ratio column per run), then the
geometric mean, best and worst ratio per cell and mode for each run, and how many points
meet the targets of issue 7.
"""

from __future__ import annotations

import argparse
import json
import math

KEY = ("cell", "mode", "N", "T", "H")


def geomean(xs):
    xs = [x for x in xs if x and x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def load(path):
    with open(path) as f:
        data = json.load(f)
    return data["meta"], {tuple(r[k] for k in KEY): r for r in data["results"] if "ratio" in r}


def targets(points):
    """points: {key: ratio}.  Counts for the three targets of issue 7."""
    tr_small = [q for k, q in points.items() if k[1] == "train" and k[2] <= 32 and k[4] <= 256]
    tr = [q for k, q in points.items() if k[1] == "train"]
    inf = [q for k, q in points.items() if k[1] == "infer"]
    return (
        f"train N≤32,H≤256 ≤0.5: {sum(q <= 0.5 for q in tr_small)}/{len(tr_small)}; "
        f"train ≤1: {sum(q <= 1.0 for q in tr)}/{len(tr)}; "
        f"infer ≤1: {sum(q <= 1.0 for q in inf)}/{len(inf)}"
    )


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", help="JSON files written by bench_cpu.py --out")
    p.add_argument("--labels", nargs="+", help="a column title per run")
    p.add_argument("--ms", action="store_true", help="also show rnnkit's ms/step of each run")
    args = p.parse_args(argv)
    labels = args.labels or [f"run {i + 1}" for i in range(len(args.runs))]
    runs = [load(path) for path in args.runs]
    keys = [k for k in runs[0][1] if all(k in r for _, r in runs)]
    head = ["cell", "mode", "N", "T", "H", "torch ms/step"]
    for lab in labels:
        head += ([f"{lab}: rnnkit ms/step"] if args.ms else []) + [f"{lab}: ratio"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for k in keys:
        row = [str(v) for v in k] + [f"{runs[-1][1][k]['torch']['ms_per_step']['median']:.3g}"]
        for _, res in runs:
            r = res[k]
            if args.ms:
                row.append(f"{r['rnnkit']['ms_per_step']['median']:.3g}")
            q = r["ratio"]["median"]
            row.append(f"**{q:.2f}**" if q > 1 else f"{q:.2f}")
        print("| " + " | ".join(row) + " |")
    print()
    print(
        "| cell | mode | " + " | ".join(f"{lab}: geo. mean (best–worst)" for lab in labels) + " |"
    )
    print("|---|---|" + "---|" * len(labels))
    groups = sorted(
        {(k[0], k[1]) for k in keys}, key=lambda g: (g[1], ["simple", "lstm", "gru"].index(g[0]))
    )
    for cell, mode in groups + [("all", "train"), ("all", "infer")]:
        cols = []
        for _, res in runs:
            qs = [
                res[k]["ratio"]["median"]
                for k in keys
                if k[1] == mode and (cell == "all" or k[0] == cell)
            ]
            if not qs:
                cols.append("–")
                continue
            worst = max(
                (k for k in keys if k[1] == mode and (cell == "all" or k[0] == cell)),
                key=lambda k: res[k]["ratio"]["median"],
            )
            cols.append(
                f"{geomean(qs):.2f} ({min(qs):.2f}–{max(qs):.2f} at N={worst[2]},T={worst[3]},"
                f"H={worst[4]}{'' if cell != 'all' else ' ' + worst[0]})"
            )
        print(f"| {cell} | {mode} | " + " | ".join(cols) + " |")
    print()
    for lab, (_, res) in zip(labels, runs):
        print(f"- {lab}: " + targets({k: res[k]["ratio"]["median"] for k in keys}))


if __name__ == "__main__":
    main()
