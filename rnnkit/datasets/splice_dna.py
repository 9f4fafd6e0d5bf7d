"""Primate splice-junction DNA: is the middle of a 60-base window an exon/intron boundary?

Each case is 60 bases of primate DNA (Genbank 64.1; Towell, Shavlik & Noordewier 1990)
centred on a possible splice junction between bases 30 and 31; the class says what lies there:

    ei   exon -> intron boundary (a donor site; the intron starts with GT)
    ie   intron -> exon boundary (an acceptor site; the intron ends with AG)
    n    neither

Source: the StatLog version of the data (Ross King, Strathclyde), as shipped in R's mlbench
package in Debian's ``r-cran-mlbench`` (``usr/lib/R/site-library/mlbench/data/DNA.rda``): an R
data frame of 180 binary indicators V1..V180, three per base (A = 100, C = 010, G = 001,
T = 000), and ``Class``.  The 4 cases of the UCI original with ambiguity codes were removed
by StatLog (3,190 -> 3,186), so every base is A, C, G or T; this loader checks that each
triple is one of the four codes and refuses anything else.  ``rdata`` (PyPI) reads the .rda
once; the sequences are cached as JSON under ``cache_dir()/datasets/``.

Split: StatLog's fixed one.  The data frame's first 2,000 rows are StatLog's training set
(ei 464, ie 485, n 1,051) and the last 1,186 its test set (ei 303, ie 280, n 603); the class
counts match StatLog's published ones, so results compare with the StatLog project's.

    from rnnkit.datasets import splice_dna
    (x_train, y_train), (x_test, y_test) = splice_dna.load_data()
    x_train[0] == "CTAGGCTCCAGATAG..." (60 letters); y: 0 ei, 1 ie, 2 n (splice_dna.CLASSES)
    splice_dna.one_hot(x_train)          (2000, 60, 4) float32, columns A C G T
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..atomicfile import atomic_write_text
from ..data.fetch import DataUnavailable, cache_dir, deb_members, debian_package

PACKAGE = "r-cran-mlbench"
MEMBER = "usr/lib/R/site-library/mlbench/data/DNA.rda"
CLASSES = ("ei", "ie", "n")
CLASS_NAMES = {
    "ei": "exon/intron boundary (donor)",
    "ie": "intron/exon boundary (acceptor)",
    "n": "neither",
}
LENGTH = 60
N_TRAIN = 2000  # StatLog's training set: the first 2,000 rows
BASES = "ACGT"
INDICATORS = {(1, 0, 0): "A", (0, 1, 0): "C", (0, 0, 1): "G", (0, 0, 0): "T"}
# IUPAC codes: a letter that stands for several bases spreads its weight evenly over them
IUPAC = {
    "A": "A",
    "C": "C",
    "G": "G",
    "T": "T",
    "U": "T",
    "R": "AG",
    "Y": "CT",
    "S": "CG",
    "W": "AT",
    "K": "GT",
    "M": "AC",
    "B": "CGT",
    "D": "AGT",
    "H": "ACT",
    "V": "ACG",
    "N": "ACGT",
}
CACHE_VERSION = 1


def load_data(path=None):
    """``((x_train, y_train), (x_test, y_test))``: x arrays of 60-letter strings (A/C/G/T), y int64
    indices into ``CLASSES``; StatLog's 2,000 / 1,186 split.  ``path``: a copy of ``DNA.rda``
    (or of the ``r-cran-mlbench`` .deb); default: the cached download."""
    if path is None:
        cached = cache_dir() / "datasets" / "splice_dna.json"
        data = _read_cache(cached)
        if data is None:
            deb = debian_package(PACKAGE, quiet=False)
            got = deb_members(deb, [MEMBER])
            if MEMBER not in got:
                raise DataUnavailable(
                    f"{deb} holds no {MEMBER}; delete it to fetch {PACKAGE} again"
                )
            data = parse_rda(got[MEMBER], f"{PACKAGE}:{MEMBER}")
            cached.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(
                cached,
                json.dumps(
                    {"version": CACHE_VERSION, "sequences": data[0], "labels": data[1].tolist()}
                ),
            )
    else:
        path = Path(path)
        if not path.is_file():
            raise DataUnavailable(
                f"--data {path}: no such file (DNA.rda or the {PACKAGE} .deb is expected)"
            )
        raw = path.read_bytes()
        if raw.startswith(b"!<arch>\n"):
            got = deb_members(path, [MEMBER])
            if MEMBER not in got:
                raise DataUnavailable(f"--data {path}: the package holds no {MEMBER}")
            raw = got[MEMBER]
        data = parse_rda(raw, str(path))
    seqs, y = data
    if len(seqs) <= N_TRAIN:
        n_train = (len(seqs) * 2) // 3  # a small local copy (tests): first two thirds
    else:
        n_train = N_TRAIN
    x = np.array(seqs, dtype=f"<U{LENGTH}")
    return (x[:n_train], y[:n_train]), (x[n_train:], y[n_train:])


def _read_cache(path: Path):
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
        if d.get("version") != CACHE_VERSION:
            return None
        seqs, labels = d["sequences"], np.array(d["labels"], dtype=np.int64)
        if len(seqs) != len(labels) or any(len(s) != LENGTH for s in seqs):
            return None
        return seqs, labels
    except (OSError, ValueError, KeyError, TypeError):
        return None


def parse_rda(raw: bytes, source: str):
    """``(sequences, labels)`` from the bytes of mlbench's ``DNA.rda``."""
    try:
        import rdata
    except ImportError:
        raise DataUnavailable(
            "reading DNA.rda needs the Python package 'rdata' (pip install rdata)"
        ) from None
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Unknown encoding. Assumed ASCII."
            parsed = rdata.parser.parse_data(raw)
            objects = rdata.conversion.convert(parsed)
    except Exception as e:  # rdata raises many types on a damaged file
        raise ValueError(
            f"{source} is not a readable R data file ({type(e).__name__}: {e})"
        ) from None
    frame = objects.get("DNA") if isinstance(objects, dict) else None
    if frame is None or not hasattr(frame, "columns"):
        raise ValueError(
            f"{source} holds no data frame named 'DNA' "
            f"(found: {', '.join(map(str, objects)) or 'nothing'})"
        )
    names = [f"V{i}" for i in range(1, 3 * LENGTH + 1)] + ["Class"]
    missing = [c for c in names if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{source}: the DNA data frame lacks column {missing[0]!r} "
            f"(V1..V180 and Class are expected)"
        )
    bits = np.stack(
        [_indicator(frame[f"V{i}"], f"V{i}", source) for i in range(1, 3 * LENGTH + 1)], axis=1
    ).reshape(-1, LENGTH, 3)
    code = bits[..., 0] * 4 + bits[..., 1] * 2 + bits[..., 2]  # 4 A, 2 C, 1 G, 0 T
    bad = np.argwhere(~np.isin(code, (4, 2, 1, 0)))
    if len(bad):
        r, p = bad[0]
        raise ValueError(
            f"{source}: row {r + 1}, base {p + 1} has indicators "
            f"{tuple(int(v) for v in bits[r, p])}; only 100 (A), 010 (C), 001 (G) "
            f"and 000 (T) are defined"
        )
    letters = np.array(list("TGC?A"))[code]  # 0 T, 1 G, 2 C, 4 A
    seqs = ["".join(row) for row in letters]
    labels = [str(v) for v in np.asarray(frame["Class"].astype(str))]
    unknown = sorted(set(labels) - set(CLASSES))
    if unknown:
        raise ValueError(f"{source}: Class {unknown[0]!r} is not one of {', '.join(CLASSES)}")
    return seqs, np.array([CLASSES.index(c) for c in labels], dtype=np.int64)


