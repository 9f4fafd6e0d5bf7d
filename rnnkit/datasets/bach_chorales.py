"""The soprano lines of Bach's chorales, as sequences of (pitch, duration) notes.

Source: the chorales in the corpus of PyPI's ``music21==10.5.1`` (``music21/corpus/bach/
*.mxl`` and ``*.xml``, MusicXML), read straight from the wheel (fetched once with pip into
rnnkit's cache; music21 itself is not needed) and cached as
``<cache>/datasets/bach_chorales.json``.  Every file with a part named "Soprano" is used
(409 chorales; the one keyboard piece in that folder, bwv846, has none).

A note is ``(pitch, duration)``: the MIDI number (60 = C4) or ``None`` for a rest, and the
length in quarter notes (0.5 = an eighth).  Tied notes are joined into one; grace notes and
the second and later notes of a chord are skipped; repeats are not unfolded; only the first
voice of the soprano part is read.  The music is kept in its written key.

    from rnnkit.datasets import bach_chorales
    (train_names, train), (test_names, test) = bach_chorales.load_data()
    train[0][:3]        # [(65, 1.0), (67, 0.5), (60, 0.5)]: F4 quarter, G4 eighth, C4 eighth

Split (fixed, by chorale): the chorales are sorted by file name (``bwv1.6``, ``bwv10.7``,
``bwv101.7``, ... as strings); number k (0-based) is in the **test** set when
``k % 10 == 9`` (40 chorales: bwv111.6, bwv120.6, bwv13.6, bwv144.6, bwv154.3, ...; the
list is ``load_data()[1][0]``), in the **validation** set when ``k % 10 == 4`` (41
chorales, for choosing models and n-gram orders), in the training set otherwise (328).  ``load_data`` returns the validation chorales with the training
ones; ``split()`` returns the three parts.

``path=``: a folder of MusicXML files (``.mxl`` or ``.xml``), or a single such file, instead
of the wheel.
"""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
import zipfile
from fractions import Fraction
from pathlib import Path
from typing import Any

from ..atomicfile import atomic_write_bytes
from ..data.fetch import DataUnavailable, archive_members, cache_dir, pypi_archive, read_members

MUSIC21 = ("music21", "10.5.1")
FOLDER = "music21/corpus/bach/"
CACHE_VERSION = 1
TEST_EVERY, TEST_REMAINDER, VALIDATION_REMAINDER = 10, 9, 4
_STEP = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


def musicxml_bytes(raw: bytes, name: str) -> bytes:
    """The score XML of a MusicXML file: compressed (.mxl, a zip with META-INF/container.xml)
    or plain."""
    if raw[:2] != b"PK":
        return raw
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as z:
            try:
                root: Any = ET.fromstring(z.read("META-INF/container.xml"))  # (None: caught)
                inner = root.find(".//rootfile").get("full-path")
            except (KeyError, AttributeError, ET.ParseError):
                inner = next(
                    n for n in z.namelist() if not n.startswith("META-INF") and n.endswith(".xml")
                )
            return z.read(str(inner))
    except (zipfile.BadZipFile, KeyError, StopIteration) as e:
        raise DataUnavailable(
            f"{name}: not a readable compressed MusicXML file ({type(e).__name__}: {e})"
        ) from None


