"""English → Spanish verse pairs of the Bible, for the lecture's encoder–decoder.

Source: Debian's ``sword-text-kjv`` (the King James Version, 1769 text, module
``engKJV2006eb``) and ``sword-text-sparv`` (the Reina-Valera 1909, module ``spaRV1909eb``),
both public domain, fetched once with ``apt-get download`` into rnnkit's cache; their SWORD
module files (``usr/share/sword/...``) are unpacked into ``<cache>/datasets/sword/`` and read
with PyPI's ``pysword`` (about a minute and a half: done once, the verse pairs are cached as
``<cache>/datasets/bible_en_es.json``).

    from rnnkit.datasets import bible_en_es
    (en_train, es_train), (en_test, es_test) = bible_en_es.load_data()

Pairs: every verse that both translations have, cleaned (the paragraph sign ¶ removed,
spaces normalised, the Spanish text's capitalised first word such as "EN el principio"
written "En"), kept when both sides have at most ``max_words`` words (default 15: 5,457 of
the 31,102 verses).

Split (fixed): the verses are numbered 0, 1, 2, ... in the canonical order of the KJV
versification (Genesis 1:1 is 0, Revelation 22:21 is 31101, counting every verse slot);
verse number i is in the **test** set when ``i % 10 == 9`` and in the training set otherwise.
``validation_split()`` takes a further tenth of the training verses (``i % 10 == 4``) for
model selection.  Every tenth verse rather than whole books: the books differ a lot in
vocabulary (names, genres), and a tenth spread over the whole Bible is a held-out sample of
the same language; no verse is in two sets.

``path=``: a SWORD library folder (holding ``mods.d/*.conf`` and the module files) with one
English and one Spanish Bible module, instead of the Debian packages.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from ..atomicfile import atomic_write_bytes
from ..data.fetch import DataUnavailable, cache_dir, deb_members, debian_package

PACKAGES = {"en": ("sword-text-kjv", "engKJV2006eb"), "es": ("sword-text-sparv", "spaRV1909eb")}
TEST_EVERY = 10
TEST_REMAINDER = 9
VALIDATION_REMAINDER = 4
CACHE_VERSION = 1


def sword_library(quiet=True) -> Path:
    """The folder of a SWORD library with both modules, unpacked once from the .debs."""
    root = cache_dir() / "datasets" / "sword"
    if all((root / "mods.d" / f"{mod}.conf").is_file() for _, mod in PACKAGES.values()):
        return root
    for package, _ in PACKAGES.values():
        deb = debian_package(package, quiet=quiet)
        files = deb_members(deb, lambda p: p.startswith("usr/share/sword/"))
        if not any(p.endswith(".conf") for p in files):
            raise DataUnavailable(
                f"the Debian package {package} ({deb}) holds no SWORD module "
                f"under usr/share/sword/. Delete the file to fetch it again."
            )
        # module files first, the .conf last: a library whose .conf exists is complete
        for p in sorted(files, key=lambda p: p.endswith(".conf")):
            target = root / p[len("usr/share/sword/") :]
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(target, files[p])
    return root


def _pysword():
    try:
        from pysword.modules import SwordModules
    except ImportError:
        raise DataUnavailable(
            "reading the Bible modules needs PyPI's pysword (pip install pysword)"
        ) from None
    return SwordModules


def _pick_modules(found: dict, path) -> dict:
    """{'en': module name, 'es': module name} among the modules of a library."""
    out = {}
    for lang, (_, preferred) in PACKAGES.items():
        if preferred in found:
            out[lang] = preferred
            continue
        same = sorted(
            name
            for name, conf in found.items()
            if str(conf.get("lang", "")).lower().split("-")[0] == lang
        )
        if not same:
            raise DataUnavailable(
                f"the SWORD library {path} has no module with Lang={lang} "
                f"(found: {', '.join(sorted(found)) or 'none'})"
            )
        out[lang] = same[0]
    return out


_SPACES = re.compile(r"\s+")


def clean(text: str, lang: str) -> str:
    text = _SPACES.sub(" ", text.replace("¶", " ")).strip()
    if lang == "es" and text:
        first, _, rest = text.partition(" ")
        core = first.lstrip("¿¡(«\"'")
        # RV1909 prints each chapter's first word in capitals ("EN el principio", "¿Y ...")
        if len(core) > 1 and core.isupper() and not rest.isupper():
            lead = first[: len(first) - len(core)]
            text = lead + core[0] + core[1:].lower() + (" " + rest if rest else "")
    return text


def read_library(path, quiet=True) -> list:
    """[[i, reference, english, spanish], ...]: every verse slot i of the KJV versification
    that both modules have, cleaned."""
    SwordModules = _pysword()
    path = Path(path)
    if not (path / "mods.d").is_dir():
        raise DataUnavailable(f"{path} is not a SWORD library (no mods.d folder)")
    try:
        lib = SwordModules(str(path))
        found = lib.parse_modules()
        names = _pick_modules(found, path)
        bibles = {lang: lib.get_bible_from_module(name) for lang, name in names.items()}
    except DataUnavailable:
        raise
    except Exception as e:  # pysword raises many kinds on a broken module
        raise DataUnavailable(
            f"cannot read the SWORD library {path} ({type(e).__name__}: {e})"
        ) from None
    books = [b for _, bs in bibles["en"].get_structure().get_books().items() for b in bs]
    total = sum(b.chapter_lengths[c] for b in books for c in range(b.num_chapters))
    bar = None
    if not quiet:
        from ..progress import ProgressBar

        print(
            f"rnnkit: reading {total:,} verses of {names['en']} and {names['es']} "
            f"with pysword (once) ...",
            file=sys.stderr,
        )
        bar = ProgressBar(len(books), unit="books", stream=sys.stderr)
    pairs, i = [], 0
    for k, book in enumerate(books):
        for c in range(1, book.num_chapters + 1):
            n = book.chapter_lengths[c - 1]
            try:
                texts = {
                    lang: list(bible.get_iter(books=[book.osis_name], chapters=[c]))
                    for lang, bible in bibles.items()
                }
            except Exception as e:
                raise DataUnavailable(
                    f"cannot read {book.osis_name} {c} from the SWORD "
                    f"library {path} ({type(e).__name__}: {e})"
                ) from None
            for v in range(n):
                en = clean(texts["en"][v] if v < len(texts["en"]) else "", "en")
                es = clean(texts["es"][v] if v < len(texts["es"]) else "", "es")
                if en and es:
                    pairs.append([i, f"{book.osis_name} {c}:{v + 1}", en, es])
                i += 1
        if bar:
            bar.update(k + 1, {})
    if bar:
        bar.finish(len(books), {})
    if not pairs:
        raise DataUnavailable(f"the SWORD library {path} has no verse in both languages")
    return pairs


def verse_pairs(path=None, quiet=True) -> list:
    """Every verse pair, [[i, reference, english, spanish], ...], in canonical order."""
    if path is not None:
        return read_library(path, quiet=quiet)
    cached = cache_dir() / "datasets" / "bible_en_es.json"
    try:
        data = json.loads(cached.read_text(encoding="utf-8"))
        if data.get("version") == CACHE_VERSION:
            return data["pairs"]
    except (OSError, ValueError, KeyError, AttributeError):
        pass
    pairs = read_library(sword_library(quiet=quiet), quiet=quiet)
    blob = json.dumps({"version": CACHE_VERSION, "pairs": pairs}, ensure_ascii=False)
    atomic_write_bytes(cached, blob.encode("utf-8"))
    return pairs


def _short(pairs, max_words):
    if not (isinstance(max_words, int) and max_words >= 1):
        raise ValueError(f"bible_en_es: max_words must be a positive integer; got {max_words!r}")
    return [p for p in pairs if len(p[2].split()) <= max_words and len(p[3].split()) <= max_words]


def split(pairs, max_words=15):
    """{'train': [...], 'validation': [...], 'test': [...]} of [i, ref, en, es] rows; the
    training rows exclude the validation rows."""
    rows = _short(pairs, max_words)
    out = {"train": [], "validation": [], "test": []}
    for r in rows:
        k = r[0] % TEST_EVERY
        out[
            "test"
            if k == TEST_REMAINDER
            else "validation"
            if k == VALIDATION_REMAINDER
            else "train"
        ].append(r)
    return out


def validation_split(path=None, max_words=15, quiet=True):
    """(english, spanish) lists of the validation verses (a tenth of the training verses)."""
    rows = split(verse_pairs(path, quiet), max_words)["validation"]
    return [r[2] for r in rows], [r[3] for r in rows]


def load_data(path=None, max_words=15, quiet=True):
    """((english_train, spanish_train), (english_test, spanish_test)): lists of verse
    strings; the training lists include the validation verses (see the module docstring)."""
    parts = split(verse_pairs(path, quiet), max_words)
    train = sorted(parts["train"] + parts["validation"])
    test = parts["test"]
    return ([r[2] for r in train], [r[3] for r in train]), (
        [r[2] for r in test],
        [r[3] for r in test],
    )
