"""The second half of the RNN lecture, measured: vanishing and exploding gradients.

Every number and plot of docs/gradients.md comes from this script, with rnnkit's own
diagnostics (rnnkit.diagnostics):

    python experiments/vanishing.py amplify      # the lecture's "amplified 2⁴ = 16 times"
    python experiments/vanishing.py gradients    # ‖∂L/∂s_k‖ against the lag at initialization,
                                                 #   Jacobians against the lecture's bounds,
                                                 #   the t × k gradient-flow maps
    python experiments/vanishing.py lags         # SimpleRNN (tanh, logistic), LSTM, GRU trained
                                                 #   on the adding problem at lags 10..200
    python experiments/vanishing.py explode      # large ‖W‖: explosion, and clipping by norm
    python experiments/vanishing.py truncation   # truncated-BPTT bias of the lag-100 models
                                                 #   (run after 'lags', which saves them)
    python experiments/vanishing.py all          # all of the above, in this order

Plots go to --img (docs/img), numbers to --results (experiments/results/*.json); each
part prints a summary.  Training runs in float32 on one core (OPENBLAS_NUM_THREADS=1 is
set here: the matrices are small); the diagnostics run on float64 copies.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import rnnkit  # noqa: E402
from rnnkit import Sequential, SimpleRNN, load_model, optim  # noqa: E402
from rnnkit import diagnostics as dg  # noqa: E402
from rnnkit.diagnostics import tasks  # noqa: E402
from rnnkit.diagnostics.report import write_json  # noqa: E402
from rnnkit.plotting import pyplot, save  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# the four recurrences compared: (label, cell, activation)
MODELS = [
    ("SimpleRNN tanh", "rnn", "tanh"),
    ("SimpleRNN logistic", "rnn", "sigmoid"),
    ("LSTM", "lstm", "tanh"),
    ("GRU", "gru", "tanh"),
]
COLORS = {"SimpleRNN tanh": "C0", "SimpleRNN logistic": "C1", "LSTM": "C2", "GRU": "C3"}
UNITS = 32


def slug(label):
    return label.lower().replace(" ", "_")


def command(part, args):
    """The exact command line that makes a part's plots (written next to each plot)."""
    extra = ""
    if part == "lags" and args.max_updates != 3000:
        extra += f" --max-updates {args.max_updates}"
    if part == "lags" and args.lags != "10,25,50,100,200":
        extra += f" --lags {args.lags}"
    if part == "lags" and args.seeds != "0,1,2":
        extra += f" --seeds {args.seeds}"
    return f"python experiments/vanishing.py {part}{extra}"


def log(*a):
    print(*a, flush=True)


# ==================================================================================== amplify
def part_amplify(args):
    """One linear unit, recurrent weight w, unrolled: s_t = s_{t-1}·w + x_t·1."""
    out = {}
    x = np.array([[[1.0], [0.0], [0.0], [0.0], [0.0]]])  # input_1 = 1, then zeros
    for act, w in (("linear", 2.0), ("linear", 0.5), ("tanh", 2.0)):
        layer = SimpleRNN(
            1, activation=act, use_bias=False, dtype="float64", input_shape=[None, 1], name="unit"
        )
        layer.params["U"][...] = 1.0
        layer.params["W"][...] = w
        m = Sequential([layer])
        m.compile("mse")
        states = dg.record(m, x, "states")["unit"]["states"]["h"][0, :, 0]
        jac = dg.jacobian_norms(m, x)["unit"]
        rec = dg.gradient_records(m, x, np.zeros((1, 1)))["unit"]  # L = s_5², mse against 0
        key = f"{act}, w={w:g}"
        out[key] = {
            "states s_0..s_5": states.tolist(),
            "ds5/ds_k for k=5..0 (exact Jacobian)": jac["exact"][0],
            "lecture bound (γλ)^(5-k)": jac["lecture"][0],
            "data bound Π max σ'·λ": jac["data"][0],
            "dL/ds_k for k=0..5": rec.deltas["h"][:, 0, 0].tolist(),
            "dL/dU": float(rec.grads["U"][0, 0]),
            "terms of dL/dU per step": rec.terms["U"][:, 0, 0].tolist(),
            "dL/dW": float(rec.grads["W"][0, 0]),
            "terms of dL/dW per step": rec.terms["W"][:, 0, 0].tolist(),
        }
        log(f"\n{key}:  (input_1 = 1 enters s_1; 4 recurrent steps reach s_5)")
        for k, v in out[key].items():
            log(f"  {k:40s} {np.round(v, 6).tolist() if isinstance(v, list) else round(v, 6)}")
    write_json(out, os.path.join(args.results, "amplify.json"))
    return out


