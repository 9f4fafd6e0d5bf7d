"""Callbacks: hooks into ``fit`` (Keras's names and arguments).

History          per-epoch losses and metrics (always on; returned by fit) and per-step
                 records: loss, gradient norm before clipping, whether clipping fired, lr
TerminateOnNaN   on by default: stops at the first non-finite loss, before it reaches the weights
EarlyStopping    stops when a monitored value stops improving
ModelCheckpoint  saves the model (with optimizer state) after epochs
CSVLogger        one CSV row per epoch
ReduceLROnPlateau  lowers a constant learning rate when a value stops improving
"""

from __future__ import annotations

import csv
import math
import os


class Callback:
    model = None

    def set_model(self, model):
        self.model = model

    def on_train_begin(self, logs=None): ...
    def on_train_end(self, logs=None): ...
    def on_epoch_begin(self, epoch, logs=None): ...
    def on_epoch_end(self, epoch, logs=None): ...
    def on_batch_begin(self, step, logs=None): ...
    def on_batch_end(self, step, logs=None): ...


class History(Callback):
    """``history[name]`` is the list of per-epoch values (loss, metrics, val_*, and
    clipping telemetry); ``steps[name]`` the per-step records of training."""

    def __init__(self):
        self.history: dict[str, list] = {}
        self.steps: dict[str, list] = {}
        self.epoch: list[int] = []
        self.stop_reason = None  # why training stopped early (TerminateOnNaN's message)

    def on_train_begin(self, logs=None):
        pass

    def on_batch_end(self, step, logs=None):
        for k, v in (logs or {}).items():
            self.steps.setdefault(k, []).append(v)

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)

    def __getitem__(self, key):
        return self.history[key]

    def __repr__(self):
        return f"History(epochs={len(self.epoch)}, keys={sorted(self.history)})"

    def plot(self, path, keys=None, title=None):
        """Training curves (loss and metrics per epoch, with validation) to a PNG."""
        from .plotting import plot_history

        return plot_history(self, path, keys=keys, title=title)


class TerminateOnNaN(Callback):
    """Stops training at the first loss, or gradient norm, that is NaN or infinite.
    ``fit`` checks each batch's loss before the update, and the optimizer skips an update
    whose gradients are not finite, so the weights never take a non-finite step."""

    def __init__(self):
        self.message = None

    def on_batch_end(self, step, logs=None):
        logs = logs or {}
        loss, norm = logs.get("loss"), logs.get("grad_norm")
        if loss is not None and not math.isfinite(loss):
            what = f"the training loss became {loss}"
        elif norm is not None and not math.isfinite(norm):
            what = f"the gradient norm became {norm} (the loss was {loss})"
        else:
            return
        epoch = getattr(self.model, "_current_epoch", None)
        self.message = (
            f"TerminateOnNaN: {what} at epoch "
            f"{'?' if epoch is None else epoch + 1}, step {step + 1}; training "
            f"stopped before this step's update. Try a lower learning rate or "
            f"gradient clipping (clip_global_norm=...)."
        )
        print(self.message)
        history = getattr(self.model, "history", None)
        if isinstance(history, History):
            history.stop_reason = self.message
        self.model.stop_training = True


def _finite(value):
    """A monitored value that can be compared: a finite real number.  NaN or inf (an epoch
    stopped by TerminateOnNaN) is never the best, never an improvement."""
    try:
        return math.isfinite(value)
    except TypeError:
        raise TypeError(f"a monitored value must be a number; got {value!r}") from None


def _better(mode, monitor):
    if mode == "auto":
        mode = "max" if any(s in monitor for s in ("acc", "accuracy")) else "min"
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max'; got {mode!r}")
    return (lambda a, b, d: a < b - d) if mode == "min" else (lambda a, b, d: a > b + d)


