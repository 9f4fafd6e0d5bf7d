"""Issue 15, training: no figure for work that was not done, no silent wrong number, and
refusals that name the argument.  Each test failed before its fix."""

import csv

import numpy as np
import pytest

import rnnkit
from rnnkit import LSTM, Dense, Sequential, SimpleRNN, losses, optim
from rnnkit import callbacks as cb
from rnnkit.seeding import set_seed
from rnnkit.seq2seq import EncoderDecoder, shift_targets


def data(n=16, T=5, D=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, T, D)), rng.standard_normal((n, 1))


def small(lr=0.01, opt=None):
    set_seed(0)
    m = Sequential([SimpleRNN(3, input_shape=[None, 2]), Dense(1)])
    m.compile("mse", opt or optim.Adam(lr))
    return m


# -- 4. wrong numbers reported as real ----------------------------------------------------------
def test_an_epoch_stopped_by_terminate_on_nan_is_not_logged_as_a_loss_of_zero(tmp_path):
    """One batch per epoch: epoch 1 trains (SGD at 1e30), epoch 2's first loss is inf and
    TerminateOnNaN stops before any update.  That epoch logged loss 0.0 before, which
    CSVLogger wrote and ModelCheckpoint(save_best_only) saved as the best epoch."""
    x, y = data()
    m = small(opt=optim.SGD(1e30))
    log = tmp_path / "log.csv"
    ckpt = cb.ModelCheckpoint(tmp_path / "ckpt-{epoch}.rnnkit", monitor="loss", save_best_only=True)
    stop = cb.EarlyStopping(monitor="loss", patience=5)
    with np.errstate(all="ignore"):
        h = m.fit(
            x,
            y,
            batch_size=16,
            epochs=3,
            verbose=0,
            shuffle=False,
            callbacks=[cb.CSVLogger(log), ckpt, stop],
        )
    assert len(h.history["loss"]) == 2
    assert np.isfinite(h.history["loss"][0]) and h.history["loss"][0] > 0
    assert not np.isfinite(h.history["loss"][1])  # the truth: the loss blew up
    assert "TerminateOnNaN" in h.stop_reason and "epoch 2" in h.stop_reason
    rows = list(csv.DictReader(open(log)))
    assert float(rows[1]["loss"]) != 0.0 and not np.isfinite(float(rows[1]["loss"]))
    assert sorted(p.name for p in tmp_path.glob("ckpt-*")) == ["ckpt-1.rnnkit"]
    assert ckpt.best == h.history["loss"][0] and stop.best_epoch == 0


def test_no_update_at_all_logs_nan_not_zero():
    x, y = data()
    m = small(opt=optim.SGD(1e30))
    m.layers[1].params["c"][...] = np.inf  # the first loss is not finite
    with np.errstate(all="ignore"):
        h = m.fit(x, y, batch_size=16, epochs=2, verbose=0)
    assert len(h.history["loss"]) == 1 and not np.isfinite(h.history["loss"][0])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -1.0])
def test_sample_weight_must_be_finite_and_not_negative(bad):
    x, y = data()
    sw = np.ones(16)
    sw[3] = bad
    m = small()
    before = [w.copy() for w in m.get_weights()]
    with pytest.raises(ValueError, match=r"fit: sample_weight .*index \(3,\)"):
        m.fit(x, y, sample_weight=sw, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, m.get_weights()))
    with pytest.raises(ValueError, match="evaluate: sample_weight"):
        m.evaluate(x, y, sample_weight=sw)
    with pytest.raises(ValueError, match="sample_weight must be finite"):
        m.train_on_batch(x, y, sample_weight=sw)
    with pytest.raises(ValueError, match="sample_weight must be finite"):
        losses.get("mse")(y, np.zeros_like(y), sample_weight=sw)


def test_evaluate_refuses_zero_samples_and_bad_batch_sizes():
    x, y = data()
    m = small()
    with pytest.raises(ValueError, match="evaluate: x has no samples"):
        m.evaluate(x[:0], y[:0])
    for bs in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="evaluate: batch_size must be a positive integer"):
            m.evaluate(x, y, batch_size=bs)
        with pytest.raises(ValueError, match="predict: batch_size must be a positive integer"):
            m.predict(x, batch_size=bs)
        with pytest.raises(ValueError, match="fit: batch_size must be a positive integer"):
            m.fit(x, y, batch_size=bs, verbose=0)
    # the figures that are reported are the right ones: 16 samples in batches of 5
    full = m.evaluate(x, y, batch_size=16)
    assert m.evaluate(x, y, batch_size=5) == pytest.approx(full, rel=1e-5)
    assert full == pytest.approx(float(np.mean((m.predict(x)[:, 0] - y[:, 0]) ** 2)), rel=1e-5)


