#!/usr/bin/env python
"""rnnkit against PyTorch on CPU: one recurrent layer, training step and inference.

Each framework runs in its own worker process with the same number of threads
(in one process OpenBLAS's and PyTorch's thread pools fight over the cores).
The parent process only sends commands and collects timings: for every grid
point both workers build the same layer with the same weights and inputs, warm
up, calibrate how many iterations make one sample, and then the two are timed
alternately, A B A B ..., with a short pause at every switch so that the idle
side's spinning threads have gone to sleep.

    python benchmarks/bench_cpu.py                      # the full grid (tens of minutes)
    python benchmarks/bench_cpu.py --quick              # a tiny grid (seconds)
    python benchmarks/bench_cpu.py --cells lstm --N 32 --T 50 --H 64 256 --modes train

Modes: ``train`` is one training step (forward over all steps with the sequence
output, loss = sum of all outputs, i.e. summed over steps; backward to the
weights and to the input; no optimizer); ``infer`` is the forward pass alone
(``torch.inference_mode`` for PyTorch).

By default the workers run with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE removed
from their environment (``--blas-env clean``), as on users' machines;
``--blas-env inherit`` keeps the environment exactly as it is.

Output: ms per time step (median, ± half the interquartile range), the ratio
rnnkit/PyTorch (median of the ratios of the alternated pairs), achieved GFLOP/s
of the matrix products and their share of the machine's measured matrix-product
peak; a markdown table and a JSON file with every sample (``--out``).
Benchmarks are never timed tests: nothing here asserts a speed.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BLAS_ENV_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
THREAD_ENV_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
GATES = {"simple": 1, "lstm": 4, "gru": 3}
FULL_GRID = dict(cells=["simple", "lstm", "gru"], N=[1, 32, 128], T=[50, 200], H=[64, 256, 1024],
                 modes=["train", "infer"])
QUICK_GRID = dict(cells=["simple", "lstm", "gru"], N=[1, 4], T=[5], H=[8], modes=["train", "infer"])


# ---------------------------------------------------------------------------------------------
# The weights and inputs both workers use: drawn with NumPy in PyTorch's layout.
# ---------------------------------------------------------------------------------------------
def torch_layout_weights(cell, D, H, seed):
    """weight_ih (G, D), weight_hh (G, H), bias_ih (G,), bias_hh (G,), as nn.RNN/LSTM/GRU
    initialise them (uniform in ±1/sqrt(H)), from a NumPy generator."""
    import numpy as np
    rng = np.random.default_rng(seed)
    G, k = GATES[cell] * H, 1.0 / math.sqrt(H)
    shapes = {"weight_ih_l0": (G, D), "weight_hh_l0": (G, H), "bias_ih_l0": (G,), "bias_hh_l0": (G,)}
    return {name: rng.uniform(-k, k, size=shape).astype(np.float32) for name, shape in shapes.items()}


def inputs(N, T, D, seed):
    import numpy as np
    return np.random.default_rng(seed + 1).standard_normal((N, T, D)).astype(np.float32)


def matmul_flops(cell, N, T, H, D, mode):
    """Floating-point operations of the matrix products of one iteration: the forward
    pass does x_t U and h_{t-1} W at every step; a training step adds three more products
    of the same sizes (∂L/∂x, ∂L/∂U, and ∂L/∂h_{t-1} with ∂L/∂W)."""
    G = GATES[cell] * H
    forward = 2.0 * T * N * G * (D + H)
    return forward if mode == "infer" else 3.0 * forward


# ---------------------------------------------------------------------------------------------
# Workers: one per framework, driven through JSON lines on stdin/stdout.
# ---------------------------------------------------------------------------------------------
class RnnkitRunner:
    name = "rnnkit"

    def __init__(self):
        sys.path.insert(0, ROOT)               # the checkout's rnnkit, wherever we run from
        import numpy
        import rnnkit
        self.np, self.rnnkit = numpy, rnnkit

    def info(self):
        np = self.np
        info = {"numpy": np.__version__, "rnnkit": self.rnnkit.__version__,
                "rnnkit_file": self.rnnkit.__file__, "blas": blas_info()}
        fast = getattr(self.rnnkit, "kernels_info", None)
        if callable(fast):
            info["rnnkit_fast_path"] = fast()
        return info

    def peak(self, n, seconds):
        np = self.np
        a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
        c = np.empty_like(a)
        return best_rate(lambda: np.matmul(a, a, out=c), 2.0 * n ** 3, seconds)

    def setup(self, cell, N, T, H, D, mode, seed):
        np, rk = self.np, self.rnnkit
        w = torch_layout_weights(cell, D, H, seed)
        cls = {"simple": rk.SimpleRNN, "lstm": rk.LSTM, "gru": rk.GRU}[cell]
        layer = cls(H, return_sequences=True, dtype="float32")
        x = inputs(N, T, D, seed)
        layer.forward(x[:, :1])                # builds the parameters
        blocks = {"simple": [0], "lstm": [0, 1, 2, 3], "gru": [1, 0, 2]}[cell]

        def reorder(a):                        # PyTorch's gate order -> rnnkit's (row blocks)
            parts = np.split(a, len(blocks), axis=0)
            return np.concatenate([parts[i] for i in blocks], axis=0)

        p = layer.params
        p["U"][...] = reorder(w["weight_ih_l0"]).T
        p["W"][...] = reorder(w["weight_hh_l0"]).T
        if cell == "gru":
            p["b"][...] = reorder(w["bias_ih_l0"])
            p["b_rec"][...] = reorder(w["bias_hh_l0"])
        else:
            p["b"][...] = reorder(w["bias_ih_l0"] + w["bias_hh_l0"])
        self.layer, self.x = layer, x
        self.dy = np.ones((N, T, H), dtype=np.float32)    # ∂(Σ outputs)/∂outputs
        self.mode = mode
        return self.iterate()

    def iterate(self):
        """One iteration; returns the norms that show both frameworks did the same work."""
        np, layer = self.np, self.layer
        if self.mode == "infer":
            y = layer.forward(self.x, training=False)
            return {"y": float(np.linalg.norm(y))}
        y = layer.forward(self.x, training=True)
        loss = float(y.sum())                  # L = Σ_n Σ_t Σ_j y
        dx = layer.backward(self.dy)
        return {"loss": loss, "y": float(np.linalg.norm(y)), "dx": float(np.linalg.norm(dx)),
                "dW": float(np.linalg.norm(layer.grads["W"]))}

    def run(self, iters):
        layer, x, dy = self.layer, self.x, self.dy
        t0 = time.perf_counter()
        if self.mode == "infer":
            for _ in range(iters):
                layer.forward(x, training=False)
        else:
            for _ in range(iters):
                y = layer.forward(x, training=True)
                float(y.sum())
                layer.backward(dy)
        return time.perf_counter() - t0

    def release(self):
        self.layer = self.x = self.dy = None


class TorchRunner:
    name = "torch"

    def __init__(self, threads):
        import numpy
        import torch
        torch.set_num_threads(threads)
        self.np, self.torch = numpy, torch

    def info(self):
        torch = self.torch
        # torch's own BLAS (MKL) and oneDNN are linked in statically; the OpenBLAS that
        # threadpoolctl finds here is NumPy's, loaded for drawing the weights, and idle.
        blas = [lib for lib in blas_info() if lib.get("internal_api") != "openblas"]
        return {"torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                "mkl": bool(torch.backends.mkl.is_available()),
                "mkldnn": bool(torch.backends.mkldnn.is_available()), "blas": blas}

    def peak(self, n, seconds):
        torch = self.torch
        a = torch.randn(n, n, dtype=torch.float32)
        c = torch.empty_like(a)
        return best_rate(lambda: torch.mm(a, a, out=c), 2.0 * n ** 3, seconds)

    def setup(self, cell, N, T, H, D, mode, seed):
        torch = self.torch
        cls = {"simple": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
        kwargs = {"nonlinearity": "tanh"} if cell == "simple" else {}
        module = cls(D, H, num_layers=1, batch_first=True, **kwargs).float()
        module.load_state_dict({k: torch.from_numpy(v) for k, v in
                                torch_layout_weights(cell, D, H, seed).items()})
        x = torch.from_numpy(inputs(N, T, D, seed))
        if mode == "train":
            x.requires_grad_(True)             # rnnkit always returns ∂L/∂x: the same work
        self.module, self.x, self.mode = module, x, mode
        return self.iterate()

    def iterate(self):
        torch, module, x = self.torch, self.module, self.x
        if self.mode == "infer":
            with torch.inference_mode():
                y, _ = module(x)
            return {"y": float(torch.linalg.norm(y))}
        module.zero_grad(set_to_none=True)
        x.grad = None
        y, _ = module(x)
        loss = y.sum()
        loss.backward()
        return {"loss": float(loss.detach()), "y": float(torch.linalg.norm(y.detach())),
                "dx": float(torch.linalg.norm(x.grad)),
                "dW": float(torch.linalg.norm(module.weight_hh_l0.grad))}

    def run(self, iters):
        torch, module, x = self.torch, self.module, self.x
        t0 = time.perf_counter()
        if self.mode == "infer":
            with torch.inference_mode():
                for _ in range(iters):
                    module(x)
        else:
            for _ in range(iters):
                module.zero_grad(set_to_none=True)
                x.grad = None
                y, _ = module(x)
                loss = y.sum()
                float(loss.detach())
                loss.backward()
        return time.perf_counter() - t0

    def release(self):
        self.module = self.x = None


def best_rate(fn, flops, seconds):
    """The best GFLOP/s of ``fn`` over repeated calls lasting about ``seconds``."""
    fn()
    best, end = float("inf"), time.perf_counter() + seconds
    while True:
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
        if time.perf_counter() > end:
            return flops / best / 1e9


def blas_info():
    """The BLAS libraries loaded in this process and the kernel (core type) in use."""
    try:
        import threadpoolctl
        return [{k: v for k, v in d.items() if k != "filepath"} | {"file": os.path.basename(d["filepath"])}
                for d in threadpoolctl.threadpool_info()]
    except ImportError:
        pass
    # Without threadpoolctl: ask NumPy's bundled OpenBLAS directly.
    try:
        import ctypes
        import glob
        import numpy
        libs = glob.glob(os.path.join(os.path.dirname(numpy.__file__), os.pardir, "numpy.libs",
                                      "lib*openblas*"))
        out = []
        for path in libs:
            lib = ctypes.CDLL(path)
            for prefix, suffix in (("scipy_openblas", "64_"), ("scipy_openblas", ""), ("openblas", "")):
                fn = getattr(lib, f"{prefix}_get_corename{suffix}", None)
                if fn is not None:
                    fn.restype = ctypes.c_char_p
                    cfg = getattr(lib, f"{prefix}_get_config{suffix}")
                    cfg.restype = ctypes.c_char_p
                    out.append({"internal_api": "openblas", "architecture": fn().decode(),
                                "config": cfg().decode(), "file": os.path.basename(path),
                                "note": "threadpoolctl not installed; read through ctypes"})
                    break
        return out
    except Exception as e:  # pragma: no cover - depends on the machine
        return [{"error": repr(e)}]


def worker_main(framework, threads):
    runner = RnnkitRunner() if framework == "rnnkit" else TorchRunner(threads)
    out = sys.stdout
    sys.stdout = sys.stderr                    # stray prints must not break the protocol
    for line in sys.stdin:
        msg = json.loads(line)
        cmd = msg.pop("cmd")
        try:
            if cmd == "quit":
                break
            if cmd == "info":
                reply = runner.info()
            elif cmd == "peak":
                reply = {"gflops": runner.peak(**msg)}
            elif cmd == "setup":
                runner.release()
                t0 = time.perf_counter()
                check = runner.setup(**msg)
                reply = {"check": check, "first": time.perf_counter() - t0}
            elif cmd == "run":
                reply = {"seconds": runner.run(**msg)}
            elif cmd == "release":
                runner.release()
                reply = {}
            else:
                raise ValueError(f"unknown command {cmd!r}")
        except Exception as e:  # report, let the parent decide
            import traceback
            reply = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
        out.write(json.dumps(reply) + "\n")
        out.flush()


# ---------------------------------------------------------------------------------------------
# The parent: grid, alternation, statistics, tables.
# ---------------------------------------------------------------------------------------------
class Worker:
    def __init__(self, framework, threads, env):
        self.framework = framework
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--worker", framework,
             "--threads", str(threads)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True, bufsize=1)

    def call(self, cmd, **kw):
        self.proc.stdin.write(json.dumps({"cmd": cmd, **kw}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.framework} worker died (exit code {self.proc.wait()})")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"{self.framework} worker: {reply['error']}\n{reply['traceback']}")
        return reply

    def close(self):
        try:
            self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
            self.proc.stdin.close()
        except (BrokenPipeError, ValueError):
            pass
        self.proc.wait(timeout=60)


def worker_env(threads, blas_env):
    env = dict(os.environ)
    if blas_env == "clean":
        for k in BLAS_ENV_VARS:
            env.pop(k, None)
    for k in THREAD_ENV_VARS:
        env[k] = str(threads)
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def cpu_busy(seconds):
    """CPUs busy (or stolen by the hypervisor) over the next ``seconds``, from /proc/stat;
    None where there is no /proc/stat.  Called while both workers are idle, it measures
    the machine's other work."""
    def read():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        idle = v[3] + (v[4] if len(v) > 4 else 0)
        return sum(v[:8]), idle
    try:
        t0, i0 = read()
        time.sleep(seconds)
        t1, i1 = read()
    except (OSError, ValueError):
        time.sleep(seconds)
        return None
    total = t1 - t0
    return None if total <= 0 else (os.cpu_count() or 1) * (total - (i1 - i0)) / total