# ================================================================================== gradients
def state_grad_norms(layer_record):
    """‖∂L/∂s_k‖ for k = 0..T over all of the layer's states: (h, c) for an LSTM."""
    return np.sqrt(sum(v**2 for v in layer_record.delta_norms.values()))


def _decay_rate(ratios, lo=1, hi=60):
    """Per-step factor ρ of ‖δ_k‖ ≈ ρ^(T-k), fitted on lags lo..hi (where > 1e-300)."""
    lags = np.arange(len(ratios))
    r = np.asarray(ratios)
    sel = (lags >= lo) & (lags <= hi) & (r > 1e-300)
    if sel.sum() < 2:
        return float("nan")
    slope = np.polyfit(lags[sel], np.log(r[sel]), 1)[0]
    return float(math.exp(slope))


def part_gradients(args):
    T, n = 200, 64
    x, y = tasks.adding_problem(n, T, seed=123)
    res = {"T": T, "batch": n, "models": {}}
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8.5, 5))
    jac_all = {}
    for label, cell, act in MODELS:
        model = dg.as_float64(tasks.build_model("adding", cell, UNITS, act, seed=args.seed))
        rec = dg.gradient_records(model, x, y)
        d = state_grad_norms(next(iter(rec)))  # index k = 0..T
        ratios = (d / d[-1])[::-1]  # by lag T - k
        rho = _decay_rate(ratios)
        layer = model.layers[0]
        jac = dg.jacobian_norms(model, x, samples=range(4), t=100)[layer.name]
        jac_all[label] = jac
        info = {
            "delta_ratio_by_lag": ratios.tolist(),
            "decay_per_step": rho,
            "ratio_at_lag": {str(l): float(ratios[l]) for l in (10, 25, 50, 100, 200)},
            "lambda": jac["lambda"],
        }
        if cell == "rnn":
            info["gamma"] = jac["gamma"]
            info["gamma_lambda"] = jac["gamma"] * jac["lambda"]
        res["models"][label] = info
        ax.semilogy(
            np.arange(T + 1),
            np.where(ratios > 0, ratios, np.nan),
            color=COLORS[label],
            lw=2,
            label=f"{label}: ×{rho:.3g} per step",
        )
        if cell == "rnn":
            g = (jac["gamma"] * jac["lambda"]) ** np.arange(T + 1)
            ax.semilogy(
                np.arange(T + 1),
                np.where(g > 1e-300, g, np.nan),
                ls=":",
                color=COLORS[label],
                label=f"{label}: bound (γλ)^(T-k), γλ = {jac['gamma'] * jac['lambda']:.3g}",
            )
        log(
            f"{label:20s} ‖∂L/∂s_k‖/‖∂L/∂s_T‖: lag 10 {ratios[10]:.3g}, lag 50 {ratios[50]:.3g}, "
            f"lag 100 {ratios[100]:.3g}, lag 200 {ratios[200]:.3g}; fitted ×{rho:.4g} per step"
        )
    ax.set_ylim(1e-30, 10)
    ax.set_xlabel("lag T - k (steps back from the loss)")
    ax.set_ylabel("‖∂L/∂s_k‖ / ‖∂L/∂s_T‖   (LSTM: s = (h, c))")
    ax.set_title(f"Adding problem, T = {T}, at initialization: how much gradient reaches s_k")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.suptitle(
        "Vanishing gradients at initialization: the lecture's bound and the measured decay"
    )
    fig.tight_layout()
    save(fig, os.path.join(args.img, "vanishing_at_init.png"))

    dg.plot_jacobians(
        jac_all,
        os.path.join(args.img, "jacobian_bounds.png"),
        title="‖∂s_t/∂s_k‖₂ (t = 100, 4 sequences, at initialization) and its bounds",
    )
    res["jacobians_t100"] = {}
    for label, d in jac_all.items():
        row = {k: d[k] for k in ("kind", "lambda", "gamma") if k in d}
        for key in ("exact", "product", "data", "lecture", "cell", "carousel"):
            if key in d:  # geometric mean over the 4 sequences
                v = np.maximum(np.asarray(d[key]), 1e-300)
                row[f"{key}_at_lag"] = {
                    str(l): float(np.exp(np.log(v[:, l]).mean())) for l in (1, 10, 25, 50, 100)
                }
        res["jacobians_t100"][label] = row

    # the t × k map on a sequence-to-sequence task: copy-memory, lag 30
    lag = 30
    xc, yc = tasks.copy_memory(16, lag, seed=5)
    maps = {}
    for label, cell, act in MODELS:
        if label == "SimpleRNN logistic":
            continue
        model = dg.as_float64(tasks.build_model("copy", cell, UNITS, act, seed=args.seed))
        flow = dg.gradient_flow(model, xc, yc)
        maps[label] = next(iter(flow.maps.values()))
        a = maps[label]["h"]
        Tc = a.shape[0]
        res.setdefault("copy_flow", {})[label] = {
            "T": Tc,
            "dL_last/ds_k at lag": {str(l): float(a[Tc - 1, Tc - l]) for l in (1, 10, 30, 49)},
        }
    dg.plot_gradient_flow(
        dg.GradientFlow(list(range(xc.shape[1])), maps, None),
        os.path.join(args.img, "gradient_flow_copy.png"),
        title=f"‖∂L_t/∂h_k‖ at initialization, copy-memory task (lag {lag}, "
        f"T = {xc.shape[1]}, 16 sequences)",
    )
    write_json(res, os.path.join(args.results, "gradients.json"))
    return res


