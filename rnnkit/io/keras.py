"""Keras 3 model files in and out: ``.keras`` archives and ``.weights.h5`` files.

    model = from_keras("model.keras")                    # config.json + model.weights.h5
    model = from_keras("model.weights.h5", rnnkit_model)   # weights into a model you built
    model = from_keras("model.weights.h5", config=keras_model.get_config())
    to_keras(model, "model.keras")                       # keras.saving.load_model reads it
    to_keras(model, "model.weights.h5")                  # keras_model.load_weights reads it

Only h5py is needed (``pip install 'rnnkit[keras]'``); Keras itself is not imported.

The name map (Keras keeps row vectors too, so nothing is transposed):

    rnnkit        Keras (file path  <layer>/cell/vars/<i>)
    U  (D, G)     kernel            vars/0
    W  (H, G)     recurrent_kernel  vars/1
    b  (G,)       bias              vars/2     (G,)  SimpleRNN, LSTM, GRU(reset_after=False)
    b, b_rec      bias              vars/2     (2, 3H): row 0 = b, row 1 = b_rec (GRU reset_after)
    V (H, K), c   Dense kernel, bias           <layer>/vars/0, 1 (TimeDistributed: <td>/layer/vars)
    E (V, E)      Embedding embeddings         <layer>/vars/0

Gate blocks are in the same order in both: LSTM i, f, c(g), o; GRU z, r, h(n).

Where the weights sit in the HDF5 file is not given by the layers' names but by
Keras's object walk (``keras/src/saving/saving_lib.py``): a Sequential's layers are
``layers/<snake_case(class name)>``, numbered ``_1, _2, ...`` per class in order;
inside a layer, its attributes: ``cell`` (recurrent layers), ``forward_layer`` and
``backward_layer`` (Bidirectional), ``layer`` (TimeDistributed).
"""

from __future__ import annotations

import datetime
import io
import json
import os
import re
import zipfile

import numpy as np

from .. import initializers
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

KERAS_CLASSES = (
    "InputLayer",
    "SimpleRNN",
    "LSTM",
    "GRU",
    "Embedding",
    "Masking",
    "Bidirectional",
    "TimeDistributed",
    "Dense",
    "Dropout",
    "RepeatVector",
)
_RNN_CLASSES = {"SimpleRNN": SimpleRNN, "LSTM": LSTM, "GRU": GRU}
# Keras activation names rnnkit computes exactly the same way (Keras 3's hard_sigmoid
# is relu6(x + 3) / 6, as rnnkit's).
_ACTIVATIONS = ("tanh", "sigmoid", "hard_sigmoid", "relu", "linear", "softsign", "softmax")
_KERAS_INITIALIZERS = {
    "GlorotUniform": "glorot_uniform",
    "GlorotNormal": "glorot_normal",
    "Orthogonal": "orthogonal",
    "OrthogonalInitializer": "orthogonal",
    "Zeros": "zeros",
    "Ones": "ones",
}
_CONFIG = "config.json"
_WEIGHTS = "model.weights.h5"
_METADATA = "metadata.json"


class KerasFormatError(ValueError):
    """A file that is not a Keras 3 model/weights file rnnkit can read, or a model
    rnnkit cannot represent in Keras (or the other way round)."""


def _h5py():
    try:
        import h5py
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "rnnkit.io's Keras exchange needs h5py: pip install 'rnnkit[keras]' "
            "(or pip install h5py)"
        ) from e
    return h5py


def _keras_snake(name):
    """keras.src.utils.naming.to_snake_case."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _layer_paths(class_names, root="layers"):
    """Keras's HDF5 group of each layer of a Sequential, in order."""
    used, out = {}, []
    for cls in class_names:
        key = _keras_snake(cls)
        if key in used:
            used[key] += 1
            key = f"{key}_{used[key]}"
        else:
            used[key] = 0
        out.append(f"{root}/{key}")
    return out


# ----------------------------------------------------------------------------------------
# reading
# ----------------------------------------------------------------------------------------


