"""Training: compile, fit (with truncated BPTT), evaluate, predict.

One training step is the lecture's recipe written out:

    ŷ = model.forward(x)                      unroll the network over all steps
    L, ∂L/∂ŷ = loss(y, ŷ)                     L = Σ_t L_t, averaged over the batch
    model.backward(∂L/∂ŷ)                     backpropagation through time
    optimizer.apply(params, grads)            clip (by value / norm), then update

Truncated BPTT, ``fit(..., tbptt=(k1, k2))`` (Williams & Peng): every k1 steps the
model is updated from a backward pass through the last k2 ≥ k1 steps, whose first
k2 - k1 steps are run again from the state carried over; the loss counts the k1 new
steps only.  With k1 = k2 = k this is min-char-rnn's and char-rnn's chunked
training; with k2 ≥ T it is exact BPTT of each chunk's loss through the whole past.
"""

from __future__ import annotations

import math

import numpy as np

from . import backend, losses, optim
from . import callbacks as cb
from . import metrics as metrics_mod
from .progress import ProgressBar
from .validation import describe


class CompileConfig:
    def __init__(self, loss, optimizer, metrics):
        self.loss = loss
        self.optimizer = optimizer
        self.metrics = metrics


def compile_model(model, loss, optimizer="adam", metrics=None, time_reduction=None, **loss_kwargs):
    if time_reduction is not None:
        loss_kwargs["time_reduction"] = time_reduction
    model.loss = losses.get(loss, **loss_kwargs)
    model.optimizer = optim.get(optimizer)
    model.metrics = [metrics_mod.get(m, model.loss) for m in (metrics or [])]
    model.compiled = True


# -- data ---------------------------------------------------------------------------------------
def _is_multi(x):
    return isinstance(x, (list, tuple))


def num_samples(x, name="x"):
    if _is_multi(x):
        if not x:
            raise ValueError(f"{name} is an empty list")
        sizes = {num_samples(a, name) for a in x}
        if len(sizes) != 1:
            raise ValueError(
                f"the arrays in {name} have different numbers of samples: {sorted(sizes)}"
            )
        return sizes.pop()
    if x is None or not hasattr(x, "shape") or len(x.shape) == 0:
        raise TypeError(f"{name} must be an array (or a list of arrays); got {describe(x)}")
    return int(x.shape[0])


def take(x, idx):
    if x is None:
        return None
    if _is_multi(x):
        return type(x)(take(a, idx) for a in x)
    return x[idx]


def _as_arrays(x):
    if x is None:
        return None
    if _is_multi(x):
        return type(x)(_as_arrays(a) for a in x)
    return x if hasattr(x, "shape") else np.asarray(x)


def _state_snapshot(model):
    return [
        (l, None if l.states is None else [s.copy() for s in l.states])
        for l in model.walk()
        if getattr(l, "stateful", False) and hasattr(l, "states")
    ]


def _restore(snapshot):
    for layer, states in snapshot:
        layer.states = states


def _positive_int(value, name, who):
    """A positive integer (not bool, not float) or a ValueError naming the argument."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{who}: {name} must be a positive integer; got {value!r}")
    return int(value)


def _check_epochs(epochs, initial_epoch):
    for name, v in (("epochs", epochs), ("initial_epoch", initial_epoch)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"fit: {name} must be an integer ≥ 0; got {v!r}")
    return int(epochs), int(initial_epoch)


def _check_sample_weight(sample_weight, n, who):
    """sample_weight as a finite, non-negative float array of n rows, or None."""
    if sample_weight is None:
        return None
    try:
        sw = np.asarray(sample_weight, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"{who}: sample_weight must be a numeric array; got {describe(sample_weight)}"
        ) from None
    if sw.ndim not in (1, 2) or sw.shape[0] != n:
        raise ValueError(
            f"{who}: sample_weight must have shape ({n},) or ({n}, time) for "
            f"{n} samples; got shape {tuple(sw.shape)}"
        )
    bad = ~np.isfinite(sw) | (sw < 0)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{who}: sample_weight must be finite and ≥ 0; it holds "
            f"{sw[where]!r} at index {where} (sample {where[0]})"
        )
    return sw


def _probe(model, x):
    """The model's output on the first two samples, with training=False and without
    touching a stateful layer's carried state (the probe runs from zero states)."""
    snapshot = _state_snapshot(model)
    try:
        for layer, _ in snapshot:
            layer.states = None
        return model.forward(take(x, slice(0, min(num_samples(x, "x"), 2))), training=False)
    finally:
        _restore(snapshot)


