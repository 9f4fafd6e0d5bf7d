"""A/B of an inference forward with and without a trace: peak memory (tracemalloc, which
NumPy reports to) and ms per step, one layer, return_sequences=False.  Run:
    python benchmarks/ab_untraced.py
"""

import time
import tracemalloc

import numpy as np

from rnnkit import GRU, LSTM, kernels


def run(cls, N, T, H, keep, reps=5):
    layer = cls(H, return_sequences=False, seed=0)
    x = np.random.default_rng(0).standard_normal((N, T, 64)).astype("float32")
    layer.forward(x)
    X = np.ascontiguousarray(x.transpose(1, 0, 2))
    s0 = [np.zeros((N, s), "float32") for s in layer.state_sizes]
    b = layer.params["b"]

    def once():
        with kernels.own_threads():
            return layer._run_forward(X, s0, None, None, b, training=False, trace=keep)

    once()
    tracemalloc.start()
    once()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        once()
        ts.append(time.perf_counter() - t0)
    return peak / 2**20, min(ts) / T * 1e3


for cls in (LSTM, GRU):
    for N, T, H in [(32, 200, 256), (128, 200, 256), (32, 50, 1024)]:
        a = run(cls, N, T, H, True)
        b = run(cls, N, T, H, False)
        print(
            f"{cls.__name__:5} N={N:3} T={T} H={H:4}  traced {a[0]:7.1f} MB {a[1]:.3f} ms/step   untraced {b[0]:6.2f} MB {b[1]:.3f} ms/step"
        )
