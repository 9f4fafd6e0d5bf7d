"""Exact weight exchange with PyTorch's nn.RNN, nn.LSTM and nn.GRU.

The name map (rnnkit keeps row vectors, x U; PyTorch keeps column vectors, W_ih x):

    rnnkit        PyTorch (layer k, suffix _reverse for the backward direction)
    U  (D, G)     weight_ih_lk.T
    W  (P, G)     weight_hh_lk.T
    b  (G,)       bias_ih_lk + bias_hh_lk      (SimpleRNN, LSTM: only the sum matters)
    b  (3H,)      bias_ih_lk                   (GRU)
    b_rec (3H,)   bias_hh_lk                   (GRU: it sits inside r ⊙ (h W_n + b_rec_n))
    P  (H, P)     weight_hr_lk.T               (LSTM with proj_size)

Gate blocks: LSTM i, f, g, o in both.  GRU: PyTorch r, z, n; rnnkit z, r, n (Keras's order).
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from ..layers import GRU, LSTM, Bidirectional, Recurrent, SimpleRNN
from ..models import RNNStack, Sequential

# Column blocks of rnnkit's gate order, taken from PyTorch's row blocks.
_TORCH_TO_RNNKIT_BLOCKS = {"RNN": [0], "LSTM": [0, 1, 2, 3], "GRU": [1, 0, 2]}


def _torch():
    try:
        import torch
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("rnnkit.io's PyTorch exchange needs torch: pip install torch") from e
    return torch


def _reorder(a, kind, H, axis):
    """Permute the gate blocks along ``axis`` (PyTorch order <-> rnnkit order; both
    permutations are their own inverse)."""
    blocks = _TORCH_TO_RNNKIT_BLOCKS[kind]
    parts = np.split(a, len(blocks), axis=axis)
    return np.concatenate([parts[i] for i in blocks], axis=axis)


def _kind(module):
    torch = _torch()
    if isinstance(module, torch.nn.LSTM):
        return "LSTM"
    if isinstance(module, torch.nn.GRU):
        return "GRU"
    if isinstance(module, torch.nn.RNN):
        return "RNN"
    raise TypeError(f"from_torch: module must be torch.nn.RNN, nn.LSTM or nn.GRU; "
                    f"got {type(module).__name__}")


def from_torch(module, *, name=None) -> RNNStack:
    """An rnnkit ``RNNStack`` computing exactly what ``module`` computes.

    Any num_layers, bidirectional, batch_first, bias, proj_size and dropout; float32
    or float64 as the module's weights are.  Call it as the module is called:
    ``output, h_n = stack(x, h_0)``.
    """
    kind = _kind(module)
    sd = {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}
    dtype = next(iter(sd.values())).dtype
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"from_torch: weights must be float32 or float64; got {dtype}")
    H, D, L = module.hidden_size, module.input_size, module.num_layers
    dirs = 2 if module.bidirectional else 1
    proj = getattr(module, "proj_size", 0) or 0
    H_out = proj or H
    layers = []
    for k in range(L):
        in_size = D if k == 0 else H_out * dirs
        made = []
        for d in range(dirs):
            sfx = f"_l{k}" + ("_reverse" if d else "")
            common = dict(return_sequences=True, return_state=True, use_bias=module.bias,
                          dtype=dtype, go_backwards=bool(d),
                          name=("backward_" if d else "") + f"{kind.lower()}_l{k}")
            if kind == "RNN":
                act = "relu" if module.nonlinearity == "relu" else "tanh"
                layer = SimpleRNN(H, activation=act, **common)
            elif kind == "LSTM":
                layer = LSTM(H, proj_size=proj, unit_forget_bias=False, **common)
            else:
                layer = GRU(H, reset_after=True, **common)
            layer.build((None, None, in_size))
            p = layer.params
            p["U"][...] = _reorder(sd["weight_ih" + sfx].T, kind, H, axis=1)
            p["W"][...] = _reorder(sd["weight_hh" + sfx].T, kind, H, axis=1)
            if module.bias:
                b_ih = _reorder(sd["bias_ih" + sfx], kind, H, axis=0)
                b_hh = _reorder(sd["bias_hh" + sfx], kind, H, axis=0)
                if kind == "GRU":
                    p["b"][...], p["b_rec"][...] = b_ih, b_hh
                else:
                    p["b"][...] = b_ih + b_hh
            if proj:
                p["P"][...] = sd["weight_hr" + sfx].T
            made.append(layer)
        if dirs == 2:
            layers.append(Bidirectional(made[0], backward_layer=made[1], merge_mode="concat",
                                        name=f"bidirectional_l{k}"))
        else:
            layers.append(made[0])
    return RNNStack(layers, batch_first=module.batch_first, dropout=float(module.dropout),
                    name=name or f"from_torch_{kind.lower()}")


def _recurrent_layers(model):
    """[(layer index, [direction layers])] of an RNNStack, a Sequential of
    recurrent layers, or a single recurrent/Bidirectional layer."""
    if isinstance(model, (RNNStack, Sequential)):
        items = [l for l in model.layers if isinstance(l, (Recurrent, Bidirectional))]
        others = [l.name for l in model.layers if not isinstance(l, (Recurrent, Bidirectional))]
        if others and isinstance(model, Sequential):
            raise ValueError(f"to_torch: a PyTorch RNN module holds only recurrent layers; "
                             f"{model.name!r} also has {others}")
    elif isinstance(model, (Recurrent, Bidirectional)):
        items = [model]
    else:
        raise TypeError(f"to_torch: expected an RNNStack, a Sequential of recurrent layers or a "
                        f"recurrent layer; got {type(model).__name__}")
    if not items:
        raise ValueError("to_torch: the model has no recurrent layers")
    out = []
    for layer in items:
        if isinstance(layer, Bidirectional):
            if layer.merge_mode != "concat":
                raise ValueError(f"to_torch: PyTorch concatenates the two directions; "
                                 f"{layer.name!r} has merge_mode={layer.merge_mode!r}")
            out.append([layer.forward_layer, layer.backward_layer])
        else:
            if layer.go_backwards:
                raise ValueError(f"to_torch: {layer.name!r} has go_backwards=True, which a "
                                 f"PyTorch RNN module does not have on its own")
            out.append([layer])
    kinds = {type(d[0]) for d in out}
    if len(kinds) != 1:
        raise ValueError(f"to_torch: a PyTorch module holds one kind of layer; got "
                         f"{sorted(k.__name__ for k in kinds)}")
    return out


def _check_representable(layer):
    who = f"to_torch: {type(layer).__name__} {layer.name!r}"
    if not layer.built:
        raise ValueError(f"{who} is not built yet (call it once, or give input_shape)")
    act = layer.cell.activation.name
    if isinstance(layer, SimpleRNN):
        if act not in ("tanh", "relu"):
            raise ValueError(f"{who}: PyTorch's nn.RNN has tanh or relu; this layer has {act!r}")
        return
    if act != "tanh" or layer.cell.recurrent_activation.name != "sigmoid":
        raise ValueError(f"{who}: PyTorch uses tanh and sigmoid; this layer has activation="
                         f"{act!r}, recurrent_activation={layer.cell.recurrent_activation.name!r}")
    if isinstance(layer, GRU) and not layer.reset_after:
        raise ValueError(f"{who}: has reset_after=False (reset gate before the recurrent "
                         f"product), which PyTorch's nn.GRU cannot represent; PyTorch's GRU "
                         f"is the reset_after=True variant")


def to_torch(model, *, as_module=False):
    """The PyTorch ``state_dict`` (an OrderedDict of tensors) that makes the matching
    nn.RNN/nn.LSTM/nn.GRU compute what ``model`` computes; with ``as_module=True``,
    that module itself, built and loaded (batch_first=True)."""
    torch = _torch()
    stack = _recurrent_layers(model)
    first = stack[0][0]
    kind = {SimpleRNN: "RNN", LSTM: "LSTM", GRU: "GRU"}[type(first)]
    sd = OrderedDict()
    for k, dirs in enumerate(stack):
        for d, layer in enumerate(dirs):
            _check_representable(layer)
            p = {n: np.asarray(v) for n, v in layer.params.items()}
            sfx = f"_l{k}" + ("_reverse" if d else "")
            H = layer.units
            sd["weight_ih" + sfx] = _reorder(p["U"], kind, H, axis=1).T
            sd["weight_hh" + sfx] = _reorder(p["W"], kind, H, axis=1).T
            if layer.use_bias:
                sd["bias_ih" + sfx] = _reorder(p["b"], kind, H, axis=0)
                sd["bias_hh" + sfx] = (_reorder(p["b_rec"], kind, H, axis=0) if kind == "GRU"
                                       else np.zeros_like(p["b"]))
            if kind == "LSTM" and layer.proj_size:
                sd["weight_hr" + sfx] = p["P"].T
    state = OrderedDict((k, torch.from_numpy(np.ascontiguousarray(v))) for k, v in sd.items())
    if not as_module:
        return state
    cls = {"RNN": torch.nn.RNN, "LSTM": torch.nn.LSTM, "GRU": torch.nn.GRU}[kind]
    kwargs = dict(input_size=first.input_dim, hidden_size=first.units, num_layers=len(stack),
                  bias=first.use_bias, batch_first=True, bidirectional=len(stack[0]) == 2)
    if kind == "RNN":
        kwargs["nonlinearity"] = first.cell.activation.name
    if kind == "LSTM" and first.proj_size:
        kwargs["proj_size"] = first.proj_size
    if isinstance(model, RNNStack) and model.dropouts:
        kwargs["dropout"] = model.dropouts[0].rate
    module = cls(**kwargs).to(torch.float64 if first.dtype == np.float64 else torch.float32)
    module.load_state_dict(state)
    return module
