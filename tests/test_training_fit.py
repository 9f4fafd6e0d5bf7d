"""fit/evaluate/predict, truncated BPTT, callbacks and the errors fit raises up front."""

import copy

import numpy as np
import pytest

import rnnkit
from rnnkit import (
    GRU,
    LSTM,
    Bidirectional,
    Dense,
    Embedding,
    Sequential,
    SimpleRNN,
    callbacks,
    optim,
)
from rnnkit.training import tbptt_steps

rng = np.random.default_rng(3)


def seq_model(dtype="float64", cell=SimpleRNN, **kw):
    return Sequential(
        [cell(6, return_sequences=True, dtype=dtype, input_shape=[None, 2]), Dense(3, dtype=dtype)],
        **kw,
    )


def test_fit_learns_and_history_records_epochs_and_steps():
    x = rng.standard_normal((64, 10, 1)).astype("float32")
    y = x.sum(axis=1)  # a running sum to remember
    model = Sequential([SimpleRNN(8, input_shape=[None, 1]), Dense(1)])
    model.compile(loss="mse", optimizer=optim.Adam(0.02, clip_global_norm=1.0), metrics=["mae"])
    h = model.fit(x, y, epochs=25, batch_size=16, validation_split=0.25, verbose=0)
    assert set(h.history) >= {
        "loss",
        "mae",
        "val_loss",
        "val_mae",
        "grad_norm_mean",
        "clip_fraction",
        "clip_scale_mean",
    }
    assert len(h.history["loss"]) == 25 and h.epoch == list(range(25))
    assert h.history["loss"][-1] < 0.2 * h.history["loss"][0]
    assert len(h.steps["loss"]) == 25 * 3  # 48 training samples / 16
    assert all(isinstance(c, bool) for c in h.steps["clipped"])
    assert any(h.steps["clipped"]) and all(n >= 0 for n in h.steps["grad_norm"])
    frac = np.mean(h.steps["clipped"][:3])
    assert h.history["clip_fraction"][0] == pytest.approx(frac)
    assert model.evaluate(x, y, return_dict=True)["loss"] == pytest.approx(model.evaluate(x, y)[0])
    assert model.predict(x, batch_size=7).shape == (64, 1)


def test_tbptt_with_k2_at_least_T_equals_full_bptt_exactly():
    model = seq_model()
    model.compile(loss="mse", optimizer="sgd")
    x, y = rng.standard_normal((3, 9, 2)), rng.standard_normal((3, 9, 3))
    out = model.forward(x, training=True)
    value, dy = model.loss(y, out)
    model.backward(dy)
    full = {k: g.copy() for k, g in model.grads.items()}
    for k1 in (2, 3, 4, 9):
        total = {k: 0.0 for k in full}
        for _ in tbptt_steps(model, x, y, k1=k1, k2=9, apply=False):
            for k, g in model.grads.items():
                total[k] = total[k] + g
        for k in full:
            np.testing.assert_allclose(total[k], full[k], rtol=1e-12, atol=1e-14)


def test_tbptt_k1_equals_k2_is_chunked_training_with_carried_state():
    model = seq_model()
    model.compile(loss="mse", optimizer=optim.SGD(0.0))
    x, y = rng.standard_normal((2, 8, 2)), rng.standard_normal((2, 8, 3))
    full_out = model.forward(x)
    outs = [o for _, o, _, _ in tbptt_steps(model, x, y, k1=3, k2=3, apply=False)]
    np.testing.assert_allclose(np.concatenate(outs, axis=1), full_out, rtol=1e-12)
    # chunks of 3 steps: the gradient of the first chunk ignores the later steps
    grads = []
    for _ in tbptt_steps(model, x, y, k1=3, k2=3, apply=False):
        grads.append({k: g.copy() for k, g in model.grads.items()})
    first = model.forward(x[:, :3], training=True)
    model.backward(model.loss(y[:, :3], first)[1])
    for k in grads[0]:
        np.testing.assert_allclose(grads[0][k], model.grads[k], rtol=1e-12)


