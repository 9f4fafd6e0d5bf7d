"""Training on sequences of very different lengths within a wall-clock budget: batches of
similar lengths (each cut to its own longest sequence, so little time goes to padding), a
progress bar per epoch, a check after every update, and a callback after each epoch."""

from __future__ import annotations

import math
import sys
import time

import numpy as np

from ..progress import ProgressBar


def compile_for_budget(model, learning_rate, clip_global_norm, **loss_options):
    """Compiles ``model`` for :func:`train_for`: sparse cross-entropy on logits (with
    ``loss_options``), Adam with global norm clipping and a cosine decay of the learning rate
    whose length ``train_for`` sets.  Returns the schedule, to hand to ``train_for``."""
    from .. import optim

    schedule = optim.CosineDecay(learning_rate, 10**6, alpha=0.05)
    model.compile(
        loss="sparse_categorical_crossentropy",
        from_logits=True,
        optimizer=optim.Adam(schedule, clip_global_norm=clip_global_norm),
        **loss_options,
    )
    return schedule


def keep_best(model, score, *, key, digits, describe, higher, worst, quiet, average=0):
    """An ``after_epoch`` for :func:`train_for` that scores the model on validation data
    (``score()``), appends the epoch to a history (its ``key`` rounded to ``digits``), reports
    ``validation {describe(score)}`` on standard error unless ``quiet`` and keeps the weights
    of the best epoch so far (``higher`` or lower is better, starting from ``worst``).

    With ``average`` = k, the weights of the last k epochs are kept too, and
    :func:`average_last_epochs` tries their mean when the training is over.

    Returns ``(after_epoch, history, best)``; ``best`` holds ``score`` and ``weights``."""
    start = time.perf_counter()
    best: dict = {"score": worst, "weights": None, "recent": [], "average": average}
    history: list[dict] = []

    def after_epoch(epoch, loss):
        v = score()
        history.append(
            {
                "epoch": epoch,
                "loss": round(loss, 4),
                key: round(v, digits),
                "seconds": round(time.perf_counter() - start, 1),
            }
        )
        better = v > best["score"] if higher else v < best["score"]
        if not quiet:
            print(
                f"epoch {epoch}: validation {describe(v)}{' (best so far)' if better else ''}",
                file=sys.stderr,
            )
        weights = model.get_weights() if better or average else None
        if better:
            best.update(score=v, weights=weights)
        if average:
            best["recent"] = (best["recent"] + [weights])[-average:]

    return after_epoch, history, best


def average_last_epochs(model, score, best, *, higher, describe, quiet):
    """Checkpoint averaging: the mean of the weights of the last epochs kept by
    :func:`keep_best` (``average`` of them, when there were that many) replaces ``best``'s
    weights if it scores better on the validation data.  Leaves the model with the mean's
    weights; returns its score, or None when there was nothing to average."""
    recent = best["recent"]
    if best["average"] < 2 or len(recent) < best["average"]:
        return None
    mean = [np.mean([w[k] for w in recent], axis=0) for k in range(len(recent[0]))]
    model.set_weights(mean)
    v = score()
    better = v > best["score"] if higher else v < best["score"]
    if not quiet:
        print(
            f"the mean of the last {len(recent)} epochs' weights: validation {describe(v)}"
            f"{' (kept)' if better else ''}",
            file=sys.stderr,
        )
    if better:
        best.update(score=v, weights=mean)
    return v


def bucket_batches(lengths, batch_size, rng):
    """Index arrays of batches whose sequences have similar lengths, in random order:
    sorted by length (ties in random order), cut into batches, the batches shuffled."""
    lengths = np.asarray(lengths)
    order = np.lexsort((rng.random(len(lengths)), lengths))
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def train_for(
    model, lengths, make_batch, batch_size, seconds, rng, quiet, after_epoch, schedule=None
):
    """Update ``model`` on ``make_batch(indices) -> (x, y)`` batches for ``seconds``;
    ``after_epoch(epoch, mean_loss)`` runs after each epoch (and after the last, cut-short
    one).  A schedule's ``decay_steps`` is set after the first epoch to the number of
    updates the budget allows at the speed measured.  Returns the number of epochs."""
    start = time.perf_counter()
    epoch = 0
    while time.perf_counter() - start < seconds:
        batches = bucket_batches(lengths, batch_size, rng)
        bar = None if quiet else ProgressBar(len(batches), unit="batches", stream=sys.stderr)
        total, count, done = 0.0, 0, 0
        for idx in batches:
            record = model.train_on_batch(*make_batch(idx))
            loss = float(record["loss"])
            if not math.isfinite(loss):
                raise FloatingPointError(
                    f"the training loss became {loss} in epoch {epoch + 1}; "
                    f"try a smaller --learning-rate"
                )
            total += loss * len(idx)
            count += len(idx)
            done += 1
            if bar:
                bar.update(done, {"loss": total / count})
            if time.perf_counter() - start >= seconds:
                break
        epoch += 1
        if epoch == 1 and schedule is not None:
            per_step = (time.perf_counter() - start) / max(1, done)
            schedule.decay_steps = max(1, int(seconds / per_step))
        if bar:
            bar.finish(done, {"epoch": epoch, "loss": total / count})
        after_epoch(epoch, total / count)
    return epoch


def plot_curve(path, history, key, label, baselines, title, lower_is_better):
    """A PNG of the validation ``key`` by epoch with the baselines as horizontal lines;
    returns the path, or None without matplotlib."""
    try:
        from ..plotting import pyplot, save

        plt = pyplot()
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.8))
    ax.plot(
        [h["seconds"] / 60 for h in history],
        [h[key] for h in history],
        marker="o",
        label="rnnkit (validation, each epoch)",
    )
    for (name, value), style in zip(baselines.items(), ["--", ":", "-."] * 3):
        ax.axhline(value, linestyle=style, color="gray", label=name)
    ax.set_xlabel("training time (minutes, wall clock)")
    ax.set_ylabel(label + (" (lower is better)" if lower_is_better else " (higher is better)"))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, path)