def _check_stateful_batches(model, n, batch_size, who):
    """A stateful layer carries one state per row of the batch: every batch must have the
    same size, and that of any state already carried."""
    for layer, states in _state_snapshot(model):
        if n % batch_size:
            raise ValueError(
                f"{who}: layer {layer.name!r} is stateful, so every batch must have "
                f"the same size; {n} samples do not divide into batches of "
                f"{batch_size}"
            )
        if states is not None and states[0].shape[0] != batch_size:
            raise ValueError(
                f"{who}: stateful layer {layer.name!r} carries state for a batch "
                f"of {states[0].shape[0]}; got batch_size={batch_size}. Use that "
                f"batch size, or call reset_states() first"
            )


_HOOKS = (
    "set_model",
    "on_train_begin",
    "on_train_end",
    "on_epoch_begin",
    "on_epoch_end",
    "on_batch_end",
)


def _check_callbacks(callbacks):
    """A list of callbacks (rnnkit.callbacks.Callback, or objects with all its hooks)."""
    if callbacks is None:
        return []
    if isinstance(callbacks, cb.Callback) or not isinstance(callbacks, (list, tuple)):
        raise TypeError(f"fit: callbacks must be a list of callbacks; got {describe(callbacks)}")
    for c in callbacks:
        missing = [h for h in _HOOKS if not callable(getattr(c, h, None))]
        if missing:
            raise TypeError(
                f"fit: callbacks must be rnnkit.callbacks.Callback objects; "
                f"{describe(c)} has no {', '.join(missing)}"
            )
    return list(callbacks)


def _check_fit_inputs(model, x, y, sample_weight, tbptt):
    """Everything that can be checked before the first update, with clear errors."""
    n = num_samples(x, "x")
    ny = num_samples(y, "y")
    if n != ny:
        raise ValueError(f"fit: x has {n} samples but y has {ny}; they must match")
    if n == 0:
        raise ValueError("fit: x has no samples")
    _check_sample_weight(sample_weight, n, "fit")
    _check_values(model, x, y)
    out = _probe(model, x)
    if _is_multi(out):
        raise ValueError("fit: the model returns several outputs; fit needs one")
    # the loss checks targets against the output's shape (all samples, without copying)
    full_shape = (n,) + tuple(out.shape[1:])
    model.loss.check_targets(y, np.broadcast_to(np.zeros((), out.dtype), full_shape))
    check_outputs = getattr(model.loss, "check_outputs", None)
    if check_outputs is not None:
        check_outputs(out, model)
    if tbptt is not None:
        k1, k2 = tbptt
        if out.ndim < 3:
            raise ValueError(
                "fit: tbptt needs a sequence-to-sequence model (the last recurrent "
                "layer with return_sequences=True); this model's output has shape "
                f"{tuple(out.shape)}"
            )
        for layer in model.walk():
            if type(layer).__name__ == "Bidirectional" or getattr(layer, "go_backwards", False):
                raise ValueError(
                    f"fit: tbptt carries state forward in time; layer "
                    f"{layer.name!r} runs backwards, which truncation cannot chunk"
                )
    return n


def _check_values(model, x, y, who="fit", what=""):
    """The whole data set, before any update: non-finite inputs or targets, and token ids
    outside a first Embedding's vocabulary, named with their index in the data set."""
    from .layers.core import Embedding

    xs = list(x) if _is_multi(x) else [x]
    for name, a in [("x" if len(xs) == 1 else f"x[{i}]", v) for i, v in enumerate(xs)] + [("y", y)]:
        a = np.asarray(a)
        if a.dtype.kind in "fc" and not np.isfinite(a).all():
            where = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
            raise ValueError(
                f"{who}: {what}{name} holds non-finite values (NaN or inf), first at index "
                f"{where} (sample {where[0]})"
            )
    layers = getattr(model, "layers", None)
    first = layers[0] if layers else None
    if isinstance(first, Embedding) and not _is_multi(x):
        ids = np.asarray(x)
        if ids.size and ids.dtype.kind in "iuf":
            bad = (ids < 0) | (ids >= first.input_dim)
            if bad.any():
                where = tuple(int(i) for i in np.argwhere(bad)[0])
                raise ValueError(
                    f"{who}: {what}x holds token id {ids[where].item()!r} at index {where} (sample "
                    f"{where[0]}); layer {first.name!r} takes ids 0 .. "
                    f"{first.input_dim - 1} (input_dim={first.input_dim})"
                )


