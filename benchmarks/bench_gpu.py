#!/usr/bin/env python
"""rnnkit's fused CUDA loops against PyTorch's cuDNN layers, on one GPU, in one process.

    python benchmarks/bench_gpu.py --out $OUT/gpu          # the full grid (a few minutes)
    python benchmarks/bench_gpu.py --quick                 # a tiny grid
    python benchmarks/bench_gpu.py --dry-run --out /tmp/x  # no GPU: NumPy and PyTorch on the
                                                           # CPU, tiny grid (tests the script)

Grid: SimpleRNN (tanh), LSTM, GRU (reset_after, as cuDNN) x N in {1, 32, 256} x T in {50, 200}
x H in {256, 1024}, input size D = H, float32, modes ``train`` (forward with the sequence
output, loss = sum of all outputs, backward to the weights and the input; no optimizer) and
``infer`` (forward; ``torch.inference_mode``).  TF32 is off on both sides:
``torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False`` and
``CUPY_TF32=0`` (set before CuPy is imported).

Variants of rnnkit (``--variants``): ``fused`` (fused kernels replayed from CUDA graphs, the
default path), ``eager`` (fused kernels, no graphs: RNNKIT_CUDA_GRAPHS=0), ``unfused`` (the
NumPy loops on CuPy arrays: RNNKIT_GPU=0).  Both frameworks get the same weights and inputs;
after warm-up the variants and PyTorch are timed alternately (--repeats samples each, each
sample at least --min-time seconds of iterations, synchronised).  Printed and written
(OUT.json, OUT.md): ms per iteration (median, ± half the interquartile range), the ratio
rnnkit/PyTorch (median of the alternated pairs), and the agreement of the outputs and the
gradients (input, U, W) with PyTorch's (max relative error, float32).  --time-limit stops
starting new points and writes what it has (``complete: false``).  Nothing asserts a speed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time

os.environ["CUPY_TF32"] = "0"  # before CuPy is imported: no TF32 in cuBLAS

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_cpu import (  # noqa: E402  (the CPU benchmark's statistics and weights)
    GATES,
    percentile,
    torch_layout_weights,
)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BLOCKS = {"simple": [0], "lstm": [0, 1, 2, 3], "gru": [1, 0, 2]}  # torch's gate order -> rnnkit's
FULL_GRID = dict(
    cells=["simple", "lstm", "gru"],
    N=[1, 32, 256],
    T=[50, 200],
    H=[256, 1024],
    modes=["train", "infer"],
)
QUICK_GRID = dict(
    cells=["simple", "lstm", "gru"], N=[1, 32], T=[20], H=[64], modes=["train", "infer"]
)
DRY_GRID = dict(cells=["simple", "lstm", "gru"], N=[1, 2], T=[3], H=[4], modes=["train", "infer"])
VARIANTS = {
    "fused": {"gpu": True, "graphs": True},
    "eager": {"gpu": True, "graphs": False},
    "unfused": {"gpu": False, "graphs": False},
}
AGREE_TOL = 1e-3  # float32 over T steps, two different summation orders: flag anything above


# ---------------------------------------------------------------------------------------------
# Statistics and formatting (tested on the CPU: tests/test_bench_smoke.py)
# ---------------------------------------------------------------------------------------------
def summary(xs):
    return {
        "median": percentile(xs, 0.5),
        "iqr": percentile(xs, 0.75) - percentile(xs, 0.25),
        "min": min(xs),
        "max": max(xs),
    }


def geomean(xs):
    xs = [x for x in xs if x and x > 0 and math.isfinite(x)]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def fmt_ms(s):
    med, iqr = s["median"], s["iqr"]
    spread = f" ±{50.0 * iqr / med:.0f}%" if med > 0 else ""
    digits = 3 if med < 1 else 2 if med < 10 else 1
    return f"{med:.{digits}f}{spread}"


def fmt_err(e):
    return "n/a" if e is None else f"{e:.1e}"


def grid_points(grid):
    return [
        (c, mode, n, t, h)
        for c in grid["cells"]
        for mode in grid["modes"]
        for n in grid["N"]
        for t in grid["T"]
        for h in grid["H"]
    ]


def markdown(results, meta):
    variants = meta["variants"]
    torch_on = meta["torch"]
    head = ["cell", "mode", "N", "T", "H"] + [f"rnnkit {v} ms" for v in variants]
    if torch_on:
        head += ["torch ms"] + [f"ratio {v}/torch" for v in variants] + ["max rel. error vs torch"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        row = [r["cell"], r["mode"], str(r["N"]), str(r["T"]), str(r["H"])]
        row += [fmt_ms(r["ms"][v]) if v in r["ms"] else "–" for v in variants]
        if torch_on:
            row.append(fmt_ms(r["ms"]["torch"]) if "torch" in r["ms"] else "–")
            for v in variants:
                q = r.get("ratio", {}).get(v)
                row.append("–" if q is None else f"{q['median']:.2f}")
            err = r.get("max_rel_error")
            flag = " **NO**" if err is not None and err > AGREE_TOL else ""
            row.append(fmt_err(err) + flag)
        lines.append("| " + " | ".join(row) + " |")
    if torch_on and results:
        lines += [
            "",
            "| variant | mode | points | geometric mean ratio rnnkit/torch |",
            "|---|---|---|---|",
        ]
        for v in variants:
            for mode in ("train", "infer"):
                qs = [
                    r["ratio"][v]["median"]
                    for r in results
                    if r["mode"] == mode and v in r.get("ratio", {})
                ]
                if qs:
                    lines.append(f"| {v} | {mode} | {len(qs)} | {geomean(qs):.2f} |")
    return "\n".join(lines) + "\n"


def header_markdown(meta):
    lines = [
        f"# rnnkit fused CUDA loops vs PyTorch cuDNN ({meta['device']})",
        "",
        f"Command: `{meta['command']}`  ",
        f"rnnkit {meta['rnnkit']}, CuPy {meta.get('cupy')}, PyTorch {meta.get('torch_version')}, "
        f"NumPy {meta['numpy']}, Python {meta['python']}; float32, TF32 off; D = H; "
        f"times are ms per iteration (one training step or one inference pass).",
        f"rnnkit.gpu: {json.dumps(meta.get('gpu_info', {}))}",
        "",
    ]
    if not meta.get("complete", True):
        lines += ["**Incomplete: the time limit stopped the grid.**", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Setup and the two frameworks
# ---------------------------------------------------------------------------------------------
def why_no_gpu():
    """None if CuPy and PyTorch can both use a CUDA device, else a one-line reason."""
    try:
        import cupy
    except Exception as e:
        return f"bench_gpu: CuPy cannot be imported ({type(e).__name__}: {e}); use --dry-run on a machine without a GPU"
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return "bench_gpu: CuPy sees no CUDA device"
    except Exception as e:
        return f"bench_gpu: CuPy sees no CUDA device ({type(e).__name__}: {e})"
    try:
        import torch
    except Exception as e:
        return f"bench_gpu: PyTorch cannot be imported ({type(e).__name__}: {e})"
    if not torch.cuda.is_available():
        return "bench_gpu: torch.cuda.is_available() is False"
    return None


def reorder(a, cell):
    """Row blocks in PyTorch's gate order -> rnnkit's (its own inverse for these orders)."""
    import numpy as np

    parts = np.split(a, len(BLOCKS[cell]), axis=0)
    return np.concatenate([parts[i] for i in BLOCKS[cell]], axis=0)


class Rnnkit:
    def __init__(self, cell, N, T, H, D, mode, seed, device):
        import numpy as np

        sys.path.insert(0, ROOT)
        import rnnkit
        from rnnkit import backend

        self.np, self.rnnkit, self.backend = np, rnnkit, backend
        backend.set_backend("cupy" if device == "cuda" else "numpy")
        w = torch_layout_weights(cell, D, H, seed)
        cls = {"simple": rnnkit.SimpleRNN, "lstm": rnnkit.LSTM, "gru": rnnkit.GRU}[cell]
        layer = cls(H, return_sequences=True, dtype="float32")
        x = np.random.default_rng(seed + 1).standard_normal((N, T, D)).astype(np.float32)
        layer.build((N, T, D))
        p = layer.params
        p["U"][...] = backend.asarray(reorder(w["weight_ih_l0"], cell).T)
        p["W"][...] = backend.asarray(reorder(w["weight_hh_l0"], cell).T)
        if cell == "gru":
            p["b"][...] = backend.asarray(reorder(w["bias_ih_l0"], cell))
            p["b_rec"][...] = backend.asarray(reorder(w["bias_hh_l0"], cell))
        else:
            p["b"][...] = backend.asarray(reorder(w["bias_ih_l0"] + w["bias_hh_l0"], cell))
        self.layer, self.x = layer, backend.asarray(x)
        self.dy = backend.xp().ones((N, T, H), dtype=np.float32)
        self.mode, self.cell, self.device = mode, cell, device

    def variant(self, name):
        import rnnkit.gpu

        v = VARIANTS.get(name, {"gpu": False, "graphs": False})
        rnnkit.gpu.set_enabled(v["gpu"])
        rnnkit.gpu.set_graphs(v["graphs"])

    def iterate(self):
        if self.mode == "infer":
            self.layer.forward(self.x, training=False)
        else:
            self.layer.forward(self.x, training=True)
            self.layer.backward(self.dy)

    def sync(self):
        if self.device == "cuda":
            import cupy

            cupy.cuda.Device().synchronize()

    def results(self):
        """Outputs and gradients of one iteration, in PyTorch's layout, as NumPy arrays."""
        to = self.backend.to_numpy
        y = self.layer.forward(self.x, training=self.mode == "train")
        out = {"y": to(y)}
        if self.mode == "train":
            out["dx"] = to(self.layer.backward(self.dy))
            g = self.layer.grads
            out["weight_ih_l0"] = reorder(to(g["U"]).T, self.cell)
            out["weight_hh_l0"] = reorder(to(g["W"]).T, self.cell)
        return out

    def close(self):
        self.layer = self.x = self.dy = None
        self.backend.set_backend("numpy")


