"""Plots of the diagnostics (PNG; matplotlib is the optional extra rnnkit[plot]).

Each ``figure_*`` builds a matplotlib figure from the numbers the diagnostics return
(their JSON-ready summaries work too) and each ``plot_*`` writes it to a PNG and
returns the path.  Every panel has a title, axis labels and, where it shows more than
one series, a legend.
"""

from __future__ import annotations

import numpy as np

from ..plotting import pyplot, save

COLORS = {
    "exact": "C0",
    "product": "C2",
    "data": "C1",
    "lecture": "C3",
    "cell": "C4",
    "carousel": "C5",
}


def _as_dict(obj):
    return obj.summary() if hasattr(obj, "summary") else obj


def _grid(n, width=5.2, height=3.8, cols=None):
    plt = pyplot()
    cols = cols or min(n, 3)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _positive(a):
    a = np.asarray(a, dtype=np.float64)
    return np.where(a > 0, a, np.nan)


# -- per-step gradient records ------------------------------------------------------------------
def figure_step_gradients(records, title=None, params=("W", "U")):
    """For each recurrent layer: ‖δ_t‖ = ‖∂L/∂s_t‖ against t, and the norm of each step's
    term of ∂L/∂W (and ∂L/∂U), log scale."""
    s = _as_dict(records)
    layers = s["layers"]
    fig, axes = _grid(2 * len(layers), cols=2)
    for i, (name, rec) in enumerate(layers.items()):
        ax = axes[2 * i]
        for state, norms in rec["delta_norms"].items():
            ax.semilogy(
                np.arange(len(norms)), _positive(norms), marker=".", label=f"‖∂L/∂{state}_t‖"
            )
        ax.set_xlabel("step t (0: initial state)")
        ax.set_ylabel("gradient norm (batch)")
        ax.set_title(f"{name} ({rec['kind']}): ∂L/∂s_t at each step")
        ax.grid(alpha=0.3, which="both")
        ax.legend()
        ax = axes[2 * i + 1]
        for p in params:
            if p in rec["term_norms"]:
                v = rec["term_norms"][p]
                ax.semilogy(
                    np.arange(1, len(v) + 1), _positive(v), marker=".", label=f"‖term_t of ∂L/∂{p}‖"
                )
        check = rec.get("sum_check", {})
        worst = max(check.values()) if check else float("nan")
        ax.set_xlabel("step t")
        ax.set_ylabel("norm of the step's term")
        ax.set_title(f"{name}: per-step terms (Σ_t = gradient, rel. err {worst:.1e})")
        ax.grid(alpha=0.3, which="both")
        ax.legend()
    loss = "" if s.get("loss") is None else f" (loss {s['loss']:.4g})"
    fig.suptitle(title or f"Per-step gradients{loss}")
    fig.tight_layout()
    return fig


def plot_step_gradients(records, path, title=None):
    return save(figure_step_gradients(records, title), path)


# -- gradient-flow map --------------------------------------------------------------------------------
def _log10_positive(a):
    a = np.asarray(a, dtype=np.float64)
    return np.where(a > 0, np.log10(np.where(a > 0, a, 1.0)), np.nan)


def figure_gradient_flow(flow, title=None, state="h", shared_scale=True):
    """Heatmaps of log10 ‖∂L_t/∂s_k‖ (rows: the loss's step t; columns: the state's step k),
    one per layer, on one colour scale unless ``shared_scale=False``."""
    s = _as_dict(flow)
    maps = s["maps"]
    fig, axes = _grid(len(maps), width=5.8, height=4.6)
    plt = pyplot()
    limits = {}
    if shared_scale:
        imgs = [_log10_positive(m[state]) for m in maps.values()]
        finite = np.concatenate([i[np.isfinite(i)] for i in imgs]) if imgs else np.array([])
        if finite.size:
            limits = {"vmin": float(finite.min()), "vmax": float(finite.max())}
    for ax, (name, m) in zip(axes, maps.items()):
        a = np.asarray(m[state], dtype=np.float64)
        img = _log10_positive(a)
        steps = s["steps"]
        if steps is None:
            extent = (-0.5, a.shape[1] - 0.5, -0.5, 0.5)
            ylabel = "loss at the last step"
        else:
            extent = (-0.5, a.shape[1] - 0.5, steps[-1] + 0.5, steps[0] - 0.5)
            ylabel = "loss step t (L_t)"
        im = ax.imshow(
            img, aspect="auto", cmap="viridis", extent=extent, interpolation="nearest", **limits
        )
        cb = plt.colorbar(im, ax=ax)
        cb.set_label(f"log10 ‖∂L_t/∂{state}_k‖")
        ax.set_xlabel("state step k (0: initial state)")
        ax.set_ylabel(ylabel)
        ax.set_title(f"{name}: gradient flow ∂L_t/∂{state}_k")
    fig.suptitle(title or "Gradient flow through time (blank: no path, k > t)")
    fig.tight_layout()
    return fig


def plot_gradient_flow(flow, path, title=None):
    return save(figure_gradient_flow(flow, title), path)


