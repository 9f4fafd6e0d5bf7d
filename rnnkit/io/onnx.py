"""ONNX export with the standard ``RNN``, ``LSTM`` and ``GRU`` operators.

    to_onnx(model, "model.onnx")
    sess = onnxruntime.InferenceSession("model.onnx")
    y, = sess.run(None, {"x": x})          # x: (batch, time, features) float32,
                                           #    or (batch, time) int64 token ids

Batch size and sequence length are dynamic.  Needs the ``onnx`` package
(``pip install 'rnnkit[onnx]'``).

The name map (ONNX keeps column vectors, W x, as PyTorch does; one leading
num_directions axis):

    rnnkit        ONNX
    U  (D, G)     W  [dirs, G, D]   = Uᵀ, gate blocks reordered
    W  (H, G)     R  [dirs, G, H]   = Wᵀ, gate blocks reordered
    b  (G,)       B  [dirs, 2G]     = [b, 0]            (RNN, LSTM, GRU reset_after=False)
    b, b_rec      B  [dirs, 2G]     = [b, b_rec]        (GRU reset_after=True)

Gate orders: LSTM rnnkit i, f, g, o -> ONNX i, o, f, c; GRU z, r, n = ONNX z, r, h,
with ``linear_before_reset=1`` for ``reset_after=True`` (PyTorch's and Keras's
default GRU) and 0 for ``reset_after=False``.  Activations: ONNX ``f`` (gates) is
rnnkit's recurrent_activation, ``g`` and ``h`` its activation.

Layers around the recurrences: Embedding -> Gather, Dense / TimeDistributed(Dense)
-> MatMul + Add + activation, Masking -> Equal/ReduceMax/Mul, Dropout -> nothing,
RepeatVector -> Unsqueeze + Expand,
Bidirectional -> one ``direction="bidirectional"`` operator (or two operators when
its two layers differ), go_backwards -> a time-reversing Slice.

Masks (Embedding(mask_zero=True), Masking) are exported exactly, for any pattern
of padded steps, with rnnkit's (Keras's) semantics that a masked step is skipped:
the valid steps of each sequence are gathered to the front (TopK + GatherElements),
the operator runs with ``sequence_lens`` = the number of valid steps, and the
outputs are scattered back to their steps (CumSum + GatherElements), a masked step
repeating the previous output (or zeros with ``zero_output_for_mask``, as inside
Bidirectional).

Not representable: LSTM ``proj_size`` (ONNX's LSTM has no projection), stateful
layers (no carried state across calls), ``return_state``.  onnxruntime runs the
recurrent operators in float32 only, so the export is float32 by default.
"""

from __future__ import annotations

import os

import numpy as np

from ..layers import (
    GRU,
    LSTM,
    Bidirectional,
    Dense,
    Dropout,
    Embedding,
    Masking,
    Recurrent,
    RepeatVector,
    SimpleRNN,
    TimeDistributed,
)
from ..layers.base import Layer
from ..models import RNNStack, Sequential

OPSET = 17
# Opsets the exported graph is valid in: Shape with start/end needs 15, ReduceMax with an
# ``axes`` attribute (the Masking layer) ends at 17.
SUPPORTED_OPSETS = (15, 16, 17)

# Column blocks of rnnkit's U/W/b, in ONNX's gate order.
_ONNX_BLOCKS = {"RNN": [0], "LSTM": [0, 3, 1, 2], "GRU": [0, 1, 2]}
# rnnkit activation -> (ONNX RNN-operator activation name, alpha, beta) (None: no parameter)
_RNN_ACTIVATIONS = {
    "tanh": ("Tanh", None, None),
    "sigmoid": ("Sigmoid", None, None),
    "relu": ("Relu", None, None),
    "softsign": ("Softsign", None, None),
    "linear": ("Affine", 1.0, 0.0),
    "hard_sigmoid": ("HardSigmoid", 1 / 6, 0.5),
}


class OnnxExportError(ValueError):
    """A model (or a part of one) that the standard ONNX operators cannot represent."""


def _onnx():
    try:
        import onnx
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "rnnkit.io.to_onnx needs the onnx package: pip install 'rnnkit[onnx]' "
            "(or pip install onnx)"
        ) from e
    return onnx


