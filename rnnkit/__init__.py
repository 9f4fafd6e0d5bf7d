"""rnnkit: recurrent neural networks from the lecture's equations, with
hand-written backpropagation through time, in NumPy.

    from rnnkit import Sequential, SimpleRNN, LSTM, GRU, Dense
"""
from . import backend, bptt, cells, initializers
from .backend import set_backend, set_floatx
from .gradcheck import gradcheck
from .layers import (GRU, LSTM, Bidirectional, Dense, Dropout, Embedding, Layer, Masking,
                     SimpleRNN, TimeDistributed)
from .models import Model, RNNStack, Sequential
from .seeding import set_seed

__version__ = "0.1.0"

__all__ = [
    "SimpleRNN", "LSTM", "GRU", "Dense", "Embedding", "Bidirectional", "TimeDistributed",
    "Dropout", "Masking", "Layer", "Model", "Sequential", "RNNStack", "gradcheck", "set_seed",
    "set_backend", "set_floatx", "backend", "bptt", "cells", "initializers",
]
