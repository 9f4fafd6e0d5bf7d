"""One recurrent layer's inference forward (or, with --train, its training forward and
backward), timed in this process: ms a step for each
sequence length, the best of a few rounds, repeated as samples a few seconds apart (to
see how much the machine's pace drifts), then the way the compiled loops' chooser took
for the layer's products (``rnnkit.kernels.choices()``).

    python benchmarks/layer_steps.py --cell lstm --N 1 --H 1024 --T 10 50 200
    RNNKIT_PRODUCTS=packed python benchmarks/layer_steps.py --N 1 --H 1024   # one way forced
    python benchmarks/layer_steps.py --N 128 --T 50 --H 1024 --samples 6

    RNNKIT_PRODUCTS=team python benchmarks/layer_steps.py --N 16 --H 512 --D 200 --T 100 --train

float32, input size D (64), ``return_sequences=True``. BENCHMARKS.md, "Packed weights in
kept huge-page buffers" and "The batch whole, W cut by columns", quote it. Nothing here
asserts a speed."""

import argparse
import time

import numpy as np

import rnnkit.kernels
from rnnkit import GRU, LSTM, SimpleRNN

CELLS = {"simple": SimpleRNN, "gru": GRU, "lstm": LSTM}


def ms_a_step(layer, x, seconds, rounds=5, train=False):
    """The best of ``rounds`` rounds of ``seconds`` each: ms per step of the forward, or
    with ``train`` of a training forward and its backward (an upstream gradient of ones)."""
    dy = np.ones((x.shape[0], x.shape[1], layer.units), np.float32) if train else None

    def once():
        layer.forward(x, training=train)
        if train:
            layer.backward(dy)

    once()
    best = float("inf")
    for _ in range(rounds):
        n, t0 = 0, time.perf_counter()
        while n < 2 or time.perf_counter() - t0 < seconds:
            once()
            n += 1
        best = min(best, (time.perf_counter() - t0) / n)
    return best / x.shape[1] * 1e3


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--cell", choices=sorted(CELLS), default="lstm")
    p.add_argument("--N", type=int, default=1)
    p.add_argument("--T", type=int, nargs="+", default=[10, 50, 200])
    p.add_argument("--H", type=int, default=1024)
    p.add_argument("--D", type=int, default=64)
    p.add_argument("--samples", type=int, default=1)
    p.add_argument("--seconds", type=float, default=0.1, help="per round")
    p.add_argument("--train", action="store_true", help="forward (training) and backward")
    args = p.parse_args()
    layer = CELLS[args.cell](args.H, return_sequences=True, seed=0)
    rng = np.random.default_rng(0)
    xs = {T: rng.standard_normal((args.N, T, args.D)).astype(np.float32) for T in args.T}
    layer.forward(xs[args.T[0]][:, :1])  # builds the weights
    what = "training forward and backward" if args.train else "inference"
    print(f"{args.cell.upper()}({args.H}), N = {args.N}, D = {args.D}, {what}: ms a step")
    for s in range(args.samples):
        row = "  ".join(
            f"T={T}: {ms_a_step(layer, x, args.seconds, train=args.train):.4f}"
            for T, x in xs.items()
        )
        print(f"sample {s + 1}: {row}", flush=True)
    for c in rnnkit.kernels.choices():
        times = {w: round(t * 1e6, 1) for w, t in c.get("times", {}).items()}
        setup = {w: round(t * 1e3, 2) for w, t in c.get("setup", {}).items() if t > 1e-6}
        print(
            f"chooser: N={c['N']} H={c['H']} D={c['D']} {c['mode']} -> {c['way']} "
            f"(µs a step: {times}; ms of setup a loop: {setup})"
        )


if __name__ == "__main__":
    main()
