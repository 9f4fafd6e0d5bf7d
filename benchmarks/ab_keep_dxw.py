"""A/B of the kept backward buffer (``rnnkit.kernels.loops.KEEP_DXW``): the whole training
iteration of ``bench_training.py`` (Embedding -> LSTM -> Dense -> loss -> backward ->
Adam), float32, rnnkit only, with the compiled backward's (T, N, 4H) buffer of ∂L/∂a kept
for the next backward against a new one each time.  The two ways alternate within one
process, ``--rounds`` rounds of ``--seconds`` each; prints ms per iteration (the best
round of each way) and the ratio kept / new.  Nothing here asserts a speed.

Run:  python benchmarks/ab_keep_dxw.py [--points 128:100:512 32:100:512 ...]  (N:T:H)"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_training as bt  # noqa: E402  (the same model, weights and data)

POINTS = [(32, 100, 128), (32, 100, 512), (128, 100, 128), (128, 100, 512)]


def measure(worker, keep, seconds):
    """ms per iteration with the buffer kept (keep) or new each backward."""
    from rnnkit import kernels
    from rnnkit.kernels import loops

    loops.KEEP_DXW = keep
    kernels.release_memory()  # each way starts without a kept buffer
    worker.iterate()  # the first backward of this way (keeps one when keep)
    n, t0 = 0, time.perf_counter()
    while n < 2 or time.perf_counter() - t0 < seconds:
        worker.iterate()
        n += 1
    return (time.perf_counter() - t0) / n * 1e3


def point(text):
    """N:T:H (e.g. 128:100:512), for --points."""
    parts = text.split(":")
    if len(parts) != 3 or not all(q.isdigit() and int(q) > 0 for q in parts):
        raise argparse.ArgumentTypeError(f"expected N:T:H, positive integers; got {text!r}")
    return tuple(int(q) for q in parts)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--points", nargs="+", type=point, default=POINTS, metavar="N:T:H")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--seconds", type=float, default=2.0, help="per way and round")
    p.add_argument("--V", type=int, default=128)
    p.add_argument("--E", type=int, default=64)
    args = p.parse_args()
    print("| N | T | H | kept, ms/iteration | new, ms/iteration | ratio |")
    print("|---|---|---|---|---|---|")
    for N, T, H in args.points:
        worker = bt.RnnkitTrain(os.cpu_count())
        worker.setup(N, T, H, args.V, args.E, seed=0)
        a, b = [], []
        for _ in range(args.rounds):
            a.append(measure(worker, True, args.seconds))
            b.append(measure(worker, False, args.seconds))
        ta, tb = min(a), min(b)
        print(f"| {N} | {T} | {H} | {ta:.1f} | {tb:.1f} | {ta / tb:.2f} |", flush=True)
        worker.release()


if __name__ == "__main__":
    main()