def test_predict_on_zero_samples_is_a_clear_error_as_in_keras():
    x, _ = data()
    with pytest.raises(ValueError, match=r"predict: x has no samples \(shape \(0, 5, 2\)\)"):
        small().predict(x[:0])


@pytest.mark.parametrize("epochs", [2.5, -1, "3", None, True])
def test_epochs_must_be_an_integer(epochs):
    x, y = data()
    with pytest.raises(ValueError, match="fit: epochs must be an integer ≥ 0"):
        small().fit(x, y, epochs=epochs, verbose=0)
    with pytest.raises(ValueError, match="fit: initial_epoch must be an integer ≥ 0"):
        small().fit(x, y, epochs=2, initial_epoch=-1, verbose=0)


def test_nan_in_validation_data_is_refused_like_nan_in_training_data():
    x, y = data()
    vx, vy = x.copy(), y.copy()
    vx[2, 1, 0] = np.nan
    m = small()
    with pytest.raises(ValueError, match=r"validation_data's x holds non-finite .*\(2, 1, 0\)"):
        m.fit(x, y, validation_data=(vx, vy), verbose=0)
    vy[5, 0] = np.inf
    with pytest.raises(ValueError, match=r"validation_data's y holds non-finite .*sample 5"):
        m.fit(x, y, validation_data=(x, vy), verbose=0)
    with pytest.raises(ValueError, match="validation_data has no samples"):
        m.fit(x, y, validation_data=(x[:0], y[:0]), verbose=0)
    with pytest.raises(ValueError, match="validation_data: sample_weight must be finite"):
        m.fit(x, y, validation_data=(x, y, np.full(16, np.nan)), verbose=0)


# -- logits and probabilities ----------------------------------------------------------------------
def _reversal(n, rng, V=8, T=4):
    """Reverse strings of digits 3..V-1: source ids, and the target with start (1)/end (2)."""
    s = rng.integers(3, V, size=(n, T))
    t = np.concatenate([np.ones((n, 1), int), s[:, ::-1], np.full((n, 1), 2)], axis=1)
    return s, t


def test_encoder_decoder_reads_its_logits_as_logits():
    """compile() without from_logits gave a loss on probabilities that clipped the logits
    and learned nothing: 0 % exact matches on reversing unseen strings, where from_logits
    gives most of them.  A cross-entropy given by name now reads logits, and one set up for
    probabilities is refused."""
    rng = np.random.default_rng(0)
    s, t = _reversal(600, rng)
    ti, to = shift_targets(t)
    set_seed(0)
    m = EncoderDecoder(8, 8, units=32, embed_dim=8)
    m.compile("sparse_categorical_crossentropy", optim.Adam(0.02), ignore_class=0)
    assert m.loss.from_logits is True
    m.fit([s, ti], to, batch_size=32, epochs=12, verbose=0)
    vs, vt = _reversal(100, np.random.default_rng(1))
    got = m.generate(vs, max_length=6)
    exact = np.mean([g == list(r[1:-1]) for g, r in zip(got, vt)])
    assert exact > 0.5, exact
    for bad in [dict(from_logits=False), {}]:
        with pytest.raises(ValueError, match="outputs are logits.*from_logits=True"):
            loss = losses.get("sparse_categorical_crossentropy", **bad)
            EncoderDecoder(8, 8, units=4, embed_dim=4).compile(loss)
    with pytest.raises(ValueError, match="from_logits=False"):
        EncoderDecoder(8, 8, units=4).compile("categorical_crossentropy", from_logits=False)


