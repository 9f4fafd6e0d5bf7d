"""Metrics reported during training: averages over the real (unmasked) steps.

Each metric returns (sum over the batch's counted steps, number of counted steps),
so that an epoch's value is the exact mean over all of its steps.

    accuracy        the fraction of steps whose predicted class is right
                    (argmax for categorical losses, p > 0.5 / logit > 0 for binary)
    mse, mae        mean squared / absolute error per output
    bpc             bits per character: -log2 p(y) per step (sparse categorical)
    perplexity      exp(mean -ln p(y)) per step (sparse categorical)
"""

from __future__ import annotations

import math

import numpy as np

from . import losses as L
from .backend import to_numpy


def _log_probs(loss, y_pred):
    z = np.asarray(to_numpy(y_pred), dtype=np.float64)
    if getattr(loss, "from_logits", False):
        z = z - z.max(axis=-1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    p = z / z.sum(axis=-1, keepdims=True)
    return np.log(np.clip(p, L.EPSILON, 1.0))


class Metric:
    name = ""

    def __init__(self, loss):
        self.loss = loss

    def batch(self, y_true, y_pred, weights):
        """(sum, count) over the batch; ``weights`` (N[,T]) marks counted steps."""
        raise NotImplementedError


class Accuracy(Metric):
    name = "accuracy"

    def batch(self, y_true, y_pred, weights):
        y_pred = np.asarray(to_numpy(y_pred))
        y_true = np.asarray(to_numpy(y_true))
        if isinstance(self.loss, L.SparseCategoricalCrossentropy):
            hit = y_pred.argmax(axis=-1) == y_true
        elif isinstance(self.loss, L.CategoricalCrossentropy):
            hit = y_pred.argmax(axis=-1) == y_true.argmax(axis=-1)
        elif isinstance(self.loss, L.BinaryCrossentropy):
            threshold = 0.0 if self.loss.from_logits else 0.5
            hit = ((y_pred > threshold) == (y_true > 0.5)).mean(axis=-1)
        else:
            raise ValueError(
                f"metric 'accuracy' needs a classification loss; the loss is {self.loss.name!r}"
            )
        return _weighted(hit, weights)


class MSE(Metric):
    name = "mse"

    def batch(self, y_true, y_pred, weights):
        d = np.asarray(to_numpy(y_pred), np.float64) - np.asarray(to_numpy(y_true), np.float64)
        return _weighted((d * d).mean(axis=-1), weights)


class MAE(Metric):
    name = "mae"

    def batch(self, y_true, y_pred, weights):
        d = np.asarray(to_numpy(y_pred), np.float64) - np.asarray(to_numpy(y_true), np.float64)
        return _weighted(np.abs(d).mean(axis=-1), weights)


class _NegLogLik(Metric):
    def nll(self, y_true, y_pred, weights):
        if not isinstance(self.loss, L.SparseCategoricalCrossentropy):
            raise ValueError(
                f"metric {self.name!r} needs the loss "
                f"'sparse_categorical_crossentropy'; the loss is {self.loss.name!r}"
            )
        logp = _log_probs(self.loss, y_pred)
        y = np.asarray(to_numpy(y_true)).astype(np.int64)
        y = np.clip(y, 0, logp.shape[-1] - 1)
        return _weighted(-np.take_along_axis(logp, y[..., None], axis=-1)[..., 0], weights)


class BitsPerCharacter(_NegLogLik):
    name = "bpc"

    def batch(self, y_true, y_pred, weights):
        s, n = self.nll(y_true, y_pred, weights)
        return s / math.log(2.0), n


class Perplexity(_NegLogLik):
    """Reported as exp of the epoch's mean negative log-likelihood (see ``finalize``)."""

    name = "perplexity"

    def batch(self, y_true, y_pred, weights):
        return self.nll(y_true, y_pred, weights)

    @staticmethod
    def finalize(mean):
        return math.exp(min(mean, 700.0))


def _weighted(values, weights):
    values = np.asarray(values, np.float64)
    if weights is None:
        return float(values.sum()), float(values.size)
    w = np.broadcast_to(np.asarray(to_numpy(weights), np.float64), values.shape)
    return float((values * w).sum()), float(w.sum())


_CLASSES = {
    "accuracy": Accuracy,
    "acc": Accuracy,
    "mse": MSE,
    "mae": MAE,
    "bpc": BitsPerCharacter,
    "bits_per_character": BitsPerCharacter,
    "perplexity": Perplexity,
}


def get(name, loss) -> Metric:
    if isinstance(name, Metric):
        return name
    if name not in _CLASSES:
        raise ValueError(f"metrics must be names from {sorted(_CLASSES)}; got {name!r}")
    metric = _CLASSES[name](loss)
    return metric
