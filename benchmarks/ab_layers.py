"""A/B of whole rnnkit layers: two versions of rnnkit, each in fresh processes, alternated.

    python benchmarks/ab_layers.py --a /path/to/checkout-a --b /path/to/checkout-b \
        --shapes "32 50 1024 lstm" "128 200 64 lstm" --rounds 5

A and B are directories that hold an ``rnnkit`` package with its extension built
(a checkout after ``python setup.py build_ext --inplace``, or a copy of one); each is put
first on PYTHONPATH of its own processes.  For every round and shape, A then B (or B then A
on odd rounds, so that neither always runs second) run one process each that times a
training step (forward, backward of the summed outputs) and inference (forward) of one
layer, input size ``--D`` (64), float32, for at least ``--seconds`` each.  Printed: the median
ms per time step over the rounds and the ratio B/A.  This is how BENCHMARKS.md's "time
with / time without" numbers were measured; a machine shared with others moves single
rounds by 10-15 %, so use five rounds or more and read small ratios with care.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

WORKER = r"""
import sys, time
import numpy as np
import rnnkit
N, T, H, cell, seconds, D = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], float(sys.argv[5]), int(sys.argv[6])
layer = {"lstm": rnnkit.LSTM, "gru": rnnkit.GRU, "simple": rnnkit.SimpleRNN}[cell](H, return_sequences=True, seed=0)
x = np.random.default_rng(0).standard_normal((N, T, D)).astype(np.float32)
def train():
    y = layer.forward(x, training=True)
    layer.backward(np.ones_like(y))
def infer():
    layer.forward(x)
out = []
for step in (train, infer):
    step()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step()
        n += 1
    out.append((time.perf_counter() - t0) / n / T * 1e3)
print(rnnkit.__file__, *out)
"""

CELLS = ("lstm", "gru", "simple")


def parse_shape(text):
    parts = text.split()
    if (
        len(parts) not in (3, 4)
        or not all(p.isdigit() and int(p) > 0 for p in parts[:3])
        or (len(parts) == 4 and parts[3] not in CELLS)
    ):
        raise argparse.ArgumentTypeError(
            f"--shapes: expected 'N T H' or 'N T H CELL' with positive integers and CELL one of "
            f"{', '.join(CELLS)}, got {text!r}"
        )
    return int(parts[0]), int(parts[1]), int(parts[2]), parts[3] if len(parts) == 4 else "lstm"


def package_dir(path):
    if not os.path.isfile(os.path.join(path, "rnnkit", "__init__.py")):
        raise argparse.ArgumentTypeError(
            f"expected a directory that holds the rnnkit package (rnnkit/__init__.py), got {path!r}"
        )
    return os.path.abspath(path)


def run_one(path, shape, seconds, D=64):
    env = dict(os.environ, PYTHONPATH=path + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [sys.executable, "-c", WORKER, *map(str, shape), str(seconds), str(D)],
        env=env,
        cwd=path,
        capture_output=True,
        text=True,
        timeout=600,
    )  # cwd: first on sys.path
    if proc.returncode != 0:
        sys.exit(f"ab_layers.py: the run of {shape} with {path} failed:\n{proc.stderr[-2000:]}")
    where, train, infer = proc.stdout.split()
    if not os.path.abspath(where).startswith(path + os.sep):
        sys.exit(f"ab_layers.py: {path} was not the rnnkit imported (got {where})")
    return float(train), float(infer)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--a", type=package_dir, required=True, help="directory holding version A's rnnkit"
    )
    p.add_argument(
        "--b", type=package_dir, required=True, help="directory holding version B's rnnkit"
    )
    p.add_argument("--shapes", type=parse_shape, nargs="+", required=True, metavar="'N T H [CELL]'")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--seconds", type=float, default=0.6, help="timing per mode and process")
    p.add_argument("--D", type=int, default=64, help="input size (default 64)")
    args = p.parse_args(argv)
    if args.D < 1:
        p.error(f"--D must be at least 1, got {args.D}")
    if args.rounds < 1 or args.seconds < 0:
        p.error(
            f"--rounds must be at least 1 and --seconds not negative, got {args.rounds} and "
            f"{args.seconds}"
        )
    times = {(shape, v): [] for shape in args.shapes for v in "ab"}
    for r in range(args.rounds):
        for shape in args.shapes:
            for v in "ab" if r % 2 == 0 else "ba":
                times[(shape, v)].append(run_one(getattr(args, v), shape, args.seconds, args.D))
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    print(
        "| N | T | H | cell | A train ms/step | B train | B/A | A infer ms/step | B infer | B/A |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for shape in args.shapes:
        med = {
            v: [statistics.median(t[i] for t in times[(shape, v)]) for i in (0, 1)] for v in "ab"
        }
        (at, ai), (bt, bi) = med["a"], med["b"]
        print(
            f"| {shape[0]} | {shape[1]} | {shape[2]} | {shape[3]} | {at:.3f} | {bt:.3f} | "
            f"{bt / at:.2f} | {ai:.3f} | {bi:.3f} | {bi / ai:.2f} |"
        )


if __name__ == "__main__":
    main()
