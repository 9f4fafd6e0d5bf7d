"""rnnkit's own model files: safe, atomic, complete enough to resume training exactly.

A model file is a NumPy ``.npz`` archive (a zip of ``.npy`` arrays, read with
``allow_pickle=False``: no code is ever executed on load) holding

    __rnnkit__                   the header: JSON (format, versions, architecture,
                                 compile settings, optimizer step, random-generator states)
    params/<key>                 every parameter, keyed as ``model.params``
    optimizer/<key>/<slot>       the optimizer's per-parameter state (Adam's m and v, ...)
    states/<layer>/<k>           carried states of stateful layers

Writes go to a temporary file in the same directory, are flushed to disk, then
renamed over the target, so a crash never leaves a half-written model behind.
With the optimizer state and the generators' states saved, training resumed from
a file follows the same trajectory, bit for bit, as training never interrupted.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile

import numpy as np

from .. import backend
from ..atomicfile import atomic_write

FORMAT = "rnnkit-model"
FORMAT_VERSION = 1
HEADER = "__rnnkit__"


class ModelFileError(ValueError):
    """A file that is not a readable rnnkit model."""


def _rng_states(model):
    return {layer.name: layer.rng.bit_generator.state for layer in model.walk()}


def save_model(model, path, include_optimizer=True, metadata=None):
    """Write ``model`` (architecture, weights and, if compiled, loss, metrics and
    optimizer state) to ``path`` atomically.  ``metadata``: a JSON-serializable dict
    kept in the header (an app's vocabulary, where training stopped, ...); it comes
    back as ``model.metadata``."""
    from .. import __version__
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "rnnkit_version": __version__,
        "model": {"class_name": type(model).__name__, "config": model.get_config()},
        "rng_states": _rng_states(model),
        "compile": None,
        "metadata": metadata if metadata is not None else getattr(model, "metadata", {}) or {},
    }
    arrays = {f"params/{k}": backend.to_numpy(v) for k, v in model.params.items()}
    for layer in model.walk():
        if getattr(layer, "stateful", False) and getattr(layer, "states", None) is not None:
            for i, s in enumerate(layer.states):
                arrays[f"states/{layer.name}/{i}"] = backend.to_numpy(s)
    if getattr(model, "compiled", False):
        opt = model.optimizer
        header["compile"] = {
            "loss": model.loss.get_config(),
            "metrics": [m.name for m in model.metrics],
            "optimizer": {"class_name": type(opt).__name__, "config": opt.get_config()},
            "optimizer_iterations": opt.iterations if include_optimizer else 0,
        }
        if include_optimizer:
            arrays.update({f"optimizer/{k}": v for k, v in opt.state_arrays().items()})
    blob = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)

    def write(f):
        np.savez(f, **{HEADER: blob}, **arrays)

    atomic_write(path, write)
    return os.fspath(path)


def read_model_file(path):
    """(header dict, {name: array}) of a model file, or a ModelFileError saying why not."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no model file at {path!r}")
    if os.path.isdir(path):
        raise ModelFileError(f"{path!r} is a directory, not an rnnkit model file")
    try:
        f = np.load(path, allow_pickle=False)
        if not isinstance(f, np.lib.npyio.NpzFile):
            raise ModelFileError(f"{path!r} is a single NumPy array (.npy), not an rnnkit model file")
        with f:
            if HEADER not in f.files:
                raise ModelFileError(f"{path!r} is an .npz archive but not an rnnkit model file "
                                     f"(it has no {HEADER!r} header)")
            header = json.loads(bytes(f[HEADER]).decode("utf-8"))
            arrays = {k: f[k] for k in f.files if k != HEADER}
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, UnicodeDecodeError,
            json.JSONDecodeError) as e:
        why = "" if "pickle" in str(e) else f" ({type(e).__name__}: {e})"   # np.load's pickle advice
        raise ModelFileError(f"{path!r} is not a readable rnnkit model file: it is corrupted, "
                             f"truncated or of another format{why}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ModelFileError(f"{path!r} is not an rnnkit model file (unknown header)")
    version = header.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFileError(f"{path!r} was written by rnnkit {header.get('rnnkit_version')} "
                             f"in model-file format {version}; this rnnkit reads format "
                             f"{FORMAT_VERSION} and older. Upgrade rnnkit to load it.")
    return header, arrays


def load_model(path, compile=True):
    """The model saved at ``path``: same architecture, weights and (with ``compile``)
    loss, metrics, optimizer and its state, ready to predict or to resume training."""
    from .. import losses, models, optim
    path = os.fspath(path)
    header, arrays = read_model_file(path)
    spec = header["model"]
    try:
        model = models.deserialize_model(spec)
        params = model.params
        for key, p in list(params.items()):
            a = arrays.get(f"params/{key}")
            if a is None:
                raise ModelFileError(f"{path!r}: the file has no weights for {key!r}")
            if a.shape != tuple(p.shape):
                raise ModelFileError(f"{path!r}: weight {key!r} has shape {a.shape}, the "
                                     f"architecture needs {tuple(p.shape)}")
            p[...] = backend.asarray(a, dtype=p.dtype)
        missing = _build_from_arrays(model, arrays, path)
        if missing:
            raise ModelFileError(f"{path!r}: weights {missing} do not belong to the architecture")
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError) as e:
        raise ModelFileError(f"{path!r}: cannot rebuild the model from its header "
                             f"({type(e).__name__}: {e})") from None
    model.metadata = header.get("metadata") or {}
    names = {layer.name: layer for layer in model.walk()}
    for name, state in header.get("rng_states", {}).items():
        if name in names:
            names[name].rng.bit_generator.state = state
    for key, a in arrays.items():
        if key.startswith("states/"):
            _, lname, i = key.rsplit("/", 2)
            layer = names[lname]
            layer.states = (layer.states or []) + [backend.asarray(a)]
    comp = header.get("compile")
    if compile and comp:
        opt_spec = comp["optimizer"]
        optimizer = optim.from_config(opt_spec["class_name"], opt_spec["config"])
        model.compile(loss=losses.from_config(comp["loss"]), optimizer=optimizer,
                      metrics=comp["metrics"])
        opt_arrays = {k[len("optimizer/"):]: v for k, v in arrays.items()
                      if k.startswith("optimizer/")}
        optimizer.load_state_arrays(opt_arrays, comp.get("optimizer_iterations", 0))
    return model


def _build_from_arrays(model, arrays, path):
    """Weights in the file that the rebuilt model lacks (a layer never built before saving
    has none, so any leftover is a mismatch)."""
    keys = {k[len("params/"):] for k in arrays if k.startswith("params/")}
    return sorted(keys - set(model.params))