class _Weights:
    """The variables of a Keras weights file: ``get(path)`` -> list of arrays."""

    def __init__(self, h5file, where):
        self.f = h5file
        self.where = where
        self.root = "layers"
        if "layers" not in self.f and "_layer_checkpoint_dependencies" in self.f:
            self.root = "_layer_checkpoint_dependencies"  # files of Keras 2.13's format
        if self.root not in self.f:
            if "model_weights" in self.f or "model_config" in self.f.attrs:
                raise KerasFormatError(
                    f"{where} is a legacy Keras 2 HDF5 file (model.save('*.h5')); rnnkit reads "
                    f"Keras 3 files: load it in Keras and save it again as '.keras'"
                )
            raise KerasFormatError(
                f"{where} holds no Keras 3 layer weights (no 'layers' group; "
                f"top-level keys: {sorted(self.f.keys())})"
            )

    def layer_groups(self):
        return sorted(self.f[self.root].keys())

    def groups_with_weights(self):
        """The layer groups that hold at least one array (a Dropout's group holds none)."""
        h5py = _h5py()
        out = []
        for key in self.layer_groups():
            found = []
            self.f[self.root][key].visititems(
                lambda n, o: found.append(n) if isinstance(o, h5py.Dataset) else None
            )
            if found:
                out.append(key)
        return out

    def get(self, path, who):
        path = path.replace("layers/", self.root + "/", 1)
        if path not in self.f:
            raise KerasFormatError(
                f"{self.where}: no weights for {who} at {path!r}; the file holds layers "
                f"{self.layer_groups()} (does the model match the file?)"
            )
        group = self.f[path]
        if "vars" not in group:
            return []
        group = group["vars"]
        try:
            keys = sorted(group.keys(), key=int)
        except ValueError:
            raise KerasFormatError(
                f"{self.where}: unexpected variable names {sorted(group)} at {path!r}"
            ) from None
        arrays = []
        for k in keys:
            ds = group[k]
            if ds.attrs.get("dtype") == "bfloat16" or ds.dtype.kind != "f":
                raise KerasFormatError(
                    f"{self.where}: {who} has {ds.dtype} weights at "
                    f"{path}/vars/{k}; rnnkit reads float weights"
                )
            arrays.append(np.asarray(ds[()]))
        return arrays


def _open_h5(data, where):
    h5py = _h5py()
    try:
        return h5py.File(data, "r")
    except (OSError, ValueError) as e:
        raise KerasFormatError(f"{where} is not a readable HDF5 weights file ({e})") from None


def _read_archive(path):
    """(config dict, open h5 file) of a .keras zip archive or an unzipped folder."""
    if os.path.isdir(path):
        cpath, wpath = os.path.join(path, _CONFIG), os.path.join(path, _WEIGHTS)
        if not os.path.exists(cpath):
            raise KerasFormatError(f"{path!r} is a folder without {_CONFIG}; not a Keras model")
        with open(cpath, encoding="utf-8") as fh:
            text = fh.read()
        if not os.path.exists(wpath):
            raise KerasFormatError(f"{path!r} has no {_WEIGHTS}")
        return _parse_json(text, path), _open_h5(wpath, path)
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise KerasFormatError(
            f"{path!r} is not a Keras '.keras' file (not a zip archive)"
        ) from None
    with zf:
        names = set(zf.namelist())
        if _CONFIG not in names:
            raise KerasFormatError(
                f"{path!r} is a zip archive without {_CONFIG}; not a Keras "
                f"'.keras' file (it holds {sorted(names)[:10]})"
            )
        try:
            text = zf.read(_CONFIG).decode("utf-8")
            if _WEIGHTS not in names:
                other = (
                    " (npz weights: save with the default weights_format='h5')"
                    if "model.weights.npz" in names
                    else ""
                )
                raise KerasFormatError(f"{path!r} has no {_WEIGHTS}{other}")
            blob = zf.read(_WEIGHTS)
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raise KerasFormatError(f"{path!r} is a damaged zip archive ({e})") from None
    return _parse_json(text, path), _open_h5(io.BytesIO(blob), path)


def _parse_json(text, where):
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise KerasFormatError(f"{where}: {_CONFIG} is not valid JSON ({e})") from None


def _model_spec(config, where):
    """The list of layer specs of a Keras Sequential config, in any of its forms:
    the file's ``{"class_name": "Sequential", "config": {...}}``, or
    ``model.get_config()`` (``{"name": ..., "layers": [...]}``)."""
    if isinstance(config, (str, os.PathLike)):
        with open(config, encoding="utf-8") as fh:
            config = _parse_json(fh.read(), config)
    if not isinstance(config, dict):
        raise KerasFormatError(
            f"{where}: a Keras model config must be a dict; got {type(config).__name__}"
        )
    if "class_name" in config:
        cls = config["class_name"]
        if cls != "Sequential":
            extra = (
                " (a Functional model: rebuild it as keras.Sequential, or build the rnnkit "
                "model yourself and load the .weights.h5 into it)"
                if cls in ("Functional", "Model")
                else ""
            )
            raise KerasFormatError(
                f"{where}: rnnkit reads Keras Sequential models; this is a {cls!r}{extra}"
            )
        config = config.get("config", {})
    if "layers" not in config or not isinstance(config["layers"], list):
        raise KerasFormatError(f"{where}: the model config has no list of layers")
    return config


