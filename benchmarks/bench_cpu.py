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
import importlib.util
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
FULL_GRID = dict(
    cells=["simple", "lstm", "gru"],
    N=[1, 32, 128],
    T=[50, 200],
    H=[64, 256, 1024],
    modes=["train", "infer"],
)
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
    shapes = {
        "weight_ih_l0": (G, D),
        "weight_hh_l0": (G, H),
        "bias_ih_l0": (G,),
        "bias_hh_l0": (G,),
    }
    return {
        name: rng.uniform(-k, k, size=shape).astype(np.float32) for name, shape in shapes.items()
    }


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
        sys.path.insert(0, ROOT)  # the checkout's rnnkit, wherever we run from
        import numpy

        import rnnkit

        self.np, self.rnnkit = numpy, rnnkit

    def info(self):
        np = self.np
        info = {
            "numpy": np.__version__,
            "rnnkit": self.rnnkit.__version__,
            "rnnkit_file": self.rnnkit.__file__,
            "blas": blas_info(),
        }
        try:
            from rnnkit import kernels

            info["rnnkit_loops"] = kernels.info()  # compiled time loops in use, or why not
        except ImportError:
            info["rnnkit_loops"] = {"enabled": False, "reason": "this rnnkit has no rnnkit.kernels"}
        return info

    def products(self, cell, N, H):
        """How rnnkit's chooser computes the recurrent products of this point's loops (its
        ``choices()`` for this cell, batch N and width H): the way taken and the step times
        measured."""
        try:
            from rnnkit.kernels import choose
        except ImportError:
            return []
        keep = ("backward", "D", "plan", "way", "times")
        return [
            {k: c.get(k) for k in keep}
            for c in choose.choices()
            if c["kind"] == cell and c["N"] == N and c["H"] == H
        ]

    def peak(self, n, seconds):
        np = self.np
        a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
        c = np.empty_like(a)
        return best_rate(lambda: np.matmul(a, a, out=c), 2.0 * n**3, seconds)

    def setup(self, cell, N, T, H, D, mode, seed):
        np, rk = self.np, self.rnnkit
        w = torch_layout_weights(cell, D, H, seed)
        cls = {"simple": rk.SimpleRNN, "lstm": rk.LSTM, "gru": rk.GRU}[cell]
        layer = cls(H, return_sequences=True, dtype="float32")
        x = inputs(N, T, D, seed)
        layer.forward(x[:, :1])  # builds the parameters
        blocks = {"simple": [0], "lstm": [0, 1, 2, 3], "gru": [1, 0, 2]}[cell]

        def reorder(a):  # PyTorch's gate order -> rnnkit's (row blocks)
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
        self.dy = np.ones((N, T, H), dtype=np.float32)  # ∂(Σ outputs)/∂outputs
        self.mode = mode
        return self.iterate()

    def iterate(self):
        """One iteration; returns the norms that show both frameworks did the same work."""
        np, layer = self.np, self.layer
        if self.mode == "infer":
            y = layer.forward(self.x, training=False)
            return {"y": float(np.linalg.norm(y))}
        y = layer.forward(self.x, training=True)
        loss = float(y.sum())  # L = Σ_n Σ_t Σ_j y
        dx = layer.backward(self.dy)
        return {
            "loss": loss,
            "y": float(np.linalg.norm(y)),
            "dx": float(np.linalg.norm(dx)),
            "dW": float(np.linalg.norm(layer.grads["W"])),
        }

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

    def clear(self):
        """Drop what the last iteration keeps (its trace and gradients, and the buffers the
        compiled loops keep for the next one's packed weights: the memory measured is then
        what one iteration needs from a fresh start)."""
        import rnnkit.kernels

        self.layer._ctx = None
        self.layer._grads = {}
        rnnkit.kernels.release_memory()

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
        return {
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "mkl": bool(torch.backends.mkl.is_available()),
            "mkldnn": bool(torch.backends.mkldnn.is_available()),
            "blas": blas,
        }

    def peak(self, n, seconds):
        torch = self.torch
        a = torch.randn(n, n, dtype=torch.float32)
        c = torch.empty_like(a)
        return best_rate(lambda: torch.mm(a, a, out=c), 2.0 * n**3, seconds)

    def setup(self, cell, N, T, H, D, mode, seed):
        torch = self.torch
        cls = {"simple": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
        kwargs = {"nonlinearity": "tanh"} if cell == "simple" else {}
        module = cls(D, H, num_layers=1, batch_first=True, **kwargs).float()
        module.load_state_dict(
            {k: torch.from_numpy(v) for k, v in torch_layout_weights(cell, D, H, seed).items()}
        )
        x = torch.from_numpy(inputs(N, T, D, seed))
        if mode == "train":
            x.requires_grad_(True)  # rnnkit always returns ∂L/∂x: the same work
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
        return {
            "loss": float(loss.detach()),
            "y": float(torch.linalg.norm(y.detach())),
            "dx": float(torch.linalg.norm(x.grad)),
            "dW": float(torch.linalg.norm(module.weight_hh_l0.grad)),
        }

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

    def clear(self):
        """Drop what the last iteration keeps (its gradients)."""
        self.module.zero_grad(set_to_none=True)
        self.x.grad = None

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

        return [
            {k: v for k, v in d.items() if k != "filepath"}
            | {"file": os.path.basename(d["filepath"])}
            for d in threadpoolctl.threadpool_info()
        ]
    except ImportError:
        pass
    # Without threadpoolctl: ask NumPy's bundled OpenBLAS directly.
    try:
        import ctypes
        import glob

        import numpy

        libs = glob.glob(
            os.path.join(os.path.dirname(numpy.__file__), os.pardir, "numpy.libs", "lib*openblas*")
        )
        out = []
        for path in libs:
            lib = ctypes.CDLL(path)
            for prefix, suffix in (
                ("scipy_openblas", "64_"),
                ("scipy_openblas", ""),
                ("openblas", ""),
            ):
                fn = getattr(lib, f"{prefix}_get_corename{suffix}", None)
                if fn is not None:
                    fn.restype = ctypes.c_char_p
                    cfg = getattr(lib, f"{prefix}_get_config{suffix}")
                    cfg.restype = ctypes.c_char_p
                    out.append(
                        {
                            "internal_api": "openblas",
                            "architecture": fn().decode(),
                            "config": cfg().decode(),
                            "file": os.path.basename(path),
                            "note": "threadpoolctl not installed; read through ctypes",
                        }
                    )
                    break
        return out
    except Exception as e:  # pragma: no cover - depends on the machine
        return [{"error": repr(e)}]


def _status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def step_memory(runner):
    """The peak memory one iteration needs above what is resident before it (weights,
    inputs, nothing left from an earlier iteration), in MB: the peak resident set size
    (VmHWM, reset through /proc/self/clear_refs) less the resident set before.  Linux only.

    Memory an allocator keeps after an earlier iteration freed it would hide what the
    next one needs: the workers run with a fixed malloc mmap threshold (64 KB), so that
    large buffers go back to the system when freed, and glibc's ``malloc_trim(0)`` hands
    back the free pages of the heap (small blocks, e.g. PyTorch's per-step tensors)
    before the measurement."""
    import ctypes
    import gc

    runner.clear()  # what the previous iteration left behind
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the heap keeps what it keeps
        pass
    before = _status_kb("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current VmRSS
    runner.iterate()
    peak = _status_kb("VmHWM")
    return {"peak_mb": (peak - before) / 1024.0, "rss_before_mb": before / 1024.0}


def worker_main(framework, threads, runners=None):
    runners = runners or {"rnnkit": lambda threads: RnnkitRunner(), "torch": TorchRunner}
    runner = runners[framework](threads)
    out = sys.stdout
    sys.stdout = sys.stderr  # stray prints must not break the protocol
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
                cpu0 = time.process_time()
                wall = runner.run(**msg)
                reply = {"seconds": wall, "cpu_seconds": time.process_time() - cpu0}
            elif cmd == "products":
                reply = {"products": runner.products(**msg)}  # asked of rnnkit's worker only
            elif cmd == "memory":
                reply = step_memory(runner)
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
    def __init__(self, framework, threads, env, script=__file__):
        self.framework = framework
        self.proc = subprocess.Popen(
            [
                sys.executable,
                os.path.abspath(script),
                "--worker",
                framework,
                "--threads",
                str(threads),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
            bufsize=1,
        )

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


def _proc_stat():
    """(busy or stolen ticks, all ticks) of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    total = sum(v[:8])
    return total - v[3] - (v[4] if len(v) > 4 else 0), total


def _process_ticks(pid):
    """CPU ticks (user + system) used so far by process ``pid`` and all its threads."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def timed_call(worker, iters):
    """One sample: (the worker's reply {seconds, cpu_seconds}, CPUs that other processes kept
    busy meanwhile).  The second is what the machine's busy time grew by, less the worker's
    own CPU time, over the sample's wall time; None where /proc is not there."""
    try:
        busy0, total0 = _proc_stat()
        own0 = _process_ticks(worker.proc.pid)
    except (OSError, ValueError, IndexError):
        return worker.call("run", iters=iters), None
    reply = worker.call("run", iters=iters)
    busy1, total1 = _proc_stat()
    own1 = _process_ticks(worker.proc.pid)
    if total1 <= total0:
        return reply, None
    ncpu = os.cpu_count() or 1
    foreign = ncpu * ((busy1 - busy0) - (own1 - own0)) / (total1 - total0)
    return reply, max(0.0, foreign)


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
    return {
        "median": med,
        "iqr": percentile(xs, 0.75) - percentile(xs, 0.25),
        "min": min(xs),
        "max": max(xs),
    }


def geomean(xs):
    xs = [x for x in xs if x and x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def checks_agree(a, b, tol=2e-2):
    """Do the two frameworks' norms agree (same weights, same inputs, float32)?  The loss
    (a sum that may cancel) is kept for the record; the norms are compared."""
    keys = [k for k in a if k in b and k != "loss"]
    return bool(keys) and all(
        abs(a[k] - b[k]) <= tol * max(abs(a[k]), abs(b[k]), 1e-6) for k in keys
    )


def measure_point(workers, point, args):
    cell, N, T, H, mode = point["cell"], point["N"], point["T"], point["H"], point["mode"]
    D = args.D
    res = {
        **point,
        "D": D,
        "flops": matmul_flops(cell, N, T, H, D, mode),
        "loadavg_before": os.getloadavg()[0],
    }
    iters, checks = {}, {}
    for w in workers:
        r = w.call("setup", cell=cell, N=N, T=T, H=H, D=D, mode=mode, seed=args.seed)
        checks[w.framework] = r["check"]
        single, spent = r["first"], 0.0
        for i in range(args.warmup):
            if i and spent > 2.0:  # long iterations: one warm-up is enough
                break
            single = w.call("run", iters=1)["seconds"]
            spent += single
        iters[w.framework] = max(1, int(math.ceil(args.min_time / max(single, 1e-9))))
        time.sleep(args.pause)
    samples = {w.framework: [] for w in workers}
    other_clock = {w.framework: [] for w in workers}
    clock, other = ("cpu_seconds", "seconds") if args.clock == "cpu" else ("seconds", "cpu_seconds")
    foreign = {w.framework: [] for w in workers}
    waited, retried = 0.0, 0
    for _ in range(args.repeats):
        for w in workers:  # A B A B ...
            k = iters[w.framework]
            for _attempt in range(args.retries + 1):  # a sample disturbed by other work is redone
                _, wait = settle(args)
                waited += wait
                reply, busy = timed_call(w, k)
                if busy is None or busy <= args.quiet_cpus:
                    break
                retried += 1
            samples[w.framework].append(reply[clock] / k)
            other_clock[w.framework].append(reply[other] / k)
            foreign[w.framework].append(busy)
    res["other_busy_cpus"] = foreign  # other processes' load during each sample
    res["waited_for_quiet_s"] = waited
    res["retried_samples"] = retried
    res["disturbed_samples"] = sum(
        b is not None and b > args.quiet_cpus for bs in foreign.values() for b in bs
    )
    for w in workers:
        if w.framework == "rnnkit":  # the way its chooser took for this point's products
            res["rnnkit_products"] = w.call("products", cell=cell, N=N, H=H)["products"]
        w.call("release")
    res["loadavg_after"] = os.getloadavg()[0]  # other work on the machine shows here
    res["iters_per_sample"] = iters
    res["checks"] = checks
    if len(checks) == 2:
        res["checks_agree"] = checks_agree(*checks.values())
    for fw, xs in samples.items():
        res[fw] = {
            "seconds": xs,
            "clock": args.clock,
            ("wall_seconds" if args.clock == "cpu" else "cpu_seconds"): other_clock[fw],
            **summary(xs),
            "ms_per_step": summary([1e3 * x / T for x in xs]),
            "gflops": res["flops"] / percentile(xs, 0.5) / 1e9,
        }
    if "rnnkit" in samples and "torch" in samples:
        pairs = [a / b for a, b in zip(samples["rnnkit"], samples["torch"])]
        res["ratio"] = summary(pairs)
    return res


def grid_points(args):
    return [
        dict(cell=c, mode=m, N=n, T=t, H=h)
        for c in args.cells
        for m in args.modes
        for n in args.N
        for t in args.T
        for h in args.H
    ]


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
            row += [
                f"{q['median']:.2f} ±{q['iqr'] / 2:.2f}{flag}",
                "yes" if r.get("checks_agree") else "**NO**",
            ]
        lines.append("| " + " | ".join(row) + " |")
    if both:
        lines += ["", summary_markdown(results)]
    return "\n".join(lines) + "\n"


def summary_markdown(results):
    lines = [
        "| cell | mode | points | geometric mean ratio | best | worst (N, T, H) |",
        "|---|---|---|---|---|---|",
    ]
    groups = {}
    for r in results:
        groups.setdefault((r["cell"], r["mode"]), []).append(r)
    for (cell, mode), rs in groups.items():
        ratios = [r["ratio"]["median"] for r in rs]
        worst = max(rs, key=lambda r: r["ratio"]["median"])
        lines.append(
            f"| {cell} | {mode} | {len(rs)} | {geomean(ratios):.2f} | {min(ratios):.2f} | "
            f"{worst['ratio']['median']:.2f} ({worst['N']}, {worst['T']}, {worst['H']}) |"
        )
    for mode in sorted({r["mode"] for r in results}):
        ratios = [r["ratio"]["median"] for r in results if r["mode"] == mode]
        lines.append(
            f"| all | {mode} | {len(ratios)} | {geomean(ratios):.2f} | {min(ratios):.2f} | "
            f"{max(ratios):.2f} |"
        )
    lines += ["", "Targets (issue 7): " + "; ".join(targets(results))]
    return "\n".join(lines)


def targets(results):
    out = []
    tr_small = [r for r in results if r["mode"] == "train" and r["N"] <= 32 and r["H"] <= 256]
    tr = [r for r in results if r["mode"] == "train"]
    inf = [r for r in results if r["mode"] == "infer"]
    for label, rs, bound in (
        ("train N≤32, H≤256: ratio ≤ 0.5", tr_small, 0.5),
        ("train: ratio ≤ 1.0", tr, 1.0),
        ("infer: ratio ≤ 1.0", inf, 1.0),
    ):
        if rs:
            ok = sum(r["ratio"]["median"] <= bound for r in rs)
            out.append(f"{label}: {ok}/{len(rs)} points")
    return out


def memory_main(args):
    """--memory: for every point of the grid, the peak memory of one iteration in each
    framework, each point in fresh worker processes."""
    env = worker_env(args.threads, args.blas_env)
    env["MALLOC_MMAP_THRESHOLD_"] = "65536"  # large buffers: mmap'ed, returned when freed
    results = []
    points = grid_points(args)
    for i, point in enumerate(points):
        r = {**point, "D": args.D}
        for fw in args.frameworks:
            w = Worker(fw, args.threads, env)
            try:
                w.call(
                    "setup",
                    cell=point["cell"],
                    N=point["N"],
                    T=point["T"],
                    H=point["H"],
                    D=args.D,
                    mode=point["mode"],
                    seed=args.seed,
                )  # runs one iteration
                r[fw] = w.call("memory")
            finally:
                w.close()
        if "rnnkit" in r and "torch" in r:
            r["ratio"] = r["rnnkit"]["peak_mb"] / max(r["torch"]["peak_mb"], 1e-9)
        results.append(r)
        log(
            f"[{i + 1}/{len(points)}] {point['cell']:6s} {point['mode']:5s} N={point['N']:<4d} "
            f"T={point['T']:<4d} H={point['H']:<5d} "
            + " ".join(f"{fw} {r[fw]['peak_mb']:.1f} MB" for fw in args.frameworks)
            + (f"  ratio {r['ratio']:.2f}" if "ratio" in r else "")
        )
    lines = [
        "| cell | mode | N | T | H | "
        + " | ".join(f"{fw} peak MB" for fw in args.frameworks)
        + (" | ratio rnnkit/torch |" if len(args.frameworks) == 2 else " |"),
        "|" + "---|" * (5 + len(args.frameworks) + (len(args.frameworks) == 2)),
    ]
    for r in results:
        row = [r["cell"], r["mode"], str(r["N"]), str(r["T"]), str(r["H"])]
        row += [f"{r[fw]['peak_mb']:.1f}" for fw in args.frameworks]
        if "ratio" in r:
            row.append(f"**{r['ratio']:.2f}**" if r["ratio"] > 1 else f"{r['ratio']:.2f}")
        lines.append("| " + " | ".join(row) + " |")
    if results and "ratio" in results[0]:
        over = [r for r in results if r["ratio"] > 1.0]
        lines += [
            "",
            f"Peak memory of rnnkit ≤ PyTorch's at {len(results) - len(over)}/{len(results)} "
            f"points; geometric mean ratio {geomean([r['ratio'] for r in results]):.2f}.",
        ]
    table = "\n".join(lines) + "\n"
    print(table)
    if args.out:
        write_json(
            args.out,
            {
                "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
                "threads": args.threads,
                "D": args.D,
                "blas_env": args.blas_env,
                "kind": "memory",
            },
            results,
            complete=True,
        )
        with open(args.out + ".md", "w") as f:
            f.write(
                f"Command: `{' '.join([os.path.basename(sys.executable)] + sys.argv)}`\n\n"
                "Peak resident memory one iteration needs above what is resident before it "
                "(VmHWM − VmRSS, MB), each point in fresh processes.\n\n" + table
            )
    return results


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
    if args.quick or args.clock == "cpu":  # CPU time: other processes hardly matter
        args.quiet_wait = 0.0 if args.quiet_wait is None else args.quiet_wait
        args.retries = 0 if args.retries is None else args.retries
    args.quiet_wait = 5.0 if args.quiet_wait is None else args.quiet_wait
    args.retries = 3 if args.retries is None else args.retries
    env = worker_env(args.threads, args.blas_env)
    workers = [Worker(fw, args.threads, env) for fw in args.frameworks]
    try:
        meta = {
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
            "machine": {
                "platform": platform.platform(),
                "processor": cpu_model(),
                "cpu_count": os.cpu_count(),
                "python": platform.python_version(),
            },
            "threads": args.threads,
            "blas_env": args.blas_env,
            "clock": args.clock,
            "env_seen": {k: os.environ.get(k) for k in BLAS_ENV_VARS},
            "env_workers": {k: env.get(k) for k in BLAS_ENV_VARS + THREAD_ENV_VARS},
            "frameworks": list(args.frameworks),
            "D": args.D,
            "dtype": "float32",
            "repeats": args.repeats,
            "min_time": args.min_time,
            "warmup": args.warmup,
            "quiet_cpus": args.quiet_cpus,
            "quiet_wait": args.quiet_wait,
            "retries": args.retries,
            "info": {w.framework: w.call("info") for w in workers},
        }
        peaks = {}
        for w in workers:
            settle(args)
            peaks[w.framework] = w.call("peak", n=args.peak_n, seconds=args.peak_seconds)["gflops"]
        meta["peak_by_framework"] = peaks
        meta["peak_gflops"] = max(peaks.values())
        log(
            f"# threads={args.threads} blas_env={args.blas_env} "
            f"matmul peak (GFLOP/s, n={args.peak_n}): "
            + ", ".join(f"{k} {v:.0f}" for k, v in peaks.items())
        )
        for fw, info in meta["info"].items():
            for lib in info.get("blas", []):
                if lib.get("internal_api") == "openblas":
                    log(
                        f"# {fw}: OpenBLAS {lib.get('version', '')} kernel {lib.get('architecture')} "
                        f"threads {lib.get('num_threads', '?')} ({lib.get('file')})"
                    )
        results = []
        points = grid_points(args)
        done = previous_results(args) if args.resume else {}
        for i, point in enumerate(points):
            key = tuple(point[k] for k in ("cell", "mode", "N", "T", "H"))
            r = done.get(key) or measure_point(workers, point, args)
            results.append(r)
            if args.out:  # a partial file, in case the run stops
                write_json(args.out, meta, results, complete=False)
            msg = (
                f"[{i + 1}/{len(points)}] {point['cell']:6s} {point['mode']:5s} N={point['N']:<4d} "
                f"T={point['T']:<4d} H={point['H']:<5d}"
            )
            for fw in args.frameworks:
                msg += f" {fw} {fmt_ms(r[fw]['ms_per_step'])} ms/step"
            if "ratio" in r:
                msg += f"  ratio {r['ratio']['median']:.2f}" + (
                    "" if r["checks_agree"] else " (numbers differ!)"
                )
            log(msg)
        meta["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
        loads = [r[k] for r in results for k in ("loadavg_before", "loadavg_after")]
        meta["loadavg_range"] = [min(loads), max(loads)] if loads else None
        busy = sorted(
            b for r in results for bs in r["other_busy_cpus"].values() for b in bs if b is not None
        )
        meta["other_busy_cpus_median_max"] = [percentile(busy, 0.5), busy[-1]] if busy else None
        meta["waited_for_quiet_s"] = sum(r["waited_for_quiet_s"] for r in results)
        meta["retried_samples"] = sum(r["retried_samples"] for r in results)
        meta["disturbed_samples"] = sum(r["disturbed_samples"] for r in results)
        meta["samples"] = sum(len(r[fw]["seconds"]) for r in results for fw in args.frameworks)
    finally:
        for w in workers:
            w.close()
    table = markdown(results, meta)
    print(table)
    if args.out:
        write_json(args.out, meta, results, complete=True)
        with open(args.out + ".md", "w") as f:
            f.write(header_markdown(meta) + "\n" + table)
        log(f"# wrote {args.out}.json and {args.out}.md")
    return results, meta


def write_json(out, meta, results, complete):
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    tmp = out + ".json.tmp"
    with open(tmp, "w") as f:
        json.dump({"meta": meta, "complete": complete, "results": results}, f, indent=1)
    os.replace(tmp, out + ".json")


def previous_results(args):
    """Points already measured in OUT.json (--resume), keyed by (cell, mode, N, T, H)."""
    try:
        with open(args.out + ".json") as f:
            old = json.load(f)
    except (OSError, ValueError, TypeError):
        return {}
    if old["meta"].get("D") != args.D or old["meta"].get("blas_env") != args.blas_env:
        return {}
    return {tuple(r[k] for k in ("cell", "mode", "N", "T", "H")): r for r in old["results"]}


def header_markdown(meta):
    lines = [
        f"Command: `{meta['command']}`  ",
        f"Started {meta['started']}, finished {meta.get('finished')}  ",
        f"Machine: {meta['machine']['processor']}, {meta['machine']['cpu_count']} CPUs, "
        f"{meta['machine']['platform']}, Python {meta['machine']['python']}  ",
        f"Threads per framework: {meta['threads']}; clock: {meta.get('clock', 'wall')} time; "
        f"BLAS environment: {meta['blas_env']} "
        f"(seen: {meta['env_seen']}; workers: "
        f"{ {k: meta['env_workers'][k] for k in BLAS_ENV_VARS} })  ",
    ]
    for fw, info in meta["info"].items():
        versions = ", ".join(f"{k} {info[k]}" for k in ("numpy", "rnnkit", "torch") if k in info)
        kernels = "; ".join(
            f"{lib.get('internal_api')} {lib.get('version') or ''} "
            f"kernel {lib.get('architecture', '-')} threads {lib.get('num_threads', '?')}"
            if lib.get("internal_api") == "openblas"
            else f"{lib.get('internal_api')} threads {lib.get('num_threads', '?')}"
            for lib in info.get("blas", [])
        )
        if "torch" in info:
            kernels = (
                f"MKL {'yes' if info.get('mkl') else 'no'}, oneDNN "
                f"{'yes' if info.get('mkldnn') else 'no'} (linked into torch); {kernels}; "
                f"torch threads {info.get('torch_threads')}"
            )
        lines.append(f"{fw}: {versions}; {kernels}  ")
        if "rnnkit_loops" in info:
            loops = info["rnnkit_loops"]
            lines.append(
                "rnnkit time loops: "
                + (
                    "compiled (rnnkit.kernels, BLAS "
                    f"{os.path.basename(loops.get('blas', {}).get('library', '?'))})"
                    if loops.get("enabled")
                    else f"NumPy ({loops.get('reason', '')})"
                )
                + "  "
            )
    lines.append(
        "Matrix-product peak (float32 GFLOP/s): "
        + ", ".join(f"{k} {v:.0f}" for k, v in meta["peak_by_framework"].items())
        + f"; % peak below is against {meta['peak_gflops']:.0f}  "
    )
    if meta.get("loadavg_range"):
        lo, hi = meta["loadavg_range"]
        lines.append(
            f"1-minute load average during the run: {lo:.1f}–{hi:.1f} "
            f"(the benchmark itself keeps about {meta['threads']} busy)  "
        )
    if meta.get("other_busy_cpus_median_max"):
        med, top = meta["other_busy_cpus_median_max"]
        lines.append(
            f"CPUs kept busy by other processes during a sample: median {med:.2f}, "
            f"max {top:.2f}; {meta['disturbed_samples']} of {meta['samples']} samples kept "
            f"with more than {meta['quiet_cpus']} after {meta['retries']} retries "
            f"({meta['retried_samples']} samples redone; waited "
            f"{meta['waited_for_quiet_s']:.0f} s in all for quiet moments)  "
        )
    lines.append(
        f"float32, input size D={meta['D']}, one layer, sequence output; "
        f"{meta['repeats']} alternated samples per point of ≥{meta['min_time']} s each; "
        "ms/step = median ± half the interquartile range; ratio = median of the paired ratios.\n"
    )
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
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
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
    p.add_argument(
        "--quiet-cpus",
        type=float,
        default=0.2,
        help="a sample during which other processes kept more than this many CPUs busy "
        "is redone (--retries times); before each sample, wait while they do "
        "(default 0.2)",
    )
    p.add_argument(
        "--quiet-wait",
        type=float,
        help="the longest wait for a quiet machine before a sample, s "
        "(default 5; quick or --clock cpu: 0)",
    )
    p.add_argument(
        "--retries",
        type=int,
        help="how often a disturbed sample is redone (default 3; quick or --clock cpu: 0)",
    )
    p.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="wall: elapsed time (default); cpu: the worker's CPU time, which other "
        "processes on a shared machine hardly change; meaningful with --threads 1 "
        "only (idle pool threads that spin count as CPU time)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count(),
        help="threads for each framework (default: all CPUs)",
    )
    p.add_argument(
        "--blas-env",
        choices=["clean", "inherit"],
        default="clean",
        help="clean: workers run without OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE (default); "
        "inherit: the environment as it is",
    )
    p.add_argument(
        "--frameworks", nargs="+", choices=["rnnkit", "torch"], default=["rnnkit", "torch"]
    )
    p.add_argument("--peak-n", type=int, default=2048, help="matrix size of the peak measurement")
    p.add_argument("--peak-seconds", type=float, default=2.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="write OUT.json and OUT.md (e.g. benchmarks/results/cpu)")
    p.add_argument(
        "--memory",
        action="store_true",
        help="measure the peak memory of one iteration instead of time (Linux; "
        "modes default to train)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="keep the points already in OUT.json (from a run that stopped)",
    )
    p.add_argument("--worker", choices=["rnnkit", "torch"], help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        worker_main(args.worker, args.threads)
        return
    missing = [fw for fw in args.frameworks if importlib.util.find_spec(fw) is None]
    if missing:  # say so here, not as a worker's broken pipe
        sys.exit(
            f"bench_cpu.py: --frameworks {' '.join(args.frameworks)}: {', '.join(missing)} "
            f"is not installed in this Python ({sys.executable}); pip install -e "
            f'".[test,bench]" installs torch==2.13.0, or --frameworks rnnkit times rnnkit '
            f"alone"
        )
    if args.quick and args.peak_seconds == 2.0:
        args.peak_n, args.peak_seconds = 256, 0.05
    if args.memory:
        grid = QUICK_GRID if args.quick else FULL_GRID
        for key in ("cells", "N", "T", "H"):
            if getattr(args, key) is None:
                setattr(args, key, grid[key])
        args.modes = args.modes or ["train"]
        memory_main(args)
        return
    parent_main(args)


if __name__ == "__main__":
    main()
