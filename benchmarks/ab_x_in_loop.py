"""A/B of inference forming each step's x_t U inside the compiled loop (x and U handed to
the loop) against one (T, N, G) product before it: whole layers, float32, alternated
within one process, ``--rounds`` rounds; prints ms per step (best of each round's repeats)
and peak memory (tracemalloc).  Run:  python benchmarks/ab_x_in_loop.py"""

import argparse
import time
import tracemalloc

import numpy as np

from rnnkit import GRU, LSTM, SimpleRNN
from rnnkit.kernels import loops

CELLS = {"simple": SimpleRNN, "gru": GRU, "lstm": LSTM}


def measure(layer, x, in_loop, repeats):
    cells = loops.X_IN_LOOP_CELLS
    loops.X_IN_LOOP_CELLS = cells if in_loop else ()
    try:
        layer.forward(x)
        tracemalloc.start()
        layer.forward(x)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        best = min(_time(layer, x) for _ in range(repeats))
    finally:
        loops.X_IN_LOOP_CELLS = cells
    return best / x.shape[1] * 1e3, peak / 2**20


def _time(layer, x):
    t0 = time.perf_counter()
    layer.forward(x)
    return time.perf_counter() - t0


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    points = [
        ("simple", 32, 200, 256),
        ("simple", 32, 50, 1024),
        ("gru", 32, 200, 256),
        ("gru", 128, 50, 256),
        ("gru", 32, 50, 1024),
        ("lstm", 32, 200, 256),
    ]
    for kind, N, T, H in points:
        layer = CELLS[kind](H, seed=0)
        x = np.random.default_rng(0).standard_normal((N, T, 64)).astype("float32")
        a, b = [], []
        for _ in range(args.rounds):
            a.append(measure(layer, x, True, args.repeats))
            b.append(measure(layer, x, False, args.repeats))
        ta, tb = min(r[0] for r in a), min(r[0] for r in b)
        print(
            f"{kind:6} N={N:3} T={T:3} H={H:4}  in the loop {ta:.3f} ms/step {a[0][1]:6.2f} MB"
            f"   before the loop {tb:.3f} ms/step {b[0][1]:6.2f} MB   ratio {ta / tb:.2f}"
        )


if __name__ == "__main__":
    main()
