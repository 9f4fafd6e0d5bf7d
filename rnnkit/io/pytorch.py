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
    raise TypeError(
        f"from_torch: module must be torch.nn.RNN, nn.LSTM or nn.GRU; got {type(module).__name__}"
    )


def from_torch(module, *, name=None, return_sequences=False):
    """An rnnkit ``RNNStack`` computing exactly what ``module`` computes.

    Any num_layers, bidirectional, batch_first, bias, proj_size and dropout; float32
    or float64 as the module's weights are.  Call it as the module is called:
    ``output, h_n = stack(x, h_0)``.

    A whole model (an nn.Sequential, a list of modules, or any nn.Module whose
    children in registration order are nn.Embedding -> nn.RNN/LSTM/GRU ... ->
    nn.Linear [-> activation], see "Whole models" below) gives an rnnkit
    ``Sequential`` instead (batch-first); ``return_sequences`` says whether its last
    recurrent module hands the head its output sequence or its final hidden state.
    """
    torch = _torch()
    if not isinstance(module, (torch.nn.Module, list, tuple)):
        raise TypeError(
            f"from_torch: module must be a torch.nn.Module (nn.RNN, nn.LSTM, nn.GRU, "
            f"or a model such as an nn.Sequential holding them) or a list of "
            f"modules, e.g. from_torch(torch.nn.LSTM(3, 5, batch_first=True)); "
            f"got {type(module).__name__} {module!r:.60}"
        )
    if not _is_rnn_module(module):
        return _model_from_torch(module, name=name, return_sequences=return_sequences)
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
            common = dict(
                return_sequences=True,
                return_state=True,
                use_bias=module.bias,
                dtype=dtype,
                go_backwards=bool(d),
                name=("backward_" if d else "") + f"{kind.lower()}_l{k}",
            )
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
            layers.append(
                Bidirectional(
                    made[0], backward_layer=made[1], merge_mode="concat", name=f"bidirectional_l{k}"
                )
            )
        else:
            layers.append(made[0])
    return RNNStack(
        layers,
        batch_first=module.batch_first,
        dropout=float(module.dropout),
        name=name or f"from_torch_{kind.lower()}",
    )


def _recurrent_layers(model):
    """[(layer index, [direction layers])] of an RNNStack, a Sequential of
    recurrent layers, or a single recurrent/Bidirectional layer."""
    if isinstance(model, (RNNStack, Sequential)):
        items = [l for l in model.layers if isinstance(l, (Recurrent, Bidirectional))]
        others = [l.name for l in model.layers if not isinstance(l, (Recurrent, Bidirectional))]
        if others and isinstance(model, Sequential):
            raise ValueError(
                f"to_torch: a PyTorch RNN module holds only recurrent layers; "
                f"{model.name!r} also has {others} (to_torch(model, "
                f"whole_model=True) gives an nn.Sequential of the whole model)"
            )
    elif isinstance(model, (Recurrent, Bidirectional)):
        items = [model]
    else:
        raise TypeError(
            f"to_torch: expected an RNNStack, a Sequential of recurrent layers or a "
            f"recurrent layer; got {type(model).__name__}"
        )
    if not items:
        raise ValueError("to_torch: the model has no recurrent layers")
    out = []
    for layer in items:
        if isinstance(layer, Bidirectional):
            if layer.merge_mode != "concat":
                raise ValueError(
                    f"to_torch: PyTorch concatenates the two directions; "
                    f"{layer.name!r} has merge_mode={layer.merge_mode!r}"
                )
            if layer.forward_layer.go_backwards:
                raise ValueError(
                    f"to_torch: {layer.name!r} runs its forward layer with "
                    f"go_backwards=True; PyTorch's first direction reads the "
                    f"sequence forwards"
                )
            out.append([layer.forward_layer, layer.backward_layer])
        else:
            if layer.go_backwards:
                raise ValueError(
                    f"to_torch: {layer.name!r} has go_backwards=True, which a "
                    f"PyTorch RNN module does not have on its own"
                )
            out.append([layer])
    kinds = {type(d[0]) for d in out}
    if len(kinds) != 1:
        raise ValueError(
            f"to_torch: a PyTorch module holds one kind of layer; got "
            f"{sorted(k.__name__ for k in kinds)}"
        )
    # one nn.RNN/LSTM/GRU has one hidden size, projection, bias flag and nonlinearity
    for attr, get in (
        ("units", lambda l: l.units),
        ("proj_size", lambda l: getattr(l, "proj_size", 0)),
        ("use_bias", lambda l: l.use_bias),
        ("activation", lambda l: l.cell.activation.name),
    ):
        values = [get(l) for dirs in out for l in dirs]
        if len(set(values)) > 1:
            raise ValueError(
                f"to_torch: a PyTorch module has one {attr} for all its layers; "
                f"the layers have {attr}={values}"
            )
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
        raise ValueError(
            f"{who}: PyTorch uses tanh and sigmoid; this layer has activation="
            f"{act!r}, recurrent_activation={layer.cell.recurrent_activation.name!r}"
        )
    if isinstance(layer, GRU) and not layer.reset_after:
        raise ValueError(
            f"{who}: has reset_after=False (reset gate before the recurrent "
            f"product), which PyTorch's nn.GRU cannot represent; PyTorch's GRU "
            f"is the reset_after=True variant"
        )