def _normalize_tbptt(tbptt):
    if tbptt is None:
        return None
    if isinstance(tbptt, (int, np.integer)) and not isinstance(tbptt, bool):
        k1 = k2 = int(tbptt)
    elif (
        isinstance(tbptt, (tuple, list))
        and len(tbptt) == 2
        and all(isinstance(k, (int, np.integer)) and not isinstance(k, bool) for k in tbptt)
    ):
        k1, k2 = int(tbptt[0]), int(tbptt[1])
    else:
        raise ValueError(f"fit: tbptt must be k or (k1, k2) with k2 ≥ k1 ≥ 1; got {tbptt!r}")
    if not 1 <= k1 <= k2:
        raise ValueError(f"fit: tbptt=(k1, k2) needs k2 ≥ k1 ≥ 1; got {tbptt!r}")
    return k1, k2


# -- one step -------------------------------------------------------------------------------------
class _Accumulator:
    """Epoch means of the loss (weighted by batch size) and of each metric (by steps)."""

    def __init__(self, model_metrics):
        self.metrics = model_metrics
        self.loss_sum = 0.0
        self.count = 0
        self.sums = {m.name: [0.0, 0.0] for m in model_metrics}

    def add(self, loss_value, n, y, out, weights):
        self.add_loss(loss_value, n)
        self.add_metrics(y, out, weights)

    def add_loss(self, loss_value, n):
        self.loss_sum += loss_value * n
        self.count += n

    def add_metrics(self, y, out, weights):
        for m in self.metrics:
            s, c = m.batch(y, out, weights)
            self.sums[m.name][0] += s
            self.sums[m.name][1] += c

    def result(self, prefix="", pending=None):
        """The epoch's means; ``pending`` (loss, n): a batch not added yet, shown as if it were."""
        loss_sum, count = self.loss_sum, self.count
        if pending is not None:
            loss_sum, count = loss_sum + pending[0] * pending[1], count + pending[1]
        # no batch counted (training stopped before its first update): NaN, not 0.0
        logs = {prefix + "loss": loss_sum / count if count else float("nan")}
        for m in self.metrics:
            s, c = self.sums[m.name]
            mean = s / c if c else float("nan")
            logs[prefix + m.name] = m.finalize(mean) if hasattr(m, "finalize") else mean
        return logs


def _batch_loss(loss, chunks):
    """A batch's loss from the losses of its truncated-BPTT chunks [(loss, steps), ...]:
    with L = Σ_t L_t the sum of the chunks' losses (the whole sequences' loss, comparable
    with val_loss); with time_reduction="mean" their mean weighted by steps (exact when no
    step is masked).  Without tbptt: the one update's loss."""
    if len(chunks) == 1:
        return chunks[0][0]
    if getattr(loss, "time_reduction", "sum") == "mean":
        return sum(v * k for v, k in chunks) / sum(k for _, k in chunks)
    return sum(v for v, _ in chunks)


def _loss_and_grad(model, y, out, sample_weight):
    mask = model.output_mask if out.ndim >= 3 else None
    value, dy = model.loss(y, out, mask=mask, sample_weight=sample_weight)
    weights = None
    if out.ndim >= 3 or sample_weight is not None:
        per_step_shape = out.shape[:-1]
        weights = model.loss.step_weights(
            per_step_shape, mask, sample_weight, model.loss.check_targets(y, out)
        )
    return value, dy, weights


def train_step(model, x, y, sample_weight=None):
    """Forward, loss, BPTT, clipping and update on one batch; returns the step record."""
    out = model.forward(x, training=True)
    value, dy, weights = _loss_and_grad(model, y, out, sample_weight)
    record = _backward_update(model, value, dy)
    return record, out, weights