def test_tbptt_overlapping_windows_see_k2_steps():
    model = seq_model()
    model.compile(loss="mse", optimizer="sgd")
    x, y = rng.standard_normal((2, 10, 2)), rng.standard_normal((2, 10, 3))
    steps = list(tbptt_steps(model, x, y, k1=2, k2=5, apply=False))
    assert len(steps) == 5 and all(o.shape[1] == 2 for _, o, _, _ in steps)
    # the last update backpropagates through steps 5..9 from the state at step 5
    model2 = copy.deepcopy(model)
    model2.forward(x[:, :5])
    state5 = model2.layers[0].final_states
    last = model2.layers[0].forward(x[:, 5:], training=True, initial_state=state5)
    np.testing.assert_allclose(
        last[:, 3:], model.layers[0].forward(x[:, 5:], initial_state=state5)[:, 3:]
    )


def test_fit_with_tbptt_trains_and_refuses_bidirectional():
    x = rng.standard_normal((16, 20, 2)).astype("float32")
    y = np.cumsum(x, axis=1)[..., :1] * 0.3
    model = Sequential([GRU(8, return_sequences=True, input_shape=[None, 2]), Dense(1)])
    model.compile(loss="mse", optimizer=optim.Adam(0.02))
    h = model.fit(x, y, epochs=15, batch_size=8, tbptt=(5, 10), verbose=0)
    assert len(h.steps["loss"]) == 15 * 2 * 4
    assert h.history["loss"][-1] < 0.5 * h.history["loss"][0]
    bi = Sequential([Bidirectional(GRU(4, return_sequences=True), input_shape=[None, 2]), Dense(1)])
    bi.compile(loss="mse")
    with pytest.raises(ValueError, match="tbptt carries state forward"):
        bi.fit(x, y, tbptt=5, verbose=0)
    with pytest.raises(ValueError, match="k2 ≥ k1 ≥ 1"):
        model.fit(x, y, tbptt=(5, 3), verbose=0)
    seq2vec = Sequential([GRU(4, input_shape=[None, 2]), Dense(1)])
    seq2vec.compile(loss="mse")
    with pytest.raises(ValueError, match="tbptt needs a sequence-to-sequence model"):
        seq2vec.fit(x, y[:, -1], tbptt=5, verbose=0)


def test_fit_refuses_bad_inputs_before_training():
    model = Sequential([SimpleRNN(4, input_shape=[None, 2]), Dense(3, activation="softmax")])
    model.compile(loss="sparse_categorical_crossentropy", optimizer="adam")
    before = [w.copy() for w in model.get_weights()]
    x = rng.standard_normal((10, 5, 2))
    with pytest.raises(ValueError, match="x has 10 samples but y has 9"):
        model.fit(x, np.zeros(9, int), verbose=0)
    with pytest.raises(ValueError, match=r"label 3 is outside \[0, 3\)"):
        model.fit(x, np.r_[np.zeros(9, int), 3], verbose=0)
    with pytest.raises(ValueError, match="integer targets must have shape"):
        model.fit(x, np.zeros((10, 5)), verbose=0)
    with pytest.raises(
        ValueError, match="has 3 features in its last axis, but the layer was built for 2"
    ):
        model.fit(rng.standard_normal((10, 5, 3)), np.zeros(10, int), verbose=0)
    mse = Sequential([SimpleRNN(4, input_shape=[None, 2]), Dense(1)])
    mse.compile(loss="mse")
    with pytest.raises(ValueError, match=r"targets must have the model's output shape \(10, 1\)"):
        mse.fit(x, np.zeros((10, 5, 1)), verbose=0)
    with pytest.raises(RuntimeError, match="call compile"):
        Sequential([Dense(1)]).fit(x, np.zeros((10, 1)))
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_fit_checks_the_whole_data_set_before_training():
    """Bad values anywhere in x or y (not just in the first batch) stop fit before any
    update, named by their index in the data set."""
    model = Sequential([SimpleRNN(3, input_shape=[None, 1]), Dense(1)])
    model.compile(loss="mse", optimizer="sgd")
    before = [w.copy() for w in model.get_weights()]
    x = rng.standard_normal((10, 4, 1))
    bad = x.copy()
    bad[7, 0, 0] = np.nan
    with pytest.raises(
        ValueError, match=r"x holds non-finite values .* index \(7, 0, 0\) \(sample 7\)"
    ):
        model.fit(bad, np.ones((10, 1)), batch_size=2, shuffle=False, verbose=0)
    y = np.ones((10, 1))
    y[3] = np.inf
    with pytest.raises(ValueError, match=r"y holds non-finite values .* \(sample 3\)"):
        model.fit(x, y, verbose=0)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    emb = Sequential([Embedding(5, 3), LSTM(2), Dense(1)])
    emb.compile(loss="mse", optimizer="sgd")
    ids = np.ones((10, 4), int)
    ids[6, 2] = 7
    with pytest.raises(
        ValueError, match=r"token id 7 at index \(6, 2\) \(sample 6\).*ids 0 \.\. 4"
    ):
        emb.fit(ids, np.ones((10, 1)), verbose=0)
    with pytest.raises(ValueError, match="EarlyStopping monitors 'val_loss'.*validation_data"):
        model.fit(x, np.ones((10, 1)), callbacks=[callbacks.EarlyStopping()], verbose=0)