def settle(args):
    """Pause between two timed samples; while other processes keep more than
    ``--quiet-cpus`` CPUs busy, wait (up to ``--quiet-wait`` seconds) for a quiet moment.
    Returns (busy CPUs seen last, seconds waited)."""
    busy = cpu_busy(args.pause) if args.pause > 0 else None
    waited, t0 = 0.0, time.perf_counter()
    while busy is not None and busy > args.quiet_cpus and waited < args.quiet_wait:
        busy = cpu_busy(0.5)
        waited = time.perf_counter() - t0
    return busy, waited


def percentile(xs, q):
    xs = sorted(xs)
    if len(xs) == 1:
        return xs[0]
    pos = (len(xs) - 1) * q
    lo, hi = int(math.floor(pos)), int(math.ceil(pos))
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def summary(xs):
    med = percentile(xs, 0.5)
    return {"median": med, "iqr": percentile(xs, 0.75) - percentile(xs, 0.25),
            "min": min(xs), "max": max(xs)}


def geomean(xs):
    xs = [x for x in xs if x and x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def checks_agree(a, b, tol=2e-2):
    """Do the two frameworks' norms agree (same weights, same inputs, float32)?  The loss
    (a sum that may cancel) is kept for the record; the norms are compared."""
    keys = [k for k in a if k in b and k != "loss"]
    return bool(keys) and all(abs(a[k] - b[k]) <= tol * max(abs(a[k]), abs(b[k]), 1e-6) for k in keys)


def measure_point(workers, point, args):
    cell, N, T, H, mode = point["cell"], point["N"], point["T"], point["H"], point["mode"]
    D = args.D
    res = {**point, "D": D, "flops": matmul_flops(cell, N, T, H, D, mode),
           "loadavg_before": os.getloadavg()[0]}
    iters, checks = {}, {}
    for w in workers:
        r = w.call("setup", cell=cell, N=N, T=T, H=H, D=D, mode=mode, seed=args.seed)
        checks[w.framework] = r["check"]
        single, spent = r["first"], 0.0
        for i in range(args.warmup):
            if i and spent > 2.0:                         # long iterations: one warm-up is enough
                break
            single = w.call("run", iters=1)["seconds"]
            spent += single
        iters[w.framework] = max(1, int(math.ceil(args.min_time / max(single, 1e-9))))
        time.sleep(args.pause)
    samples = {w.framework: [] for w in workers}
    busy_seen, waited = [], 0.0
    for _ in range(args.repeats):
        for w in workers:                                 # A B A B ...
            busy, wait = settle(args)
            busy_seen.append(busy)
            waited += wait
            k = iters[w.framework]
            samples[w.framework].append(w.call("run", iters=k)["seconds"] / k)
    res["other_busy_cpus"] = busy_seen                    # other processes' load before each sample
    res["waited_for_quiet_s"] = waited
    for w in workers:
        w.call("release")
    res["loadavg_after"] = os.getloadavg()[0]           # other work on the machine shows here
    res["iters_per_sample"] = iters
    res["checks"] = checks
    if len(checks) == 2:
        res["checks_agree"] = checks_agree(*checks.values())
    for fw, xs in samples.items():
        res[fw] = {"seconds": xs, **summary(xs),
                   "ms_per_step": summary([1e3 * x / T for x in xs]),
                   "gflops": res["flops"] / percentile(xs, 0.5) / 1e9}
    if "rnnkit" in samples and "torch" in samples:
        pairs = [a / b for a, b in zip(samples["rnnkit"], samples["torch"])]
        res["ratio"] = summary(pairs)
    return res


def grid_points(args):
    return [dict(cell=c, mode=m, N=n, T=t, H=h)
            for c in args.cells for m in args.modes for n in args.N for t in args.T for h in args.H]


def fmt_ms(s):
    med, iqr = s["median"], s["iqr"]
    spread = f"±{50.0 * iqr / med:.0f}%" if med > 0 else ""
    digits = 3 if med < 1 else 2 if med < 10 else 1
    return f"{med:.{digits}f} {spread}"


def markdown(results, meta):
    fws = meta["frameworks"]
    both = "rnnkit" in fws and "torch" in fws
    peak = meta["peak_gflops"]
    lines = []
    head = ["cell", "mode", "N", "T", "H"]
    for fw in fws:
        head += [f"{fw} ms/step", f"{fw} GFLOP/s (% peak)"]
    if both:
        head += ["ratio rnnkit/torch", "same numbers"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for r in results:
        row = [r["cell"], r["mode"], str(r["N"]), str(r["T"]), str(r["H"])]
        for fw in fws:
            g = r[fw]["gflops"]
            row += [fmt_ms(r[fw]["ms_per_step"]), f"{g:.1f} ({100 * g / peak:.0f}%)"]
        if both:
            q = r["ratio"]
            flag = " **>1**" if q["median"] > 1.0 else ""
            row += [f"{q['median']:.2f} ±{q['iqr'] / 2:.2f}{flag}",
                    "yes" if r.get("checks_agree") else "**NO**"]
        lines.append("| " + " | ".join(row) + " |")
    if both:
        lines += ["", summary_markdown(results)]
    return "\n".join(lines) + "\n"


def summary_markdown(results):
    lines = ["| cell | mode | points | geometric mean ratio | best | worst (N, T, H) |",
             "|---|---|---|---|---|---|"]
    groups = {}
    for r in results:
        groups.setdefault((r["cell"], r["mode"]), []).append(r)
    for (cell, mode), rs in groups.items():
        ratios = [r["ratio"]["median"] for r in rs]
        worst = max(rs, key=lambda r: r["ratio"]["median"])
        lines.append(f"| {cell} | {mode} | {len(rs)} | {geomean(ratios):.2f} | {min(ratios):.2f} | "
                     f"{worst['ratio']['median']:.2f} ({worst['N']}, {worst['T']}, {worst['H']}) |")
    for mode in sorted({r["mode"] for r in results}):
        ratios = [r["ratio"]["median"] for r in results if r["mode"] == mode]
        lines.append(f"| all | {mode} | {len(ratios)} | {geomean(ratios):.2f} | {min(ratios):.2f} | "
                     f"{max(ratios):.2f} |")
    lines += ["", "Targets (issue 7): " + "; ".join(targets(results))]
    return "\n".join(lines)


def targets(results):
    out = []
    tr_small = [r for r in results if r["mode"] == "train" and r["N"] <= 32 and r["H"] <= 256]
    tr = [r for r in results if r["mode"] == "train"]
    inf = [r for r in results if r["mode"] == "infer"]
    for label, rs, bound in (("train N≤32, H≤256: ratio ≤ 0.5", tr_small, 0.5),
                             ("train: ratio ≤ 1.0", tr, 1.0), ("infer: ratio ≤ 1.0", inf, 1.0)):
        if rs:
            ok = sum(r["ratio"]["median"] <= bound for r in rs)
            out.append(f"{label}: {ok}/{len(rs)} points")
    return out


def parent_main(args):
    grid = QUICK_GRID if args.quick else FULL_GRID
    for key in ("cells", "N", "T", "H", "modes"):
        if getattr(args, key) is None:
            setattr(args, key, grid[key])
    if args.repeats is None:
        args.repeats = 3 if args.quick else 5
    if args.min_time is None:
        args.min_time = 0.02 if args.quick else 0.3
    if args.pause is None:
        args.pause = 0.0 if args.quick else 0.2
    if args.quick:
        args.quiet_wait = 0.0
    env = worker_env(args.threads, args.blas_env)
    workers = [Worker(fw, args.threads, env) for fw in args.frameworks]
    try:
        meta = {
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
            "machine": {"platform": platform.platform(), "processor": cpu_model(),
                        "cpu_count": os.cpu_count(), "python": platform.python_version()},
            "threads": args.threads, "blas_env": args.blas_env,
            "env_seen": {k: os.environ.get(k) for k in BLAS_ENV_VARS},
            "env_workers": {k: env.get(k) for k in BLAS_ENV_VARS + THREAD_ENV_VARS},
            "frameworks": list(args.frameworks), "D": args.D, "dtype": "float32",
            "repeats": args.repeats, "min_time": args.min_time, "warmup": args.warmup,
            "quiet_cpus": args.quiet_cpus, "quiet_wait": args.quiet_wait,
            "info": {w.framework: w.call("info") for w in workers},
        }
        peaks = {}
        for w in workers:
            settle(args)
            peaks[w.framework] = w.call("peak", n=args.peak_n, seconds=args.peak_seconds)["gflops"]
        meta["peak_by_framework"] = peaks
        meta["peak_gflops"] = max(peaks.values())
        log(f"# threads={args.threads} blas_env={args.blas_env} "
            f"matmul peak (GFLOP/s, n={args.peak_n}): "
            + ", ".join(f"{k} {v:.0f}" for k, v in peaks.items()))
        for fw, info in meta["info"].items():
            for lib in info.get("blas", []):
                if lib.get("internal_api") == "openblas":
                    log(f"# {fw}: OpenBLAS {lib.get('version', '')} kernel {lib.get('architecture')} "
                        f"threads {lib.get('num_threads', '?')} ({lib.get('file')})")
        results = []
        points = grid_points(args)
        for i, point in enumerate(points):
            r = measure_point(workers, point, args)
            results.append(r)
            msg = f"[{i + 1}/{len(points)}] {point['cell']:6s} {point['mode']:5s} N={point['N']:<4d} " \
                  f"T={point['T']:<4d} H={point['H']:<5d}"
            for fw in args.frameworks:
                msg += f" {fw} {fmt_ms(r[fw]['ms_per_step'])} ms/step"
            if "ratio" in r:
                msg += f"  ratio {r['ratio']['median']:.2f}" + ("" if r["checks_agree"] else " (numbers differ!)")
            log(msg)
        meta["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
        loads = [r[k] for r in results for k in ("loadavg_before", "loadavg_after")]
        meta["loadavg_range"] = [min(loads), max(loads)] if loads else None
        busy = sorted(b for r in results for b in r["other_busy_cpus"] if b is not None)
        meta["other_busy_cpus_median_max"] = [percentile(busy, 0.5), busy[-1]] if busy else None
        meta["waited_for_quiet_s"] = sum(r["waited_for_quiet_s"] for r in results)
    finally:
        for w in workers:
            w.close()
    table = markdown(results, meta)
    print(table)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out + ".json", "w") as f:
            json.dump({"meta": meta, "results": results}, f, indent=1)
        with open(args.out + ".md", "w") as f:
            f.write(header_markdown(meta) + "\n" + table)
        log(f"# wrote {args.out}.json and {args.out}.md")
    return results, meta


def header_markdown(meta):
    lines = [f"Command: `{meta['command']}`  ", f"Started {meta['started']}, finished {meta.get('finished')}  ",
             f"Machine: {meta['machine']['processor']}, {meta['machine']['cpu_count']} CPUs, "
             f"{meta['machine']['platform']}, Python {meta['machine']['python']}  ",
             f"Threads per framework: {meta['threads']}; BLAS environment: {meta['blas_env']} "
             f"(seen: {meta['env_seen']}; workers: "
             f"{ {k: meta['env_workers'][k] for k in BLAS_ENV_VARS} })  "]
    for fw, info in meta["info"].items():
        versions = ", ".join(f"{k} {info[k]}" for k in ("numpy", "rnnkit", "torch") if k in info)
        kernels = "; ".join(f"{lib.get('internal_api')} {lib.get('version') or ''} "
                            f"kernel {lib.get('architecture', '-')} threads {lib.get('num_threads', '?')}"
                            if lib.get("internal_api") == "openblas" else
                            f"{lib.get('internal_api')} threads {lib.get('num_threads', '?')}"
                            for lib in info.get("blas", []))
        if "torch" in info:
            kernels = (f"MKL {'yes' if info.get('mkl') else 'no'}, oneDNN "
                       f"{'yes' if info.get('mkldnn') else 'no'} (linked into torch); {kernels}; "
                       f"torch threads {info.get('torch_threads')}")
        lines.append(f"{fw}: {versions}; {kernels}  ")
        if "rnnkit_fast_path" in info:
            lines.append(f"rnnkit fast path: {info['rnnkit_fast_path']}  ")
    lines.append("Matrix-product peak (float32 GFLOP/s): "
                 + ", ".join(f"{k} {v:.0f}" for k, v in meta["peak_by_framework"].items())
                 + f"; % peak below is against {meta['peak_gflops']:.0f}  ")
    if meta.get("loadavg_range"):
        lo, hi = meta["loadavg_range"]
        lines.append(f"1-minute load average during the run: {lo:.1f}–{hi:.1f} "
                     f"(the benchmark itself keeps about {meta['threads']} busy)  ")
    if meta.get("other_busy_cpus_median_max"):
        med, top = meta["other_busy_cpus_median_max"]
        lines.append(f"CPUs kept busy by other processes just before a sample: median {med:.2f}, "
                     f"max {top:.2f}; waited {meta['waited_for_quiet_s']:.0f} s in all for quiet "
                     f"moments (--quiet-cpus {meta['quiet_cpus']})  ")
    lines.append(f"float32, input size D={meta['D']}, one layer, sequence output; "
                 f"{meta['repeats']} alternated samples per point of ≥{meta['min_time']} s each; "
                 "ms/step = median ± half the interquartile range; ratio = median of the paired ratios.\n")
    return "\n".join(lines)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cells", nargs="+", choices=sorted(GATES), help="default: all three")
    p.add_argument("--N", nargs="+", type=int, help="batch sizes (default 1 32 128)")
    p.add_argument("--T", nargs="+", type=int, help="sequence lengths (default 50 200)")
    p.add_argument("--H", nargs="+", type=int, help="hidden sizes (default 64 256 1024)")
    p.add_argument("--D", type=int, default=64, help="input size (default 64)")
    p.add_argument("--modes", nargs="+", choices=["train", "infer"], help="default: both")
    p.add_argument("--quick", action="store_true", help="a tiny grid that runs in seconds")
    p.add_argument("--repeats", type=int, help="alternated samples per point (default 5; quick 3)")
    p.add_argument("--min-time", type=float, help="seconds per sample (default 0.3; quick 0.02)")
    p.add_argument("--warmup", type=int, default=2, help="warm-up iterations (default 2)")
    p.add_argument("--pause", type=float, help="seconds between switches (default 0.2; quick 0)")
    p.add_argument("--quiet-cpus", type=float, default=0.25,
                   help="before each sample, wait while other processes keep more than this many "
                        "CPUs busy (default 0.25)")
    p.add_argument("--quiet-wait", type=float, default=60.0,
                   help="the longest wait for a quiet machine before a sample, s (default 60; quick 0)")
    p.add_argument("--threads", type=int, default=os.cpu_count(),
                   help="threads for each framework (default: all CPUs)")
    p.add_argument("--blas-env", choices=["clean", "inherit"], default="clean",
                   help="clean: workers run without OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE (default); "
                        "inherit: the environment as it is")
    p.add_argument("--frameworks", nargs="+", choices=["rnnkit", "torch"], default=["rnnkit", "torch"])
    p.add_argument("--peak-n", type=int, default=2048, help="matrix size of the peak measurement")
    p.add_argument("--peak-seconds", type=float, default=2.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="write OUT.json and OUT.md (e.g. benchmarks/results/cpu)")
    p.add_argument("--worker", choices=["rnnkit", "torch"], help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        worker_main(args.worker, args.threads)
        return
    if args.quick and args.peak_seconds == 2.0:
        args.peak_n, args.peak_seconds = 256, 0.05
    parent_main(args)


if __name__ == "__main__":
    main()