class _Graph:
    """A small ONNX graph builder: unique names, constants, nodes."""

    def __init__(self, onnx, dtype):
        self.onnx, self.h = onnx, onnx.helper
        self.dtype = np.dtype(dtype)
        self.elem = onnx.helper.np_dtype_to_tensor_dtype(self.dtype)
        self.nodes, self.inits = [], []
        self._n = 0
        self._consts = {}

    def name(self, hint):
        self._n += 1
        return f"{hint}_{self._n}"

    def const(self, value, hint="c", dtype=None):
        a = np.asarray(value, dtype=dtype if dtype is not None else self.dtype)
        key = (a.dtype.str, a.shape, a.tobytes()) if a.size <= 8 else None
        if key is not None and key in self._consts:
            return self._consts[key]
        name = self.name(hint)
        self.inits.append(self.onnx.numpy_helper.from_array(a.copy(order="C"), name))
        if key is not None:
            self._consts[key] = name
        return name

    def i64(self, values, hint="i"):
        return self.const(values, hint, dtype=np.int64)

    def op(self, op_type, inputs, hint=None, n_out=1, **attrs):
        outs = [self.name(hint or op_type.lower()) for _ in range(n_out)]
        self.nodes.append(
            self.h.make_node(op_type, list(inputs), outs, name=self.name(op_type), **attrs)
        )
        return outs[0] if n_out == 1 else outs

    # -- small compositions ---------------------------------------------------------
    def reverse_time(self, x):
        """x[:, ::-1] for x (N, T, ...)."""
        return self.op(
            "Slice",
            [x, self.i64([-1]), self.i64([np.iinfo(np.int64).min]), self.i64([1]), self.i64([-1])],
            "reversed",
        )

    def unsqueeze(self, x, axis):
        return self.op("Unsqueeze", [x, self.i64([axis])])

    def squeeze(self, x, axis):
        return self.op("Squeeze", [x, self.i64([axis])])

    def gather_time(self, x, idx):
        """x[n, idx[n, t], :] for x (N, T, F) and idx (N, T) int64."""
        full = self.op("Expand", [self.unsqueeze(idx, 2), self.op("Shape", [x])])
        return self.op("GatherElements", [x, full], axis=1)


def _blocks(a, kind, axis):
    parts = np.split(a, len(_ONNX_BLOCKS[kind]), axis=axis)
    return np.concatenate([parts[i] for i in _ONNX_BLOCKS[kind]], axis=axis)


def _kind(layer):
    return {SimpleRNN: "RNN", LSTM: "LSTM", GRU: "GRU"}[type(layer)]


def _check_recurrent(layer):
    who = f"to_onnx: {layer.who}"
    if not layer.built:
        raise OnnxExportError(f"{who} is not built yet (call the model once, or give input_shape)")
    if getattr(layer, "proj_size", 0):
        raise OnnxExportError(
            f"{who} has proj_size={layer.proj_size}; ONNX's LSTM operator has no output projection"
        )
    if layer.stateful:
        raise OnnxExportError(
            f"{who} is stateful; an ONNX model keeps no state between "
            f"calls: export it with stateful=False"
        )
    if layer.return_state:
        raise OnnxExportError(
            f"{who} has return_state=True; export a Sequential that passes one output on"
        )
    names = [layer.cell.activation.name]
    if not isinstance(layer, SimpleRNN):
        names.insert(0, layer.cell.recurrent_activation.name)
    for n in names:
        if n not in _RNN_ACTIVATIONS:
            raise OnnxExportError(f"{who}: activation {n!r} has no ONNX RNN-operator counterpart")


def _activation_attrs(layers):
    """activations / activation_alpha / activation_beta of one operator (all directions)."""
    acts, alphas, betas = [], [], []
    for layer in layers:
        a, r = layer.cell.activation.name, None
        if isinstance(layer, SimpleRNN):
            seq = [a]
        else:
            r = layer.cell.recurrent_activation.name
            seq = [r, a, a] if isinstance(layer, LSTM) else [r, a]
        for n in seq:
            name, alpha, beta = _RNN_ACTIVATIONS[n]
            acts.append(name)
            if alpha is not None:  # onnxruntime consumes alpha/beta only for the
                alphas.append(alpha)  # activations that take them, in order
                betas.append(beta)
    attrs = {"activations": acts}
    if alphas:
        attrs.update(activation_alpha=alphas, activation_beta=betas)
    return attrs


def _weights(layer, dtype):
    """(W, R, B) of one direction, ONNX layout, without the directions axis."""
    kind = _kind(layer)
    p = {k: np.asarray(v, dtype=np.float64) for k, v in layer.params.items()}
    W = _blocks(p["U"], kind, axis=1).T
    R = _blocks(p["W"], kind, axis=1).T
    G = W.shape[0]
    if layer.use_bias:
        b = _blocks(p["b"], kind, axis=0)
        rb = _blocks(p["b_rec"], kind, axis=0) if "b_rec" in p else np.zeros(G)
    else:
        b = rb = np.zeros(G)
    return W.astype(dtype), R.astype(dtype), np.concatenate([b, rb]).astype(dtype)