def _policy_dtype(spec_config, who, dtype):
    pol = spec_config.get("dtype")
    if isinstance(pol, dict):
        pol = (pol.get("config") or {}).get("name", "float32")
    pol = pol or "float32"
    if dtype is not None:
        return dtype
    if pol not in ("float32", "float64"):
        raise KerasFormatError(
            f"{who} computes in {pol!r}; rnnkit computes in float32 or "
            f"float64: pass dtype='float32' to from_keras to load it anyway "
            f"(its predictions then differ by rounding)"
        )
    return pol


def _activation(value, who, arg="activation", allow_softmax=False):
    if value is None:
        return "linear"
    if isinstance(value, dict):  # {"module": "keras.activations", "config": "tanh", ...}
        inner = value.get("config")
        value = inner if isinstance(inner, str) else (inner or {}).get("name", value)
    allowed = _ACTIVATIONS if allow_softmax else _ACTIVATIONS[:-1]
    if not isinstance(value, str) or value not in allowed:
        raise KerasFormatError(
            f"{who}: {arg}={value!r} has no exact rnnkit counterpart (rnnkit has {list(allowed)})"
        )
    return value


def _initializer(value, default):
    if isinstance(value, str):
        return value if value in initializers._REGISTRY else default
    if isinstance(value, dict):
        cls, cfg = value.get("class_name"), value.get("config") or {}
        if cls in _KERAS_INITIALIZERS:
            return _KERAS_INITIALIZERS[cls]
        if cls == "RandomUniform" and cfg.get("minval") == -0.05 and cfg.get("maxval") == 0.05:
            return "uniform"
    return default


def _common(cfg, who, dtype):
    kw = {
        "name": cfg.get("name"),
        "dtype": _policy_dtype(cfg, who, dtype),
        "trainable": bool(cfg.get("trainable", True)),
    }
    if isinstance(cfg.get("seed"), int):
        kw["seed"] = cfg["seed"]
    return kw


