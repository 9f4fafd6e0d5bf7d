"""CuPy's side of the fused loops: the kernels compiled by NVRTC (``cupy.RawModule``), the
products through cuBLAS (``cupy.matmul`` into preallocated arrays) and stream capture."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import source

BLOCK = 256
_modules: dict[tuple, Any] = {}


class CupyKernels:
    """The kernels of one cell kind, dtype and pair of activations, as ``fused`` launches them."""

    def __init__(self, kind: str, dtype: str, activation: str, recurrent_activation: str) -> None:
        import cupy

        key = (kind, dtype, activation, recurrent_activation)
        if key not in _modules:
            text = source.module_source(kind, dtype, activation, recurrent_activation)
            _modules[key] = cupy.RawModule(code=text, options=("--std=c++14",))
        self.module = _modules[key]
        self.params = {name: k.params for name, k in source.kernels(kind).items()}
        self._functions: dict[str, Any] = {}
        self.cupy = cupy

    def launch(self, name: str, count: int, K: int, *args: Any) -> None:
        fn = self._functions.get(name)
        if fn is None:
            fn = self._functions[name] = self.module.get_function(name)
        params = self.params[name]
        cargs = [np.int32(count), np.int32(K)] + [
            np.int32(a) if p.startswith("has_") else a for p, a in zip(params, args)
        ]
        fn(((count + BLOCK - 1) // BLOCK,), (BLOCK,), tuple(cargs))

    def matmul(self, a: Any, b: Any, out: Any) -> None:
        self.cupy.matmul(a, b, out=out)


class CupyCapture:
    """Stream capture: ``record()`` issues its launches on a side stream in capture mode
    (relaxed) with a memory pool of its own, so that a temporary cuBLAS or CuPy might take
    during the capture is never handed to other arrays while the graph may write to it."""

    def __init__(self) -> None:
        import cupy

        self.cupy = cupy
        self.pools: list[Any] = []

    def capture(self, record):
        cp = self.cupy
        stream = cp.cuda.Stream(non_blocking=True)
        pool = cp.cuda.MemoryPool()
        self.pools.append(pool)  # kept alive as long as the graphs may use its memory
        mode = getattr(cp.cuda.runtime, "streamCaptureModeRelaxed", None)
        cp.cuda.get_current_stream().synchronize()
        with cp.cuda.using_allocator(pool.malloc), stream:
            stream.begin_capture() if mode is None else stream.begin_capture(mode)
            try:
                record()
            except BaseException:
                try:
                    stream.end_capture()
                except Exception:
                    pass
                raise
            graph = stream.end_capture()
        return graph


def cuda_device_name() -> str:
    import cupy

    name = cupy.cuda.runtime.getDeviceProperties(0)["name"]
    return name.decode() if isinstance(name, bytes) else str(name)
