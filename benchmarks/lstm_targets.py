#!/usr/bin/env python
"""Issue 19's LSTM targets, point by point, over one or more runs of bench_cpu.py.

    python benchmarks/lstm_targets.py benchmarks/results/cpu-t21-xeon.json \\
        benchmarks/results/cpu-t24-lstm-xeon.json [--cache-mb 4]

The targets (ratio = rnnkit's time over PyTorch's, each in its own process): inference
≤ 0.9 at every point, training ≤ 1.0 at every point and ≤ 0.9 as a geometric mean.  Where
PyTorch already runs above 80 % of the machine's measured matrix-product peak, ≤ 1.0 is
the physical limit and the target there.  So is it where a step cannot be faster than
reading the weights: a batch of one whose recurrent and input weights (4 bytes each of
(H + D) × 4H) outgrow the caches of all cores (``--cache-mb``, default 4: the two cores'
L2 of the Xeon the runs here used); the table prints what each framework read a second.

For each point: the ratio of every run, their median, PyTorch's share of peak (the median
over runs), the bound that applies and why, and in how many runs it was met."""

from __future__ import annotations

import argparse
import json
import math
import statistics

INFER_BOUND, TRAIN_BOUND, TRAIN_GEOMEAN = 0.9, 1.0, 0.9
PHYSICAL = 1.0  # the bound where PyTorch is at the machine's limit
PEAK_SHARE = 0.80


def load(path):
    """(meta, {(mode, N, T, H): (result, peak)}) of one bench_cpu.py JSON file; ValueError
    naming the file where it is not one."""
    try:
        with open(path) as f:
            data = json.load(f)
        peak = data["meta"]["peak_gflops"]
        results = list(data["results"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: not a bench_cpu.py result file ({e!r})") from None
    points = {}
    for r in results:
        if r.get("cell") == "lstm" and "ratio" in r:
            points[(r["mode"], r["N"], r["T"], r["H"])] = (r, peak)
    return data["meta"], points


def bound_for(mode, N, H, D, torch_share, cache_mb):
    """(bound, why) for one point."""
    weight_mb = 4 * (H + D) * 4 * H / 2**20
    if mode == "train":
        return TRAIN_BOUND, ""
    if N == 1 and weight_mb > cache_mb:
        return PHYSICAL, f"memory: {weight_mb:.1f} MB of weights read a step"
    if torch_share > PEAK_SHARE:
        return PHYSICAL, f"PyTorch above {PEAK_SHARE:.0%} of peak"
    return INFER_BOUND, ""


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("runs", nargs="+", help="bench_cpu.py JSON files")
    p.add_argument("--cache-mb", type=float, default=4.0, help="all cores' L2, MB")
    args = p.parse_args(argv)
    if args.cache_mb <= 0:
        p.error(f"--cache-mb must be > 0; got {args.cache_mb}")
    try:
        runs = [load(path) for path in args.runs]
    except ValueError as e:
        p.error(str(e))
    keys = sorted({k for _, pts in runs for k in pts}, key=lambda k: (k[0] != "train", k[1:]))
    if not keys:
        p.error("no LSTM points in these files")
    names = [path.rsplit("/", 1)[-1].removesuffix(".json") for path in args.runs]
    print(
        "| mode | N | T | H | " + " | ".join(names) + " | median | PyTorch % peak | bound | met |"
    )
    print("|---|---|---|---|" + "---|" * len(names) + "---|---|---|---|")
    medians: dict[str, list[float]] = {"train": [], "infer": []}
    for key in keys:
        mode, N, T, H = key
        ratios, shares, gbs = [], [], []
        D = 0
        for _, pts in runs:
            if key in pts:
                r, peak = pts[key]
                D = r.get("D", 0)
                ratios.append(r["ratio"]["median"])
                shares.append(r["torch"]["gflops"] / peak)
                step_s = {f: r[f]["ms_per_step"]["median"] / 1e3 for f in ("rnnkit", "torch")}
                gbs.append({f: 4 * (H + D) * 4 * H / s / 1e9 for f, s in step_s.items()})
            else:
                ratios.append(math.nan)
        seen = [x for x in ratios if not math.isnan(x)]
        med, share = statistics.median(seen), statistics.median(shares)
        medians[mode].append(med)
        bound, why = bound_for(mode, N, H, D, share, args.cache_mb)
        if why.startswith("memory") and gbs:
            why += (
                f" (rnnkit {statistics.median(g['rnnkit'] for g in gbs):.0f}, PyTorch "
                f"{statistics.median(g['torch'] for g in gbs):.0f} GB/s)"
            )
        met = sum(x <= bound for x in seen)
        cells = " | ".join("–" if math.isnan(x) else f"{x:.2f}" for x in ratios)
        mark = "" if med <= bound else " **no**"
        print(
            f"| {mode} | {N} | {T} | {H} | {cells} | {med:.2f}{mark} | {100 * share:.0f} % "
            f"| ≤ {bound:.1f}{' (' + why + ')' if why else ''} | {met}/{len(seen)} |"
        )
    print()
    for mode, meds in medians.items():
        if meds:
            geo = math.exp(sum(math.log(x) for x in meds) / len(meds))
            extra = f" (target ≤ {TRAIN_GEOMEAN})" if mode == "train" else ""
            print(f"- {mode}: geometric mean of the medians {geo:.2f}{extra}")


if __name__ == "__main__":
    main()
