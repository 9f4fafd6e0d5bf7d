"""Model files: exact round trips, resumed training that follows the same trajectory
bit for bit, atomic writes, and clear errors for corrupted or foreign files."""

import json
import zipfile

import numpy as np
import pytest

import rnnkit
from rnnkit import (
    GRU,
    LSTM,
    Bidirectional,
    Dense,
    Dropout,
    Embedding,
    EncoderDecoder,
    Masking,
    Sequential,
    SimpleRNN,
    TimeDistributed,
    optim,
)
from rnnkit.io.saving import ModelFileError

rng = np.random.default_rng(5)


def build(seed=1):
    rnnkit.set_seed(seed)
    m = Sequential(
        [
            Masking(0.0, input_shape=[None, 3]),
            Bidirectional(
                LSTM(6, return_sequences=True, dropout=0.2, recurrent_dropout=0.2), merge_mode="sum"
            ),
            GRU(5, reset_after=False, return_sequences=True),
            Dropout(0.1),
            TimeDistributed(Dense(4, activation="softmax")),
        ]
    )
    m.compile(
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        optimizer=optim.Adam(optim.ExponentialDecay(0.01, 5, 0.9), clip_global_norm=2.0),
    )
    return m


X = rng.standard_normal((40, 7, 3)).astype("float32")
X[:5, 5:] = 0.0  # padded steps
Y = rng.integers(0, 4, (40, 7))


def test_round_trip_predicts_exactly(tmp_path):
    m = build()
    m.fit(X, Y, epochs=1, verbose=0)
    path = m.save(tmp_path / "model.rnnkit")
    loaded = rnnkit.load_model(path)
    np.testing.assert_array_equal(loaded.predict(X), m.predict(X))
    assert [l.name for l in loaded.layers] == [l.name for l in m.layers]
    assert loaded.optimizer.iterations == m.optimizer.iterations
    assert loaded.loss.get_config() == m.loss.get_config()


def test_resumed_training_is_bit_for_bit_the_uninterrupted_one(tmp_path):
    straight = build()
    straight.fit(X, Y, epochs=4, batch_size=8, verbose=0)
    first = build()
    first.fit(X, Y, epochs=2, batch_size=8, verbose=0)
    first.save(tmp_path / "half.rnnkit")
    resumed = rnnkit.load_model(tmp_path / "half.rnnkit")
    resumed.fit(X, Y, epochs=4, initial_epoch=2, batch_size=8, verbose=0)
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_stateful_states_and_encoder_decoder_round_trip(tmp_path):
    m = Sequential([LSTM(4, stateful=True, input_shape=[None, 2]), Dense(1)])
    m.predict(rng.standard_normal((3, 5, 2)))
    m.save(tmp_path / "s.rnnkit")
    loaded = rnnkit.load_model(tmp_path / "s.rnnkit")
    for a, b in zip(m.layers[0].states, loaded.layers[0].states):
        np.testing.assert_array_equal(a, b)
    ed = EncoderDecoder(9, 7, units=5, embed_dim=3, cell="gru")
    src, tgt = rng.integers(1, 9, (4, 5)), rng.integers(1, 7, (4, 6))
    ed.forward((src, tgt))
    ed.save(tmp_path / "ed.rnnkit")
    ed2 = rnnkit.load_model(tmp_path / "ed.rnnkit")
    np.testing.assert_array_equal(ed2.forward((src, tgt)), ed.forward((src, tgt)))


def test_save_is_atomic_and_never_pickles(tmp_path, monkeypatch):
    m = build()
    path = tmp_path / "m.rnnkit"
    m.save(path)
    good = path.read_bytes()

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        m.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == good  # the old file is intact
    assert not [p for p in tmp_path.iterdir() if p.name != "m.rnnkit"]  # no temporary left
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            with z.open(name) as f:
                assert np.lib.format.read_magic(f)  # plain .npy members
                header = np.lib.format.read_array_header_1_0(f) if True else None
                assert header[2] != np.dtype(object)


def test_corrupted_truncated_and_foreign_files(tmp_path):
    m = build()
    path = m.save(tmp_path / "m.rnnkit")
    data = (tmp_path / "m.rnnkit").read_bytes()
    (tmp_path / "trunc.rnnkit").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="corrupted, truncated or of another format"):
        rnnkit.load_model(tmp_path / "trunc.rnnkit")
    (tmp_path / "text.rnnkit").write_text("hello")
    with pytest.raises(ModelFileError, match="not a readable rnnkit model file"):
        rnnkit.load_model(tmp_path / "text.rnnkit")
    np.savez(tmp_path / "foreign.npz", a=np.zeros(3))
    with pytest.raises(ModelFileError, match="not an rnnkit model file"):
        rnnkit.load_model(tmp_path / "foreign.npz")
    with pytest.raises(FileNotFoundError, match="no model file"):
        rnnkit.load_model(tmp_path / "missing.rnnkit")
    # a file from a newer format version
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    header = json.loads(bytes(arrays["__rnnkit__"]).decode())
    header["format_version"] = 99
    arrays["__rnnkit__"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    np.savez(tmp_path / "future.npz", **arrays)
    with pytest.raises(ModelFileError, match="Upgrade rnnkit"):
        rnnkit.load_model(tmp_path / "future.npz")
    # weights that do not fit the architecture
    arrays = {k: v for k, v in arrays.items()}
    header["format_version"] = 1
    arrays["__rnnkit__"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    key = next(k for k in arrays if k.startswith("params/"))
    arrays[key] = np.zeros((1, 1), np.float32)
    np.savez(tmp_path / "wrong.npz", **arrays)
    with pytest.raises(ModelFileError, match="has shape"):
        rnnkit.load_model(tmp_path / "wrong.npz")


def test_summary_counts_match_keras():
    m = Sequential(
        [SimpleRNN(20, return_sequences=True, input_shape=[None, 1]), SimpleRNN(20), Dense(1)]
    )
    text = m.summary(print_fn=None)
    # Keras 3.15 prints 440, 820 and 21 for this model (the lecture's deep RNN)
    assert "440" in text and "820" in text and "│            21 │" in text
    assert "Total params: 1,281 (5.00 KB)" in text
    m2 = Sequential(
        [
            Embedding(100, 8, mask_zero=True),
            Bidirectional(GRU(5, return_sequences=True)),
            TimeDistributed(Dense(3)),
        ]
    )
    m2.forward(np.zeros((1, 3), int))
    assert "Total params: 1,283 (5.01 KB)" in m2.summary(print_fn=None)