def to_torch(model, *, as_module=False, whole_model=False):
    """The PyTorch ``state_dict`` (an OrderedDict of tensors) that makes the matching
    nn.RNN/nn.LSTM/nn.GRU compute what ``model`` computes; with ``as_module=True``,
    that module itself, built and loaded (batch_first=True).

    ``whole_model=True``: a whole Sequential (Embedding, recurrent layers, Dense,
    TimeDistributed(Dense), Dropout) becomes an ``nn.Sequential`` of nn.Embedding,
    ``RNNBlock`` (one per recurrent layer, rnnkit.io.torch_modules), nn.Linear,
    activation and nn.Dropout modules, computing what ``model(x)`` computes;
    to_torch returns its state_dict, or the module with ``as_module=True``.
    """
    torch = _torch()
    if whole_model:
        return _model_to_torch(model, as_module=as_module)
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
                sd["bias_hh" + sfx] = (
                    _reorder(p["b_rec"], kind, H, axis=0)
                    if kind == "GRU"
                    else np.zeros_like(p["b"])
                )
            if kind == "LSTM" and layer.proj_size:
                sd["weight_hr" + sfx] = p["P"].T
    state = OrderedDict((k, torch.from_numpy(np.ascontiguousarray(v))) for k, v in sd.items())
    if not as_module:
        return state
    cls = {"RNN": torch.nn.RNN, "LSTM": torch.nn.LSTM, "GRU": torch.nn.GRU}[kind]
    kwargs = dict(
        input_size=first.input_dim,
        hidden_size=first.units,
        num_layers=len(stack),
        bias=first.use_bias,
        batch_first=True,
        bidirectional=len(stack[0]) == 2,
    )
    if kind == "RNN":
        kwargs["nonlinearity"] = first.cell.activation.name
    if kind == "LSTM" and first.proj_size:
        kwargs["proj_size"] = first.proj_size
    if isinstance(model, RNNStack) and model.dropouts:
        kwargs["dropout"] = model.dropouts[0].rate
    module = cls(**kwargs).to(torch.float64 if first.dtype == np.float64 else torch.float32)
    module.load_state_dict(state)
    return module


# ------------------------------------------------------------------------------------------
# Whole models: nn.Embedding -> recurrent modules -> nn.Linear heads (and back)
# ------------------------------------------------------------------------------------------
#
# The convention (PyTorch has no model format that says how an RNN's output feeds a head):
# a model is an ordered list of modules, the children of an nn.Sequential (or of any
# nn.Module, in registration order), each feeding the next, batch-first:
#
#     nn.Embedding                  -> Embedding (first only; PyTorch has no masks: mask_zero=False)
#     nn.RNN / nn.LSTM / nn.GRU     -> its layers (Bidirectional where bidirectional); the output
#                                      is the whole sequence for the next module, and for the
#                                      last recurrent module the final hidden state of its last
#                                      layer (torch.cat([h_n[-2], h_n[-1]], -1) if bidirectional)
#                                      unless return_sequences=True
#     RNNBlock(rnn, ...)            -> the same, with its own return_sequences, go_backwards and
#                                      merge_mode (to_torch writes these)
#     nn.Linear                     -> Dense (on (N, H) or every step of (N, T, H))
#     nn.Tanh/Sigmoid/ReLU/Softsign/Hardsigmoid/Softmax(dim=-1) right after an nn.Linear
#                                   -> that Dense's activation
#     nn.Dropout -> Dropout          nn.Identity -> nothing

