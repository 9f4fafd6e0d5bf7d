"""rnnkit: recurrent neural networks from the lecture's equations, with
hand-written backpropagation through time, in NumPy.

    from rnnkit import Sequential, SimpleRNN, LSTM, GRU, Dense
"""

from . import backend, bptt, callbacks, cells, initializers, losses, metrics, optim
from ._version import __version__
from .backend import set_backend, set_floatx
from .gradcheck import gradcheck
from .io.saving import load_model
from .layers import (
    GRU,
    LSTM,
    Bidirectional,
    Dense,
    Dropout,
    Embedding,
    Layer,
    Masking,
    RepeatVector,
    SimpleRNN,
    TimeDistributed,
)
from .models import Model, RNNStack, Sequential
from .seeding import set_seed
from .seq2seq import EncoderDecoder, shift_targets

__all__ = [
    "SimpleRNN",
    "LSTM",
    "GRU",
    "Dense",
    "Embedding",
    "Bidirectional",
    "TimeDistributed",
    "Dropout",
    "Masking",
    "RepeatVector",
    "Layer",
    "Model",
    "Sequential",
    "RNNStack",
    "EncoderDecoder",
    "shift_targets",
    "gradcheck",
    "set_seed",
    "set_backend",
    "set_floatx",
    "backend",
    "bptt",
    "cells",
    "initializers",
    "losses",
    "metrics",
    "optim",
    "callbacks",
    "load_model",
    "__version__",
]