# ======================================================================================= lags
def train_adding(label, cell, act, lag, seed, args):
    """Adam (lr 0.01, clipping by global norm 1) on fresh batches of 64 sequences; every 50
    updates the validation MSE on 1000 fixed sequences; stops at MSE < 0.001 or the budget."""
    rnnkit.set_seed(seed)
    model = tasks.build_model(
        "adding", cell, UNITS, act, seed=seed, learning_rate=1e-2, clip_global_norm=1.0
    )
    first = seed == args.seed_list[0]
    xv, yv = tasks.adding_problem(1000, lag, seed=10_000 + lag)
    xd, yd = tasks.adding_problem(64, lag, seed=20_000 + lag)  # the diagnosed batch
    init = dg.gradient_records(dg.as_float64(model), xd, yd)
    d0 = state_grad_norms(next(iter(init)))
    tracker = dg.SpectralNormTracker()
    every, batch = 50, 64
    curve, clip_frac, clip_scale, updates = [], [], [], 0
    solved_at = None
    t0 = time.perf_counter()
    epoch = 0
    while updates < args.max_updates:
        x, y = tasks.adding_problem(every * batch, lag, seed=seed * 100_000 + epoch)
        h = model.fit(
            x,
            y,
            batch_size=batch,
            epochs=epoch + 1,
            initial_epoch=epoch,
            verbose=0,
            callbacks=[tracker],
            shuffle=False,
        )
        epoch += 1
        updates += every
        clip_frac += h.history.get("clip_fraction", [])
        clip_scale += h.history.get("clip_scale_mean", [])
        pred = model.predict(xv, batch_size=500)
        mse = float(np.mean((pred - yv) ** 2))
        acc = tasks.adding_accuracy(pred, yv)
        curve.append((updates, mse, acc))
        if not math.isfinite(mse):
            break
        if mse < 0.001:
            solved_at = updates
            break
    seconds = time.perf_counter() - t0
    after = dg.gradient_records(dg.as_float64(model), xd, yd)
    d1 = state_grad_norms(next(iter(after)))
    stats = dg.gate_statistics(dg.as_float64(model), xd)
    st = next(iter(stats.values()))
    out = {
        "label": label,
        "lag": lag,
        "seed": seed,
        "updates": updates,
        "seconds": round(seconds, 1),
        "val_mse": curve[-1][1],
        "val_accuracy": curve[-1][2],
        "best_val_mse": min(c[1] for c in curve),
        "solved_at": solved_at,
        "curve": curve,
        "clip_fraction": clip_frac,
        "clip_scale_mean": clip_scale,
        "grad_ratio_s0_sT_init": float(d0[0] / d0[-1]),
        "grad_ratio_s0_sT_trained": float(d1[0] / d1[-1]),
        "weight_norms": tracker.summary(),
        "gates": {k: v for k, v in st.items() if k != "states"},
    }
    for key in ("forget_timescale", "update_timescale"):
        if key in st:
            out["median_timescale"] = st[key]["median"]
            out["max_timescale"] = st[key]["max"]
    if lag == 100 and first:
        os.makedirs(os.path.join(args.results, "models"), exist_ok=True)
        model.save(
            os.path.join(args.results, "models", f"{slug(label)}_lag{lag}.rnnkit"),
            metadata={"diagnose": {"task": "adding", "lag": lag}},
        )
    if lag == max(args.lag_list) and cell != "rnn" and first:
        out["gate_stats_full"] = st
    return out


