"""One step's recurrent products alone, each way the loops can run them, in GFLOP/s.

The kernel-alone benchmark of ``rnnkit/kernels/choose.py``'s ways: for an LSTM step
(h_{t-1} W with W of H x 4H, and x_t U with U of D x 4H, as inference runs them in the
loop), ``kernels._loops.time_products`` times the products as the loop would run them at
batch N (the batch cut into chunks, one per thread, where the loop cuts it), for each way
that applies there: the packed kernel, one BLAS call (NumPy's), BLAS cut by columns over
the team (split), MKL's packed GEMM (where ``pip install ".[mkl]"`` installed it) and the
packed kernel on the whole batch cut by columns over the team (team, where the batch is
cut into chunks).  With
PyTorch installed, ``torch.matmul`` of the same products on the same threads is printed
beside them (PyTorch's MKL, not its fused LSTM).  The median step of each round, the best
round.  Run:  python benchmarks/products_alone.py [--N 8 32 128] [--H 256 1024]
"""

import argparse
import os
import platform
import time

import numpy as np

from rnnkit import LSTM, kernels
from rnnkit.kernels import choose


def torch_gflops(N, H, D, threads, flops, rounds, reps):
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    h, x = torch.randn(N, H), torch.randn(N, D)
    W, U = torch.randn(H, 4 * H), torch.randn(D, 4 * H)
    out = torch.empty(N, 4 * H)
    best = float("inf")
    for _ in range(rounds):
        steps = []
        for _ in range(reps + 1):
            t0 = time.perf_counter()
            torch.matmul(x, U, out=out)
            out.addmm_(h, W)
            steps.append(time.perf_counter() - t0)
        best = min(best, float(np.median(steps[1:])))
    return flops / best / 1e9


def positive(text):
    """An argument that must be an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer of at least 1; got {text!r}")
    return value


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--N", type=positive, nargs="+", default=[8, 32, 128])
    p.add_argument("--H", type=positive, nargs="+", default=[256, 1024])
    p.add_argument("--D", type=positive, default=64)
    p.add_argument("--rounds", type=positive, default=5)
    p.add_argument("--reps", type=positive, default=20, help="timed steps a round (at most 1000)")
    args = p.parse_args()
    if args.reps > 1000:
        p.error(f"argument --reps: expected at most 1000; got {args.reps}")
    LSTM(3, seed=0)(np.zeros((1, 2, 2), "float32"))  # the loops find NumPy's BLAS
    threads = kernels.threads.team_size()
    kernels.blas.find_mkl(kernels._loops)
    ways = choose.CANDIDATES
    info = kernels.info()
    print(
        f"# rnnkit team of {threads}; BLAS {info['blas'].get('version')} "
        f"({info['blas'].get('architecture')}); MKL: {info['mkl']}"
    )
    torch_col = {  # first, before rnnkit's team of threads has run anything
        (N, H): torch_gflops(
            N, H, args.D, threads, 2.0 * N * (H + args.D) * 4 * H, args.rounds, args.reps
        )
        for H in args.H
        for N in args.N
    }
    rows = []
    with kernels.own_threads():  # as the loops run: NumPy's BLAS held at one thread
        for H in args.H:
            for N in args.N:
                key = choose.Key("lstm", False, False, N, H, args.D, 0, 4, threads, True)
                pl = choose.plan(key, kernels._loops)
                specs = choose.products(key)
                flops = 2.0 * N * sum(k * nc for k, nc, _ in specs)
                cells = []
                for way in ways:
                    if pl["why_not"].get(way):
                        cells.append("–")
                        continue
                    best = float("inf")
                    rows_, threads_, chunks_ = choose.layout(key, way, pl)
                    for _ in range(args.rounds):
                        steps, _setup = kernels._loops.time_products(
                            4, choose.CODES[way], rows_, threads_, 1, specs, args.reps, chunks_
                        )
                        best = min(best, float(np.median(steps)))
                    cells.append(f"{flops / best / 1e9:.0f}")
                rows.append((N, H, pl, flops, cells))
    print("| N | H | chunks x rows | " + " | ".join(ways) + " | torch.matmul |")
    print("|---|---|---|" + "---|" * (len(ways) + 1))
    for N, H, pl, _flops, cells in rows:
        tg = torch_col[N, H]
        print(
            f"| {N} | {H} | {pl['chunks']} x {pl['rows']} | "
            + " | ".join(cells)
            + f" | {'–' if tg is None else f'{tg:.0f}'} |",
            flush=True,
        )
    model = os.popen("lscpu 2>/dev/null").read().split("Model name:")
    print(f"\nCPU: {model[1].splitlines()[0].strip() if len(model) > 1 else platform.processor()}")


if __name__ == "__main__":
    main()