def soprano_notes(xml: bytes, name: str):
    """[(midi or None, quarter length), ...] of the part named Soprano; None when the score
    has no such part."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as e:
        raise DataUnavailable(f"{name}: not well-formed MusicXML ({e})") from None
    if root.tag != "score-partwise":
        raise DataUnavailable(
            f"{name}: expected a <score-partwise> MusicXML score; got <{root.tag}>"
        )
    pid = None
    for sp in root.iter("score-part"):
        label = (sp.findtext("part-name") or "").strip().lower()
        if label.startswith("soprano") or label in ("s", "s."):
            pid = sp.get("id")
            break
    if pid is None:
        return None
    part = next((p for p in root.iter("part") if p.get("id") == pid), None)
    if part is None:
        raise DataUnavailable(
            f"{name}: the part list names a soprano part {pid!r} that the score does not have"
        )
    notes: list[list[Any]] = []
    divisions, tied = 1, False
    for measure in part.iter("measure"):
        el: Any  # an XML element whose absent children are caught below
        for el in measure:
            if el.tag == "attributes" and el.findtext("divisions"):
                divisions = int(el.findtext("divisions"))
            if el.tag != "note" or el.find("grace") is not None or el.find("chord") is not None:
                continue
            if (el.findtext("voice") or "1").strip() != "1":
                continue
            dur_text = el.findtext("duration")
            if dur_text is None:
                continue
            dur = Fraction(int(dur_text), divisions)
            if el.find("rest") is not None:
                midi = None
            else:
                p: Any = el.find("pitch")
                try:
                    midi = (
                        12 * (int(p.findtext("octave")) + 1)
                        + _STEP[p.findtext("step")]
                        + int(float(p.findtext("alter") or 0))
                    )
                except (AttributeError, KeyError, ValueError, TypeError):
                    raise DataUnavailable(
                        f"{name}: measure {measure.get('number')}: a note without a readable pitch"
                    ) from None
            ties = {t.get("type") for t in el.findall("tie")}
            if tied and notes and notes[-1][0] == midi:
                notes[-1][1] += dur  # the end of a tie: one longer note
            else:
                notes.append([midi, dur])
            tied = "start" in ties
    return [(m, float(d)) for m, d in notes if d > 0]


def _read_files(files: dict) -> list:
    """[(name, notes), ...] sorted by name, from {file name: bytes}."""
    out = []
    for fname in sorted(files):
        name = Path(fname).name.rsplit(".", 1)[0]
        notes = soprano_notes(musicxml_bytes(files[fname], fname), fname)
        if notes:
            out.append((name, notes))
    return sorted(out)


def chorales(path=None, quiet=True) -> list:
    """[(name, [(midi or None, quarter length), ...]), ...], sorted by name."""
    if path is not None:
        path = Path(path)
        if path.is_dir():
            paths = sorted(p for p in path.iterdir() if p.suffix in (".mxl", ".xml", ".musicxml"))
        elif path.is_file():
            paths = [path]
        else:
            raise DataUnavailable(f"--data {path}: no such file or folder")
        if not paths:
            raise DataUnavailable(f"--data {path}: no .mxl or .xml files there")
        found = _read_files({str(p): p.read_bytes() for p in paths})
        if not found:
            raise DataUnavailable(f"--data {path}: no score with a part named Soprano")
        return found
    cached = cache_dir() / "datasets" / "bach_chorales.json"
    try:
        data = json.loads(cached.read_text(encoding="utf-8"))
        if data.get("version") == CACHE_VERSION:
            return [(c["name"], [(m, d) for m, d in c["notes"]]) for c in data["chorales"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    wheel = pypi_archive(*MUSIC21, quiet=quiet)
    names = [
        n
        for n in archive_members(wheel)
        if n.startswith(FOLDER) and n.endswith((".mxl", ".xml")) and "/" not in n[len(FOLDER) :]
    ]
    if not names:
        raise DataUnavailable(f"{wheel} holds no chorales under {FOLDER}")
    found = _read_files(read_members(wheel, names))
    blob = json.dumps(
        {
            "version": CACHE_VERSION,
            "source": f"{MUSIC21[0]}=={MUSIC21[1]}",
            "chorales": [{"name": n, "notes": notes} for n, notes in found],
        }
    )
    atomic_write_bytes(cached, blob.encode("utf-8"))
    return found


def split(items):
    """{'train': [...], 'validation': [...], 'test': [...]} of (name, notes) by position."""
    out = {"train": [], "validation": [], "test": []}
    for k, item in enumerate(sorted(items)):
        r = k % TEST_EVERY
        out[
            "test"
            if r == TEST_REMAINDER
            else "validation"
            if r == VALIDATION_REMAINDER
            else "train"
        ].append(item)
    return out


def load_data(path=None, quiet=True):
    """((train_names, train_notes), (test_names, test_notes)); the training part includes
    the validation chorales."""
    parts = split(chorales(path, quiet))
    train = sorted(parts["train"] + parts["validation"])
    return ([n for n, _ in train], [x for _, x in train]), (
        [n for n, _ in parts["test"]],
        [x for _, x in parts["test"]],
    )