def part_lags(args):
    runs = []
    t_all = time.perf_counter()
    for lag in args.lag_list:
        for seed in args.seed_list:
            for label, cell, act in MODELS:
                r = train_adding(label, cell, act, lag, seed, args)
                runs.append(r)
                log(
                    f"lag {lag:4d} seed {seed} {label:20s} val MSE {r['val_mse']:.4f}  accuracy "
                    f"{r['val_accuracy']:.3f}  after {r['updates']:5d} updates "
                    f"({'solved' if r['solved_at'] else 'budget'}), {r['seconds']:6.1f} s; "
                    f"‖∂L/∂s_0‖/‖∂L/∂s_T‖ init {r['grad_ratio_s0_sT_init']:.2e} trained "
                    f"{r['grad_ratio_s0_sT_trained']:.2e}"
                )
                write_json(
                    {
                        "runs": runs,
                        "seconds": time.perf_counter() - t_all,
                        "max_updates": args.max_updates,
                        "seeds": args.seed_list,
                    },
                    os.path.join(args.results, "lags.json"),
                )
    total = time.perf_counter() - t_all
    summary = summarize_lags(runs)
    write_json(
        {
            "runs": runs,
            "summary": summary,
            "seconds": total,
            "max_updates": args.max_updates,
            "seeds": args.seed_list,
        },
        os.path.join(args.results, "lags.json"),
    )
    _plot_lags(runs, args)
    log("\n| cell | " + " | ".join(f"lag {l}" for l in args.lag_list) + " |")
    log("|---|" + "---|" * len(args.lag_list))
    for label, _, _ in MODELS:
        cells = []
        for lag in args.lag_list:
            d = summary[label][str(lag)]
            cells.append(
                f"{d['solved']}/{d['seeds']} · MSE {d['median_best_mse']:.4f} · "
                f"acc {d['median_accuracy']:.2f}"
            )
        log(f"| {label} | " + " | ".join(cells) + " |")
    log(f"lags: {total:.0f} s")
    return runs


def _geo(v):
    v = np.maximum(np.asarray(v, dtype=np.float64), 1e-300)
    return float(np.exp(np.log(v).mean()))


def summarize_lags(runs):
    """Per cell and lag, over the seeds: how many solved (MSE < 0.001), medians."""
    out = {}
    for label, _, _ in MODELS:
        out[label] = {}
        for lag in sorted({r["lag"] for r in runs}):
            rs = [r for r in runs if r["label"] == label and r["lag"] == lag]
            if not rs:
                continue
            solved = [r["solved_at"] for r in rs if r["solved_at"]]
            d = {
                "seeds": len(rs),
                "solved": len(solved),
                "median_updates_to_solve": float(np.median(solved)) if solved else None,
                "median_best_mse": float(np.median([r["best_val_mse"] for r in rs])),
                "best_mse_range": [
                    min(r["best_val_mse"] for r in rs),
                    max(r["best_val_mse"] for r in rs),
                ],
                "median_accuracy": float(np.median([r["val_accuracy"] for r in rs])),
                "accuracy_range": [
                    min(r["val_accuracy"] for r in rs),
                    max(r["val_accuracy"] for r in rs),
                ],
                "geomean_grad_ratio_init": _geo([r["grad_ratio_s0_sT_init"] for r in rs]),
                "geomean_grad_ratio_trained": _geo([r["grad_ratio_s0_sT_trained"] for r in rs]),
                "seconds": float(sum(r["seconds"] for r in rs)),
            }
            if "max_timescale" in rs[0]:
                d["median_max_timescale"] = float(np.median([r["max_timescale"] for r in rs]))
                d["median_median_timescale"] = float(np.median([r["median_timescale"] for r in rs]))
            out[label][str(lag)] = d
    return out