class _Masked:
    """The compaction of one mask (N, T): valid steps first, and the way back."""

    def __init__(self, g, mask):
        self.g, self.mask = g, mask
        m64 = g.op("Cast", [mask], to=g.onnx.TensorProto.INT64)
        self.lens = g.op(
            "Cast",
            [g.op("ReduceSum", [m64, g.i64([1])], keepdims=0)],
            "sequence_lens",
            to=g.onnx.TensorProto.INT32,
        )
        T = g.op("Shape", [mask], start=1, end=2)  # [T]
        Tf = g.op("Cast", [g.squeeze(T, 0)], to=g.onnx.TensorProto.FLOAT)
        t = g.op("Range", [g.const(0.0, dtype=np.float32), Tf, g.const(1.0, dtype=np.float32)])
        mf = g.op("Cast", [mask], to=g.onnx.TensorProto.FLOAT)
        # key = t for valid steps, t + T for masked ones: ascending order puts the valid
        # steps first, each group in time order
        key = g.op("Add", [t, g.op("Mul", [Tf, g.op("Sub", [g.const(1.0, dtype=np.float32), mf])])])
        _, self.order = g.op("TopK", [key, T], n_out=2, axis=1, largest=0, sorted=1)
        # step t's output is the compacted output at (number of valid steps <= t) - 1
        pos = g.op("Sub", [g.op("CumSum", [m64, g.i64(1)]), g.i64(1)])
        self.pos = g.op("Max", [pos, g.i64(0)])
        self.started = g.op(
            "Cast", [g.op("GreaterOrEqual", [pos, g.i64(0)])], to=g.elem
        )  # a valid step seen yet
        self.maskf = g.op("Cast", [mask], to=g.elem)

    def compact(self, x):
        return self.g.gather_time(x, self.order)

    def expand(self, y, zero_masked):
        g = self.g
        y = g.gather_time(y, self.pos)
        keep = self.maskf if zero_masked else self.started
        return g.op("Mul", [y, g.unsqueeze(keep, 2)])


def _run_op(g, layers, x, masked, direction):
    """One ONNX recurrent operator over x (N, T, D), batch-first.  Returns the
    per-direction (sequence (N, T, H) batch-first, compacted order; final (N, H))."""
    kind = _kind(layers[0])
    Ws, Rs, Bs = zip(*(_weights(l, g.dtype) for l in layers))
    H = layers[0].units
    X = g.op("Transpose", [masked.compact(x) if masked else x], perm=[1, 0, 2])  # (T, N, D)
    inputs = [X, g.const(np.stack(Ws), "W"), g.const(np.stack(Rs), "R"), g.const(np.stack(Bs), "B")]
    if masked is not None:
        inputs.append(masked.lens)
    attrs = dict(hidden_size=H, direction=direction, **_activation_attrs(layers))
    if kind == "GRU":
        attrs["linear_before_reset"] = int(layers[0].reset_after)
    n_out = 3 if kind == "LSTM" else 2
    outs = g.op(kind, inputs, kind.lower(), n_out=n_out, **attrs)
    Y, Yh = outs[0], outs[1]  # (T, dirs, N, H), (dirs, N, H)
    Yb = g.op("Transpose", [Y], perm=[2, 0, 1, 3])  # (N, T, dirs, H)
    results = []
    for d in range(len(layers)):
        idx = g.i64(d)
        seq = g.op("Gather", [Yb, idx], axis=2)  # (N, T, H)
        last = g.op("Gather", [Yh, idx], axis=0)  # (N, H)
        results.append((seq, last))
    return results


def _recurrent(g, layer, x, mask):
    """rnnkit's Recurrent.forward: the output (processing order), as ONNX."""
    _check_recurrent(layer)
    if layer.go_backwards:
        x = g.reverse_time(x)
        mask = None if mask is None else g.reverse_time(mask)
    masked = _Masked(g, mask) if mask is not None else None
    ((seq, last),) = _run_op(g, [layer], x, masked, "forward")
    if not layer.return_sequences:
        return last
    return masked.expand(seq, layer.zero_output_for_mask) if masked else seq


def _signature(layer):
    """What one ONNX operator must share across its two directions."""
    rec = getattr(layer.cell, "recurrent_activation", None)
    return (
        type(layer),
        layer.units,
        layer.use_bias,
        layer.cell.activation.name,
        None if isinstance(layer, SimpleRNN) or rec is None else rec.name,
        getattr(layer, "reset_after", None),
        layer.zero_output_for_mask,
    )