def _layer_from_spec(spec, dtype, where):
    """An unbuilt rnnkit layer from a Keras layer spec."""
    if not isinstance(spec, dict) or "class_name" not in spec:
        raise KerasFormatError(f"{where}: a layer entry is not a Keras layer spec: {spec!r}"[:300])
    cls, cfg = spec["class_name"], dict(spec.get("config") or {})
    who = f"{where}: Keras {cls} {cfg.get('name')!r}"
    if cls not in KERAS_CLASSES or cls == "InputLayer":
        raise KerasFormatError(f"{who}: rnnkit has no {cls} layer; it reads {list(KERAS_CLASSES)}")
    if cfg.get("quantization_config") or cfg.get("lora_rank"):
        raise KerasFormatError(
            f"{who} is quantized or has LoRA weights; rnnkit reads plain float weights"
        )
    kw = _common(cfg, who, dtype)
    if cls in _RNN_CLASSES:
        if cfg.get("return_state"):
            raise KerasFormatError(
                f"{who} has return_state=True, which a Sequential model cannot pass on"
            )
        kw.update(
            activation=_activation(cfg.get("activation", "tanh"), who),
            use_bias=bool(cfg.get("use_bias", True)),
            kernel_initializer=_initializer(cfg.get("kernel_initializer"), "glorot_uniform"),
            recurrent_initializer=_initializer(cfg.get("recurrent_initializer"), "orthogonal"),
            bias_initializer=_initializer(cfg.get("bias_initializer"), "zeros"),
            dropout=float(cfg.get("dropout", 0.0)),
            recurrent_dropout=float(cfg.get("recurrent_dropout", 0.0)),
            return_sequences=bool(cfg.get("return_sequences", False)),
            go_backwards=bool(cfg.get("go_backwards", False)),
            stateful=bool(cfg.get("stateful", False)),
            zero_output_for_mask=bool(cfg.get("zero_output_for_mask", False)),
        )
        if cls != "SimpleRNN":
            kw["recurrent_activation"] = _activation(
                cfg.get("recurrent_activation", "sigmoid"), who, "recurrent_activation"
            )
        if cls == "LSTM":
            kw["unit_forget_bias"] = bool(cfg.get("unit_forget_bias", True))
        if cls == "GRU":
            kw["reset_after"] = bool(cfg.get("reset_after", True))
        return _RNN_CLASSES[cls](int(cfg["units"]), **kw)
    if cls == "Dense":
        return Dense(
            int(cfg["units"]),
            activation=_activation(cfg.get("activation"), who, allow_softmax=True),
            use_bias=bool(cfg.get("use_bias", True)),
            kernel_initializer=_initializer(cfg.get("kernel_initializer"), "glorot_uniform"),
            bias_initializer=_initializer(cfg.get("bias_initializer"), "zeros"),
            **kw,
        )
    if cls == "Embedding":
        return Embedding(
            int(cfg["input_dim"]),
            int(cfg["output_dim"]),
            mask_zero=bool(cfg.get("mask_zero", False)),
            embeddings_initializer=_initializer(cfg.get("embeddings_initializer"), "uniform"),
            **kw,
        )
    if cls == "Dropout":
        return Dropout(float(cfg.get("rate", 0.0)), noise_shape=cfg.get("noise_shape"), **kw)
    if cls == "Masking":
        return Masking(float(cfg.get("mask_value", 0.0)), **kw)
    if cls == "RepeatVector":
        return RepeatVector(int(cfg["n"]), **kw)
    if cls == "TimeDistributed":
        return TimeDistributed(_layer_from_spec(cfg["layer"], dtype, where), **kw)
    # Bidirectional
    inner = cfg.get("layer") or {}
    if inner.get("class_name") not in _RNN_CLASSES:
        raise KerasFormatError(
            f"{who} wraps a {inner.get('class_name')!r}; rnnkit's "
            f"Bidirectional wraps SimpleRNN, LSTM or GRU"
        )
    forward = _layer_from_spec(inner, dtype, where)
    backward = cfg.get("backward_layer")
    if backward is not None:
        backward = _layer_from_spec(backward, dtype, where)
    else:  # Keras's default: a copy of the layer that goes backwards
        bspec = json.loads(json.dumps(inner))
        bcfg = bspec["config"]
        bcfg["go_backwards"] = not bcfg.get("go_backwards", False)
        bcfg["name"] = "backward_" + re.sub("^forward_", "", str(bcfg.get("name")))
        backward = _layer_from_spec(bspec, dtype, where)
    kw.pop("seed", None)
    return Bidirectional(
        forward, merge_mode=cfg.get("merge_mode", "concat"), backward_layer=backward, **kw
    )


def _check_count(arrays, n, who, path, where):
    if len(arrays) != n:
        raise KerasFormatError(
            f"{where}: {who} expects {n} weight arrays at {path!r}; the file has {len(arrays)}"
        )


def _set_recurrent(layer, arrays, path, where):
    who = layer.who
    _check_count(arrays, 3 if layer.use_bias else 2, who, path, where)
    kernel, recurrent = arrays[0], arrays[1]
    G = layer.cell.width
    if kernel.ndim != 2 or kernel.shape[1] != G or recurrent.shape != (layer.units, G):
        raise KerasFormatError(
            f"{where}: {who} ({layer.units} units) expects kernel (D, {G}) "
            f"and recurrent_kernel ({layer.units}, {G}) at {path!r}; the file "
            f"has {kernel.shape} and {recurrent.shape}"
        )
    if layer.built and layer.input_dim != kernel.shape[0]:
        raise KerasFormatError(
            f"{where}: {who} takes {layer.input_dim} features; the file's "
            f"kernel at {path!r} is {kernel.shape}"
        )
    if not layer.built:
        layer.build((None, None, kernel.shape[0]))
    values = {"U": kernel, "W": recurrent}
    if layer.use_bias:
        bias = arrays[2]
        if isinstance(layer, GRU) and layer.reset_after:
            if bias.shape != (2, G):
                raise KerasFormatError(
                    f"{where}: {who} has reset_after=True, whose bias is "
                    f"(2, {G}) (input bias, recurrent bias); the file has "
                    f"{bias.shape} at {path!r} (a reset_after=False GRU?)"
                )
            values["b"], values["b_rec"] = bias[0], bias[1]
        else:
            if bias.shape != (G,):
                hint = (
                    " (a reset_after=True GRU's (input bias, recurrent bias)?)"
                    if isinstance(layer, GRU) and bias.shape == (2, G)
                    else ""
                )
                raise KerasFormatError(
                    f"{where}: {who} expects a bias ({G},) at {path!r}; "
                    f"the file has {bias.shape}{hint}"
                )
            values["b"] = bias
    _assign(layer, values)