_TORCH_ACTIVATIONS = {
    "Tanh": "tanh",
    "Sigmoid": "sigmoid",
    "ReLU": "relu",
    "Softsign": "softsign",
    "Hardsigmoid": "hard_sigmoid",
    "Softmax": "softmax",
}
_RNNKIT_ACTIVATIONS = {v: k for k, v in _TORCH_ACTIVATIONS.items()}


def _is_rnn_module(module):
    torch = _torch()
    return isinstance(module, (torch.nn.RNN, torch.nn.LSTM, torch.nn.GRU))


def _flat_children(module):
    torch = _torch()
    if isinstance(module, (list, tuple)):
        items = list(module)
    else:
        items = list(module.children())
    out = []
    for m in items:
        if isinstance(m, (torch.nn.Sequential, torch.nn.ModuleList)):
            out += _flat_children(m)
        else:
            out.append(m)
    return out


def _model_from_torch(module, *, name=None, return_sequences=False) -> Sequential:
    """from_torch of a whole model (see the convention above)."""
    from .. import activations
    from ..layers import Dense, Dropout, Embedding
    from .torch_modules import RNNBlock

    torch = _torch()
    nn = torch.nn
    children = _flat_children(module)
    is_rnn = [isinstance(c, RNNBlock) or _is_rnn_module(c) for c in children]
    if not any(is_rnn):
        raise TypeError(
            f"from_torch: module must be torch.nn.RNN, nn.LSTM or nn.GRU, or a "
            f"container (nn.Sequential, nn.Module) of nn.Embedding, recurrent "
            f"modules, nn.Linear, activations and nn.Dropout holding at least one "
            f"recurrent module; got {type(module).__name__} with children "
            f"{[type(c).__name__ for c in children]}"
        )
    last_rnn = max(i for i, r in enumerate(is_rnn) if r)
    n_rnn = sum(is_rnn)
    layers: list = []  # rnnkit layers of several classes
    dtype, j = None, 0
    prev = None
    for i, child in enumerate(children):
        cname = type(child).__name__
        if isinstance(child, nn.Embedding):
            if i != 0:
                raise ValueError(
                    f"from_torch: nn.Embedding must be the first module; it is module {i}"
                )
            if child.max_norm is not None:
                raise ValueError(
                    "from_torch: nn.Embedding with max_norm renormalizes rows at "
                    "lookup time; rnnkit's Embedding does not"
                )
            E = child.weight.detach().cpu().numpy()
            dtype = dtype or E.dtype
            emb = Embedding(
                child.num_embeddings, child.embedding_dim, dtype=E.dtype, name="embedding"
            )
            emb.params["E"][...] = E
            layers.append(emb)
        elif is_rnn[i]:
            block = child if isinstance(child, RNNBlock) else None
            rnn = block.rnn if block else child
            rs = block.return_sequences if block else (i != last_rnn or return_sequences)
            gb = block.go_backwards if block else False
            mm = block.merge_mode if block else "concat"
            stack = from_torch(rnn)
            dtype = dtype or stack.layers[0].dtype
            prefix = f"rnn{j}_" if n_rnn > 1 else ""
            j += 1
            L = len(stack.layers)
            for k, layer in enumerate(stack.layers):
                last = k == L - 1
                bi = isinstance(layer, Bidirectional)
                dirs = [layer.forward_layer, layer.backward_layer] if bi else [layer]
                for d in dirs:
                    d.return_state = False
                    d.return_sequences = (not last) or rs
                    if bi:
                        d.name = prefix + d.name
                        d.zero_output_for_mask = d.return_sequences
                if gb and k == 0:
                    dirs[0].go_backwards = True
                    if bi:
                        dirs[1].go_backwards = False
                if bi and last:
                    layer.merge_mode = mm
                layer.name = prefix + layer.name
                layers.append(layer)
                if not last and stack.dropouts and stack.dropouts[k].rate > 0:
                    layers.append(
                        Dropout(
                            stack.dropouts[k].rate, dtype=layer.dtype, name=f"{prefix}dropout_l{k}"
                        )
                    )
        elif isinstance(child, nn.Linear):
            W = child.weight.detach().cpu().numpy()
            dtype = dtype or W.dtype
            layer = Dense(
                child.out_features,
                use_bias=child.bias is not None,
                dtype=W.dtype,
                name=f"dense_{i}",
            )
            layer.build((None, child.in_features))
            layer.params["V"][...] = W.T
            if child.bias is not None:
                layer.params["c"][...] = child.bias.detach().cpu().numpy()
            layers.append(layer)
        elif cname in _TORCH_ACTIVATIONS:
            act = _TORCH_ACTIVATIONS[cname]
            if not isinstance(prev, nn.Linear) or layers[-1].activation.name != "linear":
                raise ValueError(
                    f"from_torch: an {cname} must come right after an nn.Linear "
                    f"(rnnkit applies activations inside Dense); module {i} "
                    f"follows {type(prev).__name__}"
                )
            if act == "softmax" and child.dim not in (-1, 2 if _rank_is_3(layers) else 1):
                raise ValueError(
                    f"from_torch: nn.Softmax(dim={child.dim}) is not over the last "
                    f"axis; rnnkit's softmax is (use dim=-1)"
                )
            layers[-1].activation = activations.get(act, allow_softmax=True)
        elif isinstance(child, nn.Dropout):
            layers.append(Dropout(float(child.p), name=f"dropout_{i}", dtype=dtype or np.float32))
        elif isinstance(child, nn.Identity):
            pass
        else:
            raise TypeError(
                f"from_torch: module {i} is a {cname}, which rnnkit cannot map; it "
                f"reads nn.Embedding, nn.RNN/LSTM/GRU, RNNBlock, nn.Linear, nn.Dropout, "
                f"nn.Identity and {sorted(_TORCH_ACTIVATIONS)} after an nn.Linear"
            )
        prev = child
    for layer in layers:  # dropouts made before the first weight told the dtype
        if layer.dtype != dtype:
            layer.astype(dtype)
    return Sequential(
        layers, name=name or f"from_torch_{type(module).__name__.lower()}", dtype=dtype
    )