def _band(ax, lags, values, color, label, log=True, marker="o", ls="-"):
    """Median over seeds with the min-max range as error bars."""
    v = [np.asarray(x, dtype=np.float64) for x in values]
    med = np.array([np.median(x) for x in v])
    lo = med - np.array([x.min() for x in v])
    hi = np.array([x.max() for x in v]) - med
    ax.errorbar(lags, med, yerr=[lo, hi], color=color, marker=marker, ls=ls, capsize=3, label=label)
    if log:
        ax.set_yscale("log")


def _plot_lags(runs, args):
    plt = pyplot()
    lags = sorted({r["lag"] for r in runs})
    nseeds = len({r["seed"] for r in runs})

    def per_lag(label, key, fn=None):
        return [
            [(fn or (lambda r: r[key]))(r) for r in runs if r["label"] == label and r["lag"] == l]
            for l in lags
        ]

    # 1. final MSE and accuracy against the lag
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.3))
    for label, _, _ in MODELS:
        _band(a1, lags, per_lag(label, "best_val_mse"), COLORS[label], label)
        _band(a2, lags, per_lag(label, "val_accuracy"), COLORS[label], label, log=False)
    a1.axhline(1 / 6, color="k", ls="--", lw=1, label="predict the mean: 1/6")
    a1.axhline(1 / 12, color="gray", ls=":", lw=1, label="only the 2nd number: 1/12")
    a1.axhline(0.001, color="g", ls="-.", lw=1, label="solved: < 0.001 (training stops)")
    for ax in (a1, a2):
        ax.set_xscale("log")
        ax.set_xticks(lags)
        ax.set_xticklabels([str(l) for l in lags])
        ax.tick_params(axis="x", which="minor", labelbottom=False)
        ax.set_xlabel("lag = sequence length T")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    a1.set_ylabel("best validation MSE")
    a1.set_title("Adding problem: error against the lag")
    a2.set_ylabel("fraction with |error| < 0.04")
    a2.set_title("Adding problem: accuracy at the end of training")
    fig.suptitle(
        f"SimpleRNN fails beyond short lags; LSTM and GRU learn "
        f"(≤ {args.max_updates} updates of 64; median and range of {nseeds} seeds)"
    )
    fig.tight_layout()
    save(fig, os.path.join(args.img, "adding_by_lag.png"))

    # 2. learning curves (first seed), one panel per lag
    seed0 = min(r["seed"] for r in runs)
    fig, axes = plt.subplots(1, len(lags), figsize=(4.2 * len(lags), 3.8), squeeze=False)
    for ax, lag in zip(axes[0], lags):
        for label, _, _ in MODELS:
            r = next(
                r for r in runs if r["label"] == label and r["lag"] == lag and r["seed"] == seed0
            )
            c = np.asarray(r["curve"])
            ax.semilogy(c[:, 0], c[:, 1], color=COLORS[label], label=label)
        ax.axhline(1 / 6, color="k", ls="--", lw=1)
        ax.set_title(f"lag {lag}")
        ax.set_xlabel("updates")
        ax.set_ylabel("validation MSE")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    fig.suptitle(
        f"Learning curves on the adding problem, seed {seed0} (dashed: predicting the mean)"
    )
    fig.tight_layout()
    save(fig, os.path.join(args.img, "adding_curves.png"))

    # 3. gradient reaching the start of the sequence, before and after training
    fig, ax = plt.subplots(figsize=(8, 4.8))
    for label, _, _ in MODELS:
        _band(
            ax,
            lags,
            per_lag(
                label, "grad_ratio_s0_sT_init", lambda r: max(r["grad_ratio_s0_sT_init"], 1e-300)
            ),
            COLORS[label],
            f"{label}, initialization",
            ls="--",
        )
        _band(
            ax,
            lags,
            per_lag(
                label,
                "grad_ratio_s0_sT_trained",
                lambda r: max(r["grad_ratio_s0_sT_trained"], 1e-300),
            ),
            COLORS[label],
            f"{label}, trained",
            marker="s",
        )
    ax.set_xlabel("lag = sequence length T")
    ax.set_ylabel("‖∂L/∂s_0‖ / ‖∂L/∂s_T‖   (LSTM: s = (h, c))")
    ax.set_title("Gradient reaching the first step, relative to the last")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, ncol=2)
    fig.suptitle(
        f"Gradient norms vanish with the lag for SimpleRNN (median, range of {nseeds} seeds)"
    )
    fig.tight_layout()
    save(fig, os.path.join(args.img, "gradient_ratio_by_lag.png"))

    # 4. ‖W‖ over training for the SimpleRNNs at lag 50 (or the closest), with 1/γ
    lag = min(lags, key=lambda l: abs(l - 50))
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for label in ("SimpleRNN tanh", "SimpleRNN logistic"):
        r = next(
            (r for r in runs if r["label"] == label and r["lag"] == lag and r["seed"] == seed0),
            None,
        )
        if r is None:
            continue
        w = r["weight_norms"]
        name = next(iter(w["norms"]))
        ax.plot(
            w["steps"], w["norms"][name]["W"], color=COLORS[label], lw=2, label=f"{label}: ‖W‖₂"
        )
        g = w["gamma"][name]
        ax.axhline(1 / g, color=COLORS[label], ls="--", label=f"{label}: 1/γ = {1 / g:g} (γλ = 1)")
    ax.set_xlabel("updates")
    ax.set_ylabel("spectral norm of W")
    ax.set_title(f"SimpleRNN on the adding problem, lag {lag}, seed {seed0}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.suptitle("‖W‖ during training against the lecture's threshold 1/γ")
    fig.tight_layout()
    save(fig, os.path.join(args.img, "weight_norm_training.png"))

    # 5. gates of the longest-lag LSTM and GRU; memory timescales against the lag
    top = max(lags)
    stats = {
        r["label"]: r["gate_stats_full"] for r in runs if r["lag"] == top and "gate_stats_full" in r
    }
    if stats:
        dg.plot_gates(
            stats,
            os.path.join(args.img, "gates_trained.png"),
            title=f"Gates of the LSTM and GRU trained at lag {top} (seed {seed0})",
        )
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for label in ("LSTM", "GRU"):
        gate = "f" if label == "LSTM" else "z"
        if not any(r["label"] == label for r in runs):
            continue
        _band(
            ax,
            lags,
            per_lag(label, "max_timescale"),
            COLORS[label],
            f"{label}: longest -1/ln(mean {gate}) over the units",
        )
        _band(
            ax,
            lags,
            per_lag(label, "median_timescale"),
            COLORS[label],
            f"{label}: median over the units",
            ls=":",
            marker=".",
        )
    ax.plot(lags, lags, "k--", lw=1, label="timescale = lag")
    ax.set_xscale("log")
    ax.set_xticks(lags)
    ax.set_xticklabels([str(l) for l in lags])
    ax.tick_params(axis="x", which="minor", labelbottom=False)
    ax.set_xlabel("lag = sequence length T")
    ax.set_ylabel("memory timescale (steps)")
    ax.set_title("Forget (LSTM) / update (GRU) gate timescales after training")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.suptitle(f"Gated cells learn longer memories for longer lags ({nseeds} seeds)")
    fig.tight_layout()
    save(fig, os.path.join(args.img, "timescales_by_lag.png"))


# ===================================================================================== explode
def part_explode(args):
    res = {}
    plt = pyplot()
    # 1. at initialization: the gradient grows with T when γλ > 1
    Ts = [5, 10, 20, 50, 100, 200]
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for g in (0.5, 1.0, 2.0):
        norms = []
        for T in Ts:
            x, y = tasks.adding_problem(64, T, seed=7)
            m = tasks.build_model("adding", "rnn", UNITS, "tanh", seed=args.seed)
            m.layers[0].params["W"][...] *= g
            m = dg.as_float64(m)
            dg.gradient_records(m, x, y, terms=False)
            norms.append(math.sqrt(sum(float((v**2).sum()) for v in m.grads.values())))
        res[f"grad_norm_at_init_W_scale_{g:g}"] = dict(zip(map(str, Ts), norms))
        ax.loglog(Ts, norms, "o-", label=f"‖W‖₂ = {g:g} (γλ = {g:g})")
        log(f"tanh SimpleRNN, ‖W‖ = {g}: ‖∂L/∂θ‖ at T = {Ts}: {np.round(norms, 3).tolist()}")
    ax.set_xlabel("sequence length T")
    ax.set_ylabel("‖∂L/∂θ‖ (all parameters)")
    ax.set_title("tanh SimpleRNN at initialization, W = scale × orthogonal")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.suptitle("Exploding gradients when γλ > 1")
    fig.tight_layout()
    save(fig, os.path.join(args.img, "explosion_at_init.png"))

    # 2. training with ‖W‖ = 2 by plain SGD, without and with clipping by norm
    T, lr, epochs, per_epoch = 10, 0.05, 60, 50
    xv, yv = tasks.adding_problem(1000, T, seed=8)
    runs = {}
    for name, clip in (("no clipping", None), ("clip_global_norm=1", 1.0)):
        rnnkit.set_seed(args.seed)
        m = tasks.build_model(
            "adding",
            "rnn",
            UNITS,
            "tanh",
            seed=args.seed,
            optimizer=optim.SGD(lr, clip_global_norm=clip),
        )
        m.layers[0].params["W"][...] *= 2.0
        tracker = dg.SpectralNormTracker()
        x, y = tasks.adding_problem(per_epoch * 64, T, seed=9)
        with np.errstate(over="ignore", invalid="ignore"):  # the unclipped run overflows
            h = m.fit(
                x,
                y,
                batch_size=64,
                epochs=epochs,
                verbose=0,
                callbacks=[tracker],
                validation_data=(xv, yv),
            )
        tel = dg.clipping_telemetry(h)
        val = h.history.get("val_loss", [])
        runs[name] = {"history": h, "tracker": tracker}
        res[f"sgd_{name}"] = {
            "updates": len(tel["steps"]["loss"]),
            "val_loss": val,
            "first_grad_norms": tel["steps"]["grad_norm"][:10],
            "max_grad_norm": max(tel["steps"]["grad_norm"]) if tel["steps"]["grad_norm"] else None,
            "clip_fraction": tel["epochs"]["clip_fraction"],
            "clip_scale_mean": tel["epochs"]["clip_scale_mean"],
            "final_W_norm": tracker.norms[next(iter(tracker.norms))]["W"][-1],
            "stopped_non_finite": not math.isfinite(tel["steps"]["loss"][-1])
            if tel["steps"]["loss"]
            else None,
        }
        log(
            f"SGD lr {lr}, ‖W‖=2, T={T}, {name}: {len(tel['steps']['loss'])} updates, last val loss "
            f"{val[-1] if val else None}, max ‖g‖ {res[f'sgd_{name}']['max_grad_norm']:.3g}, "
            f"final ‖W‖ {res[f'sgd_{name}']['final_W_norm']:.3g}"
        )
        if clip:
            dg.plot_clipping(
                h,
                os.path.join(args.img, "clipping_telemetry.png"),
                threshold=clip,
                title=f"Clipping telemetry: tanh SimpleRNN, ‖W‖₂ = 2 at start, SGD "
                f"lr {lr}, clip_global_norm=1, adding T = {T}",
            )
    fig, (a1, a2, a3) = plt.subplots(1, 3, figsize=(16, 4.3))
    for name, r in runs.items():
        val = r["history"].history.get("val_loss", [])
        if val:
            a3.plot(
                np.arange(1, len(val) + 1) * per_epoch,
                val,
                "o-",
                ms=3,
                label=f"{name} (last {val[-1]:.3g}{', off the scale' if val[-1] > 0.25 else ''})",
            )
        st = r["history"].steps
        L = np.asarray(st["loss"], dtype=np.float64)
        a1.semilogy(
            np.arange(1, len(L) + 1),
            np.where(np.isfinite(L), L, np.nan),
            lw=0.8,
            label=f"{name} ({len(L)} updates{'; stopped: loss inf' if not np.isfinite(L[-1]) else ''})",
        )
        w = r["tracker"]
        a2.semilogy(w.steps, w.norms[next(iter(w.norms))]["W"], "o-", ms=3, label=name)
    a1.axhline(1 / 6, color="k", ls="--", lw=1, label="predict the mean: 1/6")
    a1.set_xlabel("update")
    a1.set_ylabel("training loss of the batch")
    a1.set_title("Loss per update")
    a2.set_xlabel("update")
    a2.set_ylabel("‖W‖₂")
    a2.set_title("Recurrent weights")
    a3.axhline(1 / 6, color="k", ls="--", lw=1, label="predict the mean: 1/6")
    a3.axhline(1 / 12, color="gray", ls=":", lw=1, label="only the 2nd number: 1/12")
    a3.set_ylim(0, 0.25)
    a3.set_xlabel("update")
    a3.set_ylabel("validation MSE (1000 sequences)")
    a3.set_title("Validation loss after each epoch")
    for ax in (a1, a2, a3):
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.suptitle(
        f"Explosion and its cure: tanh SimpleRNN with ‖W‖₂ = 2, SGD lr {lr}, adding problem T = {T}"
    )
    fig.tight_layout()
    save(fig, os.path.join(args.img, "clipping_cure.png"))
    write_json(res, os.path.join(args.results, "explode.json"))
    return res


# ================================================================================== truncation
def part_truncation(args):
    T = 100
    x, y = tasks.adding_problem(64, T, seed=31)
    k2s = [1, 2, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    res = {"T": T, "k2": k2s, "models": {}}
    plt = pyplot()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(14, 4.3))
    for label, cell, act in MODELS:
        path = os.path.join(args.results, "models", f"{slug(label)}_lag{T}.rnnkit")
        variants = [
            ("initialization", tasks.build_model("adding", cell, UNITS, act, seed=args.seed))
        ]
        if os.path.exists(path):
            variants.append(("trained", load_model(path)))
        for when, model in variants:
            meter = dg.truncation_bias(dg.as_float64(model), x, y, k2_values=k2s)
            res["models"][f"{label}, {when}"] = {
                "cosine": meter["cosine"],
                "relative_error": meter["relative_error"],
                "full_grad_norm": meter["full_grad_norm"],
            }
            ls = "-" if when == "trained" else "--"
            a1.plot(
                k2s, meter["cosine"], ls, marker=".", color=COLORS[label], label=f"{label}, {when}"
            )
            a2.semilogy(
                k2s,
                np.maximum(meter["relative_error"], 1e-17),
                ls,
                marker=".",
                color=COLORS[label],
                label=f"{label}, {when}",
            )
            log(
                f"{label:20s} {when:14s} cosine at k2="
                + ", ".join(
                    f"{k}: {c:.3f}"
                    for k, c in zip(k2s, meter["cosine"])
                    if k in (10, 30, 50, 70, 100)
                )
            )
    a1.axvline(T / 2, color="k", ls=":", lw=1)
    a2.axvline(T / 2, color="k", ls=":", lw=1, label="k2 = T/2: reaches every first marker")
    a1.set_xlabel("truncation window k2 (last k2 steps backpropagated)")
    a1.set_ylabel("cosine(truncated gradient, full gradient)")
    a1.set_title(f"Direction of the truncated gradient, adding T = {T}")
    a2.set_xlabel("truncation window k2")
    a2.set_ylabel("‖g_k2 - g‖ / ‖g‖")
    a2.set_title("Relative error of the truncated gradient")
    a1.grid(alpha=0.3, which="both")
    a2.grid(alpha=0.3, which="both")
    a1.legend(fontsize=7, loc="lower right")
    a2.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.suptitle(
        "Truncation bias: what truncated BPTT misses (64 sequences; dashed: "
        "initialization, solid: trained at lag 100)"
    )
    fig.tight_layout()
    save(fig, os.path.join(args.img, "truncation_bias.png"))
    write_json(res, os.path.join(args.results, "truncation.json"))
    return res


PARTS = {
    "amplify": part_amplify,
    "gradients": part_gradients,
    "lags": part_lags,
    "explode": part_explode,
    "truncation": part_truncation,
}


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("part", choices=list(PARTS) + ["all"])
    p.add_argument("--img", default=os.path.join(ROOT, "docs", "img"))
    p.add_argument("--results", default=os.path.join(HERE, "results"))
    p.add_argument("--lags", default="10,25,50,100,200")
    p.add_argument("--max-updates", type=int, default=3000)
    p.add_argument(
        "--seeds",
        default="0,1,2",
        help="seeds of the training runs of 'lags' (the other parts use the first)",
    )
    args = p.parse_args(argv)
    args.seed_list = [int(v) for v in args.seeds.split(",")]
    args.seed = args.seed_list[0]
    args.lag_list = [int(v) for v in args.lags.split(",")]
    os.makedirs(args.img, exist_ok=True)
    os.makedirs(args.results, exist_ok=True)
    timings = {}
    for name in list(PARTS) if args.part == "all" else [args.part]:
        log(f"\n=== {name}: {command(name, args)}")
        t0 = time.perf_counter()
        PARTS[name](args)
        timings[name] = round(time.perf_counter() - t0, 1)
        log(f"=== {name}: {timings[name]} s")
    path = os.path.join(args.results, "timings.json")
    old = json.load(open(path)) if os.path.exists(path) else {}
    old.update(timings)
    write_json(old, path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