def _backward_update(model, value, dy, apply=True):
    """BPTT, then the optimizer's clip + update.  Data-parallel training (rnnkit.distributed)
    sums the gradients and the loss over the ranks in between; the record's loss is global."""
    dp = getattr(model, "_data_parallel", None)
    if dp is not None:
        return dp.backward_and_apply(model, value, dy, int(dy.shape[0]), apply)
    record = {"loss": value}
    if math.isfinite(value):
        model.backward(dy)
        if apply:
            record.update(model.optimizer.apply(model.trainable_params(), model.trainable_grads()))
    return record


def tbptt_steps(model, x, y, k1, k2, sample_weight=None, apply=True):
    """Truncated BPTT over one batch of sequences, as a generator: yields the record,
    outputs, targets and weights of each update.  With ``apply=False`` it only computes
    gradients (``model.grads`` after each yield), which tests compare with full BPTT."""
    layers = [l for l in model.walk() if hasattr(l, "state_at")]
    if not layers:
        raise ValueError("fit: tbptt needs at least one recurrent layer")
    saved = [(l, l.stateful) for l in layers]
    T = int((x[0] if _is_multi(x) else x).shape[1])
    carry = {0: [l.states if l.stateful else None for l in layers]}
    try:
        for l in layers:
            l.stateful = True
        for start in range(0, T, k1):
            end = min(start + k1, T)
            w0 = max(0, end - k2)  # the window [w0, end) is backpropagated
            for l, s in zip(layers, carry.pop(w0)):
                l.states = s
            xw = x[:, w0:end] if not _is_multi(x) else type(x)(a[:, w0:end] for a in x)
            out = model.forward(xw, training=True)
            nxt = max(0, min(end + k1, T) - k2)  # where the next window starts
            if end < T:
                carry[nxt] = [l.state_at(nxt - w0) for l in layers]
            new = slice(start - w0, end - w0)  # only the k1 new steps count
            yw = y[:, start:end]
            sw = (
                sample_weight
                if sample_weight is None or np.ndim(sample_weight) == 1
                else sample_weight[:, start:end]
            )
            out_new = out[:, new]
            mask = model.output_mask
            value, d_new = model.loss(
                yw, out_new, mask=None if mask is None else mask[:, new], sample_weight=sw
            )
            weights = model.loss.step_weights(
                out_new.shape[:-1],
                None if mask is None else mask[:, new],
                sw,
                model.loss.check_targets(yw, out_new),
            )
            dy = backend.xp().zeros_like(out)
            if math.isfinite(value):
                dy[:, new] = d_new
            record = _backward_update(model, value, dy, apply)
            yield record, out_new, yw, weights
            if not math.isfinite(record["loss"]):
                return
    finally:
        for l, was in saved:
            l.stateful = was
            if not was:
                l.states = None