def _rank_is_3(layers):
    """Whether the output of ``layers`` so far is a sequence (N, T, ·)."""
    seq = True
    for layer in layers:
        if isinstance(layer, (Recurrent, Bidirectional)):
            seq = layer.return_sequences
    return seq


def _torch_rnn_module(dirs, torch):
    """A batch-first nn.RNN/LSTM/GRU (one layer, one or two directions) computing what
    the rnnkit layers ``dirs`` (forward, then backward) compute."""
    first = dirs[0]
    kind = {SimpleRNN: "RNN", LSTM: "LSTM", GRU: "GRU"}[type(first)]
    for layer in dirs:
        _check_representable(layer)
        if layer.stateful:
            raise ValueError(
                f"to_torch: {layer.who} is stateful; a PyTorch module keeps no "
                f"state between calls: export it with stateful=False"
            )
    if len(dirs) == 2:
        a, b = dirs
        same = (
            type(a) is type(b)
            and a.units == b.units
            and a.use_bias == b.use_bias
            and a.cell.activation.name == b.cell.activation.name
            and getattr(a, "proj_size", 0) == getattr(b, "proj_size", 0)
        )
        if not same:
            raise ValueError(
                f"to_torch: the two directions of a bidirectional PyTorch module "
                f"share their configuration; {a.name!r} and {b.name!r} differ"
            )
    sd = OrderedDict()
    for d, layer in enumerate(dirs):
        p = {n: np.asarray(v) for n, v in layer.params.items()}
        sfx = "_l0" + ("_reverse" if d else "")
        H = layer.units
        sd["weight_ih" + sfx] = _reorder(p["U"], kind, H, axis=1).T
        sd["weight_hh" + sfx] = _reorder(p["W"], kind, H, axis=1).T
        if layer.use_bias:
            sd["bias_ih" + sfx] = _reorder(p["b"], kind, H, axis=0)
            sd["bias_hh" + sfx] = (
                _reorder(p["b_rec"], kind, H, axis=0) if kind == "GRU" else np.zeros_like(p["b"])
            )
        if kind == "LSTM" and layer.proj_size:
            sd["weight_hr" + sfx] = p["P"].T
    cls = {"RNN": torch.nn.RNN, "LSTM": torch.nn.LSTM, "GRU": torch.nn.GRU}[kind]
    kwargs = dict(
        input_size=first.input_dim,
        hidden_size=first.units,
        num_layers=1,
        bias=first.use_bias,
        batch_first=True,
        bidirectional=len(dirs) == 2,
    )
    if kind == "RNN":
        kwargs["nonlinearity"] = first.cell.activation.name
    if kind == "LSTM" and first.proj_size:
        kwargs["proj_size"] = first.proj_size
    tdtype = torch.float64 if first.dtype == np.float64 else torch.float32
    module = cls(**kwargs).to(tdtype)
    module.load_state_dict(
        OrderedDict((k, torch.from_numpy(np.ascontiguousarray(v))) for k, v in sd.items())
    )
    return module