def _indicator(column, name, source):
    values = np.asarray(column.astype(str)) if hasattr(column, "astype") else np.asarray(column)
    out = np.zeros(len(values), dtype=np.int64)
    for i, v in enumerate(values):
        v = str(v)
        if v in ("0", "0.0"):
            continue
        if v in ("1", "1.0"):
            out[i] = 1
        else:
            raise ValueError(
                f"{source}: column {name}, row {i + 1} is {v!r}; the indicators must be 0 or 1"
            )
    return out


def check_sequence(text: str) -> str:
    """``text`` upper-cased without blanks, if it is 60 IUPAC letters; else ValueError saying
    what is wrong."""
    seq = "".join(str(text).split()).upper()
    if len(seq) != LENGTH:
        raise ValueError(
            f"a sequence must have {LENGTH} bases; got {len(seq)}"
            + (f" ({seq[:12]}...)" if len(seq) > 12 else f" ({seq!r})")
        )
    for i, ch in enumerate(seq):
        if ch not in IUPAC:
            raise ValueError(
                f"base {i + 1} is {ch!r}; expected A, C, G, T (or an IUPAC "
                f"ambiguity code: {''.join(sorted(set(IUPAC) - set('ACGTU')))})"
            )
    return seq


def one_hot(sequences) -> np.ndarray:
    """(N, L, 4) float32, columns A, C, G, T; an ambiguity code (IUPAC: N, R, Y, ...) spreads
    1 evenly over the bases it stands for."""
    table = np.zeros((128, 4), dtype=np.float32)
    for letter, bases in IUPAC.items():
        for b in bases:
            table[ord(letter), BASES.index(b)] = 1.0 / len(bases)
            table[ord(letter.lower()), BASES.index(b)] = 1.0 / len(bases)
    codes = np.array([[ord(c) for c in s] for s in sequences], dtype=np.int64)
    if codes.size and (codes.max() > 127 or not table[codes].sum(-1).all()):
        bad = next(c for s in sequences for c in s if ord(c) > 127 or c.upper() not in IUPAC)
        raise ValueError(f"one_hot: {bad!r} is not a base letter")
    return table[codes]


__all__ = ["CLASSES", "CLASS_NAMES", "load_data", "one_hot", "check_sequence", "parse_rda"]
