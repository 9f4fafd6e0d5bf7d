"""Long-range synthetic tasks for the gradient experiments, and models for them.

adding_problem(n, lag)   Hochreiter & Schmidhuber's adding problem as Le et al. (2015)
                         use it: T = lag steps of two features, a random value in
                         [0, 1) and a marker; exactly two steps are marked, one in the
                         first half and one in the second; the target (at the end) is
                         the sum of the two marked values.  Predicting the mean (1.0)
                         scores MSE 1/6 ≈ 0.167; remembering only the second value
                         scores 1/12 ≈ 0.083.  Solved: |error| < 0.04 ("accuracy").
copy_memory(n, lag)      Arjovsky et al.'s copy task: `length` random symbols from an
                         alphabet of `n_symbols`, lag - 1 blanks, a delimiter, then
                         `length` blanks during which the model must output the
                         symbols; T = lag + 2·length.  Baseline (blanks, then a uniform
                         guess): cross-entropy length·ln(n_symbols) per sequence.
build_model(task, cell)  a compiled model for either task.
"""

from __future__ import annotations

import numpy as np

from .. import optim
from ..layers import GRU, LSTM, Dense, SimpleRNN
from ..models import Sequential

TASKS = ("adding", "copy")
CELLS = ("rnn", "lstm", "gru")


def adding_problem(n, lag, seed=None, dtype="float32"):
    """x (n, lag, 2), y (n, 1): see the module docstring."""
    T = int(lag)
    if T < 2:
        raise ValueError(f"adding_problem: lag must be ≥ 2; got {lag}")
    rng = np.random.default_rng(seed)
    x = np.zeros((n, T, 2), dtype=dtype)
    x[:, :, 0] = rng.random((n, T))
    rows = np.arange(n)
    i = rng.integers(0, T // 2, n)
    j = rng.integers(T // 2, T, n)
    x[rows, i, 1] = 1.0
    x[rows, j, 1] = 1.0
    y = (x[rows, i, 0] + x[rows, j, 0])[:, None].astype(dtype)
    return x, y


def copy_memory(n, lag, n_symbols=8, length=10, seed=None, dtype="float32"):
    """x one-hot (n, lag + 2·length, n_symbols + 2), y (n, lag + 2·length) integer labels:
    class 0 is the blank, 1..n_symbols the symbols, n_symbols + 1 the delimiter."""
    lag = int(lag)
    if lag < 1:
        raise ValueError(f"copy_memory: lag must be ≥ 1; got {lag}")
    rng = np.random.default_rng(seed)
    T = lag + 2 * length
    K = n_symbols + 2
    seq = rng.integers(1, n_symbols + 1, (n, length))
    ids = np.zeros((n, T), dtype=np.int64)
    ids[:, :length] = seq
    ids[:, length + lag - 1] = n_symbols + 1  # the delimiter
    y = np.zeros((n, T), dtype=np.int64)
    y[:, T - length :] = seq
    x = np.eye(K, dtype=dtype)[ids]
    return x, y


def make_batch(task, n, lag, seed=None, **kwargs):
    if task == "adding":
        return adding_problem(n, lag, seed)
    if task == "copy":
        return copy_memory(n, lag, seed=seed, **kwargs)
    raise ValueError(f"task must be one of {list(TASKS)}; got {task!r}")


def baseline_loss(task, lag=None, n_symbols=8, length=10):
    """The loss of the best input-blind prediction (see the module docstring)."""
    if task == "adding":
        return 1.0 / 6.0
    return length * float(np.log(n_symbols))


def build_model(
    task,
    cell="lstm",
    units=32,
    activation="tanh",
    lag=None,
    seed=0,
    optimizer=None,
    learning_rate=1e-2,
    clip_global_norm=1.0,
    dtype=None,
    recurrent_initializer="orthogonal",
    n_symbols=8,
):
    """A compiled model: one recurrent layer (``cell`` 'rnn' with ``activation``, 'lstm'
    or 'gru') and a Dense read-out, with Adam and clipping by global norm unless an
    ``optimizer`` is given.  Adding: the last state → 1 value, mse.  Copy: every state →
    n_symbols + 2 logits, sparse categorical cross-entropy."""
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {list(CELLS)}; got {cell!r}")
    seq = task == "copy"
    D = 2 if task == "adding" else n_symbols + 2
    common = dict(
        return_sequences=seq,
        input_shape=[None, D],
        seed=seed,
        recurrent_initializer=recurrent_initializer,
    )
    if dtype is not None:
        common["dtype"] = dtype
    if cell == "rnn":
        rec = SimpleRNN(units, activation=activation, **common)
    elif cell == "lstm":
        rec = LSTM(units, **common)
    else:
        rec = GRU(units, **common)
    out_kwargs = {"seed": seed + 1}
    if dtype is not None:
        out_kwargs["dtype"] = dtype
    head = Dense(1, **out_kwargs) if task == "adding" else Dense(n_symbols + 2, **out_kwargs)
    model = Sequential([rec, head])
    opt = optimizer or optim.Adam(learning_rate, clip_global_norm=clip_global_norm)
    if task == "adding":
        model.compile("mse", opt)
    else:
        model.compile(
            "sparse_categorical_crossentropy", opt, metrics=["accuracy"], from_logits=True
        )
    return model


def adding_accuracy(pred, y, tol=0.04):
    """The fraction of sequences with |prediction - target| < tol."""
    return float((np.abs(np.asarray(pred) - np.asarray(y)) < tol).mean())


__all__ = [
    "adding_problem",
    "copy_memory",
    "make_batch",
    "build_model",
    "baseline_loss",
    "adding_accuracy",
    "TASKS",
    "CELLS",
]
