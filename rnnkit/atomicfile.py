"""Atomic file writes: the ground floor that models, plots, data caches and reports share.

A write goes to a temporary file in the target's directory, is flushed to disk, then
renamed over the target (``os.replace`` is atomic on POSIX and Windows), so a crash or a
kill at any moment leaves either the old file or the new one, never half of one.
"""
from __future__ import annotations

import os
import tempfile


def atomic_write(path, write):
    """Call ``write(fileobj)`` on a temporary file next to ``path``, then rename it over
    ``path``.  The old file stays intact if anything fails."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".part", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)          # as open() would have made it, not mkstemp's 0600
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_bytes(path, data: bytes):
    atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path, text: str):
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))
