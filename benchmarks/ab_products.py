"""The recurrent products' way (rnnkit/kernels/choose.py) on this CPU: LSTM inference, float32,
D = 64, ms per step of a whole layer's forward with each way forced (RNNKIT_PRODUCTS=packed,
blas, split, mkl: MKL's packed GEMM, where ``pip install rnnkit[mkl]`` put it) and with the measured choice (auto), alternated within one process; best of
each round's forwards, best round.  Writes ``--out``.json and .md with the CPU (lscpu's
model name, avx2/avx512f), the load around the run and what auto chose with its measured
step times.  Run:  python benchmarks/ab_products.py --out benchmarks/results/products-NAME
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

from rnnkit import LSTM, kernels

WAYS = ("packed", "blas", "split", "mkl", "auto")


def cpu():
    model = ""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        model = next(
            (ln.split(":", 1)[1].strip() for ln in out.splitlines() if "Model name" in ln), ""
        )
    except OSError:
        pass
    flags = set()
    try:
        with open("/proc/cpuinfo") as f:
            flags = set(next(ln for ln in f if ln.startswith("flags")).split(":", 1)[1].split())
    except (OSError, StopIteration):
        pass
    return {
        "model": model,
        "avx2": "avx2" in flags,
        "fma": "fma" in flags,
        "avx512f": "avx512f" in flags,
        "cpus": os.cpu_count(),
    }


def forward_seconds(layer, x, budget):
    """The best of the forwards that fit in ``budget`` seconds (at least two)."""
    best, spent, n = float("inf"), 0.0, 0
    while n < 2 or spent < budget:
        t0 = time.perf_counter()
        layer.forward(x)
        dt = time.perf_counter() - t0
        best, spent, n = min(best, dt), spent + dt, n + 1
    return best


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--N", default="1,8,32,128")
    p.add_argument("--H", default="64,256,1024")
    p.add_argument("--T", type=int, default=50)
    p.add_argument("--D", type=int, default=64)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--budget", type=float, default=0.15, help="seconds per way and round")
    p.add_argument("--out", default="benchmarks/results/products")
    args = p.parse_args()
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    load0 = os.getloadavg()
    rows = []
    for H in [int(v) for v in args.H.split(",")]:
        for N in [int(v) for v in args.N.split(",")]:
            layer = LSTM(H, seed=0)
            x = np.random.default_rng(0).standard_normal((N, args.T, args.D)).astype("float32")
            best = {w: float("inf") for w in WAYS}
            used = {}
            for _ in range(args.rounds):
                for w in WAYS:
                    os.environ["RNNKIT_PRODUCTS"] = w
                    layer.forward(x)  # auto measures here, once per shape
                    best[w] = min(best[w], forward_seconds(layer, x, args.budget))
                    rec = next(
                        r
                        for r in kernels.choices()
                        if (r["mode"], r["kind"], r["N"], r["H"], r["backward"])
                        == (w, "lstm", N, H, False)
                    )
                    used[w] = rec
            auto = used["auto"]
            row = {
                "N": N,
                "H": H,
                "T": args.T,
                "ms_per_step": {w: best[w] / args.T * 1e3 for w in WAYS},
                "way_run": {w: used[w]["way"] for w in WAYS},
                "auto_chose": auto["way"],
                "auto_step_us": {w: t * 1e6 for w, t in auto["times"].items()},
                "auto_cost_ms": auto.get("cost_s", 0.0) * 1e3,
                "plan": auto["plan"],
                "why_not": auto["why_not"],
            }
            rows.append(row)
            ms = row["ms_per_step"]
            print(
                f"N={N:4} H={H:5}  "
                + "  ".join(
                    f"{w} {ms[w]:.4f}"
                    + ("" if used[w]["way"] == w or w == "auto" else f"(={used[w]['way']})")
                    for w in WAYS
                )
                + f"  auto chose {auto['way']}",
                flush=True,
            )
    os.environ.pop("RNNKIT_PRODUCTS", None)
    info = kernels.info()
    meta = {
        "command": "python " + " ".join(sys.argv),
        "started": started,
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
        "cpu": cpu(),
        "platform": platform.platform(),
        "threads": info.get("threads"),
        "blas": {k: info.get("blas", {}).get(k) for k in ("version", "architecture")},
        "mkl": info.get("mkl"),
        "load_before": load0,
        "load_after": os.getloadavg(),
        "what": f"LSTM inference (forward, training=False), float32, D={args.D}, "
        "return_sequences=False; ms per step = best forward of the best round / T",
    }
    with open(args.out + ".json", "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)
    c = meta["cpu"]
    lines = [
        f"# Recurrent products' way by shape: `{os.path.basename(args.out)}`",
        "",
        f"Command: `{meta['command']}`  ",
        f"Started {started}, finished {meta['finished']}  ",
        f"CPU: {c['model']} ({c['cpus']} CPUs; avx2 {c['avx2']}, fma {c['fma']}, avx512f {c['avx512f']}); "
        f"{meta['platform']}  ",
        f"rnnkit threads: {meta['threads']}; OpenBLAS {meta['blas']['version']} kernel "
        f"{meta['blas']['architecture']}  ",
        f"1-minute load average: {load0[0]:.2f} before, {meta['load_after'][0]:.2f} after (the run "
        "itself keeps about 2 busy; the machine is shared with another process's timed "
        "experiments, so times move with that process)  ",
        meta["what"] + ". `(=blas)`: the forced way does not apply at that shape and one BLAS "
        "call ran. Auto's step µs: its own measurement of one step's products (median of a "
        "few steps, best of 2 rounds) when the shape was first seen.",
        "",
        "| N | H | packed ms/step | blas | split | mkl | auto | auto chose | auto's measured step µs (packed / blas / split / mkl) | choice cost ms |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ms, run = r["ms_per_step"], r["way_run"]
        cell = [
            f"{ms[w]:.4f}" + ("" if run[w] == w else f" (={run[w]})")
            for w in ("packed", "blas", "split", "mkl")
        ]
        us = " / ".join(
            f"{r['auto_step_us'][w]:.1f}" if w in r["auto_step_us"] else "–"
            for w in ("packed", "blas", "split", "mkl")
        )
        lines.append(
            f"| {r['N']} | {r['H']} | {' | '.join(cell)} | {ms['auto']:.4f} | "
            f"{r['auto_chose']} | {us} | {r['auto_cost_ms']:.1f} |"
        )
    with open(args.out + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