def test_a_loss_on_probabilities_refuses_logits_before_training():
    x, _ = data()
    y = np.arange(16) % 3
    set_seed(0)
    m = Sequential([SimpleRNN(4, input_shape=[None, 2]), Dense(3)])  # linear head: logits
    m.compile("sparse_categorical_crossentropy")
    before = [w.copy() for w in m.get_weights()]
    with pytest.raises(ValueError, match="look like logits.*from_logits=True"):
        m.fit(x, y, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, m.get_weights()))
    with pytest.raises(ValueError, match="look like logits"):
        losses.get("binary_crossentropy")(np.zeros((2, 1)), np.array([[0.5], [1.5]]))
    m.compile("sparse_categorical_crossentropy", from_logits=True)
    assert np.isfinite(m.fit(x, y, verbose=0).history["loss"][0])


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(method="beam", beam_width=0), "beam_width must be a positive integer"),
        (dict(method="beam", beam_width=-2), "beam_width must be a positive integer"),
        (dict(method="beam", beam_width=10**9), "beam_width must be at most"),
        (dict(max_length=0), "max_length must be a positive integer"),
        (dict(max_length=10**12), "max_length must be at most"),
        (dict(method="beam", length_penalty=float("nan")), "length_penalty must be a finite"),
    ],
)
def test_generate_checks_its_arguments(kwargs, match):
    m = EncoderDecoder(8, 8, units=4, embed_dim=4)
    with pytest.raises(ValueError, match=match):
        m.generate(np.array([[3, 4, 5]]), **kwargs)
    assert len(m.generate(np.array([[3, 4, 5]]), method="beam", beam_width=1, max_length=3)) == 1


# -- 5. stateful models ------------------------------------------------------------------------------
def _stateful():
    set_seed(0)
    m = Sequential([LSTM(4, return_sequences=True, stateful=True, input_shape=[None, 2]), Dense(1)])
    m.compile("mse", optim.Adam(0.01))
    return m


def test_a_stateful_model_fits_twice_and_resumes_exactly_after_save_and_load(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((16, 5, 2)), rng.standard_normal((16, 5, 1))
    a = _stateful()
    a.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    a.fit(x, y, batch_size=8, epochs=2, initial_epoch=1, shuffle=False, verbose=0)  # again
    b = _stateful()
    b.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    b.save(tmp_path / "b.rnnkit")
    c = rnnkit.load_model(tmp_path / "b.rnnkit")
    assert np.array_equal(c.layers[0].states[0], b.layers[0].states[0])  # state carried over
    c.fit(x, y, batch_size=8, epochs=2, initial_epoch=1, shuffle=False, verbose=0)
    for wa, wc in zip(a.get_weights(), c.get_weights()):
        assert np.array_equal(wa, wc)  # exact resume
    assert np.array_equal(a.layers[0].states[0], c.layers[0].states[0])
    with pytest.raises(ValueError, match="carries state for a batch of 8; got batch_size=4"):
        c.fit(x, y, batch_size=4, verbose=0)
    with pytest.raises(ValueError, match="do not divide into batches of 6"):
        _stateful().fit(x, y, batch_size=6, verbose=0)


def test_an_epoch_stopped_by_a_callback_logs_the_mean_of_the_updates_done():
    """A callback stops training after the second of four updates: the epoch's loss is the
    mean over both updates, not over the one before the stop."""

    class StopAfter(cb.Callback):
        def on_batch_end(self, step, logs=None):
            if step == 1:
                self.model.stop_training = True

    x, y = data()
    h = small().fit(x, y, batch_size=4, epochs=3, verbose=0, shuffle=False, callbacks=[StopAfter()])
    assert len(h.steps["loss"]) == 2 and len(h.history["loss"]) == 1
    assert h.history["loss"][0] == pytest.approx(np.mean(h.steps["loss"]), rel=1e-12)


@pytest.mark.parametrize("callbacks", [cb.CSVLogger("x.csv"), "TerminateOnNaN", [print], [None]])
def test_callbacks_that_are_not_a_list_of_callbacks_are_named(callbacks):
    x, y = data()
    with pytest.raises(TypeError, match="fit: callbacks must be"):
        small().fit(x, y, callbacks=callbacks, verbose=0)


def test_tbptt_of_non_integers_and_a_checkpoint_name_that_cannot_be_filled(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((4, 6, 2)), rng.standard_normal((4, 6, 1))
    set_seed(0)
    m = Sequential([SimpleRNN(3, return_sequences=True, input_shape=[None, 2]), Dense(1)])
    m.compile("mse")
    for bad in [(2.5, 3), (2, 3.9), 2.5, (True, 2)]:
        with pytest.raises(ValueError, match="fit: tbptt must be k or"):
            m.fit(x, y, tbptt=bad, verbose=0)
    ckpt = cb.ModelCheckpoint(tmp_path / "m-{val_loss:.2f}.rnnkit", monitor="loss")
    with pytest.raises(
        ValueError,
        match=r"ModelCheckpoint: filepath .* cannot be filled in "
        r"\(KeyError: 'val_loss'\).*'loss'",
    ):
        m.fit(x, y, callbacks=[ckpt], verbose=0)
