"""ONNX export, run by onnxruntime and compared with rnnkit's own predictions
(float32, max abs difference ≤ 1e-5; observed ~1e-7), for several batch sizes and
sequence lengths through the same exported file."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import rnnkit as rk
from rnnkit.io import to_onnx
from rnnkit.io.onnx import OnnxExportError

from helpers import max_diff, padded_floats, padded_ids, randomize

TOL = 1e-5
SIZES = [(3, 7), (1, 12), (5, 1), (2, 4)]  # (batch, time), all through one session
D, VOCAB = 4, 15


def float_batch(N, T, seed, masked=True):
    return padded_floats(N, T, D, seed, masked=masked, empty_row=True)


def id_batch(N, T, seed):
    return padded_ids(N, T, VOCAB, seed, holes=(1, 3), dtype=np.int64)


def session(model, path, **kw):
    proto = to_onnx(model, path, **kw)
    onnx.checker.check_model(proto)
    return proto, ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


F = dict(input_shape=(None, D))
MODELS = {
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
    "lstm_stack": (
        lambda: [
            rk.LSTM(6, return_sequences=True, **F),
            rk.LSTM(5, return_sequences=True, go_backwards=True),
            rk.LSTM(4),
            rk.Dense(3, activation="softmax"),
        ],
        "float",
    ),
    "lstm_gru_activations": (
        lambda: [
            rk.LSTM(
                4,
                activation="relu",
                recurrent_activation="hard_sigmoid",
                return_sequences=True,
                **F,
            ),
            rk.GRU(
                3, activation="softsign", recurrent_activation="hard_sigmoid", return_sequences=True
            ),
            rk.LSTM(3, activation="linear", return_sequences=True),
            rk.Dense(2, activation="hard_sigmoid"),
        ],
        "float",
    ),
    **{
        f"gru_reset_after_{ra}": (
            lambda ra=ra: [
                rk.GRU(5, return_sequences=True, reset_after=ra, **F),
                rk.GRU(4, go_backwards=True, reset_after=ra),
                rk.Dense(2, activation="sigmoid"),
            ],
            "float",
        )
        for ra in (True, False)
    },
    "no_bias": (
        lambda: [
            rk.LSTM(4, use_bias=False, return_sequences=True, **F),
            rk.GRU(3, use_bias=False, return_sequences=True),
            rk.GRU(3, use_bias=False, reset_after=False, return_sequences=True),
            rk.SimpleRNN(3, use_bias=False),
            rk.Dense(2, use_bias=False),
        ],
        "float",
    ),
    "embedding_mask_sequences": (
        lambda: [
            rk.Embedding(VOCAB, 6, mask_zero=True),
            rk.LSTM(5, return_sequences=True),
            rk.GRU(4, return_sequences=True, go_backwards=True),
            rk.TimeDistributed(rk.Dense(3, activation="tanh")),
            rk.Dropout(0.3),
            rk.SimpleRNN(3, return_sequences=True, zero_output_for_mask=True),
        ],
        "ids",
    ),
    "embedding_mask_vector": (
        lambda: [
            rk.Embedding(VOCAB, 5, mask_zero=True),
            rk.GRU(4, reset_after=False),
            rk.Dense(3, activation="relu"),
        ],
        "ids",
    ),
    "embedding_no_mask": (
        lambda: [
            rk.Embedding(VOCAB, 5),
            rk.SimpleRNN(4, return_sequences=True),
            rk.Dense(2, activation="softsign"),
        ],
        "ids",
    ),
    "masking": (
        lambda: [
            rk.Masking(0.0, **F),
            rk.SimpleRNN(5, return_sequences=True),
            rk.Dropout(0.5),
            rk.LSTM(4, return_sequences=True, go_backwards=True),
            rk.LSTM(3),
            rk.Dense(2),
        ],
        "float",
    ),
    **{
        f"bidirectional_{mode}": (
            lambda mode=mode: [
                rk.Masking(0.0, **F),
                rk.Bidirectional(rk.LSTM(4, return_sequences=True), merge_mode=mode),
                rk.Bidirectional(rk.GRU(3), merge_mode=mode),
                rk.Dense(2),
            ],
            "float",
        )
        for mode in ("concat", "sum", "mul", "ave")
    },
    "bidirectional_none_last": (
        lambda: [
            rk.Masking(0.0, **F),
            rk.Bidirectional(rk.SimpleRNN(3, return_sequences=True), merge_mode=None),
        ],
        "float",
    ),
    "bidirectional_two_operators": (
        lambda: [
            rk.Masking(0.0, **F),
            rk.Bidirectional(rk.LSTM(3, return_sequences=True, go_backwards=True)),
            rk.Bidirectional(
                rk.LSTM(3, return_sequences=True),
                backward_layer=rk.GRU(3, return_sequences=True, go_backwards=True),
                merge_mode="sum",
            ),
            rk.Bidirectional(rk.GRU(2, reset_after=False)),
        ],
        "float",
    ),
    "vector_to_sequence": (
        lambda: [
            rk.Masking(0.0, **F),
            rk.GRU(4),
            rk.RepeatVector(3),
            rk.LSTM(3, return_sequences=True),
            rk.TimeDistributed(rk.Dense(2)),
        ],
        "float",
    ),
    "embedding_bidirectional_tagger": (
        lambda: [
            rk.Embedding(VOCAB, 4, mask_zero=True),
            rk.Bidirectional(rk.GRU(3, return_sequences=True)),
            rk.TimeDistributed(rk.Dense(5, activation="softmax")),
        ],
        "ids",
    ),
}


def build(name, seed=0, dtype="float32"):
    make, kind = MODELS[name]
    model = rk.Sequential(make(), name=f"m_{name}").astype(dtype)
    model(batch(kind, 2, 3, 0))  # builds every layer
    randomize(model, seed)
    return model, kind


def batch(kind, N, T, seed):
    return id_batch(N, T, seed) if kind == "ids" else float_batch(N, T, seed)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_onnxruntime_predicts_what_rnnkit_predicts(name, tmp_path):
    model, kind = build(name, seed=len(name))
    proto, sess = session(model, tmp_path / f"{name}.onnx")
    for i, (N, T) in enumerate(SIZES):
        x = batch(kind, N, T, seed=i)
        y = model(x)
        out = sess.run(None, {"x": x})
        assert max_diff(out if isinstance(y, list) else out[0], y) <= TOL, (N, T)


def test_the_graph_uses_the_standard_operators_with_dynamic_batch_and_time(tmp_path):
    model, _ = build("embedding_bidirectional_tagger")
    proto, _ = session(model, tmp_path / "m.onnx")
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("GRU") == 1  # one bidirectional operator
    gru = next(n for n in proto.graph.node if n.op_type == "GRU")
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in gru.attribute}
    assert attrs["direction"] == b"bidirectional" and attrs["linear_before_reset"] == 1
    assert "Gather" in ops  # the embedding lookup
    (inp,) = proto.graph.input
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert dims == ["batch", "time"]
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.INT64
    (out,) = proto.graph.output
    assert [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim] == [
        "batch",
        "time",
        5,
    ]
    lstm_model, _ = build("lstm_stack")
    proto = to_onnx(lstm_model)  # no path: just the ModelProto
    lstm_ops = [n for n in proto.graph.node if n.op_type == "LSTM"]
    assert len(lstm_ops) == 3
    reset_before, _ = build("gru_reset_after_False")
    proto = to_onnx(reset_before)
    for n in proto.graph.node:
        if n.op_type == "GRU":
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
            assert attrs["linear_before_reset"] == 0


def test_float64_models_export_in_float32(tmp_path):
    model, kind = build("gru_reset_after_True", seed=3, dtype="float64")
    proto, sess = session(model, tmp_path / "m.onnx")
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    x = float_batch(3, 6, seed=1)
    y = model(x.astype(np.float64))
    assert max_diff(sess.run(None, {"x": x})[0], y) <= TOL
    p64 = to_onnx(model, dtype="float64")  # valid ONNX; onnxruntime lacks kernels
    assert p64.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE


def test_a_single_layer_exports_too(tmp_path):
    layer = rk.LSTM(3, return_sequences=True, go_backwards=True, input_shape=(None, D))
    randomize(layer, 1)
    _, sess = session(layer, tmp_path / "l.onnx")
    x = float_batch(2, 5, seed=0, masked=False)
    assert max_diff(sess.run(None, {"x": x})[0], layer(x)) <= TOL


@pytest.mark.parametrize(
    "layers,match",
    [
        ([rk.LSTM(4, proj_size=2, **F)], "proj_size"),
        ([rk.GRU(3, stateful=True, **F)], "stateful"),
        (
            [
                rk.Bidirectional(rk.LSTM(3, return_sequences=True), merge_mode=None, **F),
                rk.Dense(2),
            ],
            "merge_mode=None",
        ),
    ],
)
def test_to_onnx_refuses_what_onnx_cannot_represent(layers, match, tmp_path):
    model = rk.Sequential(layers)
    model(float_batch(2, 3, seed=0, masked=False))
    with pytest.raises(OnnxExportError, match=match):
        to_onnx(model, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_to_onnx_refuses_time_distributed_recurrent_layers():
    model = rk.Sequential([rk.TimeDistributed(rk.SimpleRNN(2))])
    model(np.zeros((2, 3, 5, D), np.float32))  # (batch, outer time, inner time, D)
    with pytest.raises(OnnxExportError, match="TimeDistributed.*SimpleRNN"):
        to_onnx(model, input_shape=(None, 5, D))


def test_to_onnx_refuses_rnnstacks_and_unknown_input_shapes():
    stack = rk.RNNStack([rk.LSTM(3, return_sequences=True, return_state=True)])
    with pytest.raises(OnnxExportError, match="RNNStack"):
        to_onnx(stack)
    with pytest.raises(OnnxExportError, match="input shape"):
        to_onnx(rk.Sequential([rk.Masking(0.0), rk.LSTM(3)]))
    with pytest.raises(OnnxExportError, match="not built"):
        to_onnx(rk.Sequential([rk.LSTM(3)]), input_shape=(None, 2))


def test_without_onnx_the_error_says_what_to_install(monkeypatch):
    import sys

    model, _ = build("masking")
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if it were not installed
    with pytest.raises(ImportError, match=r"rnnkit\[onnx\]"):
        to_onnx(model)
