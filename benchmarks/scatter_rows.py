"""An embedding's gradient, target[ids[r]] += values[r]: ``kernels.add_rows`` (compiled, on
one thread, and as a layer calls it: inside ``own_threads``, where it takes the team from
ADD_ROWS_TEAM_MIN values) against ``backend.scatter_add`` (NumPy: sort the rows by
id, then ``add.reduceat``), in one process, best of ``--repeats``.

    python benchmarks/scatter_rows.py                      # the shapes BENCHMARKS.md names
    python benchmarks/scatter_rows.py --shapes "12800 2048 128" --repeats 9

A shape is "rows width ids": rows = batch × time steps, width = the row's size (4H for the
fused Embedding → LSTM, E for the Embedding alone), ids = the vocabulary.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from rnnkit import backend, kernels

SHAPES = ["12800 2048 128", "12800 512 128", "2048 1024 85", "3200 64 128"]


def best(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times) * 1e3


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shapes", nargs="+", default=SHAPES, metavar="'ROWS WIDTH IDS'")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error(f"--repeats must be at least 1, got {args.repeats}")
    rng = np.random.default_rng(0)
    print("| rows | width | ids | add_rows, 1 thread ms | add_rows in a layer ms | NumPy ms |")
    print("|---|---|---|---|---|---|")
    for text in args.shapes:
        try:
            n, width, vocab = (int(v) for v in text.split())
        except ValueError:
            p.error(f"--shapes: expected 'ROWS WIDTH IDS' (three integers), got {text!r}")
        ids = rng.integers(0, vocab, n)
        values = rng.standard_normal((n, width)).astype(np.float32)

        def compiled():
            kernels.add_rows(np.zeros((vocab, width), np.float32), ids, values)

        def numpy_way():
            backend.scatter_add(np.zeros((vocab, width), np.float32), ids, values)

        one = best(compiled, args.repeats)
        with kernels.own_threads():
            team = best(compiled, args.repeats)
        ref = best(numpy_way, args.repeats)
        print(f"| {n} | {width} | {vocab} | {one:.2f} | {team:.2f} | {ref:.1f} |")


if __name__ == "__main__":
    main()