def test_tbptt_epoch_loss_is_the_sequences_loss():
    """With tbptt the epoch's loss adds up the chunks of each sequence (L = Σ_t L_t), so it
    equals val_loss on the same data when nothing is learned (learning rate 0)."""
    x = rng.standard_normal((16, 20, 2))
    y = rng.standard_normal((16, 20, 3))
    for reduction in ("sum", "mean"):
        model = seq_model(cell=GRU)
        model.compile(
            loss=rnnkit.losses.get("mse")
            if reduction == "sum"
            else rnnkit.losses.MeanSquaredError(time_reduction="mean"),
            optimizer=optim.SGD(0.0),
        )
        for tb in [(5, 5), (4, 10)]:
            h = model.fit(
                x, y, tbptt=tb, validation_data=(x, y), batch_size=8, shuffle=False, verbose=0
            )
            assert h.history["loss"][0] == pytest.approx(h.history["val_loss"][0], rel=1e-12)


def test_a_non_finite_gradient_is_never_applied(capsys):
    model = seq_model()
    model.compile(loss="mse", optimizer=optim.Adam(1e-3))
    model(rng.standard_normal((2, 3, 2)))
    params = model.trainable_params()
    before = {k: p.copy() for k, p in params.items()}
    grads = {k: np.zeros_like(p) for k, p in params.items()}
    next(iter(grads.values()))[0, 0] = np.nan
    record = model.optimizer.apply(params, grads)
    assert record["skipped"] and not np.isfinite(record["grad_norm"])
    assert all(np.array_equal(before[k], params[k]) for k in params)
    cb = callbacks.TerminateOnNaN()
    cb.set_model(model)
    model.stop_training = False
    cb.on_batch_end(0, {"loss": 1.0, **record})
    assert model.stop_training and "gradient norm became nan" in capsys.readouterr().out


def test_terminate_on_nan_stops_before_the_bad_update(capsys):
    x = rng.standard_normal((8, 4, 1)) * 1e30
    model = Sequential([SimpleRNN(3, activation="linear", input_shape=[None, 1]), Dense(1)])
    model.compile(loss="mse", optimizer=optim.SGD(1e10))
    h = model.fit(
        x.astype("float32"), np.ones((8, 1), "float32") * 1e30, epochs=5, batch_size=4, verbose=0
    )
    out = capsys.readouterr().out
    assert "TerminateOnNaN" in out and "epoch 1" in out and "step" in out
    assert len(h.history.get("loss", [])) <= 1
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())