def _assign(layer, values):
    p = layer.params
    for k, v in values.items():
        p[k][...] = np.asarray(v, dtype=p[k].dtype)


def _load_layer(layer, path, weights):
    """Copy the Keras weights under ``path`` into rnnkit ``layer`` (building it)."""
    where = weights.where
    if isinstance(layer, Recurrent):
        _set_recurrent(layer, weights.get(path + "/cell", layer.who), path + "/cell", where)
    elif isinstance(layer, Bidirectional):
        for attr, child in (
            ("forward_layer", layer.forward_layer),
            ("backward_layer", layer.backward_layer),
        ):
            sub = f"{path}/{attr}/cell"
            _set_recurrent(child, weights.get(sub, child.who), sub, where)
    elif isinstance(layer, TimeDistributed):
        _load_layer(layer.layer, path + "/layer", weights)
    elif isinstance(layer, Dense):
        arrays = weights.get(path, layer.who)
        _check_count(arrays, 2 if layer.use_bias else 1, layer.who, path, where)
        V = arrays[0]
        if (
            V.ndim != 2
            or V.shape[1] != layer.units
            or (layer.built and V.shape[0] != layer.input_dim)
        ):
            raise KerasFormatError(
                f"{where}: {layer.who} ({layer.units} units) does not fit the "
                f"kernel {V.shape} at {path!r}"
            )
        if layer.use_bias and arrays[1].shape != (layer.units,):
            raise KerasFormatError(f"{where}: {layer.who}: bias {arrays[1].shape} at {path!r}")
        if not layer.built:
            layer.build((None, V.shape[0]))
        _assign(layer, dict(zip(("V", "c"), arrays)))
    elif isinstance(layer, Embedding):
        arrays = weights.get(path, layer.who)
        _check_count(arrays, 1, layer.who, path, where)
        E = layer.params["E"]
        if arrays[0].shape != E.shape:
            raise KerasFormatError(
                f"{where}: {layer.who} expects embeddings {E.shape} at "
                f"{path!r}; the file has {arrays[0].shape}"
            )
        _assign(layer, {"E": arrays[0]})
    elif isinstance(layer, (Dropout, Masking, RepeatVector)):
        pass
    else:
        raise KerasFormatError(
            f"{layer.who}: rnnkit cannot map this layer onto a Keras weights file"
        )


def _load_into(model, weights):
    if not isinstance(model, Sequential):
        raise TypeError(
            f"from_keras: the model to load into must be an rnnkit Sequential; "
            f"got {type(model).__name__}"
        )
    for layer, path in zip(model.layers, _layer_paths(_keras_class(l) for l in model.layers)):
        _load_layer(layer, path, weights)
    extra = set(weights.groups_with_weights()) - {
        p.split("/", 1)[1] for p in _layer_paths(_keras_class(l) for l in model.layers)
    }
    if extra:
        raise KerasFormatError(
            f"{weights.where} holds weights for layers the model does not have: {sorted(extra)}"
        )
    return model


def from_keras(path, model=None, *, config=None, dtype=None):
    """An rnnkit ``Sequential`` that computes what the Keras 3 model in ``path`` computes.

    path    a ``.keras`` file (or the folder of an unzipped one), or a ``.weights.h5``
            file written by ``keras_model.save_weights``; a weights file needs
    model   the rnnkit Sequential to load the weights into (same layers, in the same
            order; unbuilt layers are built from the weights' shapes), or
    config  the Keras model's config: ``keras_model.get_config()``, the dict in a
            ``config.json``, or the path of a ``config.json``.
    dtype   'float32' or 'float64' to load in that precision (default: the Keras
            layers' own dtype policy, which must be float32 or float64).

    Keras layers read: InputLayer, SimpleRNN, LSTM, GRU (both reset_after values),
    Embedding, Masking, Bidirectional (all merge modes), TimeDistributed, Dense,
    Dropout, RepeatVector.  Anything else, or anything rnnkit would compute differently
    (e.g. an activation it does not have), raises ``KerasFormatError``.
    """
    where = os.fspath(path)
    if not os.path.exists(where):
        raise FileNotFoundError(f"from_keras: no such file: {where!r}")
    h5py = _h5py()
    is_h5 = os.path.isfile(where) and h5py.is_hdf5(where)
    if not is_h5 and (os.path.isdir(where) or zipfile.is_zipfile(where)):
        if model is not None or config is not None:
            raise ValueError(
                "from_keras: a '.keras' file carries its own config; give model= "
                "or config= only with a '.weights.h5' file"
            )
        cfg, f = _read_archive(where)
    elif is_h5:
        if (model is None) == (config is None):
            raise ValueError(
                f"from_keras: {where!r} holds weights only; give the model to load "
                f"them into (model=) or the Keras config (config=), exactly one"
            )
        cfg, f = config, _open_h5(where, where)
    else:
        raise KerasFormatError(
            f"{where!r} is neither a Keras '.keras' archive nor an HDF5 '.weights.h5' file"
        )
    with f:
        weights = _Weights(f, where)
        if model is None:
            model = _model_from_config(cfg, dtype, where)
        elif dtype is not None:
            model.astype(dtype)
        return _load_into(model, weights)


