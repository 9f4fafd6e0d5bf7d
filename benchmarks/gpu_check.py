"""rnnkit on a GPU through its array namespace: the same cells and BPTT loops run on
CuPy arrays after ``rnnkit.set_backend("cupy")``.

    PYTHONPATH=. python benchmarks/gpu_check.py [--out DIR]

1. agreement: every cell (SimpleRNN, LSTM with and without proj_size, GRU both
   variants, Bidirectional with masks) in float64 gives the same outputs and gradients
   on the GPU as with NumPy (relative error);
2. training: a Sequential Embedding -> LSTM -> Dense trains with Adam on the GPU;
3. speed: one LSTM training step (forward, summed loss, backward) against PyTorch's
   cuDNN LSTM on the same GPU, float32.
"""

import argparse
import json
import os
import time

import numpy as np

import rnnkit
from rnnkit import GRU, LSTM, Bidirectional, Dense, Embedding, Sequential, SimpleRNN, backend


def run_layer(make, x, mask, dy_seed=0):
    rnnkit.set_seed(0)
    layer = make()
    y = layer.forward(backend.asarray(x), mask=None if mask is None else backend.asarray(mask))
    dy = np.random.default_rng(dy_seed).standard_normal(y.shape)
    dx = layer.backward(backend.asarray(dy))
    grads = {f"grad[{i}]": backend.to_numpy(g) for i, g in enumerate(layer.grads.values())}
    return {"y": backend.to_numpy(y), "dx": backend.to_numpy(dx)} | grads


def agreement():
    rng = np.random.default_rng(1)
    N, T, D = 4, 30, 5
    x = rng.standard_normal((N, T, D))
    mask = np.ones((N, T), bool)
    mask[1, 20:] = False
    mask[3, 7:] = False
    kw = dict(return_sequences=True, dtype="float64")
    cases = {
        "SimpleRNN tanh": lambda: SimpleRNN(8, **kw),
        "SimpleRNN relu": lambda: SimpleRNN(8, activation="relu", **kw),
        "LSTM": lambda: LSTM(8, **kw),
        "LSTM proj_size": lambda: LSTM(8, proj_size=3, **kw),
        "GRU reset_after": lambda: GRU(8, **kw),
        "GRU reset_before": lambda: GRU(8, reset_after=False, **kw),
        "Bidirectional LSTM": lambda: Bidirectional(LSTM(6, **kw)),
        "LSTM go_backwards": lambda: LSTM(8, go_backwards=True, **kw),
    }
    out = {}
    for name, make in cases.items():
        for m in (None, mask):
            backend.set_backend("numpy")
            ref = run_layer(make, x, m)
            backend.set_backend("cupy")
            got = run_layer(make, x, m)
            backend.set_backend("numpy")
            err = max(
                float(np.abs(got[k] - ref[k]).max() / max(np.abs(ref[k]).max(), 1e-300))
                for k in ref
            )
            out[name + (" masked" if m is not None else "")] = err
    return out


def training():
    backend.set_backend("cupy")
    rnnkit.set_seed(0)
    rng = np.random.default_rng(0)
    x = rng.integers(1, 20, (256, 40))
    y = (x + 1) % 20  # predict the next id
    model = Sequential([Embedding(20, 16), LSTM(64, return_sequences=True), Dense(20)])
    model.compile(
        loss="sparse_categorical_crossentropy",
        from_logits=True,
        optimizer=rnnkit.optim.Adam(0.01, clip_global_norm=5.0),
        metrics=["accuracy"],
    )
    t = time.perf_counter()
    h = model.fit(x, y, epochs=5, batch_size=64, verbose=0)
    secs = time.perf_counter() - t
    backend.set_backend("numpy")
    return {"loss": h.history["loss"], "accuracy": h.history["accuracy"], "seconds": secs}


def speed():
    import cupy as cp
    import torch

    out = []
    for N, H, T in ((32, 256, 100), (256, 1024, 100)):
        D = H
        backend.set_backend("cupy")
        rnnkit.set_seed(0)
        layer = LSTM(H, return_sequences=True)
        x = cp.asarray(np.random.default_rng(0).standard_normal((N, T, D)), dtype=cp.float32)
        dy = cp.ones((N, T, H), dtype=cp.float32)

        def step():
            layer.forward(x, training=True)
            layer.backward(dy)

        for _ in range(3):
            step()
        cp.cuda.Device().synchronize()
        reps = 10
        t = time.perf_counter()
        for _ in range(reps):
            step()
        cp.cuda.Device().synchronize()
        ours = (time.perf_counter() - t) / reps
        backend.set_backend("numpy")
        lstm = torch.nn.LSTM(D, H, batch_first=True).cuda()
        xt = torch.randn(N, T, D, device="cuda", requires_grad=True)
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False

        def tstep():
            y, _ = lstm(xt)
            y.sum().backward()

        for _ in range(3):
            tstep()
        torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(reps):
            tstep()
        torch.cuda.synchronize()
        theirs = (time.perf_counter() - t) / reps
        out.append(
            {
                "N": N,
                "H": H,
                "T": T,
                "rnnkit_cupy_ms": ours * 1e3,
                "torch_cudnn_ms": theirs * 1e3,
                "ratio": ours / theirs,
            }
        )
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", default=os.environ.get("OUT", "."))
    p.add_argument("--only", choices=["agreement", "training", "speed"])
    args = p.parse_args()
    import cupy

    result = {
        "device": cupy.cuda.runtime.getDeviceProperties(0)["name"].decode(),
        "cupy": cupy.__version__,
        "numpy": np.__version__,
    }
    for name, fn in (
        ("agreement_float64_rel_error", agreement),
        ("training", training),
        ("lstm_train_step", speed),
    ):
        if args.only and not name.startswith({"speed": "lstm"}.get(args.only, args.only)):
            continue
        t = time.perf_counter()
        try:
            result[name] = fn()
        except Exception as e:  # report and go on: one section failing must not hide the others
            import traceback

            result[name] = {
                "error": f"{type(e).__name__}: {e}",
                "trace": traceback.format_exc()[-2000:],
            }
        backend.set_backend("numpy")
        print(name, f"{time.perf_counter() - t:.1f}s", json.dumps(result[name])[:1500], flush=True)
    with open(os.path.join(args.out, "gpu_check.json"), "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
