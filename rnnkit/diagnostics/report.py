"""All the diagnostics of one model and batch at once: PNGs and a JSON of the numbers.

    diagnose(model, x, y, "out/")      what ``rnnkit diagnose`` writes:

    step_gradients.png   ‖∂L/∂s_t‖ and each step's term of ∂L/∂W, ∂L/∂U per layer
    gradient_flow.png    the t × k map ‖∂L_t/∂s_k‖
    jacobians.png        ‖∂s_t/∂s_k‖₂ against t - k with the lecture's bounds
    gates.png            gate saturation and memory timescales (LSTM/GRU layers)
    truncation.png       cosine / relative error of k2-truncated BPTT against full BPTT
    clipping.png         clipping telemetry (when a training History is given)
    weight_norms.png     ‖W‖₂ over training with 1/γ (when a SpectralNormTracker is given)
    diagnostics.json     every number plotted, and the per-step sum checks

The diagnostics run on a float64 copy of the model; the model itself is not changed.
"""

from __future__ import annotations

import json
import math
import os
import time

import numpy as np

from . import plots
from .gates import gate_statistics
from .jacobians import jacobian_norms
from .monitor import clipping_telemetry, weight_norms
from .records import as_float64, gradient_flow, gradient_records, recurrent_layers
from .truncation import truncation_bias


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if math.isfinite(v) else (None if math.isnan(v) else ("inf" if v > 0 else "-inf"))
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def write_json(data, path):
    from ..atomicfile import atomic_write

    text = json.dumps(_jsonable(data), indent=1)
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))
    return path


def _as64(a):
    a = np.asarray(a)
    return a.astype(np.float64) if a.dtype.kind == "f" else a


def diagnose(
    model,
    x,
    y,
    out_dir,
    samples=4,
    k2_values=None,
    k1=1,
    history=None,
    tracker=None,
    clip_threshold=None,
    flow_steps=None,
    truncation=True,
    config=None,
    verbose=False,
):
    """Compute every diagnostic of ``model`` on the batch (x, y), write the PNGs and
    diagnostics.json into ``out_dir``, and return the JSON's content (with a "files"
    entry listing what was written).  ``samples``: how many sequences of the batch get
    exact Jacobians; ``k2_values``/``k1``: the truncation meter's windows;
    ``history``/``tracker``: a training History and SpectralNormTracker to plot;
    ``flow_steps``: the output steps of the gradient-flow map (default: all)."""
    os.makedirs(out_dir, exist_ok=True)
    m = as_float64(model)
    x, y = _as64(x), _as64(y)
    files, timings, out = {}, {}, {"config": config or {}}

    def path(name):
        return os.path.join(out_dir, name)

    def timed(name, fn):
        t0 = time.perf_counter()
        r = fn()
        timings[name] = round(time.perf_counter() - t0, 3)
        if verbose:
            print(f"  {name}: {timings[name]:.2f} s")
        return r

    out["layers"] = {
        l.name: {"class": type(l).__name__, "units": l.units, "activation": l.cell.activation.name}
        for l in recurrent_layers(m)
    }
    rec = timed("gradient_records", lambda: gradient_records(m, x, y))
    out["gradient_records"] = rec.summary()
    files["step_gradients"] = plots.plot_step_gradients(rec, path("step_gradients.png"))

    flow = timed("gradient_flow", lambda: gradient_flow(m, x, y, steps=flow_steps))
    out["gradient_flow"] = flow.summary()
    files["gradient_flow"] = plots.plot_gradient_flow(flow, path("gradient_flow.png"))

    n = min(int(samples), int(x.shape[0]))
    jac = timed("jacobians", lambda: jacobian_norms(m, x, samples=range(n)))
    out["jacobians"] = jac
    files["jacobians"] = plots.plot_jacobians(jac, path("jacobians.png"))

    stats = timed("gate_statistics", lambda: gate_statistics(m, x))
    out["gate_statistics"] = stats
    if any(d["gates"] for d in stats.values()):
        files["gates"] = plots.plot_gates(stats, path("gates.png"))

    out["weight_norms"] = weight_norms(m)
    if truncation:
        meter = timed("truncation", lambda: truncation_bias(m, x, y, k2_values, k1=k1))
        out["truncation"] = meter
        files["truncation"] = plots.plot_truncation(meter, path("truncation.png"))

    if history is not None:
        tel = clipping_telemetry(history)
        out["clipping"] = tel
        out["history"] = {k: list(v) for k, v in history.history.items()}
        if tel["steps"]["grad_norm"]:
            files["clipping"] = plots.plot_clipping(tel, path("clipping.png"), clip_threshold)
    if tracker is not None:
        out["weight_norms_over_training"] = tracker.summary()
        files["weight_norms"] = plots.plot_weight_norms(tracker.summary(), path("weight_norms.png"))
    out["timings_s"] = timings
    files["json"] = path("diagnostics.json")
    out["files"] = files
    write_json(out, files["json"])
    return out


__all__ = ["diagnose", "write_json"]