class EarlyStopping(Callback):
    def __init__(
        self,
        monitor="val_loss",
        min_delta=0.0,
        patience=0,
        mode="auto",
        restore_best_weights=False,
        baseline=None,
        verbose=0,
    ):
        self.monitor, self.min_delta, self.patience = monitor, abs(min_delta), int(patience)
        self.improved = _better(mode, monitor)
        self.restore_best_weights = restore_best_weights
        self.baseline = baseline
        self.verbose = verbose
        self.stopped_epoch = None

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.best = self.baseline
        self.best_weights = None
        self.best_epoch = None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            raise KeyError(
                f"EarlyStopping: monitor {self.monitor!r} is not among the logged "
                f"values {sorted(logs or {})}"
            )
        if _finite(value) and (
            self.best is None or self.improved(value, self.best, self.min_delta)
        ):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_weights = {k: v.copy() for k, v in self.model.params.items()}
            return
        self.wait += 1
        if self.wait > self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            if self.verbose:
                print(
                    f"EarlyStopping: {self.monitor} has not improved for {self.wait} epochs; "
                    f"stopping at epoch {epoch + 1}"
                )

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_weights is not None:
            for k, v in self.model.params.items():
                v[...] = self.best_weights[k]


class ModelCheckpoint(Callback):
    """Saves the model (``filepath`` may contain ``{epoch}`` and logged names, e.g.
    ``"ckpt-{epoch:02d}-{val_loss:.3f}.rnnkit"``) after every epoch, or only when
    ``monitor`` improves with ``save_best_only``.  Saves include the optimizer state."""

    def __init__(
        self,
        filepath,
        monitor="val_loss",
        save_best_only=False,
        mode="auto",
        save_weights_only=False,
        verbose=0,
    ):
        self.filepath = os.fspath(filepath)
        self.monitor = monitor
        self.save_best_only = save_best_only
        self.improved = _better(mode, monitor)
        self.save_weights_only = save_weights_only
        self.verbose = verbose
        self.best = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.save_best_only:
            value = logs.get(self.monitor)
            if value is None:
                raise KeyError(
                    f"ModelCheckpoint: monitor {self.monitor!r} is not among the "
                    f"logged values {sorted(logs)}"
                )
            if not _finite(value):
                if self.verbose:
                    print(
                        f"ModelCheckpoint: {self.monitor} is {value} at epoch {epoch + 1}; "
                        f"not saved"
                    )
                return
            if self.best is not None and not self.improved(value, self.best, 0.0):
                return
            self.best = value
        try:
            path = self.filepath.format(epoch=epoch + 1, **logs)
        except (KeyError, IndexError, ValueError) as e:
            raise ValueError(
                f"ModelCheckpoint: filepath {self.filepath!r} cannot be filled in "
                f"({type(e).__name__}: {e}); it may name {{epoch}} and the logged "
                f"values {sorted(logs)}"
            ) from None
        self.model.save(path, include_optimizer=not self.save_weights_only)
        if self.verbose:
            print(f"ModelCheckpoint: saved {path}")


class CSVLogger(Callback):
    def __init__(self, filename, separator=",", append=False):
        self.filename, self.separator, self.append = os.fspath(filename), separator, append
        self.keys = None

    def on_train_begin(self, logs=None):
        self.keys = None
        self._fresh = not (self.append and os.path.exists(self.filename))

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
        mode = "w" if self._fresh else "a"
        with open(self.filename, mode, newline="") as f:
            w = csv.writer(f, delimiter=self.separator)
            if self._fresh:
                w.writerow(["epoch"] + self.keys)
            w.writerow([epoch] + [logs.get(k, "") for k in self.keys])
        self._fresh = False


class ReduceLROnPlateau(Callback):
    def __init__(
        self,
        monitor="val_loss",
        factor=0.1,
        patience=10,
        mode="auto",
        min_delta=1e-4,
        min_lr=0.0,
        verbose=0,
    ):
        if not 0 < factor < 1:
            raise ValueError(f"ReduceLROnPlateau: factor must be in (0, 1); got {factor!r}")
        self.monitor, self.factor, self.patience = monitor, factor, patience
        self.improved = _better(mode, monitor)
        self.min_delta, self.min_lr, self.verbose = min_delta, min_lr, verbose

    def on_train_begin(self, logs=None):
        self.best, self.wait = None, 0

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not _finite(value):
            return
        if self.best is None or self.improved(value, self.best, self.min_delta):
            self.best, self.wait = value, 0
            return
        self.wait += 1
        opt = self.model.optimizer
        if self.wait >= self.patience and isinstance(opt.learning_rate, float):
            new = max(opt.learning_rate * self.factor, self.min_lr)
            if new < opt.learning_rate:
                opt.learning_rate = new
                if self.verbose:
                    print(f"ReduceLROnPlateau: learning rate -> {new:.3g}")
            self.wait = 0