class Torch:
    def __init__(self, cell, N, T, H, D, mode, seed, device):
        import numpy as np
        import torch

        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        self.torch, self.device, self.mode = torch, device, mode
        cls = {"simple": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
        layer = cls(D, H, batch_first=True).to(device)
        w = torch_layout_weights(cell, D, H, seed)
        with torch.no_grad():
            for name, v in w.items():
                getattr(layer, name).copy_(torch.from_numpy(v))
        x = np.random.default_rng(seed + 1).standard_normal((N, T, D)).astype(np.float32)
        self.layer = layer
        self.x = torch.from_numpy(x).to(device).requires_grad_(mode == "train")

    def variant(self, name):
        pass

    def iterate(self):
        if self.mode == "infer":
            with self.torch.inference_mode():
                self.layer(self.x)
        else:
            y, _ = self.layer(self.x)
            y.sum().backward()

    def sync(self):
        if self.device == "cuda":
            self.torch.cuda.synchronize()

    def results(self):
        torch = self.torch
        self.layer.zero_grad(set_to_none=True)
        self.x.grad = None
        if self.mode == "infer":
            with torch.inference_mode():
                y, _ = self.layer(self.x)
            return {"y": y.cpu().numpy()}
        y, _ = self.layer(self.x)
        y.sum().backward()
        return {
            "y": y.detach().cpu().numpy(),
            "dx": self.x.grad.cpu().numpy(),
            "weight_ih_l0": self.layer.weight_ih_l0.grad.cpu().numpy(),
            "weight_hh_l0": self.layer.weight_hh_l0.grad.cpu().numpy(),
        }

    def close(self):
        self.layer = self.x = None


def max_rel_error(a, b):
    import numpy as np

    errs = [
        float(np.abs(a[k] - b[k]).max() / max(float(np.abs(b[k]).max()), 1e-30))
        for k in a
        if k in b
    ]
    return max(errs) if errs else None


def timed(fw, variant, iters):
    fw.variant(variant)
    fw.sync()
    t0 = time.perf_counter()
    for _ in range(iters):
        fw.iterate()
    fw.sync()
    return (time.perf_counter() - t0) / iters


def measure_point(point, args, device):
    cell, mode, N, T, H = point
    D = args.D or H
    ours = Rnnkit(cell, N, T, H, D, mode, args.seed, device)
    theirs = Torch(cell, N, T, H, D, mode, args.seed, device) if args.torch else None
    try:
        runs = [(v, ours) for v in args.variants] + ([("torch", theirs)] if theirs else [])
        r = {"cell": cell, "mode": mode, "N": N, "T": T, "H": H, "D": D}
        # agreement (and the first run: kernels compiled, graphs captured)
        ours.variant(args.variants[0])
        mine = ours.results()
        if theirs is not None:
            r["errors"] = {}
            ref = theirs.results()
            for v in args.variants:
                ours.variant(v)
                r["errors"][v] = max_rel_error(ours.results(), ref)
            r["max_rel_error"] = max(e for e in r["errors"].values() if e is not None)
        del mine
        iters = {}
        for name, fw in runs:
            for _ in range(args.warmup):
                timed(fw, name, 1)
            one = timed(fw, name, 1)
            iters[name] = max(1, min(1000, math.ceil(args.min_time / max(one, 1e-7))))
        samples: dict[str, list[float]] = {name: [] for name, _ in runs}
        for _ in range(args.repeats):  # alternated: A B C A B C ...
            for name, fw in runs:
                samples[name].append(timed(fw, name, iters[name]))
        r["seconds"] = samples
        r["iters"] = iters
        r["ms"] = {name: summary([1e3 * s for s in xs]) for name, xs in samples.items()}
        if theirs is not None:
            r["ratio"] = {
                v: summary([a / b for a, b in zip(samples[v], samples["torch"])])
                for v in args.variants
            }
        return r
    finally:
        ours.close()
        if theirs is not None:
            theirs.close()


# ---------------------------------------------------------------------------------------------
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cells", nargs="+", choices=sorted(GATES))
    p.add_argument("--N", nargs="+", type=int)
    p.add_argument("--T", nargs="+", type=int)
    p.add_argument("--H", nargs="+", type=int)
    p.add_argument("--D", type=int, default=0, help="input size (default 0: D = H)")
    p.add_argument("--modes", nargs="+", choices=["train", "infer"])
    p.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=["fused"])
    p.add_argument("--quick", action="store_true", help="a tiny grid on the GPU")
    p.add_argument(
        "--dry-run", action="store_true", help="no GPU: NumPy and PyTorch on the CPU, tiny grid"
    )
    p.add_argument("--no-torch", dest="torch", action="store_false", help="time rnnkit alone")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--min-time", type=float, default=0.05, help="seconds per sample (default 0.05)")
    p.add_argument("--time-limit", type=float, default=0, help="seconds; 0: none")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="write OUT.json and OUT.md")
    args = p.parse_args(argv)
    if args.repeats < 1 or args.warmup < 0 or args.min_time < 0:
        p.error("--repeats must be >= 1, --warmup and --min-time >= 0")
    base = DRY_GRID if args.dry_run else QUICK_GRID if args.quick else FULL_GRID
    for key in ("cells", "N", "T", "H", "modes"):
        if getattr(args, key) is None:
            setattr(args, key, base[key])
    if args.dry_run:
        args.variants = ["numpy"]
        args.torch = args.torch and _have("torch")
    return args


