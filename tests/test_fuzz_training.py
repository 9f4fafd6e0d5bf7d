"""Property-based fuzzing of the training entry points and the command line (issue 15).

The contract checked for every example: a clear exception of the documented type
(ValueError or TypeError; SystemExit(2) from argparse; exit code 1/2 from ``rnnkit``)
whose message names the argument, or a correct result (finite numbers, the right
shapes, the right number of epochs).  Never another exception type, a hang, a traceback
from deep inside, or a silent NaN.  Examples are bounded (max_examples) and seeded
(derandomize=True), so the suite is the same on every run and takes well under 30 s.
"""

import math
import pathlib
import traceback

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnkit import GRU, LSTM, Dense, Embedding, Masking, Sequential, SimpleRNN, cli, losses, optim
from rnnkit.apps import autocomplete as app
from rnnkit.seeding import set_seed
from rnnkit.seq2seq import EncoderDecoder

SONNETS = pathlib.Path(__file__).parent / "data" / "sonnets.txt"
FUZZ = settings(
    max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)
CELLS = {"rnn": SimpleRNN, "lstm": LSTM, "gru": GRU}
ENTRY_ERRORS = (ValueError, TypeError)


def _clear(e, *names):
    """The exception is of a documented type and names one of ``names``; its traceback does
    not end deep inside NumPy."""
    assert isinstance(e, ENTRY_ERRORS), f"{type(e).__name__}: {e}"
    assert any(n in str(e) for n in names), f"{names} not named in: {e}"
    last = traceback.extract_tb(e.__traceback__)[-1].filename
    assert "numpy" not in last, f"raised inside NumPy ({last}): {e}"


@st.composite
def problems(draw):
    """A small model and data that fit it: shapes, dtype, cell, masks, sample weights."""
    n, T, D = draw(st.integers(1, 6)), draw(st.integers(1, 4)), draw(st.integers(1, 3))
    seq = draw(st.booleans())
    dtype = draw(st.sampled_from(["float32", "float64"]))
    cell = draw(st.sampled_from(sorted(CELLS)))
    masked = draw(st.booleans())
    ids = draw(st.booleans())  # token ids through an Embedding
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, T, D)).astype(dtype)
    if ids:
        x = rng.integers(1, 5, size=(n, T)).astype(draw(st.sampled_from(["int32", "int64"])))
    if masked:  # padded tails, some fully padded rows
        lengths = rng.integers(0, T + 1, size=n)
        for i, L in enumerate(lengths):
            x[i, L:] = 0
    y = rng.standard_normal((n, T, 1) if seq else (n, 1))
    sw = None
    kind = draw(st.sampled_from(["none", "sample", "step"] if seq else ["none", "sample"]))
    if kind == "sample":
        sw = rng.uniform(0, 2, size=n)
    elif kind == "step":
        sw = rng.uniform(0, 2, size=(n, T))
    set_seed(seed)
    if ids:
        layers = [Embedding(5, D, mask_zero=masked, input_shape=[None], dtype=dtype)]
    else:
        layers = [Masking(0.0, input_shape=[None, D])] if masked else []
    layers += [
        CELLS[cell](3, return_sequences=seq, input_shape=[None, D], dtype=dtype),
        Dense(1, dtype=dtype),
    ]
    m = Sequential(layers)
    m.compile("mse", optim.Adam(0.01, clip_global_norm=1.0))
    return m, x, y, sw


@FUZZ
@given(problems(), st.integers(1, 8), st.integers(0, 2))
def test_fit_evaluate_predict_give_finite_numbers_of_the_right_shape(p, batch_size, epochs):
    m, x, y, sw = p
    h = m.fit(x, y, batch_size=batch_size, epochs=epochs, sample_weight=sw, verbose=0)
    assert len(h.history.get("loss", [])) == epochs
    assert all(math.isfinite(v) for v in h.history.get("loss", []))
    value = m.evaluate(x, y, batch_size=batch_size, sample_weight=sw)
    assert math.isfinite(value) and value >= 0
    out = m.predict(x, batch_size=batch_size)
    assert out.shape == y.shape and np.isfinite(out).all()
    # the mean over batches is the mean over the data set (batch sizes differ)
    assert m.evaluate(x, y, batch_size=len(x), sample_weight=sw) == pytest.approx(
        value, rel=1e-4, abs=1e-6
    )


BAD_INTS = st.sampled_from([0, -1, -7, 2.5, True, "4", None, float("nan")])


