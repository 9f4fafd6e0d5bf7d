"""A/B of the loss's compiled pass in bench_training.py's whole iteration: Embedding(V, E)
-> LSTM(H) -> Dense(V) -> sparse cross-entropy from logits -> backward -> Adam, rnnkit
only, in one process, with ``kernels.xent_logits`` (one compiled pass over the logits) and
without it (NumPy's passes), alternated ``--rounds`` times; prints the median ms per
iteration of each and their ratio.

    python benchmarks/ab_loss.py [--shapes "32 100 128" "128 100 128" ...] [--rounds 5]
    (N T H; V = 128, E = 64 as in bench_training.py)"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_training  # noqa: E402

from rnnkit import kernels  # noqa: E402

V, E = 128, 64


def shape(text):
    parts = text.split()
    if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f"expected 'N T H', positive integers; got {text!r}")
    return tuple(int(p) for p in parts)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shapes", type=shape, nargs="+", default=[(32, 100, 128), (128, 100, 128)])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--iterations", type=int, default=0, help="a round (default: ~0.6 s)")
    args = p.parse_args(argv)
    if args.rounds < 1 or args.iterations < 0:
        p.error(f"--rounds must be ≥ 1 and --iterations ≥ 0; got {args.rounds}, {args.iterations}")
    real = kernels.xent_logits
    print("| N | T | H | fused ms/iteration | NumPy's passes | ratio |")
    print("|---|---|---|---|---|---|")
    try:
        for N, T, H in args.shapes:
            run = bench_training.RnnkitTrain(kernels.threads.team_size())
            run.setup(N, T, H, V, E, 0)
            n = args.iterations or max(1, int(0.6 / max(run.run(2) / 2, 1e-6)))
            times: dict[str, list[float]] = {"fused": [], "numpy": []}
            for r in range(args.rounds):
                for way in ("fused", "numpy") if r % 2 == 0 else ("numpy", "fused"):
                    kernels.xent_logits = real if way == "fused" else (lambda *a: None)
                    times[way].append(run.run(n) / n * 1e3)
            kernels.xent_logits = real
            f, m = statistics.median(times["fused"]), statistics.median(times["numpy"])
            print(f"| {N} | {T} | {H} | {f:.2f} | {m:.2f} | {f / m:.3f} |", flush=True)
    finally:
        kernels.xent_logits = real


if __name__ == "__main__":
    main()
