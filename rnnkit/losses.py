"""Losses, the lecture's way: a sequence's loss is the sum of its per-step losses,

    L = Σ_t L_t(y_t, ŷ_t)          (time_reduction="sum", the default)

averaged over the sequences of a batch.  Masked steps (padding) count for nothing.
``time_reduction="mean"`` divides each sequence's sum by its number of real steps
instead (Keras's behaviour).  For vector outputs (N, K) there is one step.

Each loss returns (value, ∂value/∂ŷ), so training calls ``model.backward`` with
the second.  Per-step losses follow Keras's definitions:

    mse                        mean_k (y - ŷ)²
    mae                        mean_k |y - ŷ|
    binary_crossentropy        mean_k -[y log p + (1-y) log(1-p)]          p = ŷ or σ(ŷ)
    categorical_crossentropy   -Σ_k y_k log p_k                            p = ŷ or softmax(ŷ)
    sparse_categorical_crossentropy   -log p_y  (integer labels)

``from_logits=True`` takes raw scores and uses the stable log-sum-exp forms, whose
gradients are softmax(ŷ) - y and σ(ŷ) - y.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import kernels
from .backend import xp
from .validation import describe

EPSILON = 1e-7  # probabilities are clipped to [ε, 1-ε], as Keras does


class Loss:
    """Base class.  Subclasses define ``per_step(y, yhat)`` -> (L_t (N[,T]), ∂L_t/∂ŷ)."""

    name = ""
    sparse = False

    def __init__(self, time_reduction: str = "sum") -> None:
        if time_reduction not in ("sum", "mean"):
            raise ValueError(
                f"{type(self).__name__}: time_reduction must be 'sum' (the lecture's "
                f"L = Σ_t L_t) or 'mean'; got {time_reduction!r}"
            )
        self.time_reduction = time_reduction

    def __call__(
        self,
        y_true: np.ndarray,
        y_pred: np.ndarray,
        mask: np.ndarray | None = None,
        sample_weight: np.ndarray | None = None,
    ) -> tuple[float, np.ndarray]:
        """(value, gradient): the batch mean of the per-sequence losses, and its
        gradient with respect to ``y_pred``."""
        np_ = xp()
        y_true = self.check_targets(y_true, y_pred)
        self.check_outputs(y_pred)
        per_step, d = self.per_step(y_true, y_pred)  # (N,) or (N, T); d like y_pred
        weights = self.step_weights(per_step.shape, mask, sample_weight, y_true)
        N = per_step.shape[0]
        if per_step.ndim == 2 and self.time_reduction == "mean":
            steps = np_.maximum(
                weights.sum(axis=1, keepdims=True)
                if weights is not None
                else np_.full((N, 1), per_step.shape[1], per_step.dtype),
                1.0,
            )
            scale = 1.0 / steps if weights is None else weights / steps
        else:
            scale = weights if weights is not None else None
        if scale is None:
            value = float(per_step.sum()) / N
            d *= 1.0 / N
        else:
            scale = np_.asarray(scale, dtype=y_pred.dtype)
            if scale.shape != per_step.shape:
                scale = np_.broadcast_to(scale, per_step.shape)
            value = float((per_step * scale).sum()) / N
            d *= (scale / N).reshape(scale.shape + (1,) * (d.ndim - scale.ndim))
        return value, d

    def per_step(self, y_true, y_pred):
        raise NotImplementedError

    def check_outputs(self, y_pred, model=None):
        """Refuse outputs this loss cannot read (logits given to a loss on probabilities)."""

    def step_weights(self, shape, mask, sample_weight, y_true):
        """Per-step weights (N[,T]): 0 at masked steps, sample weights, or None for all ones."""
        np_ = xp()
        w = None
        if mask is not None and len(shape) == 2:
            w = np_.asarray(mask, dtype=np.float64)
        if sample_weight is not None:
            sw = np_.asarray(sample_weight, dtype=np.float64)
            if sw.shape not in (shape[:1], tuple(shape)):
                raise ValueError(
                    f"{self.name}: sample_weight must have shape {shape[:1]} or "
                    f"{tuple(shape)}; got {tuple(sw.shape)}"
                )
            if not bool(np_.isfinite(sw).all()) or bool((sw < 0).any()):
                raise ValueError(
                    f"{self.name}: sample_weight must be finite and ≥ 0; got "
                    f"values from {float(sw.min())} to {float(sw.max())}"
                    f"{' and NaN' if bool(np_.isnan(sw).any()) else ''}"
                )
            sw = sw.reshape(sw.shape + (1,) * (len(shape) - sw.ndim))
            w = sw if w is None else w * sw
        return w

    def check_targets(self, y_true, y_pred):
        """y_true as an array that fits y_pred, or a clear error."""
        y = np.asarray(y_true) if not hasattr(y_true, "shape") else y_true
        if tuple(y.shape) != tuple(y_pred.shape):
            raise ValueError(
                f"loss {self.name!r}: targets must have the model's output shape "
                f"{tuple(y_pred.shape)}; got {describe(y)}"
            )
        if np.dtype(y.dtype).kind not in "fiub":
            raise TypeError(f"loss {self.name!r}: targets must be numeric; got {describe(y)}")
        return xp().asarray(y, dtype=y_pred.dtype)

    def get_config(self):
        config = {"name": self.name, "time_reduction": self.time_reduction}
        for attr in ("from_logits", "ignore_class"):
            if hasattr(self, attr):
                config[attr] = getattr(self, attr)
        if getattr(self, "label_smoothing", 0.0):
            config["label_smoothing"] = self.label_smoothing
        return config


class MeanSquaredError(Loss):
    name = "mse"

    def per_step(self, y, yhat):
        diff = yhat - y
        K = yhat.shape[-1]
        return (diff * diff).mean(axis=-1), diff * (2.0 / K)


class MeanAbsoluteError(Loss):
    name = "mae"

    def per_step(self, y, yhat):
        diff = yhat - y
        return xp().abs(diff).mean(axis=-1), xp().sign(diff) * (1.0 / yhat.shape[-1])


class _ProbabilisticLoss(Loss):
    """A loss on probabilities, or on raw scores (logits) with ``from_logits=True``."""

    def __init__(self, from_logits=False, time_reduction="sum"):
        super().__init__(time_reduction)
        self.from_logits = bool(from_logits)

    upper: float | None = None  # the largest probability a loss on probabilities can read

    def check_outputs(self, y_pred, model=None):
        """With from_logits=False the outputs must be probabilities: a negative value (or,
        for binary cross-entropy, one above 1) means the model gives logits, which this
        loss would clip and learn nothing from."""
        if self.from_logits:
            return
        np_ = xp()
        lo = float(np_.min(y_pred)) if y_pred.size else 0.0
        hi = float(np_.max(y_pred)) if y_pred.size else 0.0
        if lo < 0 or (self.upper is not None and hi > self.upper):
            whose = f"{model.who}'s outputs" if model is not None else "the model's outputs"
            raise ValueError(
                f"loss {self.name!r} with from_logits=False reads probabilities, "
                f"but {whose} range from {lo:.4g} to {hi:.4g}: they look like "
                f"logits (raw scores). Compile with from_logits=True, or end the "
                f"model with a softmax/sigmoid activation"
            )


class BinaryCrossentropy(_ProbabilisticLoss):
    name = "binary_crossentropy"
    upper = 1.0

    def check_targets(self, y_true, y_pred):
        y = super().check_targets(y_true, y_pred)
        if bool(((y < 0) | (y > 1)).any()):
            raise ValueError(f"loss {self.name!r}: targets must lie in [0, 1]")
        return y

    def per_step(self, y, yhat):
        np_ = xp()
        K = yhat.shape[-1]
        if self.from_logits:
            # max(z,0) - z y + log(1 + e^{-|z|}), gradient σ(z) - y
            loss = np_.maximum(yhat, 0) - yhat * y + np_.log1p(np_.exp(-np_.abs(yhat)))
            sig = 0.5 * (1.0 + np_.tanh(0.5 * yhat))
            return loss.mean(axis=-1), (sig - y) / K
        p = np_.clip(yhat, EPSILON, 1.0 - EPSILON)
        loss = -(y * np_.log(p) + (1.0 - y) * np_.log(1.0 - p))
        inside = (yhat > EPSILON) & (yhat < 1.0 - EPSILON)
        return loss.mean(axis=-1), ((p - y) / (p * (1.0 - p))) * inside / K


class CategoricalCrossentropy(_ProbabilisticLoss):
    name = "categorical_crossentropy"

    def per_step(self, y, yhat):
        np_ = xp()
        if self.from_logits:
            z = yhat - yhat.max(axis=-1, keepdims=True)
            logsumexp = np_.log(np_.exp(z).sum(axis=-1, keepdims=True))
            logp = z - logsumexp
            loss = -(y * logp).sum(axis=-1)
            return loss, np_.exp(logp) * y.sum(axis=-1, keepdims=True) - y
        # Keras renormalises the probabilities, then clips them
        total = yhat.sum(axis=-1, keepdims=True)
        p = yhat / total
        pc = np_.clip(p, EPSILON, 1.0 - EPSILON)
        loss = -(y * np_.log(pc)).sum(axis=-1)
        dp = -y / pc * ((p > EPSILON) & (p < 1.0 - EPSILON))
        d = (dp - (dp * p).sum(axis=-1, keepdims=True)) / total  # through p = ŷ / Σŷ
        return loss, d


class SparseCategoricalCrossentropy(_ProbabilisticLoss):
    """Integer labels (N,) or (N, T) against scores (N, K) or (N, T, K).
    ``ignore_class``: steps whose label equals it count for nothing (padding).
    ``label_smoothing`` ε (with from_logits=True, as PyTorch's CrossEntropyLoss): the target
    is (1 - ε) on the label and ε/K on every class, L = -(1 - ε) log p_y - ε/K Σ_k log p_k."""

    name = "sparse_categorical_crossentropy"
    sparse = True

    def __init__(
        self, from_logits=False, time_reduction="sum", ignore_class=None, label_smoothing=0.0
    ):
        super().__init__(from_logits, time_reduction)
        self.ignore_class = ignore_class
        eps = label_smoothing
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0.0 <= eps <= 1.0:
            raise ValueError(
                f"loss {self.name!r}: label_smoothing must be a number in [0, 1]; got {eps!r}"
            )
        if eps and not from_logits:
            raise ValueError(f"loss {self.name!r}: label_smoothing needs from_logits=True")
        self.label_smoothing = float(eps)

    def check_targets(self, y_true, y_pred):
        y = np.asarray(y_true) if not hasattr(y_true, "shape") else y_true
        if tuple(y.shape) != tuple(y_pred.shape[:-1]):
            hint = ""
            if tuple(y.shape) == tuple(y_pred.shape):
                hint = " (one-hot targets? use 'categorical_crossentropy')"
            raise ValueError(
                f"loss {self.name!r}: integer targets must have shape "
                f"{tuple(y_pred.shape[:-1])} for outputs of shape "
                f"{tuple(y_pred.shape)}; got {describe(y)}{hint}"
            )
        if np.dtype(y.dtype).kind == "f":
            if not np.all(np.asarray(y) == np.round(np.asarray(y))):
                raise TypeError(f"loss {self.name!r}: targets must be integer class ids")
        elif np.dtype(y.dtype).kind not in "iub":
            raise TypeError(
                f"loss {self.name!r}: targets must be integer class ids; got {describe(y)}"
            )
        y = xp().asarray(y).astype(np.int64)
        K = y_pred.shape[-1]
        valid = y if self.ignore_class is None else y[y != self.ignore_class]
        if valid.size and (int(valid.min()) < 0 or int(valid.max()) >= K):
            bad = int(valid.min()) if int(valid.min()) < 0 else int(valid.max())
            raise ValueError(
                f"loss {self.name!r}: label {bad} is outside [0, {K}) for a model with {K} outputs"
            )
        return y

    def step_weights(self, shape, mask, sample_weight, y_true):
        w = super().step_weights(shape, mask, sample_weight, y_true)
        if self.ignore_class is not None:
            keep = (y_true != self.ignore_class).astype(np.float64)
            w = keep if w is None else w * keep
        return w

    def per_step(self, y, yhat):
        np_ = xp()
        K = yhat.shape[-1]
        yc = np_.clip(y, 0, K - 1)[..., None]  # ignored labels may be out of range
        if self.from_logits:
            eps = self.label_smoothing
            fused = None if eps else kernels.xent_logits(yhat, yc[..., 0])  # the same, by rows
            if fused is not None:
                return fused
            d = yhat - yhat.max(axis=-1, keepdims=True)  # z, then exp(z), then the gradient
            zy = np_.take_along_axis(d, yc, axis=-1)[..., 0]
            if eps:
                zy = (1.0 - eps) * zy + eps * d.mean(axis=-1)
            np_.exp(d, out=d)
            total = d.sum(axis=-1, keepdims=True)
            loss = np_.log(total)[..., 0] - zy
            d /= total  # softmax(ŷ) - the target: onehot(y), or smoothed
            if eps:
                d -= eps / K
            _flat_rows(d)[np_.arange(yc.size), yc.ravel()] -= 1.0 - eps
            return loss, d
        total = yhat.sum(axis=-1, keepdims=True)
        p = yhat / total
        py = np_.take_along_axis(p, yc, axis=-1)
        pc = np_.clip(py, EPSILON, 1.0 - EPSILON)
        loss = -np_.log(pc)[..., 0]
        dp = np_.zeros_like(yhat)
        _flat_rows(dp)[np_.arange(yc.size), yc.ravel()] = (
            -1.0 / pc * ((py > EPSILON) & (py < 1.0 - EPSILON))
        ).ravel()
        d = (dp - (dp * p).sum(axis=-1, keepdims=True)) / total
        return loss, d


def _flat_rows(a):
    """A (M, K) view of a (..., K) array (a is contiguous: it was just created)."""
    return a.reshape(-1, a.shape[-1])


_CLASSES = {
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError,
    "mean_absolute_error": MeanAbsoluteError,
    "binary_crossentropy": BinaryCrossentropy,
    "bce": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
}


def get(loss: str | Loss, **kwargs: Any) -> Loss:
    """A loss by name (Keras's names) or an instance; kwargs go to the constructor."""
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, str) and loss in _CLASSES:
        return _CLASSES[loss](**kwargs)
    raise ValueError(
        f"loss must be one of {sorted(set(_CLASSES))} or a rnnkit.losses.Loss; got {loss!r}"
    )


def from_config(config):
    config = dict(config)
    return get(config.pop("name"), **config)


LN2 = math.log(2.0)
