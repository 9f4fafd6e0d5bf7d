"""The UEA/UCR archive's ``.ts`` files, shared by ``basic_motions`` and ``japanese_vowels``.

A ``.ts`` file is text: comment lines start with ``#``, header lines with ``@`` (``@problemName``,
``@dimensions``, ``@equalLength``, ``@classLabel true A B C``, ...), then ``@data`` and one case
per line: the dimensions separated by ``:``, the values of one dimension by ``,``, and the
class label last::

    0.1,0.2,0.3:1.5,1.4,1.2:Walking           one case, 2 dimensions x 3 steps

The data come from the data files that ship inside PyPI's ``aeon==1.6.0`` wheel
(``aeon/datasets/data/<Name>/<Name>_TRAIN.ts`` and ``_TEST.ts``: the archive's fixed split),
fetched once and cached as ``.npz`` under ``cache_dir()/datasets/``.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from ..atomicfile import atomic_write_bytes
from ..data.fetch import DataUnavailable, archive_members, cache_dir, pypi_archive, read_members

AEON = ("aeon", "1.6.0")
CACHE_VERSION = 1


class TsFormatError(ValueError):
    """A ``.ts`` file that does not follow the format (says which file and line)."""


def parse_ts(text: str, source: str = "<text>"):
    """``(series, labels, header)`` of a ``.ts`` file's text.

    ``series``: a list of float32 arrays of shape (steps, dimensions), one per case (the
    steps may differ between cases); ``labels``: the class label of each case (str);
    ``header``: the ``@`` lines as {lower-case key: value string}.  ``?`` (a missing value)
    and time-stamped files are refused with a TsFormatError naming ``source`` and the line.
    """
    header: dict[str, str] = {}
    series, labels = [], []
    in_data = False
    dims = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{source}, line {lineno}"
        if not in_data:
            if not line.startswith("@"):
                raise TsFormatError(
                    f"{where}: expected a header line starting with '@' before "
                    f"@data; got {line[:40]!r}"
                )
            key, _, value = line[1:].partition(" ")
            key = key.lower()
            if key == "data":
                in_data = True
                if header.get("timestamps", "false").lower() == "true":
                    raise TsFormatError(f"{source}: time-stamped .ts files are not supported")
                if header.get("classlabel", "false").split()[:1] != ["true"]:
                    raise TsFormatError(
                        f"{source}: the header has no '@classLabel true ...'; "
                        f"a labelled data set is needed"
                    )
                if "dimensions" in header:
                    try:
                        dims = int(header["dimensions"])
                    except ValueError:
                        raise TsFormatError(
                            f"{source}: @dimensions {header['dimensions']!r} is not a whole number"
                        ) from None
                continue
            header[key] = value.strip()
            continue
        fields = line.split(":")
        if len(fields) < 2:
            raise TsFormatError(f"{where}: expected 'values:...:label'; got {line[:40]!r}")
        label = fields[-1].strip()
        if dims is not None and len(fields) - 1 != dims:
            raise TsFormatError(
                f"{where}: {len(fields) - 1} dimensions where @dimensions says {dims}"
            )
        rows = []
        for d, field in enumerate(fields[:-1]):
            if "?" in field:
                raise TsFormatError(f"{where}: dimension {d + 1} has a missing value '?'")
            if field.lstrip().startswith("("):
                raise TsFormatError(f"{where}: time-stamped values are not supported")
            try:
                rows.append(np.array([float(v) for v in field.split(",")], dtype=np.float64))
            except ValueError:
                bad = next(v for v in field.split(",") if not _is_float(v))
                raise TsFormatError(
                    f"{where}: dimension {d + 1} has a value that is not a number: {bad[:20]!r}"
                ) from None
        lengths = {len(r) for r in rows}
        if len(lengths) != 1:
            raise TsFormatError(f"{where}: the dimensions have different lengths {sorted(lengths)}")
        values = np.stack(rows, axis=1)
        if not np.isfinite(values).all():
            raise TsFormatError(f"{where}: a value is not finite")
        series.append(values.astype(np.float32))
        labels.append(label)
    if not in_data:
        raise TsFormatError(f"{source}: no '@data' line; is this a .ts file?")
    if not series:
        raise TsFormatError(f"{source}: no cases after @data")
    if len({s.shape[1] for s in series}) != 1:
        raise TsFormatError(f"{source}: the cases have different numbers of dimensions")
    declared = header.get("classlabel", "").split()[1:]
    unknown = sorted(set(labels) - set(declared))
    if declared and unknown:
        raise TsFormatError(
            f"{source}: class label {unknown[0]!r} is not among those "
            f"@classLabel declares ({' '.join(declared)})"
        )
    return series, labels, header


def _is_float(text):
    try:
        float(text)
        return True
    except ValueError:
        return False


def write_ts(path, series, labels, name="Fixture", class_labels=None):
    """Write cases in the ``.ts`` format (for tests and for ``predict --file``'s examples)."""
    class_labels = class_labels or sorted(set(labels))
    equal = len({len(s) for s in series}) == 1
    lines = [
        f"@problemName {name}",
        "@timeStamps false",
        "@missing false",
        f"@univariate {'true' if series[0].shape[1] == 1 else 'false'}",
        f"@dimensions {series[0].shape[1]}",
        f"@equalLength {'true' if equal else 'false'}",
    ]
    if equal:
        lines.append(f"@seriesLength {len(series[0])}")
    lines += [f"@classLabel true {' '.join(class_labels)}", "@data"]
    for s, label in zip(series, labels):
        dims = [",".join(repr(float(v)) for v in s[:, d]) for d in range(s.shape[1])]
        lines.append(":".join(dims) + ":" + str(label))
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())


