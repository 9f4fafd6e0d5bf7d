#!/usr/bin/env python
"""Data-parallel scaling (rnnkit.distributed): measured on this machine, modelled for a cluster.

    python benchmarks/bench_mpi.py                     # everything; writes results/mpi.json
    python benchmarks/bench_mpi.py --quick             # tiny sizes, seconds (a smoke run)
    python benchmarks/bench_mpi.py --plot-only         # redraw docs/img/mpi_efficiency.png

Three measurements, each in fresh ``mpiexec -n p`` processes on this machine:

  step       autocomplete's training (LSTM, truncated BPTT over B parallel text streams,
             Adam with clipping by global norm) for 1 and 2 ranks at the same global batch:
             median seconds per update, characters per second, and the share of each update
             spent in the gradient allreduce;
  allreduce  the gradient allreduce alone (float32, in place) for 0.3 M, 3 M and 30 M
             parameters between 2 local ranks: median seconds;
  model      from those: efficiency E = t_compute / (t_compute + t_allreduce) at 8, 64 and
             512 ranks with a ring allreduce over a cluster network,
                 t_allreduce(p, n) = 2 (p-1)/p · 4n / B + 2 (p-1) · α
             for n parameters (4 bytes each), bandwidth B and per-message latency α
             (--bandwidth-gbps, --latency-us).  rnnkit does not overlap communication with
             BPTT, so "hidden" means E ≥ 0.9 here: the allreduce costs at most a ninth of the
             compute of an update.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


# -- workers (run under mpiexec) -----------------------------------------------------------------------
def worker_step(a):
    import numpy as np

    from rnnkit import distributed
    from rnnkit.apps import autocomplete as app

    rng = np.random.default_rng(0)
    ids = rng.integers(1, 65, 400_000)  # a 64-character "text"
    s = app.Settings(hidden=a.hidden, embed=32, batch=a.batch, bptt=a.bptt, seed=0)
    m = app.build_model(65, s)
    dp = distributed.DataParallel() if distributed.launched_size() > 1 else None
    if dp is not None:
        dp.start(m)
        dp.attach(m)
    x, y = app.streams(ids, s.batch)
    if dp is not None:
        x, y = dp.shard_streams(m, x, y)
    from rnnkit.training import tbptt_steps

    times, pos = [], 0
    comm0 = 0.0
    for i in range(a.warmup + a.updates):
        t = time.perf_counter()
        comm_before = dp.allreduce_seconds if dp else 0.0
        for _ in tbptt_steps(m, x[:, pos : pos + s.bptt], y[:, pos : pos + s.bptt], s.bptt, s.bptt):
            pass
        pos += s.bptt
        if i >= a.warmup:
            times.append(time.perf_counter() - t)
            comm0 += (dp.allreduce_seconds - comm_before) if dp else 0.0
    if dp is None or dp.is_root:
        params = sum(int(p.size) for p in m.params.values())
        t = statistics.median(times)
        print(
            json.dumps(
                {
                    "ranks": dp.size if dp else 1,
                    "hidden": a.hidden,
                    "batch": a.batch,
                    "bptt": a.bptt,
                    "params": params,
                    "seconds_per_update": t,
                    "chars_per_second": a.batch * a.bptt / t,
                    "allreduce_share": comm0 / sum(times),
                    "updates": a.updates,
                }
            )
        )


def worker_allreduce(a):
    import numpy as np

    from rnnkit import distributed

    comm = distributed.world()
    out = []
    for n in a.sizes:
        buf = np.ones(int(n), np.float32)
        comm.allreduce_(buf)  # warm-up (connections, pages)
        ts = []
        for _ in range(a.repeats):
            comm.barrier()
            t = time.perf_counter()
            comm.allreduce_(buf)
            ts.append(time.perf_counter() - t)
        out.append(
            {
                "params": int(n),
                "bytes": int(n) * 4,
                "seconds": statistics.median(ts),
                "min_seconds": min(ts),
            }
        )
    if comm.rank == 0:
        print(json.dumps({"ranks": comm.size, "allreduce": out}))


# -- the driver ---------------------------------------------------------------------------------------------
def mpiexec(n, args, timeout):
    exe = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which("mpiexec")
    if exe is None:
        sys.exit('bench_mpi: mpiexec not found; pip install "rnnkit[mpi]"')
    env = dict(
        os.environ,
        UCX_TLS=os.environ.get("UCX_TLS", "self,sm"),
        UCX_NET_DEVICES=os.environ.get("UCX_NET_DEVICES", "lo"),
    )
    cmd = [exe, "-n", str(n), sys.executable, str(Path(__file__).resolve())] + args
    r = subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL
    )
    if r.returncode != 0:
        sys.exit(f"bench_mpi: {' '.join(cmd)} failed:\n{r.stdout}\n{r.stderr}")
    return json.loads([line for line in r.stdout.splitlines() if line.startswith("{")][-1])


def ring(p, n, bandwidth, latency, bytes_per=4):
    return 2 * (p - 1) / p * bytes_per * n / bandwidth + 2 * (p - 1) * latency


def model_table(steps, bandwidth, latency, ranks=(8, 64, 512)):
    """Weak scaling: each rank keeps the per-rank batch it had on this machine (compute time
    per update t_c fixed), the allreduce grows with p."""
    rows = []
    for s in steps:
        tc = s["seconds_per_update"] - s["allreduce_share"] * s["seconds_per_update"]
        for p in ranks:
            ta = ring(p, s["params"], bandwidth, latency)
            rows.append(
                {
                    "hidden": s["hidden"],
                    "params": s["params"],
                    "batch_per_rank": s["batch"] // s["ranks"],
                    "ranks": p,
                    "compute_s": tc,
                    "allreduce_s": ta,
                    "efficiency": tc / (tc + ta),
                }
            )
    return rows


def hidden_threshold(params, bandwidth, latency, p, flops_per_second, bptt):
    """The smallest per-rank batch (streams) whose compute hides the allreduce (E ≥ 0.9),
    with t_c ≈ 6 · params · batch · bptt / F (forward + backward ≈ 6 FLOP per parameter
    and character)."""
    ta = ring(p, params, bandwidth, latency)
    return 9 * ta * flops_per_second / (6 * params * bptt)


def plot(result, path):
    """Modelled efficiency against the number of ranks, one line per model size and per-rank
    batch (from the measured compute speed and the assumed network), as a PNG."""
    from rnnkit import plotting

    plt = plotting.pyplot()
    B = result["assumed"]["bandwidth_bytes_per_s"]
    alpha = result["assumed"]["latency_s"]
    F = result["flops_per_second_per_rank"]
    k = result["steps"][0]["bptt"]
    ps = [2**i for i in range(1, 11)]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for n, color in ((3e5, "tab:blue"), (3e6, "tab:orange"), (3e7, "tab:green")):
        for b, style in ((32, "-"), (1, "--")):
            tc = 6 * n * b * k / F
            ax.plot(
                ps,
                [tc / (tc + ring(p, n, B, alpha)) for p in ps],
                style,
                color=color,
                label=f"{n / 1e6:g} M parameters, {b} stream{'s' if b > 1 else ''} a rank",
            )
    ax.axhline(0.9, color="grey", lw=0.8)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("ranks p")
    ax.set_ylabel("efficiency t_c / (t_c + t_allreduce)")
    ax.set_title(
        f"rnnkit data-parallel, modelled: {F / 1e9:.1f} GFLOP/s a rank (measured), "
        f"ring allreduce\nB = {B * 8 / 1e9:g} Gbit/s, α = {alpha * 1e6:g} µs (assumed), "
        f"k = {k} characters",
        fontsize=9,
    )
    ax.legend(fontsize=7, loc="lower left")
    ax.grid(alpha=0.3)
    plotting.save(fig, path)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worker", choices=["step", "allreduce"])
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--bptt", type=int, default=32)
    ap.add_argument("--updates", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--sizes", type=float, nargs="+", default=[3e5, 3e6, 3e7])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument(
        "--bandwidth-gbps",
        type=float,
        default=100.0,
        help="cluster link bandwidth in Gbit/s (default 100: InfiniBand EDR)",
    )
    ap.add_argument(
        "--latency-us",
        type=float,
        default=5.0,
        help="per-message latency α of one ring step in µs (default 5)",
    )
    ap.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run in seconds")
    ap.add_argument("--out", default=str(HERE / "results" / "mpi.json"))
    ap.add_argument(
        "--plot",
        default=str(HERE.parent / "docs" / "img" / "mpi_efficiency.png"),
        help="the efficiency model as a PNG (default docs/img/mpi_efficiency.png)",
    )
    ap.add_argument(
        "--plot-only", action="store_true", help="redraw the PNG from --out without measuring"
    )
    a = ap.parse_args(argv)
    if a.plot_only:
        return plot(json.loads(Path(a.out).read_text()), a.plot)
    if a.worker == "step":
        return worker_step(a)
    if a.worker == "allreduce":
        return worker_allreduce(a)

    hiddens = [64] if a.quick else [256, 850]
    updates = (
        ["--updates", "3", "--warmup", "1"]
        if a.quick
        else ["--updates", str(a.updates), "--warmup", str(a.warmup)]
    )
    steps = []
    for h in hiddens:
        for p in (1, 2):
            r = mpiexec(
                p,
                [
                    "--worker",
                    "step",
                    "--hidden",
                    str(h),
                    "--batch",
                    str(a.batch),
                    "--bptt",
                    str(a.bptt),
                ]
                + updates,
                timeout=1800,
            )
            print(
                f"step: {p} rank(s), H = {h} ({r['params']:,} parameters), global batch "
                f"{a.batch}: {r['seconds_per_update'] * 1e3:.1f} ms/update, "
                f"{r['chars_per_second']:,.0f} chars/s, allreduce {r['allreduce_share']:.1%}",
                flush=True,
            )
            steps.append(r)
    sizes = [1e4, 1e5] if a.quick else a.sizes
    ar = mpiexec(
        2,
        ["--worker", "allreduce", "--repeats", "3" if a.quick else str(a.repeats), "--sizes"]
        + [str(s) for s in sizes],
        timeout=1800,
    )
    for r in ar["allreduce"]:
        print(
            f"allreduce, 2 local ranks: {r['params'] / 1e6:g} M parameters ({r['bytes'] / 1e6:.1f} "
            f"MB): {r['seconds'] * 1e3:.2f} ms ({r['bytes'] / r['seconds'] / 1e9:.2f} GB/s)"
        )
    B = a.bandwidth_gbps * 1e9 / 8
    alpha = a.latency_us * 1e-6
    one = [s for s in steps if s["ranks"] == 1]
    table = model_table(one, B, alpha)
    flops = statistics.median(
        6 * s["params"] * s["batch"] * s["bptt"] / s["seconds_per_update"] for s in one
    )
    thresholds = [
        {
            "params": n,
            "ranks": p,
            "bptt": a.bptt,
            "min_batch_per_rank": hidden_threshold(n, B, alpha, p, flops, a.bptt),
        }
        for n in (3e5, 3e6, 3e7)
        for p in (8, 64, 512)
    ]
    result = {
        "machine": _cpu(),
        "steps": steps,
        "allreduce_local": ar["allreduce"],
        "assumed": {"bandwidth_bytes_per_s": B, "latency_s": alpha},
        "flops_per_second_per_rank": flops,
        "model": table,
        "hidden_threshold": thresholds,
    }
    print(
        f"model (B = {a.bandwidth_gbps:g} Gbit/s, α = {a.latency_us:g} µs, per-rank compute "
        f"{flops / 1e9:.1f} GFLOP/s as measured):"
    )
    for r in table:
        print(
            f"  H = {r['hidden']} ({r['params'] / 1e6:.2f} M), {r['batch_per_rank']} streams a "
            f"rank, p = {r['ranks']}: compute {r['compute_s'] * 1e3:.1f} ms, allreduce "
            f"{r['allreduce_s'] * 1e3:.2f} ms, E = {r['efficiency']:.3f}"
        )
    for t in thresholds:
        print(
            f"  hidden (E ≥ 0.9) for {t['params'] / 1e6:g} M parameters at p = {t['ranks']} "
            f"from {t['min_batch_per_rank']:.2f} streams of {a.bptt} characters a rank"
        )
    if not a.quick:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        from rnnkit.atomicfile import atomic_write

        atomic_write(a.out, lambda f: f.write(json.dumps(result, indent=1).encode()))
        plot(result, a.plot)
    return result


def _cpu():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} cores"
    except OSError:
        pass
    return f"{os.cpu_count()} cores"


if __name__ == "__main__":
    main()
