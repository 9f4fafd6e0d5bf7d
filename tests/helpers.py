"""What several test files share: one table of recurrent layer kinds (with the PyTorch module
each has, where PyTorch has it), random data and weights from fixed seeds, and the
comparisons.

Seeds are integers or derived with ``seed_of`` (CRC-32 of the parts' text), never ``hash()``
of a string: that changes from one Python process to the next.
"""

from __future__ import annotations

import zlib
from typing import Any, NamedTuple

import numpy as np

from rnnkit import GRU, LSTM, SimpleRNN


def half(units: int) -> int:
    """The projection size of the "lstm_proj" kind: half the units (at least 1)."""
    return max(1, units // 2)


class Kind(NamedTuple):
    layer: type  # the rnnkit layer class
    args: dict[str, Any]  # its constructor arguments that make this kind
    torch: str | None = None  # the torch.nn module with the same equations, if any
    torch_args: dict[str, Any] = {}  # (a callable value is called with the units)


# One spelling per kind.  "rnn" is the tanh SimpleRNN; "gru" is reset_after=True (PyTorch's,
# cuDNN's and Keras's default), "gru_before" the variant with the reset gate before W.
KINDS: dict[str, Kind] = {
    "rnn": Kind(SimpleRNN, {}, "RNN", {"nonlinearity": "tanh"}),
    "rnn_sigmoid": Kind(SimpleRNN, {"activation": "sigmoid"}),
    "rnn_relu": Kind(SimpleRNN, {"activation": "relu"}, "RNN", {"nonlinearity": "relu"}),
    "rnn_linear": Kind(SimpleRNN, {"activation": "linear"}),
    "rnn_softsign": Kind(SimpleRNN, {"activation": "softsign"}),
    "lstm": Kind(LSTM, {}, "LSTM", {}),
    "lstm_proj": Kind(LSTM, {"proj_size": half}, "LSTM", {"proj_size": half}),
    "lstm_hard_sigmoid": Kind(LSTM, {"recurrent_activation": "hard_sigmoid"}),
    "lstm_nobias": Kind(LSTM, {"use_bias": False}),
    "gru": Kind(GRU, {}, "GRU", {}),
    "gru_before": Kind(GRU, {"reset_after": False}),
    "gru_nobias": Kind(GRU, {"use_bias": False}),
    "gru_before_relu": Kind(GRU, {"reset_after": False, "activation": "relu"}),
}

# One of each cell and GRU variant: what most behaviour and gradient checks run over.
CELL_KINDS = ["rnn", "lstm", "lstm_proj", "gru", "gru_before"]
# The kinds PyTorch has a module for.
TORCH_KINDS = [k for k, v in KINDS.items() if v.torch]


def _resolved(args: dict[str, Any], units: int) -> dict[str, Any]:
    return {k: v(units) if callable(v) else v for k, v in args.items()}


def recurrent_layer(kind: str, units: int, **kw: Any):
    """The rnnkit layer of ``kind`` with ``units``; ``kw`` adds or overrides arguments."""
    k = KINDS[kind]
    return k.layer(units, **{**_resolved(k.args, units), **kw})


def torch_module(kind: str, input_size: int, units: int, **kw: Any):
    """The torch.nn module of ``kind`` (RNN, LSTM or GRU) with ``kw`` (num_layers, ...)."""
    import torch

    k = KINDS[kind]
    if k.torch is None:
        raise ValueError(f"PyTorch has no module for the kind {kind!r}")
    cls = getattr(torch.nn, k.torch)
    return cls(input_size, units, **{**_resolved(k.torch_args, units), **kw})


def seed_of(*parts: Any) -> int:
    """A seed from test parameters (strings, numbers), the same in every process."""
    return zlib.crc32(repr(parts).encode())


def normal(shape, seed: int = 0) -> np.ndarray:
    """Standard normal numbers of ``shape`` (float64) from ``seed``."""
    return np.random.default_rng(seed).standard_normal(shape)


def randomize(model, seed: int = 0, scale: float = 0.5) -> None:
    """Every parameter of an rnnkit model drawn from N(0, scale²), in place (non-zero
    biases too, which initialisers leave at zero)."""
    rng = np.random.default_rng(seed)
    for p in model.params.values():
        p[...] = rng.normal(0.0, scale, p.shape)


def max_diff(a, b) -> float:
    """max |a - b| / max(1, max |b|): the absolute difference for outputs of order 1,
    relative for large ones; lists and tuples of arrays are compared pairwise."""
    if isinstance(a, (list, tuple)):
        return max(max_diff(u, v) for u, v in zip(a, b))
    assert np.shape(a) == np.shape(b), (np.shape(a), np.shape(b))
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(1.0, np.max(np.abs(b))))