# -- Jacobians and bounds ------------------------------------------------------------------------------
_LABELS = {
    "exact": "exact ‖∂s_t/∂s_k‖₂",
    "product": "Π‖∂s_j/∂s_{j-1}‖₂ (submultiplicative)",
    "data": "Π max σ'(a_j)·λ (data bound)",
    "lecture": "(γλ)^(t-k) (lecture's bound)",
    "cell": "exact ‖∂c_t/∂c_k‖₂ (cell block)",
    "carousel": "max Π f_j (cell path alone)",
}


def figure_jacobians(jac, title=None):
    """‖∂s_t/∂s_k‖ and its bounds against t - k, log scale, one panel per layer (the
    mean over the recorded sequences, with their range shaded for the exact norm)."""
    layers = jac
    fig, axes = _grid(len(layers), width=6.0, height=4.4)
    for ax, (name, d) in zip(axes, layers.items()):
        lag = np.asarray(d["lag"])
        for key in ("exact", "cell", "carousel", "product", "data", "lecture"):
            if key not in d or not d[key]:
                continue
            v = np.asarray(d[key], dtype=np.float64)  # (samples, lags)
            with np.errstate(divide="ignore", invalid="ignore"):
                mean = np.exp(np.log(_positive(v)).mean(axis=0))  # geometric mean
            style = "-" if key in ("exact", "cell") else "--"
            ax.semilogy(lag, mean, style, color=COLORS[key], label=_LABELS[key])
            if key == "exact" and v.shape[0] > 1:
                ax.fill_between(
                    lag,
                    _positive(v.min(axis=0)),
                    _positive(v.max(axis=0)),
                    color=COLORS[key],
                    alpha=0.2,
                )
        info = f"λ=‖W‖₂={d['lambda']:.3g}"
        if "gamma" in d:
            info += f", γ={d['gamma']:.3g} ({d['activation']}), γλ={d['gamma'] * d['lambda']:.3g}"
        ax.set_xlabel("lag t - k (steps)")
        ax.set_ylabel("norm")
        ax.set_title(f"{name} ({d['kind']}): ∂s_t/∂s_k, t={d['t']}\n{info}", fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.suptitle(title or "Jacobian norms against the lag, with the lecture's bounds")
    fig.tight_layout()
    return fig


def plot_jacobians(jac, path, title=None):
    return save(figure_jacobians(jac, title), path)


# -- recurrent weight norm over training --------------------------------------------------------------------
def figure_weight_norms(summary, title=None):
    """‖W‖₂ of each layer over training with the 1/γ line (Elman layers)."""
    s = _as_dict(summary)
    names = list(s["norms"])
    fig, axes = _grid(max(len(names), 1), width=5.8, height=4.0)
    steps = np.asarray(s["steps"])
    for ax, name in zip(axes, names):
        for block, v in s["norms"][name].items():
            ax.plot(
                steps,
                v,
                marker=".",
                lw=2 if block == "W" else 1,
                label=f"‖{block}‖₂" if block == "W" else f"‖{block}‖₂ (gate block)",
            )
        if s["kind"].get(name) == "rnn":
            g = s["gamma"][name]
            ax.axhline(
                1.0 / g,
                color="k",
                ls="--",
                label=f"1/γ = {1 / g:g}: above it gradients may explode, below they vanish",
            )
        ax.set_xlabel("updates")
        ax.set_ylabel("spectral norm")
        ax.set_title(f"{name} ({s['kind'].get(name)}): recurrent weights during training")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title or "Spectral norm of W over training")
    fig.tight_layout()
    return fig


def plot_weight_norms(summary, path, title=None):
    return save(figure_weight_norms(summary, title), path)


# -- gates ---------------------------------------------------------------------------------------------------
def figure_gates(stats, title=None):
    """Per gated layer: saturation of each gate (near 0 / near 1) and the per-unit
    memory timescales -1/ln f̄ (LSTM forget gate) or -1/ln z̄ (GRU update gate)."""
    gated = {n: d for n, d in stats.items() if d["gates"]}
    if not gated:
        gated = stats
    fig, axes = _grid(2 * len(gated), cols=2, width=5.4, height=3.8)
    for i, (name, d) in enumerate(gated.items()):
        ax = axes[2 * i]
        groups = dict(d["gates"])
        groups.update({f"state {k}": v for k, v in d["states"].items() if "saturated" in v})
        labels = list(groups)
        low = [groups[k]["saturated_low"] for k in labels]
        high = [groups[k]["saturated_high"] for k in labels]
        x = np.arange(len(labels))
        ax.bar(x, low, color="C0", label="saturated low (≈0 / ≈-1)")
        ax.bar(x, high, bottom=low, color="C3", label="saturated high (≈1)")
        ax.plot(x, [groups[k]["mean"] for k in labels], "kD", label="mean value")
        ax.set_xticks(x)
        ax.set_xticklabels(labels)
        ax.set_ylim(min(-0.05, min(groups[k]["mean"] for k in labels) - 0.05), 1.05)
        ax.set_xlabel("gate / state")
        ax.set_ylabel("fraction of steps × units")
        ax.set_title(f"{name} ({d['kind']}): saturation (σ' < {d['threshold']}·γ)")
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=8)
        ax = axes[2 * i + 1]
        key = "forget_timescale" if "forget_timescale" in d else "update_timescale"
        if key in d:
            tau = np.asarray(d[key]["per_unit"], dtype=np.float64)
            tau = np.clip(tau[np.isfinite(tau)], 1e-2, None)
            bins = np.logspace(
                np.log10(max(tau.min(), 1e-2)), np.log10(max(tau.max(), 1.0)) + 0.01, 20
            )
            ax.hist(
                tau, bins=bins, color="C2", label=f"units (median {d[key]['median']:.3g} steps)"
            )
            ax.set_xscale("log")
            gate = "f" if key == "forget_timescale" else "z"
            ax.set_xlabel(f"timescale -1/ln(mean {gate}) (steps)")
            ax.set_ylabel("units")
            ax.set_title(
                f"{name}: memory timescales of the {'forget' if gate == 'f' else 'update'} gate"
            )
            ax.legend(fontsize=8)
        else:
            ax.set_visible(False)
    fig.suptitle(title or "Gate statistics")
    fig.tight_layout()
    return fig