def _decode(raw: bytes, source: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def load_split(name: str, classes, path=None):
    """``(train, test)``: each ``(series list, labels int array)`` of UEA data set ``name``.

    ``path``: a folder holding ``<name>_TRAIN.ts`` and ``<name>_TEST.ts``, or a copy of the
    aeon wheel; without it the aeon wheel is fetched once and the parse cached."""
    classes = [str(c) for c in classes]
    if path is None:
        cached = cache_dir() / "datasets" / f"{name.lower()}.npz"
        if cached.exists():
            try:
                return _read_cache(cached, classes)
            except (OSError, ValueError, KeyError):
                pass  # a damaged cache is rebuilt below
        archive = pypi_archive(*AEON, quiet=False)
        texts = _from_archive(archive, name)
        out = _parse_pair(texts, name, classes)
        _write_cache(cached, out)
        return out
    path = Path(path)
    if not path.exists():
        raise DataUnavailable(f"--data {path}: no such file or folder")
    if path.is_dir():
        texts = {}
        for part in ("TRAIN", "TEST"):
            f = path / f"{name}_{part}.ts"
            if not f.is_file():
                raise DataUnavailable(
                    f"--data {path}: the folder has no {f.name} (a folder "
                    f"with {name}_TRAIN.ts and {name}_TEST.ts is expected)"
                )
            texts[part] = (_decode(f.read_bytes(), str(f)), str(f))
    else:
        texts = _from_archive(path, name)
    return _parse_pair(texts, name, classes)


def _from_archive(archive: Path, name: str):
    try:
        members = archive_members(archive)
    except Exception as e:  # not a zip / tar archive at all
        raise DataUnavailable(
            f"{archive} is neither the aeon wheel nor a folder of .ts files "
            f"({type(e).__name__}: {e})"
        ) from None
    wanted = {}
    for part in ("TRAIN", "TEST"):
        hits = [m for m in members if m.endswith(f"/{name}/{name}_{part}.ts")]
        if not hits:
            raise DataUnavailable(
                f"{archive} holds no {name}_{part}.ts (expected the aeon "
                f"{AEON[1]} wheel, aeon/datasets/data/{name}/)"
            )
        wanted[part] = hits[0]
    raw = read_members(archive, list(wanted.values()))
    return {part: (_decode(raw[m], m), f"{archive}:{m}") for part, m in wanted.items()}


def _parse_pair(texts, name, classes):
    out = []
    for part in ("TRAIN", "TEST"):
        text, source = texts[part]
        series, labels, _ = parse_ts(text, source)
        unknown = sorted(set(labels) - set(classes))
        if unknown:
            raise TsFormatError(
                f"{source}: class label {unknown[0]!r} is not one of {name}'s "
                f"classes ({', '.join(classes)})"
            )
        out.append((series, np.array([classes.index(lab) for lab in labels], dtype=np.int64)))
    dims = {s.shape[1] for part in out for s in part[0]}
    if len(dims) != 1:
        raise TsFormatError(
            f"{name}: the training and test files have different numbers of "
            f"dimensions ({sorted(dims)})"
        )
    return tuple(out)


def _write_cache(path: Path, split):
    arrays: dict[str, Any] = {"version": np.array(CACHE_VERSION)}  # Any: savez's **kwds
    for tag, (series, y) in zip(("train", "test"), split):
        arrays[f"{tag}_values"] = np.concatenate(series, axis=0)
        arrays[f"{tag}_lengths"] = np.array([len(s) for s in series], dtype=np.int64)
        arrays[f"{tag}_y"] = y
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buf.getvalue())


def _read_cache(path: Path, classes):
    with np.load(path, allow_pickle=False) as z:
        if int(z["version"]) != CACHE_VERSION:
            raise ValueError("old cache")
        out = []
        for tag in ("train", "test"):
            values, lengths, y = z[f"{tag}_values"], z[f"{tag}_lengths"], z[f"{tag}_y"]
            if y.min() < 0 or y.max() >= len(classes) or lengths.sum() != len(values):
                raise ValueError("inconsistent cache")
            series = np.split(values, np.cumsum(lengths)[:-1])
            out.append((list(series), y.astype(np.int64)))
    return tuple(out)


def pad(series, length=None, value=0.0):
    """``(x, lengths)``: the series stacked into (N, length, D) float32, padded with ``value``
    after each series' end (``length``: the longest series by default; longer ones refused)."""
    lengths = np.array([len(s) for s in series], dtype=np.int64)
    T = int(lengths.max()) if length is None else int(length)
    if lengths.max() > T:
        raise ValueError(f"a series has {lengths.max()} steps; at most {T} fit")
    D = series[0].shape[1]
    x = np.full((len(series), T, D), value, dtype=np.float32)
    for i, s in enumerate(series):
        x[i, : len(s)] = s
    return x, lengths
