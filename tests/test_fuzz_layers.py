"""Property-based fuzzing of the layers' public entry points (forward, backward, predict)
over shapes, dtypes, masks and gradients: each call either gives a correct result or a
clear exception of the documented type (ValueError / TypeError) that names the argument;
never a crash, a silent NaN, or an array of the wrong shape."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnkit import GRU, LSTM, Bidirectional, Dense, Embedding, Sequential, SimpleRNN

FUZZ = settings(
    max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)

CELLS = {"rnn": SimpleRNN, "lstm": LSTM, "gru": GRU}


@st.composite
def recurrent_case(draw):
    kind = draw(st.sampled_from(sorted(CELLS)))
    units = draw(st.integers(1, 9))
    N, T, D = draw(st.integers(1, 5)), draw(st.integers(1, 7)), draw(st.integers(1, 4))
    dtype = draw(st.sampled_from(["float32", "float64"]))
    options = dict(
        return_sequences=draw(st.booleans()),
        go_backwards=draw(st.booleans()),
        return_state=draw(st.booleans()),
    )
    if kind == "lstm" and units > 1 and draw(st.booleans()):
        options["proj_size"] = draw(st.integers(1, units - 1))
    if kind == "gru":
        options["reset_after"] = draw(st.booleans())
    seed = draw(st.integers(0, 2**16))
    mask = None
    if draw(st.booleans()):
        mask = np.random.default_rng(seed).random((N, T)) < 0.7
    return kind, units, (N, T, D), dtype, options, seed, mask


@FUZZ
@given(recurrent_case())
def test_recurrent_forward_backward_contract(case):
    kind, units, shape, dtype, options, seed, mask = case
    layer = CELLS[kind](units, seed=seed, dtype=dtype, **options)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    out = layer.forward(x, training=True, mask=mask)
    outs = out if options["return_state"] else [out]
    N, T, _ = shape
    size = options.get("proj_size") or units
    want = (N, T, size) if options["return_sequences"] else (N, size)
    assert outs[0].shape == want and outs[0].dtype == dtype
    assert all(np.isfinite(o).all() for o in outs)
    dys = [rng.standard_normal(o.shape).astype(dtype) for o in outs]
    dx = layer.backward(dys if options["return_state"] else dys[0])
    assert dx.shape == x.shape and np.isfinite(dx).all()
    assert set(layer.grads) == set(layer.params)
    for k, g in layer.grads.items():
        assert g.shape == layer.params[k].shape and np.isfinite(g).all()
    # any other shape of dy is refused with a message naming dy, never read past its end
    bad_shape = tuple(s + 1 for s in outs[0].shape)
    bad = (
        [np.ones(bad_shape, dtype)] + dys[1:]
        if options["return_state"]
        else np.ones(bad_shape, dtype)
    )
    with pytest.raises(ValueError, match="dy"):
        layer.backward(bad)


@FUZZ
@given(
    st.sampled_from(sorted(CELLS)),
    st.integers(1, 6),
    st.lists(st.integers(0, 6), min_size=1, max_size=4),
    st.sampled_from(["int8", "float16", "complex64", "bool", "object", "U3"]),
)
def test_bad_inputs_are_refused_clearly(kind, units, dims, dtype):
    layer = CELLS[kind](units, seed=0)
    try:
        x = np.zeros(dims, dtype=dtype)
    except (TypeError, ValueError):
        return
    try:
        y = layer.forward(x)
    except (ValueError, TypeError) as e:
        assert "x" in str(e) and "Traceback" not in str(e)
        return
    # accepted: a real-valued 3-d input with at least one step and one feature
    assert x.ndim == 3 and np.isfinite(y).all()


@FUZZ
@given(
    st.integers(1, 5),
    st.integers(1, 6),
    st.integers(2, 12),
    st.booleans(),
    st.sampled_from(["concat", "sum", "mul", "ave"]),
)
def test_masked_model_predict_contract(N, T, vocab, zero_rows, merge):
    rng = np.random.default_rng(N * 100 + T)
    model = Sequential(
        [
            Embedding(vocab, 3, mask_zero=True),
            Bidirectional(GRU(4, return_sequences=True, seed=1), merge_mode=merge),
            LSTM(5, seed=2),
            Dense(2),
        ]
    )
    ids = rng.integers(0, vocab, (N, T))
    if zero_rows:
        ids[0] = 0  # an all-padding sequence
    y = model.predict(ids)
    assert y.shape == (N, 2) and np.isfinite(y).all()
    with pytest.raises(ValueError):
        model.predict(np.full((N, T), vocab))  # an id outside the vocabulary