@FUZZ
@given(
    problems(),
    st.sampled_from(
        [
            "batch_size",
            "epochs",
            "initial_epoch",
            "sample_weight",
            "x_nan",
            "x_empty",
            "x_text",
            "val_nan",
            "validation_split",
        ]
    ),
    BAD_INTS,
    st.integers(0, 10),
)
def test_bad_arguments_get_a_clear_error_that_names_them(p, what, bad, where):
    m, x, y, sw = p
    before = [w.copy() for w in m.get_weights()]
    kwargs, name = {}, what
    if what in ("batch_size", "epochs"):
        if what == "epochs" and (bad is None or (bad == 0 and not isinstance(bad, bool))):
            bad = -1  # epochs=0 is valid (Keras: nothing to train); None as -1
        kwargs[what] = bad
    elif what == "initial_epoch":
        kwargs.update(epochs=1, initial_epoch=bad if bad is not None else -1)
        if isinstance(bad, int) and not isinstance(bad, bool) and bad >= 0:
            kwargs["initial_epoch"] = -1
    elif what == "sample_weight":
        sw = np.ones(len(x))
        sw[where % len(x)] = [np.nan, np.inf, -1.0][where % 3]
        kwargs["sample_weight"] = sw
    elif what == "x_nan":
        x = x.astype(float)  # ids as floats: NaN is possible
        x.flat[where % x.size] = np.nan
        name = "x"
    elif what == "x_text":
        x, name = np.full(x.shape, "a"), "x"
    elif what == "x_empty":
        x, y, name = x[:0], y[:0], "no samples"
    elif what == "val_nan":
        vx = x.astype(float)  # ids as floats: inf is possible
        vx.flat[where % vx.size] = np.inf
        kwargs["validation_data"] = (vx, y)
        name = "validation_data"
    else:
        kwargs["validation_split"] = [1.0, -0.1, 2, "0.5", float("nan")][where % 5]
    with pytest.raises(ENTRY_ERRORS) as e:
        m.fit(x, y, verbose=0, **kwargs)
    _clear(e.value, name)
    assert all(np.array_equal(a, b) for a, b in zip(before, m.get_weights()))
    if what == "batch_size":
        for call in (
            lambda: m.evaluate(x, y, batch_size=bad),
            lambda: m.predict(x, batch_size=bad),
        ):
            with pytest.raises(ENTRY_ERRORS) as e:
                call()
            _clear(e.value, "batch_size")


@FUZZ
@given(
    st.sampled_from(
        [
            "mse",
            "mae",
            "binary_crossentropy",
            "categorical_crossentropy",
            "sparse_categorical_crossentropy",
        ]
    ),
    st.booleans(),
    st.integers(1, 4),
    st.integers(1, 3),
    st.integers(2, 4),
    st.sampled_from([None, "ok", "nan", "neg", "shape"]),
    st.integers(0, 2**16),
)
def test_losses_give_a_finite_value_or_a_clear_refusal(name, logits, N, T, K, sw_kind, seed):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((N, T, K))
    kwargs = {"from_logits": logits} if "crossentropy" in name else {}
    loss = losses.get(name, **kwargs)
    if name == "sparse_categorical_crossentropy":
        y = rng.integers(0, K, size=(N, T))
    elif name == "categorical_crossentropy":
        y = np.eye(K)[rng.integers(0, K, size=(N, T))]
    elif name == "binary_crossentropy":
        y = rng.integers(0, 2, size=(N, T, K)).astype(float)
    else:
        y = rng.standard_normal((N, T, K))
    sw = {
        None: None,
        "ok": rng.uniform(0, 1, N),
        "nan": np.full(N, np.nan),
        "neg": -np.ones(N),
        "shape": np.ones(N + 1),
    }[sw_kind]
    try:
        value, grad = loss(y, z, sample_weight=sw)
    except ENTRY_ERRORS as e:
        _clear(e, "sample_weight", "from_logits")
        assert sw_kind in ("nan", "neg", "shape") or (
            "crossentropy" in name and not logits and (z < 0).any()
        )
        return
    assert sw_kind in (None, "ok")
    assert math.isfinite(value) and np.isfinite(grad).all() and grad.shape == z.shape


@FUZZ
@given(
    st.integers(-2, 5),
    st.integers(-2, 8),
    st.sampled_from(["greedy", "beam"]),
    st.integers(0, 2**16),
)
def test_generate_gives_token_lists_or_names_the_argument(beam_width, max_length, method, seed):
    set_seed(seed)
    m = EncoderDecoder(6, 6, units=4, embed_dim=3)
    src = np.random.default_rng(seed).integers(1, 6, size=(2, 3))
    try:
        out = m.generate(src, max_length=max_length, method=method, beam_width=beam_width)
    except ENTRY_ERRORS as e:
        _clear(e, "max_length", "beam_width")
        assert max_length < 1 or (method == "beam" and beam_width < 1)
        return
    assert max_length >= 1 and (method == "greedy" or beam_width >= 1)
    assert len(out) == 2
    assert all(len(r) <= max_length and all(0 <= t < 6 for t in r) for r in out)


