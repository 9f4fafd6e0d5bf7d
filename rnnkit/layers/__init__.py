"""Layers with Keras's names and arguments, each with forward() and backward()."""

from .base import Layer, Wrapper
from .core import Dense, Dropout, Embedding, Masking, RepeatVector
from .recurrent import GRU, LSTM, Recurrent, SimpleRNN
from .wrappers import Bidirectional, TimeDistributed

LAYER_CLASSES: dict[str, type[Layer]] = {
    cls.__name__: cls
    for cls in (
        SimpleRNN,
        LSTM,
        GRU,
        Dense,
        Embedding,
        Dropout,
        Masking,
        RepeatVector,
        Bidirectional,
        TimeDistributed,
    )
}


def deserialize(spec):
    """A layer from ``{"class_name": ..., "config": {...}}`` (as written by get_config)."""
    if not isinstance(spec, dict) or "class_name" not in spec:
        raise ValueError(
            f"a layer spec must be a dict with 'class_name' and 'config'; got {spec!r}"
        )
    cls = LAYER_CLASSES.get(spec["class_name"])
    if cls is None:
        raise ValueError(
            f"unknown layer class {spec['class_name']!r}; known: {sorted(LAYER_CLASSES)}"
        )
    return cls.from_config(dict(spec.get("config", {})))


__all__ = [
    "Layer",
    "Wrapper",
    "Recurrent",
    "SimpleRNN",
    "LSTM",
    "GRU",
    "Dense",
    "Embedding",
    "Dropout",
    "Masking",
    "RepeatVector",
    "Bidirectional",
    "TimeDistributed",
    "deserialize",
]
