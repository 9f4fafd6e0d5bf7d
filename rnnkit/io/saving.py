"""rnnkit's own model files: safe, atomic, complete enough to resume training exactly.

A model file is a NumPy ``.npz`` archive (a zip of ``.npy`` arrays) holding

    __rnnkit__                   the header: JSON (format, versions, architecture,
                                 compile settings, optimizer step, random-generator states)
    params/<key>                 every parameter, keyed as ``model.params``
    optimizer/<key>/<slot>       the optimizer's per-parameter state (Adam's m and v, ...)
    states/<layer>/<k>           carried states of stateful layers

Writes go to a temporary file in the same directory, are flushed to disk, then
renamed over the target (``rnnkit.atomicfile.atomic_write``), so a crash never leaves
a half-written model behind.  With the optimizer state and the generators' states
saved, training resumed from a file follows the same trajectory, bit for bit, as
training never interrupted.

Loading treats the file as untrusted input and checks before it allocates:

* no code is ever executed (no pickle: every member must be a plain float array,
  the header a byte array);
* the zip directory and every ``.npy`` header are read first, without decompressing
  any data; a member rnnkit does not write, a member whose declared shape does not
  match its size, a non-float or complex array is refused unread;
* the sizes the members declare must fit ``max_bytes`` (by default 64 times the
  file's size plus 1 MiB, so a small file cannot unpack into gigabytes);
* the header is at most ``MAX_HEADER_BYTES`` of JSON nested at most
  ``MAX_HEADER_DEPTH`` deep;
* the architecture is rebuilt with weights left uninitialised (zero pages that cost
  no memory until written) and refused as soon as it needs more weight bytes than
  the file holds; every weight, optimizer slot and carried state is then checked
  against it (names, shapes, dtypes) before any of them is read.

Anything wrong raises ``ModelFileError`` naming the file and what is wrong.
"""

from __future__ import annotations

import json
import math
import os
import zipfile

import numpy as np

from .. import backend
from ..atomicfile import atomic_write

FORMAT = "rnnkit-model"
FORMAT_VERSION = 1
HEADER = "__rnnkit__"

MAX_HEADER_BYTES = 16 << 20  # 16 MiB of JSON (an app's vocabulary fits easily)
MAX_HEADER_DEPTH = 64  # nesting of the JSON header (rnnkit writes < 15)
MAX_EXPANSION = 64  # declared bytes <= file size x this + 1 MiB by default
_NPY_HEADER_MAX = 10000  # NumPy's own bound on a .npy header
_FLOAT_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))
_KINDS = ("params/", "optimizer/", "states/")


class ModelFileError(ValueError):
    """A file that is not a readable rnnkit model."""


def _rng_states(model):
    return {layer.name: layer.rng.bit_generator.state for layer in model.walk()}


def save_model(model, path, include_optimizer=True, metadata=None):
    """Write ``model`` (architecture, weights and, if compiled, loss, metrics and
    optimizer state) to ``path`` atomically.  ``metadata``: a JSON-serializable dict
    kept in the header (an app's vocabulary, where training stopped, ...); it comes
    back as ``model.metadata``.  A ``path`` that is a symbolic link is written
    through: its target gets the new model, the link stays."""
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


# -- reading: the container ------------------------------------------------------------------
def _size(n):
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024


class _Member:
    """One ``.npy`` member as its headers declare it (nothing decompressed but the
    first bytes)."""

    __slots__ = ("key", "info", "shape", "dtype", "nbytes")

    def __init__(self, key, info, shape, dtype):
        self.key, self.info, self.shape, self.dtype = key, info, shape, dtype
        self.nbytes = math.prod(shape) * dtype.itemsize


def _corrupt(path, why=""):
    return ModelFileError(
        f"{path!r} is not a readable rnnkit model file: it is corrupted, "
        f"truncated or of another format{why}"
    )


def _check_depth(obj, path):
    """Refuse JSON nested deeper than MAX_HEADER_DEPTH (iteratively: no recursion)."""
    stack = [(obj, 1)]
    while stack:
        o, d = stack.pop()
        if d > MAX_HEADER_DEPTH:
            raise ModelFileError(
                f"{path!r}: the header is nested more than {MAX_HEADER_DEPTH} "
                f"levels deep; rnnkit never writes that (damaged or forged file)"
            )
        if isinstance(o, dict):
            stack.extend((v, d + 1) for v in o.values())
        elif isinstance(o, list):
            stack.extend((v, d + 1) for v in o)