def _model_from_config(cfg, dtype, where):
    cfg = _model_spec(cfg, where)
    layers = []
    for spec in cfg["layers"]:
        if isinstance(spec, dict) and spec.get("class_name") == "InputLayer":
            continue
        try:
            layers.append(_layer_from_spec(spec, dtype, where))
        except KerasFormatError:
            raise
        except (KeyError, TypeError, AttributeError, ValueError) as e:
            name = spec.get("class_name") if isinstance(spec, dict) else spec
            raise KerasFormatError(
                f"{where}: the config of a {name!r} layer is not one Keras 3 "
                f"writes ({type(e).__name__}: {e})"
            ) from None
    if not layers:
        raise KerasFormatError(f"{where}: the Keras model has no layers")
    kw = {}
    if dtype is not None:
        kw["dtype"] = dtype
    else:
        kw["dtype"] = layers[0].dtype
    return Sequential(layers, name=cfg.get("name") or None, **kw)


# ----------------------------------------------------------------------------------------
# writing
# ----------------------------------------------------------------------------------------


def _keras_class(layer):
    name = type(layer).__name__
    if name not in KERAS_CLASSES:
        raise KerasFormatError(
            f"rnnkit.io.keras: {layer.who} has no Keras counterpart (Keras "
            f"files hold {list(KERAS_CLASSES[1:])})"
        )
    return name


def _policy(dtype):
    return {
        "module": "keras",
        "class_name": "DTypePolicy",
        "config": {"name": np.dtype(dtype).name},
        "registered_name": None,
    }


def _keras_initializer(init):
    try:
        name = initializers.name_of(init)
    except ValueError:
        return None
    if name in ("glorot_uniform", "glorot_normal", "orthogonal", "zeros", "ones"):
        return name
    if name == "uniform":
        return {
            "module": "keras.initializers",
            "class_name": "RandomUniform",
            "config": {"minval": -0.05, "maxval": 0.05, "seed": None},
            "registered_name": None,
        }
    if name == "normal":
        return {
            "module": "keras.initializers",
            "class_name": "RandomNormal",
            "config": {"mean": 0.0, "stddev": 1.0, "seed": None},
            "registered_name": None,
        }
    return None


def _with_initializers(config, pairs):
    for key, init in pairs:
        value = _keras_initializer(init)
        if value is not None:
            config[key] = value
    return config


