"""A/B of inference reading x where it lies and writing the output sequence from inside the
compiled loop (``rnnkit.kernels.loops.LOOP_IO``) against the layer's time-major copy of x
before the loop and of the outputs after it: whole layers, float32, D = 64,
return_sequences=True, the two ways alternated within one process, ``--rounds`` rounds;
prints ms per step (the best round) and peak memory (tracemalloc).
Run:  python benchmarks/ab_loop_io.py [--cells lstm gru simple] [--rounds 4]"""

import argparse
import time
import tracemalloc

import numpy as np

from rnnkit import GRU, LSTM, SimpleRNN
from rnnkit.kernels import loops

CELLS = {"simple": SimpleRNN, "gru": GRU, "lstm": LSTM}
POINTS = [
    (32, 50, 64),
    (32, 200, 64),
    (128, 50, 64),
    (128, 200, 64),
    (32, 200, 256),
    (128, 50, 256),
]


def measure(layer, x, loop_io, seconds):
    """(ms per step, peak MB) of layer.forward(x) with ``LOOP_IO`` as given."""
    before = loops.LOOP_IO
    loops.LOOP_IO = loop_io
    try:
        layer.forward(x)
        tracemalloc.start()
        layer.forward(x)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        n, t0 = 0, time.perf_counter()
        while n < 3 or time.perf_counter() - t0 < seconds:
            layer.forward(x)
            n += 1
        elapsed = (time.perf_counter() - t0) / n
    finally:
        loops.LOOP_IO = before
    return elapsed / x.shape[1] * 1e3, peak / 2**20


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--cells", nargs="+", choices=sorted(CELLS), default=["lstm", "gru", "simple"])
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--seconds", type=float, default=0.3, help="per way and round")
    args = p.parse_args()
    print(
        "| cell | N | T | H | in the loop, ms/step | copies, ms/step | ratio | peak MB (loop / copies) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for kind in args.cells:
        for N, T, H in POINTS:
            layer = CELLS[kind](H, return_sequences=True, seed=0)
            x = np.random.default_rng(0).standard_normal((N, T, 64)).astype("float32")
            a, b = [], []
            for _ in range(args.rounds):
                a.append(measure(layer, x, True, args.seconds))
                b.append(measure(layer, x, False, args.seconds))
            ta, tb = min(r[0] for r in a), min(r[0] for r in b)
            print(
                f"| {kind} | {N} | {T} | {H} | {ta:.4f} | {tb:.4f} | {ta / tb:.2f} "
                f"| {a[0][1]:.2f} / {b[0][1]:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
