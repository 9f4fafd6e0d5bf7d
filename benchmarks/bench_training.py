#!/usr/bin/env python
"""A whole training iteration, rnnkit against PyTorch on CPU, time and peak memory.

    Embedding(V, E) -> LSTM(H, sequence output) -> Dense(V) -> cross-entropy summed over
    steps (batch mean) -> backward -> Adam step

the next-token model of a character language model, the same weights in both frameworks
(the first loss is compared).  Each framework runs in its own worker process with the same
number of threads, timed alternately A B A B as in bench_cpu.py (whose machinery this
uses); with --memory, the peak resident memory of one iteration (VmHWM above the resident
set before it, each point in fresh processes).

    python benchmarks/bench_training.py                       # N in {32, 128}, H in {128, 512}
    python benchmarks/bench_training.py --memory
    python benchmarks/bench_training.py --N 32 --H 256 --T 200 --repeats 7
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_cpu as bc  # noqa: E402  (the worker machinery, statistics, environment)


def torch_layout(V, E, H, seed):
    """Embedding, LSTM and Linear weights in PyTorch's layout, drawn with NumPy."""
    import numpy as np

    rng = np.random.default_rng(seed)
    k = 1.0 / math.sqrt(H)
    w = {
        "emb.weight": rng.standard_normal((V, E)),
        "lstm.weight_ih_l0": rng.uniform(-k, k, (4 * H, E)),
        "lstm.weight_hh_l0": rng.uniform(-k, k, (4 * H, H)),
        "lstm.bias_ih_l0": rng.uniform(-k, k, 4 * H),
        "lstm.bias_hh_l0": rng.uniform(-k, k, 4 * H),
        "out.weight": rng.uniform(-k, k, (V, H)),
        "out.bias": rng.uniform(-k, k, V),
    }
    return {name: a.astype(np.float32) for name, a in w.items()}


def data(N, T, V, seed):
    import numpy as np

    rng = np.random.default_rng(seed + 1)
    tokens = rng.integers(1, V, size=(N, T + 1))
    return tokens[:, :-1], tokens[:, 1:]  # inputs, next tokens


class RnnkitTrain:
    name = "rnnkit"

    def __init__(self, threads):
        sys.path.insert(0, bc.ROOT)
        import numpy

        import rnnkit

        self.np, self.rnnkit = numpy, rnnkit

    def info(self):
        from rnnkit import kernels

        return {
            "numpy": self.np.__version__,
            "rnnkit": self.rnnkit.__version__,
            "blas": bc.blas_info(),
            "rnnkit_loops": kernels.info(),
        }

    def peak(self, n, seconds):
        return bc.RnnkitRunner.peak(self, n, seconds)

    def setup(self, N, T, H, V, E, seed):
        rk = self.rnnkit
        from rnnkit import training
        from rnnkit.optim import Adam

        model = rk.Sequential([rk.Embedding(V, E), rk.LSTM(H, return_sequences=True), rk.Dense(V)])
        model.compile(
            loss="sparse_categorical_crossentropy",
            from_logits=True,
            optimizer=Adam(1e-3, epsilon=1e-7),
        )
        x, y = data(N, T, V, seed)
        model.forward(x[:, :1])  # builds the parameters
        w = torch_layout(V, E, H, seed)
        emb, lstm, dense = model.layers
        emb.params[next(iter(emb.params))][...] = w["emb.weight"]
        lstm.params["U"][...] = w["lstm.weight_ih_l0"].T
        lstm.params["W"][...] = w["lstm.weight_hh_l0"].T
        lstm.params["b"][...] = w["lstm.bias_ih_l0"] + w["lstm.bias_hh_l0"]
        kernel, bias = list(dense.params)
        dense.params[kernel][...] = w["out.weight"].T
        dense.params[bias][...] = w["out.bias"]
        self.model, self.x, self.y, self.step = model, x, y, training.train_step
        return self.iterate()

    def iterate(self):
        record, _, _ = self.step(self.model, self.x, self.y)
        return {"loss": float(record["loss"])}

    def run(self, iters):
        t0 = time.perf_counter()
        for _ in range(iters):
            self.step(self.model, self.x, self.y)
        return time.perf_counter() - t0

    def clear(self):
        import rnnkit.kernels

        for layer in self.model.walk():
            if hasattr(layer, "_ctx"):
                layer._ctx = None
            layer._grads = {}
        rnnkit.kernels.release_memory()  # the packed weights' kept buffers count in the step

    def release(self):
        self.model = self.x = self.y = None