def _layer_spec(layer, input_shape):
    """(Keras spec, [(relative path, [arrays])]) of an rnnkit layer."""
    cls = _keras_class(layer)
    who = f"to_keras: {layer.who}"
    cfg = {"name": layer.name, "trainable": layer.trainable, "dtype": _policy(layer.dtype)}
    weights = []
    p = {k: np.asarray(v) for k, v in layer.params.items()}
    if isinstance(layer, Recurrent):
        if not layer.built:
            raise KerasFormatError(f"{who} is not built yet (call it once, or give input_shape)")
        if getattr(layer, "proj_size", 0):
            raise KerasFormatError(
                f"{who} has proj_size={layer.proj_size} (PyTorch's projected "
                f"LSTM, h_t = (o ⊙ tanh(c_t)) P); Keras's LSTM has no "
                f"projection"
            )
        if layer.stateful:
            raise KerasFormatError(
                f"{who} is stateful; a stateful Keras model needs a fixed "
                f"batch size in its input: export it with stateful=False "
                f"(the weights are the same)"
            )
        if layer.return_state:
            raise KerasFormatError(
                f"{who} has return_state=True, which a Keras Sequential model cannot pass on"
            )
        cfg.update(
            units=layer.units,
            activation=layer.cell.activation.name,
            use_bias=layer.use_bias,
            return_sequences=layer.return_sequences,
            return_state=False,
            go_backwards=layer.go_backwards,
            stateful=False,
            unroll=False,
            zero_output_for_mask=layer.zero_output_for_mask,
            dropout=layer.dropout,
            recurrent_dropout=layer.recurrent_dropout,
            seed=layer.seed,
        )
        _with_initializers(
            cfg,
            [
                ("kernel_initializer", layer.kernel_initializer),
                ("recurrent_initializer", layer.recurrent_initializer),
                ("bias_initializer", layer.bias_initializer),
            ],
        )
        if not isinstance(layer, SimpleRNN):
            cfg["recurrent_activation"] = layer.cell.recurrent_activation.name
        if isinstance(layer, LSTM):
            cfg["unit_forget_bias"] = layer.unit_forget_bias
        arrays = [p["U"], p["W"]]
        if isinstance(layer, GRU):
            cfg["reset_after"] = layer.reset_after
            if layer.use_bias:
                arrays.append(np.stack([p["b"], p["b_rec"]]) if layer.reset_after else p["b"])
        elif layer.use_bias:
            arrays.append(p["b"])
        weights.append(("cell", arrays))
    elif isinstance(layer, Bidirectional):
        fspec, fw = _layer_spec(layer.forward_layer, input_shape)
        bspec, bw = _layer_spec(layer.backward_layer, input_shape)
        cfg.update(merge_mode=layer.merge_mode, layer=fspec, backward_layer=bspec)
        weights += [("forward_layer/" + k, a) for k, a in fw]
        weights += [("backward_layer/" + k, a) for k, a in bw]
    elif isinstance(layer, TimeDistributed):
        inner_shape = (input_shape[0],) + tuple(input_shape[2:])
        ispec, iw = _layer_spec(layer.layer, inner_shape)
        cfg["layer"] = ispec
        weights += [("layer" + ("/" + k if k else ""), a) for k, a in iw]
    elif isinstance(layer, Dense):
        if not layer.built:
            raise KerasFormatError(f"{who} is not built yet (call it once, or give input_shape)")
        cfg.update(units=layer.units, activation=layer.activation.name, use_bias=layer.use_bias)
        _with_initializers(
            cfg,
            [
                ("kernel_initializer", layer.kernel_initializer),
                ("bias_initializer", layer.bias_initializer),
            ],
        )
        weights.append(("", [p["V"]] + ([p["c"]] if layer.use_bias else [])))
    elif isinstance(layer, Embedding):
        cfg.update(
            input_dim=layer.input_dim, output_dim=layer.output_dim, mask_zero=layer.mask_zero
        )
        _with_initializers(cfg, [("embeddings_initializer", layer.embeddings_initializer)])
        weights.append(("", [p["E"]]))
    elif isinstance(layer, Dropout):
        cfg.update(
            rate=layer.rate,
            seed=layer.seed,
            noise_shape=None if layer.noise_shape is None else list(layer.noise_shape),
        )
    elif isinstance(layer, Masking):
        cfg["mask_value"] = layer.mask_value
    elif isinstance(layer, RepeatVector):
        cfg["n"] = layer.n
    spec = {
        "module": "keras.layers",
        "class_name": cls,
        "config": cfg,
        "registered_name": None,
        "build_config": {"input_shape": list(input_shape)},
    }
    return spec, weights


def _input_shape(model, input_shape):
    """The batch shape (None, ...) of the model's input."""
    if input_shape is not None:
        return (None,) + tuple(None if s is None else int(s) for s in input_shape)
    first = model.layers[0]
    if first.input_shape is not None:
        return (None,) + tuple(first.input_shape)
    if isinstance(first, Embedding):
        return (None, None)
    for layer in model.layers:
        core = layer.forward_layer if isinstance(layer, Bidirectional) else layer
        if isinstance(core, Recurrent) and core.built:
            return (None, None, core.input_dim)
        if isinstance(layer, TimeDistributed) and getattr(layer.layer, "input_dim", None):
            return (None, None, layer.layer.input_dim)
        if isinstance(core, Dense) and core.built:
            # a Dense on sequences: after a Masking, or before a layer that reads sequences
            later = model.layers[model.layers.index(layer) + 1 :]
            on_sequences = any(
                isinstance(l, Masking) for l in model.layers[: model.layers.index(layer)]
            ) or any(
                isinstance(
                    l.forward_layer if isinstance(l, Bidirectional) else l,
                    (Recurrent, TimeDistributed),
                )
                for l in later
            )
            return (None, None, core.input_dim) if on_sequences else (None, core.input_dim)
        if not isinstance(layer, (Dropout, Masking)):
            break
    raise KerasFormatError(
        "to_keras: cannot tell the model's input shape; pass input_shape "
        "(per example, e.g. (None, 3) for sequences of 3 features)"
    )


