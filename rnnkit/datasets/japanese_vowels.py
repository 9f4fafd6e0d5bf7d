"""UEA JapaneseVowels: which of nine male speakers uttered the Japanese vowel pair /ae/.

Each utterance was analysed by 12th-order linear prediction into 12 cepstral coefficients per
frame; the utterances last 7 to 29 frames (Kudo, Toyama & Shimbo 1999).  A case is a sequence
of (frames x 12) with the speaker (1..9) as its class.

Split: the archive's fixed one, 270 training cases (30 per speaker, ``JapaneseVowels_TRAIN.ts``)
and 370 test cases (24 to 88 per speaker, ``JapaneseVowels_TEST.ts``).  The lengths differ,
so ``load_data`` returns lists of arrays; ``pad`` stacks them (zeros after each end) for a model
with ``Masking``.  Source: PyPI's ``aeon==1.6.0`` wheel (``aeon/datasets/data/JapaneseVowels/``),
fetched once.

    from rnnkit.datasets import japanese_vowels
    (x_train, y_train), (x_test, y_test) = japanese_vowels.load_data()
    len(x_train) == 270; x_train[0].shape == (T, 12), 7 <= T <= 29; y: 0..8 = speaker 1..9
"""

from __future__ import annotations

from ._uea import load_split, pad

NAME = "JapaneseVowels"
CLASSES = tuple(str(i) for i in range(1, 10))  # speakers 1..9 (class index + 1)
COEFFICIENTS = 12


def load_data(path=None):
    """``((x_train, y_train), (x_test, y_test))``: x a list of float32 arrays (frames, 12),
    y int64 class indices (speaker - 1).  ``path``: a folder with JapaneseVowels_TRAIN.ts and
    JapaneseVowels_TEST.ts, or a copy of the aeon wheel (default: the cached download)."""
    out = []
    for series, y in load_split(NAME, CLASSES, path):
        bad = [s.shape for s in series if s.shape[1] != COEFFICIENTS]
        if bad:
            raise ValueError(
                f"JapaneseVowels: every frame must have {COEFFICIENTS} "
                f"coefficients; a case has {bad[0][1]}"
            )
        out.append((list(series), y))
    return tuple(out)


__all__ = ["CLASSES", "load_data", "pad"]