def padded_floats(
    N: int,
    T: int,
    D: int,
    seed: int,
    *,
    masked: bool = True,
    dtype: str = "float32",
    empty_row: bool = False,
) -> np.ndarray:
    """(N, T, D) normal numbers with all-zero padding steps: at the end of the first
    sequence, at the start of the last, a hole in the middle of the second and, with
    ``empty_row``, nothing at all in the third (for Masking(0.0) and mask_zero models)."""
    x = np.random.default_rng(seed).normal(size=(N, T, D)).astype(dtype)
    if masked and T >= 4:
        x[0, -2:] = 0.0  # post-padding
        x[-1, :2] = 0.0  # pre-padding (Keras's pad_sequences default)
        if N > 2:
            x[1, T // 2] = 0.0  # a hole
            if empty_row:
                x[2, :] = 0.0  # nothing at all
    return x


def padded_ids(
    N: int, T: int, vocab: int, seed: int, *, holes=(1,), dtype: Any = None
) -> np.ndarray:
    """(N, T) token ids in [1, vocab) with 0 (padding) at the end of the first sequence,
    at the start of the last and at the steps ``holes`` of the second."""
    x = np.random.default_rng(seed).integers(1, vocab, size=(N, T))
    if dtype is not None:
        x = x.astype(dtype)
    if T >= 4:
        x[0, -3:] = 0
        x[-1, :2] = 0
        if N > 2:
            for t in holes:
                x[1, t] = 0
    return x


# The applications' command lines (tests/test_app_*.py).


def run_cli(args, capsys):
    """(exit code, standard output, standard error) of ``rnnkit ARGS``."""
    from rnnkit import cli

    code = cli.main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def train_args(app, data, model, *options):
    """``APP train --data DATA --model MODEL --quiet OPTIONS`` as strings."""
    return [app, "train", "--data", str(data), "--model", str(model), "--quiet"] + [
        str(o) for o in options
    ]


def train_app(app, data, model, *options):
    """Trains ``app`` quietly on ``data`` into ``model``; the command must succeed."""
    from rnnkit import cli

    assert cli.main(train_args(app, data, model, *options)) == 0


def write_uea_split(folder, problem, classes, make, n):
    """``{problem}_TRAIN.ts`` and ``_TEST.ts`` in ``folder``: ``make(n, seed)`` cases (seeds 0
    and 1) written in the UEA archive's .ts format."""
    from rnnkit.datasets._uea import write_ts

    for part, seed in (("TRAIN", 0), ("TEST", 1)):
        xs, labels = make(n, seed)
        write_ts(folder / f"{problem}_{part}.ts", xs, labels, problem, list(classes))


def train_and_evaluate(capsys, app, data, model, *options):
    """Trains ``app`` as :func:`train_app` does, then returns what ``evaluate --json`` prints,
    parsed; both commands must succeed."""
    import json
    from pathlib import Path

    code, _, err = run_cli(train_args(app, data, model, *options), capsys)
    assert code == 0 and Path(model).is_file(), err
    code, out, err = run_cli(
        [app, "evaluate", "--data", str(data), "--model", str(model), "--json"], capsys
    )
    assert code == 0, err
    return json.loads(out)