def _model_to_torch(model, *, as_module=False):
    """to_torch of a Sequential with Embedding/Dense/Dropout around recurrent layers:
    an nn.Sequential of PyTorch modules (recurrent layers inside RNNBlock)."""
    from ..layers import Dense, Dropout, Embedding, Layer, TimeDistributed
    from .torch_modules import RNNBlock

    torch = _torch()
    nn = torch.nn
    if isinstance(model, RNNStack):
        raise TypeError(
            "to_torch(whole_model=True): an RNNStack already is a PyTorch-style "
            "module; call to_torch(stack) without whole_model"
        )
    if isinstance(model, Layer) and not isinstance(model, Sequential):
        model = Sequential([model], name=f"sequential_{model.name}", dtype=model.dtype)
    if not isinstance(model, Sequential):
        raise TypeError(
            f"to_torch: expected an rnnkit Sequential or layer; got {type(model).__name__}"
        )
    mods = []
    for layer in model.layers:
        who = f"to_torch: {type(layer).__name__} {layer.name!r}"
        inner = layer.layer if isinstance(layer, TimeDistributed) else layer
        if isinstance(inner, Embedding):
            if inner.mask_zero:
                raise ValueError(
                    f"{who} has mask_zero=True; PyTorch modules have no masks (a "
                    f"padded step would be computed, not skipped): set "
                    f"mask_zero=False, or pack the sequences yourself"
                )
            m = nn.Embedding(inner.input_dim, inner.output_dim)
            m.weight.data = torch.from_numpy(np.array(inner.params["E"]))
            mods.append(m)
        elif isinstance(inner, Dense):
            if not inner.built:
                raise ValueError(f"{who} is not built yet (call the model once)")
            m = nn.Linear(inner.input_dim, inner.units, bias=inner.use_bias)
            m.weight.data = torch.from_numpy(np.ascontiguousarray(np.asarray(inner.params["V"]).T))
            if inner.use_bias:
                m.bias.data = torch.from_numpy(np.array(inner.params["c"]))
            mods.append(m)
            act = inner.activation.name
            if act == "softmax":
                mods.append(nn.Softmax(dim=-1))
            elif act != "linear":
                mods.append(getattr(nn, _RNNKIT_ACTIVATIONS[act])())
        elif isinstance(inner, Dropout):
            mods.append(nn.Dropout(inner.rate))
        elif isinstance(layer, Recurrent):
            if layer.return_state:
                raise ValueError(f"{who} has return_state=True")
            mods.append(
                RNNBlock(
                    _torch_rnn_module([layer], torch),
                    return_sequences=layer.return_sequences,
                    go_backwards=layer.go_backwards,
                )
            )
        elif isinstance(layer, Bidirectional):
            if layer.merge_mode is None:
                raise ValueError(
                    f"{who} has merge_mode=None (two outputs); PyTorch's "
                    f"nn.Sequential passes one output on"
                )
            fw, bw = layer.forward_layer, layer.backward_layer
            mods.append(
                RNNBlock(
                    _torch_rnn_module([fw, bw], torch),
                    return_sequences=layer.return_sequences,
                    go_backwards=fw.go_backwards,
                    merge_mode=layer.merge_mode,
                )
            )
        else:
            raise ValueError(f"{who} has no PyTorch counterpart (Masking: PyTorch has no masks)")
    seq = nn.Sequential(*mods)
    return seq if as_module else seq.state_dict()