# -- the command line ----------------------------------------------------------------------------
@pytest.fixture
def cache(tmp_path_factory, monkeypatch):
    path = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("RNNKIT_CACHE", str(path))
    return path


GOOD = {
    "--hidden": ["4", "6"],
    "--layers": ["1", "2"],
    "--batch": ["2", "5"],
    "--bptt": ["3", "8"],
    "--learning-rate": ["0.003", "0.02"],
    "--minutes": ["30"],
    "--max-updates": ["2", "4"],
    "--temperature": ["0", "0.5", "1e-320"],
    "--top-k": ["0", "3"],
    "--length": ["5"],
}
BAD = {
    "--hidden": ["-1", "0"],
    "--layers": ["0", "-2"],
    "--batch": ["-2", "0"],
    "--bptt": ["0"],
    "--learning-rate": ["nan", "inf", "-0.1", "0"],
    "--minutes": ["nan", "inf", "-1", "0"],
    "--max-updates": ["0", "-3"],
    "--temperature": ["nan", "-1", "inf"],
    "--top-k": ["-1"],
    "--length": ["-1", "0"],
}


@st.composite
def autocomplete_options(draw):
    """Valid values for every option, then none, one or two of them made invalid."""
    opts = {f: draw(st.sampled_from(v)) for f, v in GOOD.items()}
    k = draw(st.sampled_from([0, 0, 1, 2]))  # half of them valid throughout
    broken = draw(st.lists(st.sampled_from(sorted(BAD)), min_size=k, max_size=k, unique=True))
    for f in broken:
        opts[f] = draw(st.sampled_from(BAD[f]))
    return opts, broken


@settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(autocomplete_options())
def test_autocomplete_options_are_refused_by_name_or_train_a_finite_model(cache, capsys, drawn):
    opts, bad = drawn
    args = ["autocomplete", "--text", str(SONNETS), "--quiet", "--retrain", "--prompt", "Thy"]
    args.append("--sample")  # one sampled completion (the default prints suggestions)
    for flag, v in opts.items():
        args += [flag, v]
    code = cli.main(args)
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    if bad:
        assert code in (1, 2) and any(f in err for f in bad), (opts, err)
        assert "Training a" not in out
        return
    assert code == 0, (opts, err)
    line = next(l for l in out.splitlines() if l.startswith("Validation:"))
    bpc = float(line.split()[1])
    assert 0 < bpc < app.absurd_bpc(80)
    assert out.strip().splitlines()[-1].startswith("Thy")


def _diagnose_accepts(flag, value):
    """What diagnose's options document: --lr a finite number > 0, --clip ≥ 0, --epochs an
    integer ≥ 0, --k2 positive integers separated by commas, the rest positive integers."""
    try:
        if flag in ("--lr", "--clip"):
            v = float(value)
            return math.isfinite(v) and (v > 0 if flag == "--lr" else v >= 0)
        if flag == "--k2":
            parts = [int(p) for p in value.split(",") if p.strip()]
            return bool(parts) and min(parts) >= 1
        return int(value) >= (0 if flag == "--epochs" else 1)
    except ValueError:
        return False


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(
    st.sampled_from(
        [
            "--lag",
            "--batch-size",
            "--k1",
            "--epochs",
            "--train-size",
            "--units",
            "--batch",
            "--samples",
            "--lr",
            "--clip",
            "--k2",
        ]
    ),
    st.sampled_from(["0", "-1", "-50", "2.5", "abc", "nan", "inf", "", "0,2", "1,-1"]),
)
def test_diagnose_refuses_bad_numbers_by_name(tmp_path_factory, capsys, flag, value):
    """Only refusals here (a diagnose run writes PNGs, which needs matplotlib); the values
    that are valid for a flag (--epochs 0, --clip 0) are skipped."""
    if _diagnose_accepts(flag, value):
        return
    out = tmp_path_factory.mktemp("d") / "out"
    with pytest.raises(SystemExit) as e:
        cli.main(["diagnose", "--quiet", "--out", str(out), flag, value])
    err = capsys.readouterr().err
    assert e.value.code == 2 and f"argument {flag}" in err and "Traceback" not in err, err
    assert not out.exists()