def _bidirectional(g, layer, x, mask):
    fw, bw = layer.forward_layer, layer.backward_layer
    for child in (fw, bw):
        _check_recurrent(child)
    if not fw.go_backwards and bw.go_backwards and _signature(fw) == _signature(bw):
        masked = _Masked(g, mask) if mask is not None else None
        (sf, lf), (sb, lb) = _run_op(g, [fw, bw], x, masked, "bidirectional")
        if not layer.return_sequences:
            yf, yb = lf, lb
        elif masked:
            yf = masked.expand(sf, fw.zero_output_for_mask)
            yb = masked.expand(sb, bw.zero_output_for_mask)
        else:
            yf, yb = sf, sb  # ONNX's reverse output is in input order
    else:
        yf = _recurrent(g, fw, x, mask)
        yb = _recurrent(g, bw, x, mask)
        if layer.return_sequences:
            yb = g.reverse_time(yb)
    mode = layer.merge_mode
    if mode == "concat":
        return g.op("Concat", [yf, yb], axis=-1)
    if mode == "sum":
        return g.op("Add", [yf, yb])
    if mode == "mul":
        return g.op("Mul", [yf, yb])
    if mode == "ave":
        return g.op("Mul", [g.op("Add", [yf, yb]), g.const(0.5)])
    return [yf, yb]


def _dense(g, layer, x):
    if not layer.built:
        raise OnnxExportError(f"to_onnx: {layer.who} is not built yet")
    p = layer.params
    y = g.op("MatMul", [x, g.const(np.asarray(p["V"]), "V")])
    if layer.use_bias:
        y = g.op("Add", [y, g.const(np.asarray(p["c"]), "c")])
    act = layer.activation.name
    if act == "linear":
        return y
    if act == "softmax":
        return g.op("Softmax", [y], axis=-1)
    if act == "hard_sigmoid":
        return g.op("HardSigmoid", [y], alpha=1 / 6, beta=0.5)
    ops = {"tanh": "Tanh", "sigmoid": "Sigmoid", "relu": "Relu", "softsign": "Softsign"}
    if act not in ops:
        raise OnnxExportError(f"to_onnx: {layer.who}: activation {act!r} is not supported")
    return g.op(ops[act], [y])


def _layer(g, layer, x, mask, last):
    """(output, output mask) of one layer, as ONNX."""
    if isinstance(layer, Recurrent):
        y = _recurrent(g, layer, x, mask)
        return y, (mask if layer.return_sequences else None)
    if isinstance(layer, Bidirectional):
        y = _bidirectional(g, layer, x, mask)
        if isinstance(y, list) and not last:
            raise OnnxExportError(
                f"to_onnx: {layer.who} has merge_mode=None (two outputs); "
                f"only the model's last layer may"
            )
        return y, (mask if layer.return_sequences else None)
    if isinstance(layer, Dense):
        return _dense(g, layer, x), mask
    if isinstance(layer, TimeDistributed):
        inner = layer.layer
        if isinstance(inner, Dense):
            return _dense(g, inner, x), mask  # MatMul applies to every step already
        if isinstance(inner, Dropout):
            return x, mask
        raise OnnxExportError(
            f"to_onnx: {layer.who} wraps a {type(inner).__name__}; "
            f"TimeDistributed(Dense) and TimeDistributed(Dropout) export"
        )
    if isinstance(layer, Dropout):
        return x, mask
    if isinstance(layer, Masking):
        ne = g.op("Not", [g.op("Equal", [x, g.const(layer.mask_value)])])
        anyf = g.op("ReduceMax", [g.op("Cast", [ne], to=g.elem)], axes=[2], keepdims=0)
        keep = g.op("Cast", [anyf], to=g.onnx.TensorProto.BOOL)
        return g.op("Mul", [x, g.unsqueeze(anyf, 2)]), keep
    if isinstance(layer, RepeatVector):  # (N, F) -> (N, n, F)
        return g.op("Expand", [g.unsqueeze(x, 1), g.i64([1, layer.n, 1])]), None
    if isinstance(layer, Embedding):
        y = g.op("Gather", [g.const(np.asarray(layer.params["E"]), "E"), x], axis=0)
        if layer.mask_zero:
            mask = g.op("Not", [g.op("Equal", [x, g.i64(0)])])
        return y, mask
    raise OnnxExportError(f"to_onnx: {layer.who} ({type(layer).__name__}) has no ONNX export")