class _ModelFile:
    """An open model file: its header and the index of its arrays, all checked."""

    def __init__(self, path, max_bytes=None):
        self.path = path
        if not os.path.exists(path):
            raise FileNotFoundError(f"no model file at {path!r}")
        if os.path.isdir(path):
            raise ModelFileError(f"{path!r} is a directory, not an rnnkit model file")
        size = os.path.getsize(path)
        if max_bytes is None:
            max_bytes = size * MAX_EXPANSION + (1 << 20)
        self.max_bytes = max_bytes
        with open(path, "rb") as f:
            magic = f.read(6)
        if magic == b"\x93NUMPY":
            raise ModelFileError(
                f"{path!r} is a single NumPy array (.npy), not an rnnkit model file"
            )
        try:
            self.zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
            raise _corrupt(path, f" ({type(e).__name__}: {e})") from None
        try:
            self._index()
            self.header = self._read_header()
        except BaseException:
            self.zip.close()
            raise

    def close(self):
        self.zip.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- the directory and the .npy headers --------------------------------------------------
    def _index(self):
        path = self.path
        infos = self.zip.infolist()
        names = [i.filename for i in infos]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})[:5]
            raise ModelFileError(
                f"{path!r}: the archive holds several members named {dup}; "
                f"rnnkit never writes that (damaged or forged file)"
            )
        if not any(n == HEADER + ".npy" for n in names):
            raise ModelFileError(
                f"{path!r} is an .npz archive but not an rnnkit model file "
                f"(it has no {HEADER!r} header)"
            )
        unknown = [
            n
            for n in names
            if not (n.endswith(".npy") and (n == HEADER + ".npy" or n.startswith(_KINDS)))
        ]
        if unknown:
            raise ModelFileError(
                f"{path!r}: the archive holds members rnnkit model files do not "
                f"have: {unknown[:5]}{' ...' if len(unknown) > 5 else ''}; "
                f"refusing to read it"
            )
        declared = sum(i.file_size for i in infos)
        if declared > self.max_bytes:
            raise ModelFileError(
                f"{path!r}: its members unpack to {_size(declared)}, more than "
                f"the {_size(self.max_bytes)} allowed for a file of "
                f"{_size(os.path.getsize(path))} (pass max_bytes= to "
                f"load_model to allow more)"
            )
        self.members = {}
        for info in infos:
            if info.flag_bits & 0x1:
                raise ModelFileError(f"{path!r}: member {info.filename!r} is encrypted")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise ModelFileError(
                    f"{path!r}: member {info.filename!r} uses zip compression "
                    f"method {info.compress_type}; rnnkit model files are "
                    f"stored or deflated"
                )
            key = info.filename[: -len(".npy")]
            self.members[key] = self._member(key, info)

    def _member(self, key, info):
        path = self.path
        try:
            with self.zip.open(info) as f:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
                elif version == (2, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
                else:
                    raise ValueError(f".npy format version {version} (rnnkit writes 1.0)")
                start = f.tell()
        except (zipfile.BadZipFile, EOFError, OSError, ValueError, TypeError, SyntaxError) as e:
            raise _corrupt(path, f" (member {info.filename!r}: {type(e).__name__}: {e})") from None
        if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
            raise ModelFileError(
                f"{path!r}: member {key!r} holds {dtype} data (Python objects or "
                f"records); rnnkit model files hold plain arrays, and pickled "
                f"data is never loaded"
            )
        if key == HEADER:
            if dtype != np.uint8 or len(shape) != 1:
                raise ModelFileError(
                    f"{path!r}: the header {HEADER!r} must be a 1-D uint8 array; "
                    f"it is {dtype} of shape {shape}"
                )
        elif dtype.newbyteorder("=") not in _FLOAT_DTYPES:
            what = "complex" if dtype.kind == "c" else str(dtype)
            raise ModelFileError(
                f"{path!r}: array {key!r} is {what}; rnnkit's weights, optimizer "
                f"state and carried states are float16, float32 or float64"
            )
        if any(s < 0 for s in shape):
            raise _corrupt(path, f" (member {key!r} declares shape {shape})")
        m = _Member(key, info, tuple(int(s) for s in shape), dtype)
        if start + m.nbytes != info.file_size:
            raise _corrupt(
                path,
                f" (member {key!r} declares {shape} {dtype}, {_size(m.nbytes)}, "
                f"but holds {_size(max(info.file_size - start, 0))})",
            )
        return m

    def read(self, key):
        """The array of member ``key`` (decompressed now, CRC checked), native byte order."""
        m = self.members[key]
        try:
            with self.zip.open(m.info) as f:
                a = np.lib.format.read_array(f, allow_pickle=False)
                if f.read(1):
                    raise ValueError("data after the array")
        except (zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
            raise _corrupt(self.path, f" (member {key!r}: {type(e).__name__}: {e})") from None
        if a.shape != m.shape or a.dtype != m.dtype:  # pragma: no cover - checked above
            raise _corrupt(self.path, f" (member {key!r} changed while read)")
        if not a.dtype.isnative:
            a = a.astype(a.dtype.newbyteorder("="))
        return a

    # -- the header ----------------------------------------------------------------------------
    def _read_header(self):
        path = self.path
        m = self.members[HEADER]
        if m.nbytes > MAX_HEADER_BYTES:
            raise ModelFileError(
                f"{path!r}: the header is {_size(m.nbytes)}, more than the "
                f"{_size(MAX_HEADER_BYTES)} rnnkit reads"
            )
        raw = self.read(HEADER)
        try:
            header = json.loads(raw.tobytes().decode("utf-8"))
        except RecursionError:
            raise ModelFileError(
                f"{path!r}: the header is nested more than {MAX_HEADER_DEPTH} "
                f"levels deep; rnnkit never writes that (damaged or forged "
                f"file)"
            ) from None
        except (UnicodeDecodeError, ValueError) as e:
            raise _corrupt(path, f" (its header is not JSON: {type(e).__name__}: {e})") from None
        _check_depth(header, path)
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise ModelFileError(f"{path!r} is not an rnnkit model file (unknown header)")
        version = header.get("format_version")
        writer = header.get("rnnkit_version")
        by = f" by rnnkit {writer}" if isinstance(writer, str) else ""
        if type(version) is not int or version < 1:
            raise ModelFileError(
                f"{path!r}: its header names format_version {version!r}; model "
                f"files have a whole number from 1 (this rnnkit writes "
                f"{FORMAT_VERSION}). The file is damaged or was not written "
                f"by rnnkit"
            )
        if version > FORMAT_VERSION:
            known = f"s 1 to {FORMAT_VERSION}" if FORMAT_VERSION > 1 else f" {FORMAT_VERSION}"
            raise ModelFileError(
                f"{path!r} was written{by} in model-file format {version}; this "
                f"rnnkit reads format{known} only. Upgrade rnnkit to load it."
            )
        spec = header.get("model")
        if (
            not isinstance(spec, dict)
            or not isinstance(spec.get("class_name"), str)
            or not isinstance(spec.get("config"), dict)
        ):
            raise ModelFileError(
                f"{path!r}: its header has no valid 'model' entry (a dict with "
                f"'class_name' and 'config', the architecture); got "
                f"{_short(spec)}"
            )
        for name, kind in (("rng_states", dict), ("metadata", dict), ("compile", dict)):
            v = header.get(name)
            if v is not None and not isinstance(v, kind):
                raise ModelFileError(
                    f"{path!r}: header entry {name!r} must be a JSON object; got {_short(v)}"
                )
        return header

    def arrays(self, prefix):
        return {k: m for k, m in self.members.items() if k.startswith(prefix)}


def _short(v, n=80):
    s = repr(v)
    return s if len(s) <= n else s[:n] + "..."


def read_model_file(path, max_bytes=None):
    """(header dict, {name: array}) of a model file, or a ModelFileError saying why not.
    The container checks of ``load_model`` apply (see the module's docstring)."""
    path = os.fspath(path)
    with _ModelFile(path, max_bytes) as mf:
        return mf.header, {k: mf.read(k) for k in mf.members if k != HEADER}


# -- building the architecture without drawing its weights --------------------------------------
def deserialize_model(spec):
    """A model from ``{"class_name": ..., "config": ...}`` as ``save_model`` writes it."""
    from .. import seq2seq, seq2seq_attention  # noqa: F401  (they register their models)
    from ..models import MODEL_CLASSES

    cls = MODEL_CLASSES.get(spec.get("class_name"))
    if cls is None:
        raise ValueError(
            f"unknown model class {spec.get('class_name')!r}; known: {sorted(MODEL_CLASSES)}"
        )
    return cls.from_config(spec["config"])


def _build(spec, param_bytes, path):
    """The architecture of the header, with zero weights (not drawn: drawing them, an
    orthogonal matrix for LSTM(3000), took seconds and gigabytes), refused as soon as its
    weights would need more than twice what the file holds (+16 MiB of slack, so that a
    small mismatch gets the more helpful per-weight message after the build)."""
    from ..layers.base import WeightBudgetExceeded, weights_without_init

    try:
        with weights_without_init(2 * param_bytes + (16 << 20)):
            return deserialize_model(spec)
    except WeightBudgetExceeded as e:
        raise ModelFileError(
            f"{path!r}: the architecture in its header does not fit its "
            f"weights ({_size(param_bytes)} in the file): {e}"
        ) from None
    except MemoryError:
        raise ModelFileError(
            f"{path!r}: the architecture in its header needs more memory than there is"
        ) from None
    except RecursionError:
        raise ModelFileError(
            f"{path!r}: the architecture in its header is nested too deeply"
        ) from None
    except Exception as e:  # the header is data: any failure of a constructor is its fault
        raise ModelFileError(
            f"{path!r}: cannot rebuild the model from its header ({type(e).__name__}: {e})"
        ) from None


# -- load_model ------------------------------------------------------------------------------------
def load_model(path, compile=True, max_bytes=None):
    """The model saved at ``path``: same architecture, weights and (with ``compile``)
    loss, metrics, optimizer and its state, ready to predict or to resume training.

    The file is checked before anything is allocated (see the module's docstring);
    ``max_bytes`` bounds what its arrays may unpack to (default: 64 times the file's
    size plus 1 MiB).  Raises ``ModelFileError`` naming the file and the problem."""
    path = os.fspath(path)
    with _ModelFile(path, max_bytes) as mf:
        return _load(mf, path, compile)


def _load(mf, path, compile):
    from .. import losses, optim

    header = mf.header
    files = mf.arrays("params/")
    model = _build(header["model"], sum(m.nbytes for m in files.values()), path)
    params = model.params
    names = {layer.name: layer for layer in model.walk()}

    # 1. everything the file declares is checked against the architecture ...
    missing = [k for k in params if f"params/{k}" not in files]
    extra = sorted(k[len("params/") :] for k in files if k[len("params/") :] not in params)
    if missing and extra:  # e.g. a layer whose weights changed form between versions
        raise ModelFileError(
            f"{path!r}: the file has weights {extra[:5]} where this version of rnnkit's "
            f"{type(model).__name__} has {missing[:5]}: it was written by another version; "
            f"train the model again"
        )
    if missing:
        raise ModelFileError(
            f"{path!r}: the file has no weights for {missing[:5]}"
            f"{' ...' if len(missing) > 5 else ''}"
        )
    if extra:
        raise ModelFileError(f"{path!r}: weights {extra[:5]} do not belong to the architecture")
    for key, p in params.items():
        m = files[f"params/{key}"]
        if m.shape != tuple(p.shape):
            raise ModelFileError(
                f"{path!r}: weight {key!r} has shape {m.shape}, the "
                f"architecture needs {tuple(p.shape)}"
            )
        if m.dtype.newbyteorder("=") != p.dtype:
            raise ModelFileError(
                f"{path!r}: weight {key!r} is {m.dtype.newbyteorder('=')}, the "
                f"architecture's dtype is {p.dtype}"
            )
    states = _check_states(mf, names, path)
    rng_states = header.get("rng_states") or {}
    unknown = sorted(set(rng_states) - set(names))
    if unknown:
        raise ModelFileError(
            f"{path!r}: the header has random-generator states for layers "
            f"{unknown[:5]} that the architecture does not have"
        )
    comp = header.get("compile")
    opt_members = mf.arrays("optimizer/")
    if opt_members and not comp:
        raise ModelFileError(
            f"{path!r}: the file holds optimizer state "
            f"({sorted(opt_members)[:3]}) but no compile settings"
        )
    optimizer = None
    if compile and comp:
        optimizer, iterations = _make_optimizer(comp, path, optim)
        slots = _check_optimizer_state(optimizer, opt_members, params, path)

    # 2. ... then read
    for key, p in params.items():
        p[...] = backend.asarray(mf.read(f"params/{key}"), dtype=p.dtype)
    for name, state in rng_states.items():
        gen = names[name].rng.bit_generator
        try:
            gen.state = state
        except Exception as e:
            raise ModelFileError(
                f"{path!r}: the random-generator state of layer {name!r} is not "
                f"a valid {type(gen).__name__} state ({type(e).__name__}: "
                f"{_short(str(e), 120)})"
            ) from None
    for lname, keys in states.items():
        names[lname].states = [backend.asarray(mf.read(k)) for k in keys]
    model.metadata = header.get("metadata") or {}
    if optimizer is not None:
        try:
            loss = losses.from_config(comp["loss"])
            model.compile(loss=loss, optimizer=optimizer, metrics=comp["metrics"])
        except Exception as e:
            raise ModelFileError(
                f"{path!r}: its compile settings are not valid "
                f"({type(e).__name__}: {_short(str(e), 200)})"
            ) from None
        optimizer.load_state_arrays(
            {
                k[len("optimizer/") :]: mf.read(k)
                for by_slot in slots.values()
                for k in by_slot.values()
            },
            iterations,
        )
    return model


def _check_states(mf, names, path):
    """{layer name: [member keys in order]} of the carried states, checked."""
    found: dict = {}
    for key in mf.arrays("states/"):
        parts = key.split("/")
        if len(parts) != 3 or not parts[2].isdigit():
            raise ModelFileError(
                f"{path!r}: member {key!r} is not a carried state (states/<layer>/<index>)"
            )
        found.setdefault(parts[1], {})[int(parts[2])] = key
    out = {}
    for lname, by_index in found.items():
        layer = names.get(lname)
        if (
            layer is None
            or not getattr(layer, "stateful", False)
            or not hasattr(layer, "state_sizes")
        ):
            raise ModelFileError(
                f"{path!r}: the file holds carried states for {lname!r}, "
                f"which is not a stateful recurrent layer of the architecture"
            )
        sizes = list(layer.state_sizes)
        if sorted(by_index) != list(range(len(sizes))):
            raise ModelFileError(
                f"{path!r}: layer {lname!r} carries {len(sizes)} state(s); the "
                f"file holds indices {sorted(by_index)}"
            )
        keys = [by_index[i] for i in range(len(sizes))]
        batch = mf.members[keys[0]].shape[:1]
        for k, size in zip(keys, sizes):
            m = mf.members[k]
            if len(m.shape) != 2 or m.shape[1] != size or m.shape[:1] != batch:
                raise ModelFileError(
                    f"{path!r}: carried state {k!r} has shape {m.shape}; layer "
                    f"{lname!r} needs (batch, {size}) with one batch size"
                )
            if m.dtype.newbyteorder("=") != layer.dtype:
                raise ModelFileError(
                    f"{path!r}: carried state {k!r} is {m.dtype}, layer {lname!r} is {layer.dtype}"
                )
        out[lname] = keys
    return out


def _make_optimizer(comp, path, optim):
    spec = comp.get("optimizer")
    if not isinstance(spec, dict) or not isinstance(spec.get("config"), dict):
        raise ModelFileError(
            f"{path!r}: its compile settings have no valid optimizer entry; got {_short(spec)}"
        )
    try:
        optimizer = optim.from_config(spec.get("class_name"), spec["config"])
    except Exception as e:
        raise ModelFileError(
            f"{path!r}: cannot rebuild its optimizer ({type(e).__name__}: {_short(str(e), 200)})"
        ) from None
    iterations = comp.get("optimizer_iterations", 0)
    if type(iterations) is not int or iterations < 0:
        raise ModelFileError(
            f"{path!r}: optimizer_iterations must be a whole number >= 0; got {_short(iterations)}"
        )
    for name in ("loss", "metrics"):
        if name not in comp:
            raise ModelFileError(f"{path!r}: its compile settings have no {name!r} entry")
    return optimizer, iterations


def _check_optimizer_state(optimizer, members, params, path):
    """{param key: {slot: member key}}, each slot shaped and typed as its parameter."""
    slots: dict = {}
    who = type(optimizer).__name__
    for key, m in members.items():
        pkey, _, slot = key[len("optimizer/") :].rpartition("/")
        if pkey not in params or slot not in optimizer.slots:
            raise ModelFileError(
                f"{path!r}: optimizer state {key!r} does not fit: {who} keeps "
                f"slots {list(optimizer.slots)} per weight, and the weights are "
                f"{list(params)[:5]}{' ...' if len(params) > 5 else ''}"
            )
        p = params[pkey]
        if m.shape != tuple(p.shape) or m.dtype.newbyteorder("=") != p.dtype:
            raise ModelFileError(
                f"{path!r}: optimizer state {key!r} is {m.dtype} {m.shape}; its "
                f"weight {pkey!r} is {p.dtype} {tuple(p.shape)}"
            )
        slots.setdefault(pkey, {})[slot] = key
    for pkey, got in slots.items():
        if set(got) != set(optimizer.slots):
            raise ModelFileError(
                f"{path!r}: the optimizer state of weight {pkey!r} has slots "
                f"{sorted(got)}; {who} needs {list(optimizer.slots)}"
            )
    return slots