def plot_gates(stats, path, title=None):
    return save(figure_gates(stats, title), path)


# -- truncation bias -------------------------------------------------------------------------------------------
def figure_truncation(meter, title=None):
    """Cosine similarity and relative error of the k2-truncated gradient against the full one."""
    plt = pyplot()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    k2 = np.asarray(meter["k2"])
    a1.semilogx(k2, meter["cosine"], "o-", lw=2, label="all parameters")
    a2.loglog(k2, _positive(meter["relative_error"]), "o-", lw=2, label="all parameters")
    for name, d in meter.get("per_param", {}).items():
        a1.semilogx(k2, d["cosine"], ".--", lw=1, label=name)
        a2.loglog(k2, _positive(d["relative_error"]), ".--", lw=1, label=name)
    a1.axhline(1.0, color="k", lw=0.8)
    a1.set_xlabel("truncation window k2 (steps)")
    a1.set_ylabel("cosine(truncated, full)")
    a1.set_title(f"Direction: cos(g_k2, g), T = {meter['T']}, k1 = {meter['k1']}")
    a2.set_xlabel("truncation window k2 (steps)")
    a2.set_ylabel("‖g_k2 - g‖ / ‖g‖")
    a2.set_title("Relative error of the truncated gradient")
    for ax in (a1, a2):
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7, ncol=2)
    fig.suptitle(title or "Truncated BPTT against full BPTT")
    fig.tight_layout()
    return fig


def plot_truncation(meter, path, title=None):
    return save(figure_truncation(meter, title), path)


# -- clipping telemetry ------------------------------------------------------------------------------------------
def figure_clipping(telemetry, threshold=None, title=None):
    """Per update: the gradient norm before clipping, the updates where clipping fired,
    and the threshold; per epoch: the fraction of updates clipped and the mean scale
    ‖g_clipped‖/‖g‖ of those updates.  ``telemetry``: ``clipping_telemetry(history)``
    or a History."""
    from .monitor import clipping_telemetry

    if hasattr(telemetry, "history") and hasattr(telemetry, "steps"):
        telemetry = clipping_telemetry(telemetry)
    plt = pyplot()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4))
    st, ep = telemetry["steps"], telemetry["epochs"]
    g = np.asarray(st["grad_norm"], dtype=np.float64)
    n = np.arange(1, len(g) + 1)
    a1.semilogy(n, _positive(g), lw=1, color="C0", label="‖g‖ before clipping")
    if st["clipped"]:
        c = np.asarray(st["clipped"], bool)
        a1.semilogy(n[c], _positive(g[c]), "x", color="C3", ms=4, label="clipping fired")
    if threshold is not None:
        a1.axhline(threshold, color="k", ls="--", label=f"threshold {threshold:g}")
    a1.set_xlabel("update")
    a1.set_ylabel("global gradient norm")
    a1.set_title("Gradient norm per update")
    a1.grid(alpha=0.3, which="both")
    a1.legend(fontsize=8)
    frac = ep["clip_fraction"]
    e = np.arange(1, len(frac) + 1)
    a2.bar(e, frac, color="C3", alpha=0.6, label="fraction of updates clipped")
    if ep["clip_scale_mean"]:
        a2.plot(e, ep["clip_scale_mean"], "ko-", label="mean scale ‖g_clipped‖/‖g‖ when fired")
    a2.set_ylim(0, 1.05)
    a2.set_xlabel("epoch")
    a2.set_ylabel("fraction / scale")
    a2.set_title("Clipping per epoch")
    a2.grid(alpha=0.3, axis="y")
    a2.legend(fontsize=8)
    fig.suptitle(title or "Gradient clipping telemetry")
    fig.tight_layout()
    return fig


def plot_clipping(telemetry, path, threshold=None, title=None):
    return save(figure_clipping(telemetry, threshold, title), path)


__all__ = [n for n in dir() if n.startswith(("figure_", "plot_"))]