def to_keras(model, path, *, input_shape=None):
    """Write ``model`` (an rnnkit Sequential, or a single layer) as a Keras 3 file.

    ``path`` ending in ``.keras``: a full model that ``keras.saving.load_model(path)``
    loads and that predicts what ``model`` predicts.  Ending in ``.weights.h5``: the
    weights only, for ``keras_model.load_weights(path)`` of the same Keras model.

    ``input_shape`` (per example, e.g. ``(None, 3)``) is needed only when rnnkit
    cannot tell it from the first layers.  Raises ``KerasFormatError`` for what
    Keras cannot represent: LSTM ``proj_size``, stateful or ``return_state`` layers,
    ``RNNStack`` (use a Sequential).  Returns ``path``.
    """
    h5py = _h5py()
    where = os.fspath(path)
    if isinstance(model, RNNStack):
        raise KerasFormatError(
            "to_keras: an RNNStack has PyTorch's calling convention "
            "(output, h_n); write a Sequential of its layers with "
            "return_state=False instead"
        )
    if isinstance(model, Layer) and not isinstance(model, Sequential):
        model = Sequential([model], name=f"sequential_{model.name}", dtype=model.dtype)
    if not isinstance(model, Sequential):
        raise TypeError(
            f"to_keras: expected an rnnkit Sequential or layer; got {type(model).__name__}"
        )
    if not model.layers:
        raise KerasFormatError("to_keras: the model has no layers")
    weights_only = where.endswith(".weights.h5")
    if not weights_only and not where.endswith(".keras"):
        raise ValueError(
            f"to_keras: path must end in '.keras' (a model) or '.weights.h5' "
            f"(weights only); got {where!r}"
        )
    shape = _input_shape(model, input_shape)
    specs, all_weights = [], []
    cur = shape
    paths = _layer_paths(_keras_class(l) for l in model.layers)
    for i, layer in enumerate(model.layers):
        spec, w = _layer_spec(layer, cur)
        specs.append(spec)
        all_weights += [(paths[i] + ("/" + k if k else ""), a) for k, a in w]
        cur = layer.compute_output_shape(cur)
        if isinstance(cur, list) and i < len(model.layers) - 1:
            raise KerasFormatError(
                f"to_keras: {layer.who} gives two outputs (merge_mode=None); "
                f"only the last layer of a Sequential may"
            )

    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        f.create_group("vars").attrs["name"] = model.name
        for lpath, arrays in all_weights:
            g = f.require_group(lpath).create_group("vars")
            for k, a in enumerate(arrays):
                g.create_dataset(str(k), data=np.ascontiguousarray(a))
        for _layer, lpath in zip(model.layers, paths):  # the groups of weightless layers too
            f.require_group(lpath)
    blob = buf.getvalue()
    if weights_only:
        with open(where, "wb") as fh:
            fh.write(blob)
        return path

    first_dtype = "int32" if isinstance(model.layers[0], Embedding) else model.layers[0].dtype.name
    input_layer = {
        "module": "keras.layers",
        "class_name": "InputLayer",
        "config": {
            "batch_shape": list(shape),
            "dtype": first_dtype,
            "sparse": False,
            "name": "input_layer",
        },
        "registered_name": None,
    }
    config = {
        "module": "keras",
        "class_name": "Sequential",
        "config": {
            "name": model.name,
            "trainable": model.trainable,
            "dtype": _policy(model.dtype),
            "layers": [input_layer] + specs,
            "build_input_shape": list(shape),
        },
        "registered_name": None,
        "build_config": {"input_shape": list(shape)},
        "compile_config": None,
    }
    metadata = {
        "keras_version": "3.0.0",
        "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
        "written_by": "rnnkit",
    }
    with zipfile.ZipFile(where, "w") as zf:
        zf.writestr(_METADATA, json.dumps(metadata))
        zf.writestr(_CONFIG, json.dumps(config))
        zf.writestr(_WEIGHTS, blob)
    return path


__all__ = ["from_keras", "to_keras", "KerasFormatError"]
