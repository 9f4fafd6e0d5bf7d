"""Gradients through time, measured: the second half of the lecture made visible.

    from rnnkit import diagnostics as dg

    rec = dg.gradient_records(model, x, y)     # ‖∂L/∂s_t‖ per layer and step; each step's
    rec["simple_rnn"].terms["W"]               #   term of ∂L/∂W (Σ_t = the gradient)
    flow = dg.gradient_flow(model, x, y)       # the t × k map ‖∂L_t/∂s_k‖
    jac = dg.jacobian_norms(model, x)          # ‖∂s_t/∂s_k‖₂ vs t-k, with (γλ)^(t-k) and
                                               #   Π max σ'(a_j)·λ
    J = dg.step_jacobians(layer, sample=0)     # the exact one-step Jacobians (any cell)
    dg.record(model, x, ["gates", "states"])   # every step's gates and states (views);
    dg.gradient_records(model, x, y, record=["gates", "states"])   # with the gradients
    dg.gate_statistics(model, x)               # saturation, forget/update-gate timescales
    dg.truncation_bias(model, x, y)            # truncated vs full BPTT: cosine, rel. error
    model.fit(..., callbacks=[dg.SpectralNormTracker()])   # ‖W‖₂ over training vs 1/γ
    dg.plot_clipping(history, "clip.png")      # how often clipping fired, by how much
    dg.diagnose(model, x, y, "out/")           # all of it: PNGs and diagnostics.json

``rnnkit diagnose`` (or ``python -m rnnkit.diagnostics``) does the last from the command
line for a saved model or a fresh model on the adding / copy-memory task.
"""

from . import plots, tasks
from .gates import gate_statistics, layer_gate_statistics, layer_record, record
from .jacobians import (
    jacobian_norms,
    layer_jacobian_norms,
    norm_matrix,
    product_norms,
    recurrent_weight_norm,
    spectral_norm,
    step_jacobians,
)
from .monitor import SpectralNormTracker, clipping_telemetry, weight_norms
from .plots import (
    figure_clipping,
    figure_gates,
    figure_gradient_flow,
    figure_jacobians,
    figure_step_gradients,
    figure_truncation,
    figure_weight_norms,
    plot_clipping,
    plot_gates,
    plot_gradient_flow,
    plot_jacobians,
    plot_step_gradients,
    plot_truncation,
    plot_weight_norms,
)
from .records import (
    GradientFlow,
    GradientRecords,
    LayerRecord,
    as_float64,
    gradient_flow,
    gradient_records,
    recurrent_layers,
    replay_backward,
    step_terms,
    trace_of,
)
from .report import diagnose
from .truncation import truncated_gradient, truncation_bias


def add_parser(subparsers):
    """Register the ``diagnose`` subcommand on an argparse subparsers object."""
    from .command import add_parser as _add

    return _add(subparsers)


def run(args):
    """Run ``rnnkit diagnose`` for parsed arguments."""
    from .command import run as _run

    return _run(args)


__all__ = [
    "gradient_records",
    "gradient_flow",
    "step_terms",
    "replay_backward",
    "GradientRecords",
    "LayerRecord",
    "GradientFlow",
    "recurrent_layers",
    "trace_of",
    "as_float64",
    "step_jacobians",
    "product_norms",
    "norm_matrix",
    "spectral_norm",
    "jacobian_norms",
    "layer_jacobian_norms",
    "recurrent_weight_norm",
    "record",
    "layer_record",
    "gate_statistics",
    "layer_gate_statistics",
    "truncated_gradient",
    "truncation_bias",
    "SpectralNormTracker",
    "clipping_telemetry",
    "weight_norms",
    "diagnose",
    "plots",
    "tasks",
    "add_parser",
    "run",
    "plot_step_gradients",
    "plot_gradient_flow",
    "plot_jacobians",
    "plot_weight_norms",
    "plot_gates",
    "plot_truncation",
    "plot_clipping",
    "figure_step_gradients",
    "figure_gradient_flow",
    "figure_jacobians",
    "figure_weight_norms",
    "figure_gates",
    "figure_truncation",
    "figure_clipping",
]