def _have(name):
    import importlib.util

    return importlib.util.find_spec(name) is not None


def meta_info(args, device):
    import numpy as np

    sys.path.insert(0, ROOT)
    import rnnkit
    import rnnkit.gpu

    meta = {
        "command": " ".join(
            [os.path.relpath(sys.argv[0], ROOT) if sys.argv[0] else "bench_gpu.py"] + sys.argv[1:]
        ),
        "device": "CPU (dry run)" if device == "cpu" else "",
        "rnnkit": rnnkit.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "variants": args.variants,
        "torch": bool(args.torch),
        "CUPY_TF32": os.environ.get("CUPY_TF32"),
        "grid": {k: getattr(args, k) for k in ("cells", "N", "T", "H", "modes")},
        "repeats": args.repeats,
        "warmup": args.warmup,
        "min_time": args.min_time,
    }
    if args.torch:
        import torch

        meta["torch_version"] = torch.__version__
    if device == "cuda":
        import cupy

        from rnnkit.gpu.cuda import cuda_device_name

        meta["device"] = cuda_device_name()
        meta["cupy"] = cupy.__version__
        meta["cuda_runtime"] = cupy.cuda.runtime.runtimeGetVersion()
    return meta


def write(out, meta, results):
    if not out:
        return
    d = os.path.dirname(os.path.abspath(out))
    os.makedirs(d, exist_ok=True)
    with open(out + ".json", "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=1)
    with open(out + ".md", "w") as f:
        f.write(header_markdown(meta) + markdown(results, meta))


def main(argv=None):
    args = parse_args(argv)
    device = "cpu" if args.dry_run else "cuda"
    if device == "cuda":
        reason = why_no_gpu()
        if reason is not None:
            print(reason)
            return 2
    meta = meta_info(args, device)
    meta["complete"] = False
    results = []
    t_start = time.perf_counter()
    points = grid_points(vars(args))
    print(f"# {len(points)} points on {meta['device']}; variants {args.variants}", flush=True)
    for k, point in enumerate(points):
        if args.time_limit and time.perf_counter() - t_start > args.time_limit:
            print(
                f"# time limit ({args.time_limit:.0f} s): stopped after {k} of {len(points)} points"
            )
            break
        try:
            r = measure_point(point, args, device)
        except Exception as e:  # one point failing must not hide the others
            import traceback

            r = dict(
                zip(("cell", "mode", "N", "T", "H"), point), ms={}, error=f"{type(e).__name__}: {e}"
            )
            r["trace"] = traceback.format_exc()[-1500:]
        results.append(r)
        ms = " ".join(f"{name} {fmt_ms(s)}" for name, s in r["ms"].items())
        print(
            f"{point[0]:6s} {point[1]:5s} N={point[2]:<4d} T={point[3]:<4d} H={point[4]:<5d} {ms}"
            f" err {fmt_err(r.get('max_rel_error'))}"
            + (f" ERROR {r['error']}" if "error" in r else ""),
            flush=True,
        )
        write(args.out, meta, results)
    else:
        meta["complete"] = True
    import rnnkit.gpu

    meta["gpu_info"] = rnnkit.gpu.info()
    meta["seconds"] = time.perf_counter() - t_start
    write(args.out, meta, results)
    print(markdown(results, meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