class TorchTrain:
    name = "torch"

    def __init__(self, threads):
        import numpy
        import torch

        torch.set_num_threads(threads)
        self.np, self.torch = numpy, torch

    def info(self):
        return bc.TorchRunner.info(self)

    def peak(self, n, seconds):
        return bc.TorchRunner.peak(self, n, seconds)

    def setup(self, N, T, H, V, E, seed):
        torch = self.torch
        nn = torch.nn

        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.emb = nn.Embedding(V, E)
                self.lstm = nn.LSTM(E, H, batch_first=True)
                self.out = nn.Linear(H, V)

            def forward(self, x):
                return self.out(self.lstm(self.emb(x))[0])

        model = Model()
        model.load_state_dict(
            {k: torch.from_numpy(v) for k, v in torch_layout(V, E, H, seed).items()}
        )
        x, y = data(N, T, V, seed)
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y)
        self.model, self.N, self.V = model, N, V
        self.opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
        return self.iterate()

    def iterate(self):
        F = self.torch.nn.functional
        self.opt.zero_grad(set_to_none=True)
        logits = self.model(self.x)
        loss = (
            F.cross_entropy(logits.reshape(-1, self.V), self.y.reshape(-1), reduction="sum")
            / self.N
        )  # Σ over steps, mean over batch
        loss.backward()
        self.opt.step()
        return {"loss": float(loss.detach())}

    def run(self, iters):
        t0 = time.perf_counter()
        for _ in range(iters):
            self.iterate()
        return time.perf_counter() - t0

    def clear(self):
        self.opt.zero_grad(set_to_none=True)

    def release(self):
        self.model = self.opt = self.x = self.y = None


RUNNERS = {"rnnkit": RnnkitTrain, "torch": TorchTrain}


def measure(workers, point, args):
    res = dict(point)
    iters, first = {}, {}
    for w in workers:
        r = w.call("setup", **point, seed=args.seed)
        first[w.framework] = r["check"]["loss"]  # the loss before any update
        single = r["first"]
        for _ in range(args.warmup):
            single = w.call("run", iters=1)["seconds"]
        iters[w.framework] = max(1, int(math.ceil(args.min_time / max(single, 1e-9))))
    samples = {w.framework: [] for w in workers}
    for _ in range(args.repeats):
        for w in workers:
            bc.settle(args)
            reply, _ = bc.timed_call(w, iters[w.framework])
            samples[w.framework].append(reply["seconds"] / iters[w.framework])
    for w in workers:
        w.call("release")
    res["first_loss"] = first
    if len(first) == 2:
        a, b = first.values()
        res["same_first_loss"] = abs(a - b) <= 1e-3 * max(abs(a), abs(b))
    for fw, xs in samples.items():
        res[fw] = {"seconds": xs, **bc.summary(xs), "ms": bc.summary([1e3 * x for x in xs])}
    if len(samples) == 2:
        res["ratio"] = bc.summary([a / b for a, b in zip(samples["rnnkit"], samples["torch"])])
    return res


