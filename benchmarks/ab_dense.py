"""A/B of a ``Dense`` layer's forward + backward: its products through ``kernels.matmul``
(cut into one block per thread of rnnkit's team, inside ``own_threads``) against plain
``a @ b`` (NumPy's BLAS, held at one thread inside ``own_threads``), in one process,
alternated, best of ``--repeats`` pairs of calls.

    python benchmarks/ab_dense.py                       # the shapes BENCHMARKS.md names
    python benchmarks/ab_dense.py --shapes "480 128 12318" --repeats 9

A shape is "rows inputs outputs": rows = batch × time steps of a sequence model's head.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

import rnnkit.layers.core as core
from rnnkit import Dense
from rnnkit.kernels import matmul as team_matmul

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_cpu import cpu_model  # noqa: E402

SHAPES = ["480 128 12318", "3200 128 128", "12800 512 128"]


def best_ms(layer, x, repeats):
    def step():
        y = layer.forward(x)
        layer.backward(np.ones_like(y))

    step()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        step()
        step()
        best = min(best, (time.perf_counter() - t) / 2)
    return best * 1e3


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shapes", nargs="+", default=SHAPES)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    print(f"CPU: {cpu_model()}; float32; ms per forward + backward")
    print("| rows | inputs | outputs | a @ b (BLAS, 1 thread) | kernels.matmul (team) |")
    print("|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    for shape in args.shapes:
        M, K, N = (int(v) for v in shape.split())
        layer = Dense(N)
        x = rng.random((M, K), dtype=np.float32)
        layer.build(x.shape)
        times = {}
        for name, mm in (("blas", lambda a, b: a @ b), ("team", team_matmul)):
            core.matmul = mm
            times[name] = best_ms(layer, x, args.repeats)
        core.matmul = team_matmul
        print(f"| {M} | {K} | {N} | {times['blas']:.1f} | {times['team']:.1f} |")


if __name__ == "__main__":
    main()