def test_early_stopping_checkpoint_and_csv(tmp_path):
    x = rng.standard_normal((40, 6, 2)).astype("float32")
    y = rng.standard_normal((40, 1)).astype("float32")  # noise: validation cannot improve long
    model = Sequential([LSTM(16, input_shape=[None, 2]), Dense(1)])
    model.compile(loss="mse", optimizer=optim.Adam(0.05))
    es = callbacks.EarlyStopping(patience=1, restore_best_weights=True)
    ck = callbacks.ModelCheckpoint(tmp_path / "ck-{epoch:02d}.rnnkit")
    log = callbacks.CSVLogger(tmp_path / "log.csv")
    h = model.fit(
        x[:30],
        y[:30],
        validation_data=(x[30:], y[30:]),
        epochs=50,
        verbose=0,
        callbacks=[es, ck, log],
    )
    n = len(h.epoch)
    assert es.stopped_epoch is not None and n < 50
    assert model.evaluate(x[30:], y[30:]) == pytest.approx(min(h.history["val_loss"]), rel=1e-5)
    assert sorted(p.name for p in tmp_path.glob("ck-*.rnnkit")) == [
        f"ck-{i:02d}.rnnkit" for i in range(1, n + 1)
    ]
    rows = (tmp_path / "log.csv").read_text().strip().splitlines()
    assert rows[0].startswith("epoch,") and "val_loss" in rows[0] and len(rows) == n + 1


def test_set_seed_makes_training_reproducible():
    x = rng.standard_normal((32, 5, 2)).astype("float32")
    y = rng.integers(0, 3, 32)

    def train():
        rnnkit.set_seed(7)
        m = Sequential(
            [
                GRU(8, dropout=0.3, recurrent_dropout=0.3, input_shape=[None, 2]),
                rnnkit.Dropout(0.2),
                Dense(3),
            ]
        )
        m.compile(loss="sparse_categorical_crossentropy", from_logits=True, optimizer="adam")
        m.fit(x, y, epochs=3, batch_size=8, verbose=0)
        return m.get_weights()

    for a, b in zip(train(), train()):
        np.testing.assert_array_equal(a, b)


def test_masked_steps_do_not_change_training():
    """Padding with a mask trains exactly as the unpadded batch does."""
    ids = np.array([[3, 4, 5, 0, 0], [1, 2, 0, 0, 0]])
    y = np.array([[4, 5, 6, 0, 0], [2, 3, 0, 0, 0]])

    def model():
        rnnkit.set_seed(5)
        m = Sequential([Embedding(8, 4, mask_zero=True), GRU(5, return_sequences=True), Dense(8)])
        m.compile(
            loss="sparse_categorical_crossentropy", from_logits=True, optimizer=optim.SGD(0.1)
        )
        return m

    a = model()
    a.train_on_batch(ids, y)
    b = model()
    b.train_on_batch(ids[:, :3], y[:, :3])
    for u, v in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-7)


def test_history_plot(tmp_path):
    x = rng.standard_normal((16, 4, 1)).astype("float32")
    model = Sequential([SimpleRNN(4, input_shape=[None, 1]), Dense(1)])
    model.compile(loss="mse", metrics=["mae"])
    h = model.fit(x, x[:, -1], epochs=3, validation_split=0.25, verbose=0)
    path = h.plot(tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path


def test_progress_bar_is_shown(capsys):
    x = rng.standard_normal((16, 4, 1)).astype("float32")
    model = Sequential([SimpleRNN(4, input_shape=[None, 1]), Dense(1)])
    model.compile(loss="mse", metrics=["mae"])
    model.fit(x, x[:, -1], epochs=2, batch_size=4, verbose=1)
    out = capsys.readouterr().out
    assert "Epoch 2/2" in out and "4/4 [" in out and "loss:" in out and "steps/s" in out