# -- fit ------------------------------------------------------------------------------------------
def fit(
    model,
    x,
    y,
    batch_size=32,
    epochs=1,
    verbose=1,
    callbacks=None,
    validation_split=0.0,
    validation_data=None,
    shuffle=True,
    initial_epoch=0,
    tbptt=None,
    sample_weight=None,
):
    if not getattr(model, "compiled", False):
        raise RuntimeError(f"{model.who}: call compile(loss=..., optimizer=...) before fit")
    x, y = _as_arrays(x), _as_arrays(y)
    tbptt = _normalize_tbptt(tbptt)
    batch_size = _positive_int(batch_size, "batch_size", "fit")
    epochs, initial_epoch = _check_epochs(epochs, initial_epoch)
    if (
        isinstance(validation_split, bool)
        or not isinstance(validation_split, (int, float))
        or not 0.0 <= validation_split < 1.0
    ):
        raise ValueError(
            f"fit: validation_split must be a number in [0, 1); got {validation_split!r}"
        )
    n = _check_fit_inputs(model, x, y, sample_weight, tbptt)
    sample_weight = _check_sample_weight(sample_weight, n, "fit")
    if validation_data is None and validation_split:
        n_val = int(round(n * validation_split))
        if n_val < 1 or n_val >= n:
            raise ValueError(
                f"fit: validation_split={validation_split} leaves "
                f"{n - n_val} training and {n_val} validation samples"
            )
        n -= n_val
        validation_data = (take(x, slice(n, None)), take(y, slice(n, None)))
        if sample_weight is not None:
            validation_data += (sample_weight[n:],)
        x, y = take(x, slice(0, n)), take(y, slice(0, n))
        sample_weight = None if sample_weight is None else sample_weight[:n]
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise ValueError(
                "fit: validation_data must be (x_val, y_val) or (x_val, y_val, sample_weight)"
            )
        vx, vy = _as_arrays(validation_data[0]), _as_arrays(validation_data[1])
        n_val = num_samples(vx, "validation x")
        if n_val != num_samples(vy, "validation y"):
            raise ValueError("fit: validation_data's x and y have different numbers of samples")
        if n_val == 0:
            raise ValueError("fit: validation_data has no samples")
        _check_values(model, vx, vy, what="validation_data's ")
        vsw = _check_sample_weight(
            validation_data[2] if len(validation_data) == 3 else None, n_val, "fit: validation_data"
        )
        validation_data = (vx, vy) if vsw is None else (vx, vy, vsw)
    _check_stateful_batches(model, n, batch_size, "fit")

    history = cb.History()
    user = _check_callbacks(callbacks)
    if not any(isinstance(c, cb.TerminateOnNaN) for c in user):
        user.insert(0, cb.TerminateOnNaN())
    all_cbs = user + [history]
    for c in user:
        monitor = getattr(c, "monitor", None)
        needs = isinstance(c, cb.EarlyStopping) or getattr(c, "save_best_only", False)
        if (
            needs
            and isinstance(monitor, str)
            and monitor.startswith("val_")
            and validation_data is None
        ):
            raise ValueError(
                f"fit: {type(c).__name__} monitors {monitor!r}, which needs "
                "validation_data or validation_split; pass one, or monitor "
                f"{monitor[4:]!r}"
            )
    for c in all_cbs:
        c.set_model(model)
    model.stop_training = False
    model.history = history
    for c in all_cbs:
        c.on_train_begin()

    steps = math.ceil(n / batch_size)
    step_counter = 0
    for epoch in range(initial_epoch, epochs):
        model._current_epoch = epoch
        for c in all_cbs:
            c.on_epoch_begin(epoch)
        if verbose == 1:
            print(f"Epoch {epoch + 1}/{epochs}")
        order = model.rng.permutation(n) if shuffle else np.arange(n)
        acc = _Accumulator(model.metrics)
        clip = _ClipStats()
        n_updates = (
            steps
            if tbptt is None
            else steps * math.ceil(int((x[0] if _is_multi(x) else x).shape[1]) / tbptt[0])
        )
        bar = ProgressBar(n_updates) if verbose == 1 else None
        done = 0
        for b in range(steps):
            idx = order[b * batch_size : (b + 1) * batch_size]
            if not shuffle:
                idx = slice(b * batch_size, min((b + 1) * batch_size, n))
            if getattr(model, "_data_parallel", None) is not None:
                idx = model._data_parallel.shard(idx)  # this rank's rows of the batch
            xb, yb = take(x, idx), take(y, idx)
            swb = None if sample_weight is None else sample_weight[idx]
            nb = num_samples(yb, "y")
            if tbptt is None:
                record, out, weights = train_step(model, xb, yb, swb)
                records = [(record, out, yb, weights)]
            else:
                records = tbptt_steps(model, xb, yb, tbptt[0], tbptt[1], swb)
            chunks = []  # (loss, steps) of each update on this batch
            for record, out, yt, weights in records:
                for c in all_cbs:
                    c.on_batch_end(step_counter, record)
                step_counter += 1
                done += 1
                if model.stop_training:
                    # this batch's loss counts (a non-finite one makes the epoch's mean
                    # non-finite, as it is, instead of the mean of the batches before it)
                    chunks.append((record["loss"], yt.shape[1] if tbptt is not None else 1))
                    break
                chunks.append((record["loss"], yt.shape[1] if tbptt is not None else 1))
                acc.add_metrics(yt, out, weights)
                clip.add(record)
                if bar:
                    bar.update(done, acc.result(pending=(_batch_loss(model.loss, chunks), nb)))
            if chunks:
                acc.add_loss(_batch_loss(model.loss, chunks), nb)
            if model.stop_training:
                break
        if getattr(model, "_data_parallel", None) is not None:
            model._data_parallel.reduce_accumulator(acc)  # the epoch's sums over all ranks
        logs = acc.result()
        logs.update(clip.result())
        if validation_data is not None and not model.stop_training:
            logs.update(
                evaluate(
                    model,
                    *validation_data,
                    batch_size=batch_size,
                    verbose=0,
                    return_dict=True,
                    prefix="val_",
                )
            )
        shown = {
            k: v for k, v in logs.items() if not k.startswith("grad_") and not k.startswith("clip")
        }
        if bar:
            bar.finish(done, shown)
        elif verbose == 2:
            print(
                f"Epoch {epoch + 1}/{epochs} - "
                + " - ".join(f"{k}: {v:.4f}" for k, v in shown.items())
            )
        for c in all_cbs:
            c.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    for c in all_cbs:
        c.on_train_end()
    model._current_epoch = None
    return history


