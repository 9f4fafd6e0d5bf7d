#!/usr/bin/env bash
# The one script a GPU session runs (issue 20): checks, then the fused-loop benchmark.
#
#     bash benchmarks/gpu_session.sh            # writes into $OUT (default ./gpu-session-out)
#
# Writes (at most 8 files): session.log (everything printed), nvidia-smi.txt, pytest.txt,
# gpu_info.json, bench_gpu.json, bench_gpu.md.  The grid is stopped at BENCH_LIMIT seconds
# (default 300) and writes what it has; the whole script stays under ~8 minutes.
set -u
OUT="${OUT:-$PWD/gpu-session-out}"
mkdir -p "$OUT"
exec > >(tee "$OUT/session.log") 2>&1
export CUPY_TF32=0            # no TF32 in CuPy's cuBLAS calls (bench_gpu.py sets it too)
unset RNNKIT_GPU RNNKIT_CUDA_GRAPHS
start=$(date +%s)
echo "== $(date -u +%FT%TZ) $(git rev-parse --short HEAD 2>/dev/null) $(git status --short | wc -l) changed files"

echo "== nvidia-smi"
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1; head -20 "$OUT/nvidia-smi.txt"

echo "== rnnkit: install (the C extension is optional), else PYTHONPATH=."
if ! timeout 120 python -m pip install --no-deps --no-build-isolation -e . > "$OUT/pip.txt" 2>&1; then
    echo "pip install failed (tail below); using PYTHONPATH=. and RNNKIT_KERNELS=numpy"
    tail -5 "$OUT/pip.txt"
    export RNNKIT_KERNELS=numpy
fi
rm -f "$OUT/pip.txt"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
python - <<'PY'
import cupy, numpy, rnnkit, rnnkit.kernels, torch
print("python ok: rnnkit", rnnkit.__version__, "from", rnnkit.__file__)
print("cupy", cupy.__version__, "torch", torch.__version__, "cuda", torch.version.cuda,
      "numpy", numpy.__version__, "CUPY_TF32", __import__("os").environ.get("CUPY_TF32"))
print("compiled CPU loops:", rnnkit.kernels.info().get("enabled"))
PY

echo "== tests: fused kernels as C, graph cache, and the GPU against NumPy (strict: no fallback)"
RNNKIT_GPU_STRICT=1 timeout 150 python -m pytest tests/test_gpu_kernels.py -q -p no:cacheprovider \
    2>&1 | tail -40 | tee "$OUT/pytest.txt"

echo "== rnnkit.gpu.info after a fused LSTM step"
timeout 60 python - "$OUT/gpu_info.json" <<'PY'
import json, sys
import numpy as np
import rnnkit, rnnkit.gpu
from rnnkit import backend
backend.set_backend("cupy")
layer = rnnkit.LSTM(64, return_sequences=True)
x = backend.asarray(np.random.default_rng(0).standard_normal((8, 30, 16)), dtype="float32")
for _ in range(3):
    y = layer.forward(x, training=True)
    layer.backward(backend.xp().ones_like(y))
info = rnnkit.gpu.info()
print(json.dumps(info))
json.dump(info, open(sys.argv[1], "w"), indent=1)
PY

used=$(( $(date +%s) - start ))
limit=${BENCH_LIMIT:-300}
echo "== bench_gpu.py: full grid, variants fused (graphs) and eager, limit ${limit}s (${used}s used so far)"
timeout $(( limit + 60 )) python benchmarks/bench_gpu.py --variants fused eager \
    --time-limit "$limit" --out "$OUT/bench_gpu" | tail -110
echo "== done in $(( $(date +%s) - start ))s; files:"; ls -la "$OUT"
