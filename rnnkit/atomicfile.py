"""Atomic file writes: the ground floor that models, plots, data caches and reports share.

A write goes to a temporary file in the target's directory, is flushed to disk, then
renamed over the target (``os.replace`` is atomic on POSIX and Windows), so a crash or a
kill at any moment leaves either the old file or the new one, never half of one.

The temporary file is named ``.tmp-<target name>-<host>-<writer pid>-<random>.part``.
A writer killed outright (SIGKILL, power loss) cannot remove it; the next write of the
same target does, for such files that are stale: their writer process is gone (checked
on POSIX, for writers on this host only: a directory may be shared over the network) or
they have not been written to for ``STALE_AFTER_S`` seconds.  Files of other targets
and anything not named this way are never touched.
"""

from __future__ import annotations

import os
import re
import socket
import stat
import tempfile
import time

STALE_AFTER_S = 60.0
_NAME_MAX = 150  # of the target's name inside the temporary name (NAME_MAX 255)


def _prefix(target_name):
    return f".tmp-{target_name[:_NAME_MAX]}-"


_REST = re.compile(r"([A-Za-z0-9_]+)-(\d+)-[A-Za-z0-9_]+\.part")


def _host():
    """This machine's name as it goes into temporary names (no '-')."""
    return re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname())[:40] or "host"


def _pid_alive(pid):
    if os.name != "posix":  # os.kill would terminate the process on Windows
        return True
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):  # exists, owned by someone else
        return True
    return True


def clean_stale_temporaries(path, now=None):
    """Remove the stale temporary files that killed writes of ``path`` left next to it
    (see the module's docstring); returns the names removed."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    prefix = _prefix(os.path.basename(path))
    now = time.time() if now is None else now
    host = _host()
    removed = []
    try:
        entries = os.listdir(directory)
    except OSError:
        return removed
    for name in entries:
        if not name.startswith(prefix):
            continue
        m = _REST.fullmatch(name[len(prefix) :])
        if m is None:
            continue
        full = os.path.join(directory, name)
        try:
            st = os.lstat(full)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        gone = m.group(1) == host and not _pid_alive(int(m.group(2)))
        if not gone and now - st.st_mtime < STALE_AFTER_S:
            continue
        try:
            os.unlink(full)
            removed.append(name)
        except OSError:
            pass
    return removed


def atomic_write(path, write):
    """Call ``write(fileobj)`` on a temporary file next to ``path``, then rename it over
    ``path``.  The old file stays intact if anything fails.  A ``path`` that is a
    symbolic link is written through: the file it points to is replaced, the link
    stays.  Stale temporary files of earlier, killed writes of the same target are
    removed first."""
    path = os.fspath(path)
    if os.path.islink(path):
        path = os.path.realpath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    clean_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(
        prefix=f"{_prefix(os.path.basename(path))}{_host()}-{os.getpid()}-",
        suffix=".part",
        dir=directory,
    )
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as open() would have made it, not mkstemp's 0600
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