class _ClipStats:
    """Per-epoch gradient-norm and clipping telemetry."""

    def __init__(self):
        self.norms, self.fired, self.scales = [], 0, []

    def add(self, record):
        if "grad_norm" not in record:
            return
        self.norms.append(record["grad_norm"])
        if record["clipped"]:
            self.fired += 1
            if record["grad_norm"] > 0:
                self.scales.append(record["grad_norm_after"] / record["grad_norm"])

    def result(self):
        if not self.norms:
            return {}
        return {
            "grad_norm_mean": float(np.mean(self.norms)),
            "grad_norm_max": float(np.max(self.norms)),
            "clip_fraction": self.fired / len(self.norms),
            "clip_scale_mean": float(np.mean(self.scales)) if self.scales else 1.0,
        }


# -- evaluate / predict -----------------------------------------------------------------------------
def evaluate(
    model, x, y, sample_weight=None, batch_size=32, verbose=0, return_dict=False, prefix=""
):
    if not getattr(model, "compiled", False):
        raise RuntimeError(f"{model.who}: call compile(...) before evaluate")
    x, y = _as_arrays(x), _as_arrays(y)
    who = prefix.rstrip("_") or "evaluate"
    who = "fit: validation" if who == "val" else who
    batch_size = _positive_int(batch_size, "batch_size", who)
    n = num_samples(x, "x")
    if num_samples(y, "y") != n:
        raise ValueError(f"{who}: x has {n} samples but y has {num_samples(y, 'y')}")
    if n == 0:
        raise ValueError(
            f"{who}: x has no samples; there is nothing to evaluate (a loss "
            f"of 0 samples would be a number for work not done)"
        )
    sample_weight = _check_sample_weight(sample_weight, n, who)
    acc = _Accumulator(model.metrics)
    for b in range(0, n, batch_size):
        idx = slice(b, min(b + batch_size, n))
        xb, yb = take(x, idx), take(y, idx)
        swb = None if sample_weight is None else sample_weight[idx]
        out = model.forward(xb, training=False)
        value, _, weights = _loss_and_grad(model, yb, out, swb)
        acc.add(value, num_samples(yb, "y"), yb, out, weights)
    logs = acc.result(prefix)
    if verbose:
        print(" - ".join(f"{k}: {v:.4f}" for k, v in logs.items()))
    if return_dict:
        return logs
    values = list(logs.values())
    return values[0] if len(values) == 1 else values


def predict(model, x, batch_size=32, verbose=0):
    x = _as_arrays(x)
    batch_size = _positive_int(batch_size, "batch_size", "predict")
    n = num_samples(x, "x")
    if n == 0:
        # as Keras (its data adapter refuses empty input): a clear error, not an empty array
        raise ValueError(
            "predict: x has no samples (shape "
            f"{tuple((x[0] if _is_multi(x) else x).shape)}); give at least one"
        )
    outs = []
    bar = ProgressBar(math.ceil(n / batch_size), unit="batches") if verbose else None
    for i, b in enumerate(range(0, n, batch_size)):
        outs.append(
            backend.to_numpy(model.forward(take(x, slice(b, b + batch_size)), training=False))
        )
        if bar:
            bar.update(i + 1, {})
    if bar:
        bar.finish(len(outs), {})
    return np.concatenate(outs, axis=0)


__all__ = ["compile_model", "fit", "evaluate", "predict", "train_step", "tbptt_steps"]