def _input_spec(model, input_shape):
    """(is_ids, per-example shape) of the model input."""
    first = model.layers[0]
    if isinstance(first, Embedding):
        return True, (None,)
    if input_shape is not None:
        return False, tuple(input_shape)
    if first.input_shape is not None:
        return False, tuple(first.input_shape)
    for layer in model.layers:
        core = layer.forward_layer if isinstance(layer, Bidirectional) else layer
        if isinstance(core, Recurrent) and core.built:
            return False, (None, core.input_dim)
        if isinstance(layer, TimeDistributed) and getattr(layer.layer, "input_dim", None):
            return False, (None, layer.layer.input_dim)
        if not isinstance(layer, (Dropout, Masking)):
            break
    raise OnnxExportError(
        "to_onnx: cannot tell the model's input shape; pass input_shape "
        "(per example, e.g. (None, 3))"
    )


def _dims(shape, names=("batch", "time")):
    return [names[i] if (s is None and i < len(names)) else s for i, s in enumerate(shape)]


def to_onnx(
    model,
    path=None,
    *,
    input_shape=None,
    dtype="float32",
    opset=OPSET,
    input_name="x",
    output_name="y",
):
    """Export ``model`` (an rnnkit Sequential or a single layer) to ONNX.

    The graph input ``x`` is (batch, time, features) in ``dtype``, or (batch, time)
    int64 token ids when the model starts with an Embedding; batch and time are
    dynamic.  The output ``y`` is what ``model(x)`` returns (a Bidirectional with
    merge_mode=None as last layer gives ``y_forward`` and ``y_backward``).

    ``dtype``: 'float32' (default; onnxruntime's RNN/LSTM/GRU kernels are float32
    only) or 'float64'.  ``input_shape`` (per example) is needed only when rnnkit
    cannot tell it from the first layers.  Writes ``path`` if given and returns
    the ``onnx.ModelProto``.  Raises ``OnnxExportError`` for what ONNX cannot
    represent (LSTM proj_size, stateful layers, ...).  ``opset``: one of
    ``SUPPORTED_OPSETS`` (15, 16, 17).
    """
    if isinstance(opset, bool) or not isinstance(opset, int) or opset not in SUPPORTED_OPSETS:
        raise ValueError(
            f"to_onnx: opset must be one of {list(SUPPORTED_OPSETS)} (the opsets "
            f"whose operators the export uses); got {opset!r}"
        )
    onnx = _onnx()
    if isinstance(model, RNNStack):
        raise OnnxExportError(
            "to_onnx: an RNNStack has PyTorch's calling convention "
            "(output, h_n); export a Sequential of its layers with "
            "return_state=False"
        )
    if isinstance(model, Layer) and not isinstance(model, Sequential):
        model = Sequential([model], name=f"sequential_{model.name}", dtype=model.dtype)
    if not isinstance(model, Sequential):
        raise TypeError(
            f"to_onnx: expected an rnnkit Sequential or layer; got {type(model).__name__}"
        )
    if not model.layers:
        raise OnnxExportError("to_onnx: the model has no layers")
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"to_onnx: dtype must be 'float32' or 'float64'; got {dtype}")
    g = _Graph(onnx, dtype)
    h = onnx.helper
    is_ids, shape = _input_spec(model, input_shape)
    in_shape = (None,) + tuple(shape)
    in_elem = onnx.TensorProto.INT64 if is_ids else g.elem
    inputs = [h.make_tensor_value_info(input_name, in_elem, _dims(in_shape))]

    x, mask = input_name, None
    n = len(model.layers)
    for i, layer in enumerate(model.layers):
        x, mask = _layer(g, layer, x, mask, last=(i == n - 1))

    out_shape = model.compute_output_shape(in_shape)
    if isinstance(x, list):
        names = [f"{output_name}_forward", f"{output_name}_backward"]
        shapes = out_shape
    else:
        x, names, shapes = [x], [output_name], [out_shape]
    outputs = []
    for value, name, shp in zip(x, names, shapes):
        g.nodes.append(h.make_node("Identity", [value], [name], name=g.name("output")))
        outputs.append(h.make_tensor_value_info(name, g.elem, _dims(shp)))
    graph = h.make_graph(g.nodes, model.name, inputs, outputs, g.inits)
    proto = h.make_model(
        graph,
        opset_imports=[h.make_opsetid("", opset)],
        producer_name="rnnkit",
        doc_string=f"rnnkit model {model.name!r}",
    )
    proto.ir_version = h.find_min_ir_version_for([h.make_opsetid("", opset)])
    onnx.checker.check_model(proto)
    if path is not None:
        onnx.save(proto, os.fspath(path))
    return proto


__all__ = ["to_onnx", "OnnxExportError"]
