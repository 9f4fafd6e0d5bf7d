"""UEA BasicMotions: which of four activities a smart watch's wearer performs.

Four students each recorded five times each of four activities (standing, walking, running,
badminton) with a smart watch: a 3-D accelerometer and a 3-D gyroscope sampled every 0.1 s
for 10 s, so each case is 100 steps x 6 channels (acc x, y, z, then gyro x, y, z).

Split: the archive's fixed one, 40 training cases (``BasicMotions_TRAIN.ts``) and 40 test cases
(``BasicMotions_TEST.ts``), 10 per activity in each.  Source: the data files inside PyPI's
``aeon==1.6.0`` wheel (``aeon/datasets/data/BasicMotions/``), fetched once.

    from rnnkit.datasets import basic_motions
    (x_train, y_train), (x_test, y_test) = basic_motions.load_data()
    x_train.shape == (40, 100, 6); y_train: 0..3, basic_motions.CLASSES[y]
"""

from __future__ import annotations

from ._uea import load_split, pad

NAME = "BasicMotions"
CLASSES = ("Standing", "Running", "Walking", "Badminton")  # the file's @classLabel order
CHANNELS = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")
STEPS = 100


def load_data(path=None):
    """``((x_train, y_train), (x_test, y_test))``: x float32 (N, 100, 6), y int64 class indices
    into ``CLASSES``.  ``path``: a folder with BasicMotions_TRAIN.ts and BasicMotions_TEST.ts, or a
    copy of the aeon wheel (default: the cached download)."""
    out = []
    for series, y in load_split(NAME, CLASSES, path):
        bad = [s.shape for s in series if s.shape != (STEPS, len(CHANNELS))]
        if bad:
            raise ValueError(
                f"BasicMotions: every case must be {STEPS} steps x "
                f"{len(CHANNELS)} channels; one is {bad[0][0]} x {bad[0][1]}"
            )
        x, _ = pad(series)
        out.append((x, y))
    return tuple(out)


__all__ = ["CHANNELS", "CLASSES", "load_data"]
