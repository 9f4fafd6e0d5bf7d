"""A/B of the compiled loops' inference paths, whole layers, float32, input size ``--D``
(default 64), the two ways
alternated within one process, ``--rounds`` rounds; prints ms per step (the best of each
way's rounds) and peak memory (tracemalloc).

``--switch x_in_loop`` (the default): each step's x_t U formed inside the loop (x and U
handed to the loop) against one (T, N, G) product before it (``X_IN_LOOP_CELLS``).
``--switch loop_io``: the loop reading x where it lies and writing the output sequence
(``LOOP_IO``) against the layer's time-major copy of x before the loop and of the outputs
after it (``return_sequences=True``).

Run:  python benchmarks/ab_x_in_loop.py [--switch loop_io] [--cells lstm gru simple]
      [--points lstm:128:50:1024 ...] [--D 200]   (cell:N:T:H; the switch's own points
      otherwise)"""

import argparse
import time
import tracemalloc

import numpy as np

from rnnkit import GRU, LSTM, SimpleRNN
from rnnkit.kernels import loops

CELLS = {"simple": SimpleRNN, "gru": GRU, "lstm": LSTM}
POINTS = {  # (cell, N, T, H)
    "x_in_loop": [
        ("simple", 32, 200, 256),
        ("simple", 32, 50, 1024),
        ("gru", 32, 200, 256),
        ("gru", 128, 50, 256),
        ("gru", 32, 50, 1024),
        ("lstm", 32, 200, 256),
    ],
    "loop_io": [
        (cell, N, T, H)
        for cell in ("lstm", "gru", "simple")
        for N, T, H in [(32, 50, 64), (32, 200, 64), (128, 50, 64), (128, 200, 64)]
        + [(32, 200, 256), (128, 50, 256)]
    ],
}
LABELS = {"x_in_loop": ("in the loop", "before the loop"), "loop_io": ("in the loop", "copies")}


def switched(switch, on):
    """Set the switch; returns a function that puts it back."""
    if switch == "x_in_loop":
        cells = loops.X_IN_LOOP_CELLS
        loops.X_IN_LOOP_CELLS = cells if on else ()
        return lambda: setattr(loops, "X_IN_LOOP_CELLS", cells)
    before = loops.LOOP_IO
    loops.LOOP_IO = on
    return lambda: setattr(loops, "LOOP_IO", before)


def measure(layer, x, switch, on, seconds):
    """(ms per step, peak MB) of layer.forward(x) with the switch on or off."""
    restore = switched(switch, on)
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
        restore()
    return elapsed / x.shape[1] * 1e3, peak / 2**20


def point(text):
    """CELL:N:T:H (e.g. lstm:128:50:1024), for --points."""
    parts = text.split(":")
    sizes = parts[1:]
    if (
        len(parts) != 4
        or parts[0] not in CELLS
        or not all(q.isdigit() and int(q) > 0 for q in sizes)
    ):
        raise argparse.ArgumentTypeError(
            f"expected CELL:N:T:H with CELL one of {', '.join(sorted(CELLS))} and N, T, H "
            f"positive integers; got {text!r}"
        )
    return parts[0], int(parts[1]), int(parts[2]), int(parts[3])


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--switch", choices=sorted(POINTS), default="x_in_loop")
    p.add_argument("--cells", nargs="+", choices=sorted(CELLS), default=sorted(CELLS))
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--D", type=int, default=64, help="input size (default 64)")
    p.add_argument("--seconds", type=float, default=0.3, help="per way and round")
    p.add_argument(
        "--points", nargs="+", type=point, metavar="CELL:N:T:H", help="instead of the switch's"
    )
    args = p.parse_args()
    if args.D < 1:
        p.error(f"--D must be ≥ 1; got {args.D}")
    points = POINTS[args.switch]
    if args.points:
        points = args.points
    on, off = LABELS[args.switch]
    print(f"| cell | N | T | H | {on}, ms/step | {off}, ms/step | ratio | peak MB ({on} / {off}) |")
    print("|---|---|---|---|---|---|---|---|")
    for kind, N, T, H in points:
        if kind not in args.cells:
            continue
        layer = CELLS[kind](H, return_sequences=args.switch == "loop_io", seed=0)
        x = np.random.default_rng(0).standard_normal((N, T, args.D)).astype("float32")
        a, b = [], []
        for _ in range(args.rounds):
            a.append(measure(layer, x, args.switch, True, args.seconds))
            b.append(measure(layer, x, args.switch, False, args.seconds))
        ta, tb = min(r[0] for r in a), min(r[0] for r in b)
        print(
            f"| {kind} | {N} | {T} | {H} | {ta:.4f} | {tb:.4f} | {ta / tb:.2f} "
            f"| {a[0][1]:.2f} / {b[0][1]:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
