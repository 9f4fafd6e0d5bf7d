"""Keras 3 files in and out, checked against Keras itself (on its PyTorch backend).

Keras builds the models and writes the files; rnnkit loads them with from_keras
and must predict what Keras predicts (float32: max abs difference ≤ 1e-5; the
observed differences are ~1e-7).  The other way, rnnkit writes with to_keras and
keras.saving.load_model must load the file and predict what rnnkit predicts.
"""

import os

os.environ["KERAS_BACKEND"] = "torch"

import json
import zipfile

import keras  # noqa: E402  (after KERAS_BACKEND)
import numpy as np
import pytest
from keras import layers as K

import rnnkit as rk
from rnnkit.io import from_keras, to_keras
from rnnkit.io.keras import KerasFormatError

from helpers import max_diff, padded_floats, padded_ids, randomize

TOL32 = 1e-5
SIZES = [(3, 7), (1, 11)]  # (batch, time): both sizes through the same model


def randomize_keras(model, seed=0):
    """Non-zero weights everywhere (Keras starts biases at zero)."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        w.assign(rng.normal(0.0, 0.5, tuple(w.shape)).astype(w.dtype))


def keras_predict(model, x):
    y = model(x, training=False)
    if isinstance(y, (list, tuple)):
        return [keras.ops.convert_to_numpy(v) for v in y]
    return keras.ops.convert_to_numpy(y)


# ---- Keras models, each with the kind of input it takes ----------------------------------

D, VOCAB = 4, 12


def seq_input():
    return keras.Input((None, D))


def id_input():
    return keras.Input((None,), dtype="int32")


KERAS_MODELS = {
    # SimpleRNN with every activation rnnkit computes exactly as Keras does
    **{
        f"simple_rnn_{act}": (
            lambda act=act: [
                seq_input(),
                K.SimpleRNN(5, activation=act, return_sequences=True),
                K.SimpleRNN(3, activation=act),
                K.Dense(2),
            ],
            "float",
        )
        for act in ("tanh", "relu", "sigmoid", "linear", "softsign", "hard_sigmoid")
    },
    "lstm_stack_go_backwards": (
        lambda: [
            seq_input(),
            K.LSTM(6, return_sequences=True),
            K.LSTM(5, return_sequences=True, go_backwards=True),
            K.LSTM(4),
            K.Dense(3, activation="softmax"),
        ],
        "float",
    ),
    "lstm_activations": (
        lambda: [
            seq_input(),
            K.LSTM(
                4,
                activation="relu",
                recurrent_activation="hard_sigmoid",
                return_sequences=True,
                unit_forget_bias=False,
            ),
            K.Dense(2),
        ],
        "float",
    ),
    **{
        f"gru_reset_after_{ra}": (
            lambda ra=ra: [
                seq_input(),
                K.GRU(5, return_sequences=True, reset_after=ra),
                K.GRU(4, go_backwards=True, reset_after=ra),
                K.Dense(2, activation="sigmoid"),
            ],
            "float",
        )
        for ra in (True, False)
    },
    "no_bias": (
        lambda: [
            seq_input(),
            K.LSTM(4, use_bias=False, return_sequences=True),
            K.GRU(3, use_bias=False, return_sequences=True),
            K.GRU(3, use_bias=False, reset_after=False, return_sequences=True),
            K.SimpleRNN(3, use_bias=False),
            K.Dense(2, use_bias=False),
        ],
        "float",
    ),
    "embedding_mask_sequences": (
        lambda: [
            id_input(),
            K.Embedding(VOCAB, 6, mask_zero=True),
            K.LSTM(5, return_sequences=True),
            K.GRU(4, return_sequences=True, go_backwards=True),
            K.TimeDistributed(K.Dense(3, activation="tanh")),
            K.Dropout(0.3),
            K.SimpleRNN(3, return_sequences=True),
        ],
        "ids",
    ),
    "embedding_mask_vector": (
        lambda: [
            id_input(),
            K.Embedding(VOCAB, 5, mask_zero=True),
            K.GRU(4, reset_after=False),
            K.Dense(3, activation="softmax"),
        ],
        "ids",
    ),
    "embedding_no_mask": (
        lambda: [
            id_input(),
            K.Embedding(VOCAB, 5),
            K.SimpleRNN(4, return_sequences=True),
            K.Dense(2),
        ],
        "ids",
    ),
    "masking": (
        lambda: [
            seq_input(),
            K.Masking(0.0),
            K.SimpleRNN(5, return_sequences=True),
            K.Dropout(0.5),
            K.LSTM(4, return_sequences=True, go_backwards=True),
            K.LSTM(3),
            K.Dense(2),
        ],
        "float",
    ),
    "masking_value": (
        lambda: [seq_input(), K.Masking(0.5), K.GRU(3, return_sequences=True), K.Dense(2)],
        "float",
    ),
    **{
        f"bidirectional_{mode}": (
            lambda mode=mode: [
                seq_input(),
                K.Masking(0.0),
                K.Bidirectional(K.LSTM(4, return_sequences=True), merge_mode=mode),
                K.Bidirectional(K.GRU(3), merge_mode=mode),
                K.Dense(2),
            ],
            "float",
        )
        for mode in ("concat", "sum", "mul", "ave")
    },
    "bidirectional_none_last": (
        lambda: [
            seq_input(),
            K.Bidirectional(K.SimpleRNN(3, return_sequences=True), merge_mode=None),
        ],
        "float",
    ),
    "bidirectional_ids_gru_reset_before": (
        lambda: [
            id_input(),
            K.Embedding(VOCAB, 4, mask_zero=True),
            K.Bidirectional(K.GRU(3, return_sequences=True, reset_after=False)),
            K.TimeDistributed(K.Dense(2)),
        ],
        "ids",
    ),
    "bidirectional_backward_layer": (
        lambda: [
            seq_input(),
            K.Bidirectional(
                K.LSTM(3, return_sequences=True),
                backward_layer=K.GRU(3, return_sequences=True, go_backwards=True),
                merge_mode="sum",
            ),
            K.GRU(2),
        ],
        "float",
    ),
    "vector_to_sequence": (
        lambda: [
            seq_input(),
            K.Masking(0.0),
            K.LSTM(4),
            K.RepeatVector(3),
            K.GRU(3, return_sequences=True),
            K.TimeDistributed(K.Dense(2)),
        ],
        "float",
    ),
    "dropouts": (
        lambda: [
            seq_input(),
            K.LSTM(4, dropout=0.2, recurrent_dropout=0.3, return_sequences=True),
            K.Dropout(0.5, noise_shape=(None, 1, 4)),
            K.Dense(2),
        ],
        "float",
    ),
}


def build_keras(name, seed=0, dtype=None):
    make, kind = KERAS_MODELS[name]
    layers = make()
    if dtype is not None:
        for layer in layers[1:]:
            layer.dtype_policy = keras.DTypePolicy(dtype)
    model = keras.Sequential(layers, name=f"k_{name}")
    randomize_keras(model, seed)
    return model, kind


def batch(kind, N, T, seed, dtype="float32"):
    return (
        padded_ids(N, T, VOCAB, seed)
        if kind == "ids"
        else padded_floats(N, T, D, seed, dtype=dtype)
    )


@pytest.mark.parametrize("name", sorted(KERAS_MODELS))
def test_from_keras_predicts_what_keras_predicts(name, tmp_path):
    kmodel, kind = build_keras(name, seed=len(name))
    path = tmp_path / f"{name}.keras"
    kmodel.save(path)
    model = from_keras(path)
    assert isinstance(model, rk.Sequential)
    assert model.count_params() == kmodel.count_params()
    for i, (N, T) in enumerate(SIZES):
        x = batch(kind, N, T, seed=i)
        assert max_diff(model(x), keras_predict(kmodel, x)) <= TOL32


@pytest.mark.parametrize(
    "name",
    [
        "lstm_stack_go_backwards",
        "gru_reset_after_True",
        "embedding_mask_sequences",
        "bidirectional_ave",
    ],
)
def test_from_keras_weights_file_into_a_model_or_a_config(name, tmp_path):
    kmodel, kind = build_keras(name, seed=3)
    wpath = tmp_path / "m.weights.h5"
    kmodel.save_weights(wpath)
    x = batch(kind, 3, 6, seed=5)
    ref = keras_predict(kmodel, x)
    # the Keras config, as a dict and as a config.json
    by_config = from_keras(wpath, config=kmodel.get_config())
    assert max_diff(by_config(x), ref) <= TOL32
    cpath = tmp_path / "config.json"
    cpath.write_text(json.dumps({"class_name": "Sequential", "config": kmodel.get_config()}))
    assert max_diff(from_keras(wpath, config=cpath)(x), ref) <= TOL32
    # an rnnkit model of the same architecture, unbuilt: built from the weights' shapes
    fresh = rk.io.keras._model_from_config(kmodel.get_config(), None, "test")
    loaded = from_keras(wpath, fresh)
    assert loaded is fresh and max_diff(fresh(x), ref) <= TOL32


def test_from_keras_float64_and_dtype_override(tmp_path):
    # Only LSTM and GRU(reset_after=True): Keras 3.15 on the torch backend computes the
    # matrix products of float64 Dense, SimpleRNN and GRU(reset_after=False) layers in
    # float32 (keras.ops.matmul takes result_type(torch.float64, torch.float64) to be
    # float32), so those agree with rnnkit only to ~1e-7.  Its LSTM and reset_after GRU
    # run PyTorch's float64 kernels.
    kmodel = keras.Sequential(
        [
            keras.Input((None, D), dtype="float64"),
            K.GRU(5, return_sequences=True, dtype="float64"),
            K.LSTM(4, return_sequences=True, go_backwards=True, dtype="float64"),
            K.Bidirectional(K.LSTM(3, dtype="float64"), dtype="float64"),
        ]
    )
    randomize_keras(kmodel, 1)
    kmodel.save(tmp_path / "f64.keras")
    model = from_keras(tmp_path / "f64.keras")
    assert all(p.dtype == np.float64 for p in model.params.values())
    x = padded_floats(3, 6, D, seed=2, dtype="float64")
    assert max_diff(model(x), keras_predict(kmodel, x)) <= 1e-13
    # a float32 Keras file read in float64 (e.g. for gradient checks) keeps its numbers
    kmodel32, _ = build_keras("lstm_stack_go_backwards", seed=1)
    kmodel32.save(tmp_path / "f32.keras")
    m64 = from_keras(tmp_path / "f32.keras", dtype="float64")
    assert all(p.dtype == np.float64 for p in m64.params.values())
    x = padded_floats(2, 5, D, seed=2)
    assert max_diff(m64(x.astype("float64")), keras_predict(kmodel32, x)) <= TOL32


def test_from_keras_of_a_stateful_model_carries_state_like_keras(tmp_path):
    kmodel = keras.Sequential(
        [
            keras.Input(batch_shape=(2, None, D)),
            K.LSTM(3, stateful=True, return_sequences=True),
            K.GRU(2, stateful=True),
        ]
    )
    randomize_keras(kmodel, 4)
    kmodel.save(tmp_path / "s.keras")
    model = from_keras(tmp_path / "s.keras")
    assert all(layer.stateful for layer in model.layers)
    for seed in range(3):  # the second and third calls carry state
        x = padded_floats(2, 5, D, seed=seed, masked=False)
        assert max_diff(model(x), keras_predict(kmodel, x)) <= TOL32


def test_from_keras_reads_an_unzipped_keras_folder(tmp_path):
    kmodel, kind = build_keras("masking", seed=2)
    kmodel.save(tmp_path / "m.keras")
    folder = tmp_path / "unzipped"
    with zipfile.ZipFile(tmp_path / "m.keras") as zf:
        zf.extractall(folder)
    x = batch(kind, 3, 6, seed=1)
    assert max_diff(from_keras(folder)(x), keras_predict(kmodel, x)) <= TOL32


# ---- rnnkit -> Keras ---------------------------------------------------------------------


def rnnkit_models():
    F = dict(input_shape=(None, D))
    return {
        **{
            f"simple_rnn_{act}": (
                lambda act=act: [
                    rk.SimpleRNN(5, activation=act, return_sequences=True, **F),
                    rk.SimpleRNN(3, activation=act),
                    rk.Dense(2),
                ],
                "float",
            )
            for act in ("tanh", "relu", "sigmoid", "linear", "softsign", "hard_sigmoid")
        },
        "lstm_gru_go_backwards": (
            lambda: [
                rk.LSTM(5, return_sequences=True, go_backwards=True, **F),
                rk.GRU(4, return_sequences=True),
                rk.GRU(3, reset_after=False, go_backwards=True),
                rk.Dense(3, activation="softmax"),
            ],
            "float",
        ),
        "no_bias": (
            lambda: [
                rk.LSTM(4, use_bias=False, return_sequences=True, **F),
                rk.GRU(3, use_bias=False, return_sequences=True),
                rk.SimpleRNN(2, use_bias=False),
                rk.Dense(2, use_bias=False),
            ],
            "float",
        ),
        "embedding_mask": (
            lambda: [
                rk.Embedding(VOCAB, 5, mask_zero=True),
                rk.LSTM(4, return_sequences=True),
                rk.Dropout(0.2),
                rk.TimeDistributed(rk.Dense(3, activation="relu")),
                rk.GRU(3, go_backwards=True),
                rk.Dense(2, activation="sigmoid"),
            ],
            "ids",
        ),
        "masking": (
            lambda: [
                rk.Masking(0.0, input_shape=(None, D)),
                rk.SimpleRNN(4, return_sequences=True),
                rk.LSTM(3, return_sequences=True),
                rk.Dense(2),
            ],
            "float",
        ),
        **{
            f"bidirectional_{mode}": (
                lambda mode=mode: [
                    rk.Masking(0.0, input_shape=(None, D)),
                    rk.Bidirectional(rk.GRU(3, return_sequences=True), merge_mode=mode),
                    rk.Bidirectional(rk.LSTM(3), merge_mode=mode),
                    rk.Dense(2),
                ],
                "float",
            )
            for mode in ("concat", "sum", "mul", "ave")
        },
        "bidirectional_none_last": (
            lambda: [
                rk.Bidirectional(rk.SimpleRNN(3, return_sequences=True), merge_mode=None, **F)
            ],
            "float",
        ),
        "vector_to_sequence": (
            lambda: [
                rk.LSTM(4, **F),
                rk.RepeatVector(5),
                rk.SimpleRNN(3, return_sequences=True),
                rk.TimeDistributed(rk.Dense(2, activation="softmax")),
            ],
            "float",
        ),
        # no input_shape anywhere: a Dense on sequences first, the rank read off the layers after it
        "dense_first_no_input_shape": (lambda: [rk.Dense(4), rk.LSTM(3)], "float"),
        # Keras builds this only from a config with backward_layer, as to_keras writes it
        "bidirectional_go_backwards_layer": (
            lambda: [
                rk.Masking(0.0, input_shape=(None, D)),
                rk.Bidirectional(rk.LSTM(3, return_sequences=True, go_backwards=True)),
                rk.Dense(2),
            ],
            "float",
        ),
    }


RNNKIT_MODELS = rnnkit_models()


def build_rnnkit(name, seed=0, dtype="float32"):
    make, kind = RNNKIT_MODELS[name]
    model = rk.Sequential(make(), name=f"r_{name}").astype(dtype)
    model(batch(kind, 2, 3, seed=0, dtype=dtype))  # builds every layer
    randomize(model, seed)
    return model, kind


@pytest.mark.parametrize("name", sorted(RNNKIT_MODELS))
def test_to_keras_file_loads_in_keras_and_predicts_the_same(name, tmp_path):
    model, kind = build_rnnkit(name, seed=len(name))
    path = tmp_path / f"{name}.keras"
    assert to_keras(model, path) == path
    kmodel = keras.saving.load_model(path)
    assert kmodel.count_params() == model.count_params()
    for i, (N, T) in enumerate(SIZES):
        x = batch(kind, N, T, seed=10 + i)
        assert max_diff(keras_predict(kmodel, x), model(x)) <= TOL32
    # and back: the parameters come home bit for bit
    again = from_keras(path)
    for (k1, p1), (k2, p2) in zip(model.params.items(), again.params.items()):
        assert k1 == k2 and np.array_equal(p1, p2)


def test_to_keras_float64(tmp_path):
    model = rk.Sequential(
        [
            rk.LSTM(5, return_sequences=True, go_backwards=True, input_shape=(None, D)),
            rk.Bidirectional(rk.GRU(4), merge_mode="mul"),
        ],
        dtype="float64",
    )
    model.astype("float64")
    randomize(model, 4)
    to_keras(model, tmp_path / "m.keras")
    kmodel = keras.saving.load_model(tmp_path / "m.keras")
    assert all(w.dtype == "float64" for w in kmodel.weights)
    x = padded_floats(3, 6, D, seed=1, dtype="float64")
    assert max_diff(keras_predict(kmodel, x), model(x)) <= 1e-13


def test_to_keras_weights_only_loads_into_the_keras_model(tmp_path):
    model, kind = build_rnnkit("embedding_mask", seed=7)
    to_keras(model, tmp_path / "m.weights.h5")
    kmodel = keras.Sequential(
        [
            id_input(),
            K.Embedding(VOCAB, 5, mask_zero=True),
            K.LSTM(4, return_sequences=True),
            K.Dropout(0.2),
            K.TimeDistributed(K.Dense(3, activation="relu")),
            K.GRU(3, go_backwards=True),
            K.Dense(2, activation="sigmoid"),
        ]
    )
    kmodel.load_weights(tmp_path / "m.weights.h5")
    x = padded_ids(3, 8, VOCAB, seed=3)
    assert max_diff(keras_predict(kmodel, x), model(x)) <= TOL32


def test_a_keras_file_written_by_rnnkit_survives_keras_resaving(tmp_path):
    model, kind = build_rnnkit("bidirectional_concat", seed=2)
    to_keras(model, tmp_path / "a.keras")
    keras.saving.load_model(tmp_path / "a.keras").save(tmp_path / "b.keras")
    x = padded_floats(2, 5, D, seed=0)
    assert max_diff(from_keras(tmp_path / "b.keras")(x), model(x)) <= 1e-7


# ---- what cannot be represented, and files that are not what they claim -------------------


@pytest.mark.parametrize(
    "layers,match",
    [
        ([rk.LSTM(4, proj_size=2, input_shape=(None, D))], "proj_size"),
        ([rk.GRU(3, stateful=True, input_shape=(None, D))], "stateful"),
        (
            [
                rk.Bidirectional(
                    rk.LSTM(3, return_sequences=True), merge_mode=None, input_shape=(None, D)
                ),
                rk.Dense(2),
            ],
            "merge_mode=None",
        ),
    ],
)
def test_to_keras_refuses_what_keras_cannot_represent(layers, match, tmp_path):
    model = rk.Sequential(layers)
    model(padded_floats(2, 3, D, seed=0, masked=False))
    with pytest.raises(KerasFormatError, match=match):
        to_keras(model, tmp_path / "m.keras")
    assert not (tmp_path / "m.keras").exists()


def test_to_keras_refuses_rnnstacks_and_bad_paths(tmp_path):
    stack = rk.RNNStack([rk.LSTM(3, return_sequences=True, return_state=True)])
    with pytest.raises(KerasFormatError, match="RNNStack"):
        to_keras(stack, tmp_path / "m.keras")
    model, _ = build_rnnkit("masking")
    with pytest.raises(ValueError, match=r"\.keras"):
        to_keras(model, tmp_path / "m.h5")


def keras_file(tmp_path, layers, name="m.keras"):
    kmodel = keras.Sequential(layers)
    kmodel.save(tmp_path / name)
    return tmp_path / name


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: [seq_input(), K.Conv1D(3, 2)], "no Conv1D layer"),
        (lambda: [seq_input(), K.LSTM(3), K.LayerNormalization()], "no LayerNormalization"),
        (lambda: [seq_input(), K.SimpleRNN(3, activation="gelu")], "gelu"),
        (lambda: [seq_input(), K.GRU(3, recurrent_activation="silu")], "silu"),
        (lambda: [seq_input(), K.LSTM(3), K.Dense(2, activation="elu")], "elu"),
    ],
)
def test_from_keras_refuses_what_rnnkit_cannot_compute(make, match, tmp_path):
    path = keras_file(tmp_path, make())
    with pytest.raises(KerasFormatError, match=match):
        from_keras(path)


def test_from_keras_refuses_functional_models_and_mixed_precision(tmp_path):
    inp = keras.Input((None, D))
    out = K.Dense(2)(K.LSTM(3)(inp))
    keras.Model(inp, out).save(tmp_path / "f.keras")
    with pytest.raises(KerasFormatError, match="Functional"):
        from_keras(tmp_path / "f.keras")
    kmodel = keras.Sequential([seq_input(), K.GRU(3, dtype="mixed_float16"), K.Dense(2)])
    kmodel.save(tmp_path / "mixed.keras")
    with pytest.raises(KerasFormatError, match="mixed_float16.*dtype='float32'"):
        from_keras(tmp_path / "mixed.keras")
    model = from_keras(tmp_path / "mixed.keras", dtype="float32")  # on request
    assert model.layers[0].dtype == np.float32


def test_from_keras_refuses_corrupted_and_foreign_files(tmp_path):
    good = keras_file(tmp_path, [seq_input(), K.LSTM(3), K.Dense(2)])
    blob = good.read_bytes()
    cases = {}
    (tmp_path / "noise.keras").write_bytes(np.random.default_rng(0).bytes(2000))
    cases["noise.keras"] = "neither a Keras"
    (tmp_path / "truncated.keras").write_bytes(blob[: len(blob) // 2])
    cases["truncated.keras"] = "neither a Keras|damaged|not a zip"
    with zipfile.ZipFile(tmp_path / "other.keras", "w") as zf:
        zf.writestr("hello.txt", "not a model")
    cases["other.keras"] = "without config.json"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(tmp_path / "badjson.keras", "w") as zf:
        zf.writestr("config.json", "{not json")
        zf.writestr("model.weights.h5", src.read("model.weights.h5"))
    cases["badjson.keras"] = "not valid JSON"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(tmp_path / "badcfg.keras", "w") as zf:
        config = json.loads(src.read("config.json"))
        del config["config"]["layers"][1]["config"]["units"]  # the LSTM's
        zf.writestr("config.json", json.dumps(config))
        zf.writestr("model.weights.h5", src.read("model.weights.h5"))
    cases["badcfg.keras"] = "config of a 'LSTM' layer is not one Keras 3 writes"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(tmp_path / "badh5.keras", "w") as zf:
        zf.writestr("config.json", src.read("config.json"))
        zf.writestr("model.weights.h5", b"\x89HDF\r\n\x1a\n garbage")
    cases["badh5.keras"] = "not a readable HDF5"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(tmp_path / "noweights.keras", "w") as zf:
        zf.writestr("config.json", src.read("config.json"))
    cases["noweights.keras"] = "no model.weights.h5"
    for fname, match in cases.items():
        with pytest.raises(KerasFormatError, match=match):
            from_keras(tmp_path / fname)
    with pytest.raises(FileNotFoundError):
        from_keras(tmp_path / "missing.keras")


def test_from_keras_refuses_weights_that_do_not_fit(tmp_path):
    kmodel = keras.Sequential([seq_input(), K.LSTM(3, return_sequences=True), K.GRU(2)])
    kmodel.save_weights(tmp_path / "m.weights.h5")
    wpath = tmp_path / "m.weights.h5"
    with pytest.raises(ValueError, match="exactly one"):
        from_keras(wpath)
    wrong_units = rk.Sequential([rk.LSTM(4, return_sequences=True), rk.GRU(2)])
    with pytest.raises(KerasFormatError, match="4 units"):
        from_keras(wpath, wrong_units)
    wrong_kind = rk.Sequential([rk.LSTM(3, return_sequences=True), rk.GRU(2, reset_after=False)])
    with pytest.raises(KerasFormatError, match="reset_after"):
        from_keras(wpath, wrong_kind)
    too_few = rk.Sequential([rk.LSTM(3, return_sequences=True)])
    with pytest.raises(KerasFormatError, match="does not have.*gru"):
        from_keras(wpath, too_few)
    too_many = rk.Sequential([rk.LSTM(3, return_sequences=True), rk.GRU(2), rk.Dense(1)])
    with pytest.raises(KerasFormatError, match="no weights for Dense"):
        from_keras(wpath, too_many)
    # layers without weights (Dropout) may differ: the numbering is per class
    with_dropout = rk.Sequential([rk.LSTM(3, return_sequences=True), rk.Dropout(0.5), rk.GRU(2)])
    x = padded_floats(2, 4, D, seed=0)
    assert max_diff(from_keras(wpath, with_dropout)(x), keras_predict(kmodel, x)) <= TOL32


def test_from_keras_names_legacy_keras2_h5_files(tmp_path):
    kmodel = keras.Sequential([seq_input(), K.LSTM(3), K.Dense(2)])
    kmodel.save(tmp_path / "legacy.h5")  # Keras 3 still writes these
    with pytest.raises(KerasFormatError, match="legacy Keras 2"):
        from_keras(tmp_path / "legacy.h5", config=kmodel.get_config())


def test_keras_to_rnnkit_to_onnx_predicts_what_keras_predicts(tmp_path):
    import onnxruntime as ort

    from rnnkit.io import to_onnx

    for name in ("embedding_mask_sequences", "bidirectional_concat", "vector_to_sequence"):
        kmodel, kind = build_keras(name, seed=11)
        kmodel.save(tmp_path / f"{name}.keras")
        to_onnx(from_keras(tmp_path / f"{name}.keras"), tmp_path / f"{name}.onnx")
        sess = ort.InferenceSession(
            str(tmp_path / f"{name}.onnx"), providers=["CPUExecutionProvider"]
        )
        for i, (N, T) in enumerate(SIZES):
            x = batch(kind, N, T, seed=20 + i)
            feed = x.astype(np.int64) if kind == "ids" else x
            assert max_diff(sess.run(None, {"x": feed})[0], keras_predict(kmodel, x)) <= TOL32


def test_without_h5py_the_error_says_what_to_install(monkeypatch, tmp_path):
    import sys

    model, _ = build_rnnkit("masking")
    to_keras(model, tmp_path / "m.keras")
    monkeypatch.setitem(sys.modules, "h5py", None)  # as if it were not installed
    with pytest.raises(ImportError, match=r"rnnkit\[keras\].*h5py"):
        from_keras(tmp_path / "m.keras")
    with pytest.raises(ImportError, match=r"rnnkit\[keras\]"):
        to_keras(model, tmp_path / "n.keras")


def test_from_keras_of_the_lectures_model_after_compile_and_fit(tmp_path):
    """The lecture's code as written (input_shape in the first layer), trained: the file
    then also holds the optimizer's variables, which rnnkit leaves alone."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 10, 1)).astype("float32")
    y = rng.normal(size=(16, 1)).astype("float32")
    kmodel = keras.Sequential(
        [K.SimpleRNN(20, return_sequences=True, input_shape=[None, 1]), K.SimpleRNN(20), K.Dense(1)]
    )
    kmodel.compile(loss="mse", optimizer="adam")
    kmodel.fit(x, y, epochs=2, batch_size=8, verbose=0)
    kmodel.save(tmp_path / "lecture.keras")
    model = from_keras(tmp_path / "lecture.keras")
    assert max_diff(model(x), kmodel.predict(x, verbose=0)) <= TOL32