def memory(point, args, env):
    res = dict(point)
    for fw in args.frameworks:
        w = bc.Worker(fw, args.threads, env, script=__file__)
        try:
            w.call("setup", **point, seed=args.seed)  # one iteration: Adam's slots exist
            w.call("run", iters=1)
            res[fw] = w.call("memory")
        finally:
            w.close()
    if len(args.frameworks) == 2:
        res["ratio"] = res["rnnkit"]["peak_mb"] / max(res["torch"]["peak_mb"], 1e-9)
    return res


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--N", nargs="+", type=int, default=[32, 128])
    p.add_argument("--T", nargs="+", type=int, default=[100])
    p.add_argument("--H", nargs="+", type=int, default=[128, 512])
    p.add_argument("--V", type=int, default=128, help="vocabulary size (default 128)")
    p.add_argument("--E", type=int, default=64, help="embedding size (default 64)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--min-time", type=float, default=0.3)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--pause", type=float, default=0.2)
    p.add_argument("--quiet-cpus", type=float, default=0.2)
    p.add_argument("--quiet-wait", type=float, default=5.0)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--blas-env", choices=["clean", "inherit"], default="clean")
    p.add_argument(
        "--frameworks", nargs="+", choices=["rnnkit", "torch"], default=["rnnkit", "torch"]
    )
    p.add_argument("--memory", action="store_true", help="peak memory instead of time (Linux)")
    p.add_argument("--quick", action="store_true", help="one tiny point, for the smoke test")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="write OUT.json and OUT.md")
    p.add_argument("--worker", choices=["rnnkit", "torch"], help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        bc.worker_main(args.worker, args.threads, RUNNERS)
        return
    if args.quick:
        args.N, args.T, args.H, args.V, args.E = [4], [5], [8], 11, 6
        args.repeats, args.min_time, args.warmup, args.pause, args.quiet_wait = 1, 0.0, 1, 0.0, 0.0
    env = bc.worker_env(args.threads, args.blas_env)
    points = [
        dict(N=n, T=t, H=h, V=args.V, E=args.E) for n in args.N for t in args.T for h in args.H
    ]
    results = []
    if args.memory:
        env["MALLOC_MMAP_THRESHOLD_"] = "65536"
        for point in points:
            r = memory(point, args, env)
            results.append(r)
            bc.log(
                f"N={r['N']} T={r['T']} H={r['H']} "
                + " ".join(f"{fw} {r[fw]['peak_mb']:.1f} MB" for fw in args.frameworks)
                + (f"  ratio {r['ratio']:.2f}" if "ratio" in r else "")
            )
    else:
        workers = [bc.Worker(fw, args.threads, env, script=__file__) for fw in args.frameworks]
        try:
            info = {w.framework: w.call("info") for w in workers}
            for point in points:
                r = measure(workers, point, args)
                results.append(r)
                bc.log(
                    f"N={r['N']} T={r['T']} H={r['H']} "
                    + " ".join(f"{fw} {r[fw]['ms']['median']:.1f} ms" for fw in args.frameworks)
                    + (f"  ratio {r['ratio']['median']:.2f}" if "ratio" in r else "")
                )
        finally:
            for w in workers:
                w.close()
    lines = table(results, args)
    print(lines)
    if args.out:
        meta = {
            "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
            "threads": args.threads,
            "blas_env": args.blas_env,
            "memory": args.memory,
            "machine": bc.cpu_model(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        if not args.memory:
            meta["info"] = info
        bc.write_json(args.out, meta, results, complete=True)
        with open(args.out + ".md", "w") as f:
            f.write(
                f"Command: `{meta['command']}`  \nMachine: {meta['machine']}, threads per "
                f"framework: {args.threads}\n\n" + lines
            )
    return results


def table(results, args):
    fws = args.frameworks
    unit = "peak MB" if args.memory else "ms/iteration"
    head = ["N", "T", "H", "V", "E"] + [f"{fw} {unit}" for fw in fws]
    if len(fws) == 2:
        head.append("ratio rnnkit/torch")
    if not args.memory and len(fws) == 2:
        head.append("same first loss")
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        row = [str(r[k]) for k in ("N", "T", "H", "V", "E")]
        if args.memory:
            row += [f"{r[fw]['peak_mb']:.1f}" for fw in fws]
            if "ratio" in r:
                row.append(f"{r['ratio']:.2f}")
        else:
            row += [bc.fmt_ms(r[fw]["ms"]) for fw in fws]
            if "ratio" in r:
                row += [
                    f"{r['ratio']['median']:.2f}",
                    "yes" if r.get("same_first_loss") else "**NO**",
                ]
        out.append("| " + " | ".join(row) + " |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
