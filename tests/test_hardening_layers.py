"""Layers under hostile input: every gradient handed to backward is checked before it
reaches the loops (compiled or not), the compiled loops check every array they are given,
and predict is safe from several threads."""

import threading

import numpy as np
import pytest

import rnnkit
from rnnkit import GRU, LSTM, Bidirectional, Dense, Embedding, Sequential, SimpleRNN, kernels


@pytest.mark.parametrize("cls", [SimpleRNN, LSTM, GRU])
def test_backward_refuses_a_dy_of_the_wrong_shape(cls):
    """A dy one step long, one step short, or time-major was read past its end by the
    compiled loop (a segmentation fault) or gave wrong gradients; now a ValueError."""
    layer = cls(16, return_sequences=True, seed=0)
    x = np.random.default_rng(0).standard_normal((2, 300, 3)).astype("float32")
    layer.forward(x, training=True)
    for bad in [(2, 1, 16), (2, 299, 16), (300, 2, 16), (2, 300, 8), (2, 16)]:
        with pytest.raises(
            ValueError,
            match=r"dy must have the shape of the layer's output "
            r"\(2, 300, 16\)",
        ):
            layer.backward(np.ones(bad, "float32"))
    dx = layer.backward(np.ones((2, 300, 16), "float32"))  # the right one still works
    assert dx.shape == x.shape and np.isfinite(dx).all()


def test_backward_refuses_wrong_dy_for_vector_outputs_and_states():
    layer = LSTM(8, return_state=True, seed=0)
    x = np.ones((3, 5, 2), "float32")
    layer.forward(x, training=True)
    with pytest.raises(ValueError, match="dy must be a list"):
        layer.backward(np.ones((3, 8), "float32"))
    with pytest.raises(ValueError, match=r"dy\[2\] must have the shape .* \(3, 8\); got \(3, 7\)"):
        layer.backward([np.ones((3, 8), "float32"), None, np.ones((3, 7), "float32")])
    with pytest.raises(TypeError, match="real numeric array"):
        layer.backward([np.ones((3, 8), "complex64"), None, None])
    dx = layer.backward([np.ones((3, 8), "float32"), None, None])
    assert dx.shape == x.shape


def test_bidirectional_refuses_a_half_width_dy():
    layer = Bidirectional(GRU(6, return_sequences=True, seed=0))
    x = np.ones((2, 4, 3), "float32")
    y = layer.forward(x, training=True)
    assert y.shape == (2, 4, 12)
    with pytest.raises(ValueError, match=r"\(2, 4, 12\); got \(2, 4, 6\)"):
        layer.backward(np.ones((2, 4, 6), "float32"))
    assert layer.backward(np.ones((2, 4, 12), "float32")).shape == x.shape


def test_dense_and_embedding_refuse_wrong_dy():
    d = Dense(4)
    d.forward(np.ones((3, 5, 2), "float32"), training=True)
    with pytest.raises(ValueError, match=r"\(3, 5, 4\); got \(3, 1, 4\)"):
        d.backward(np.ones((3, 1, 4), "float32"))  # would have been broadcast
    e = Embedding(10, 4)
    e.forward(np.ones((3, 5), "int64"), training=True)
    with pytest.raises(ValueError, match=r"\(3, 5, 4\)"):
        e.backward(np.ones((3, 5, 2), "float32"))


@pytest.mark.skipif(not kernels.available(), reason="compiled loops not built")
def test_compiled_loops_check_every_array():
    """The C side checks item size, shape and contiguity itself: a wrong array given to it
    directly is a ValueError, never a read or write outside the array."""
    loops = kernels.loops._loops
    T, N, H = 5, 3, 4
    good = {
        "itemsize": 4,
        "T": T,
        "N": N,
        "H": H,
        "act": 1,
        "rec_act": 2,
        "threads": 1,
        "W": np.zeros((H, H), "float32"),
        "h": np.zeros((T + 1, N, H), "float32"),
        "xw": np.zeros((T, N, H), "float32"),
    }
    loops.forward("simple", dict(good))
    cases = {
        "h": np.zeros((T, N, H), "float32"),  # one step short
        "xw": np.zeros((T, N, H), "float64"),  # wrong item size
        "W": np.zeros((H, H + 1), "float32"),
        "xw ": None,
    }
    for key, value in cases.items():
        if key == "xw ":
            args = {k: v for k, v in good.items() if k != "xw"}
            with pytest.raises(ValueError, match="needs xw"):
                loops.forward("simple", args)
            continue
        with pytest.raises(ValueError, match=f"loop array {key}"):
            loops.forward("simple", {**good, key: value})
    with pytest.raises(ValueError, match="C-contiguous"):
        loops.forward(
            "simple", {**good, "h": np.zeros((N, T + 1, H), "float32").transpose(1, 0, 2)}
        )
    with pytest.raises(ValueError, match="loop array dout: expected shape"):
        loops.backward(
            "simple",
            {
                **good,
                "dout": np.zeros((T, N, H + 2), "float32"),
                "dxw": np.zeros((T, N, H), "float32"),
                "dh": np.zeros((N, H), "float32"),
            },
        )
    with pytest.raises(ValueError, match="shapes do not match"):
        loops.matmul(
            np.ones((3, 4), "float32"),
            np.ones((5, 2), "float32"),
            np.empty((3, 2), "float32"),
            0.0,
            1,
        )
    with pytest.raises(TypeError):
        loops.matmul(12345, np.ones((4, 2), "float32"), np.empty((3, 2), "float32"), 0.0, 1)


def _masked_model():
    rnnkit.set_seed(0)
    return Sequential(
        [Embedding(20, 8, mask_zero=True), LSTM(16, return_sequences=True), LSTM(16), Dense(3)]
    )


def _inputs():
    rng = np.random.default_rng(0)
    xs = []
    for stop in (9, 3):
        x = rng.integers(1, 20, (4, 12))
        x[:, stop:] = 0  # padding: different masks per thread
        xs.append(x)
    return xs


def test_each_thread_sees_its_own_mask():
    """What forward leaves behind (output_mask, the trace) belongs to the calling thread:
    another thread's forward in between does not change it (deterministic interleaving)."""
    emb = Embedding(20, 4, mask_zero=True)
    a, b = _inputs()
    emb.forward(a)
    t = threading.Thread(target=emb.forward, args=(b,))
    t.start()
    t.join()
    np.testing.assert_array_equal(emb.output_mask, a != 0)


def test_predict_from_two_threads_gives_each_its_own_answer():
    model = _masked_model()
    xs = _inputs()
    ref = [model.predict(x) for x in xs]
    wrong, errors = [0], []

    def work(k):
        try:
            for _ in range(200):
                if not np.allclose(model.predict(xs[k]), ref[k], rtol=1e-5, atol=1e-6):
                    wrong[0] += 1
        except Exception as e:  # pragma: no cover - what the test is for
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and wrong[0] == 0
