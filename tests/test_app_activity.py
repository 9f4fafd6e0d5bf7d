"""rnnkit activity and the shared UEA pieces: the .ts parser, DTW_D, and the command end to
end on tiny BasicMotions files written in the archive's .ts format."""

import json

import numpy as np
import pytest

from rnnkit import cli
from rnnkit.apps._baselines import dtw_distances, dtw_reference, majority_class, nearest_neighbour
from rnnkit.datasets import basic_motions
from rnnkit.datasets._uea import TsFormatError, parse_ts

from helpers import train_app, write_uea_split

TS = """# a comment
@problemName Tiny
@timeStamps false
@dimensions 2
@equalLength false
@classLabel true a b
@data
1,2,3:4,5,6:a
0.5,-1e-3:7,8:b
"""


def test_parse_ts_reads_cases_of_different_lengths():
    series, labels, header = parse_ts(TS, "tiny.ts")
    assert labels == ["a", "b"] and header["problemname"] == "Tiny"
    assert series[0].tolist() == [[1, 4], [2, 5], [3, 6]]
    assert series[1].shape == (2, 2) and series[1][1, 0] == pytest.approx(-1e-3)


@pytest.mark.parametrize(
    "line, message",
    [
        ("1,2,?:4,5,6:a", "line 8: dimension 1 has a missing value"),
        ("1,2,3:a", "line 8: 1 dimensions where @dimensions says 2"),
        ("1,2,3:4,x,6:a", "line 8: dimension 2 has a value that is not a number: 'x'"),
        ("1,2,3:4,5:a", "line 8: the dimensions have different lengths"),
        ("1,2,3:4,5,6:c", "class label 'c' is not among"),
    ],
)
def test_parse_ts_names_the_file_and_line_of_a_bad_case(line, message):
    text = TS.replace("1,2,3:4,5,6:a", line)
    with pytest.raises(TsFormatError, match=message):
        parse_ts(text, "tiny.ts")


def test_parse_ts_refuses_text_without_data():
    with pytest.raises(TsFormatError, match="no '@data' line"):
        parse_ts("@problemName x\n", "x.ts")


def test_dtw_matches_the_double_loop_and_warps():
    rng = np.random.default_rng(0)
    a = [rng.normal(size=(int(rng.integers(3, 9)), 3)) for _ in range(5)]
    b = [rng.normal(size=(int(rng.integers(3, 9)), 3)) for _ in range(4)]
    d = dtw_distances(a, b, chunk_pairs=7)  # several chunks
    ref = np.array([[dtw_reference(x, y) for y in b] for x in a])
    np.testing.assert_allclose(d, ref, rtol=1e-10, atol=1e-12)
    s = np.sin(np.linspace(0, 6, 40))[:, None]
    stretched = np.repeat(s, 2, axis=0)  # the same shape, twice as slow
    assert dtw_distances([stretched], [s])[0, 0] == pytest.approx(0.0, abs=1e-12)
    flat = np.zeros((40, 2))
    assert dtw_distances([flat + 1.0], [flat])[0, 0] == pytest.approx(80.0)  # 40 cells x 2


def test_nearest_neighbour_and_majority():
    d = np.array([[3.0, 1.0, 2.0], [0.5, 0.7, 0.1]])
    assert nearest_neighbour(d, np.array([7, 8, 9])).tolist() == [8, 9]
    assert majority_class(np.array([2, 1, 1, 2, 0]), 3).tolist() == [1, 1, 1]  # tie: smaller


def _recordings(n, seed):
    """Four toy activities: the class sets the level (like the watch's tilt) and the
    frequency of the motion."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 10, 100)[:, None]
    xs, labels = [], []
    for i in range(n):
        c = i % 4
        base = 2.0 * c + 0.3 * np.sin((1 + 2 * c) * t + rng.uniform(0, 6, size=(1, 6)))
        xs.append((base + 0.05 * rng.normal(size=(100, 6))).astype(np.float32))
        labels.append(basic_motions.CLASSES[c])
    return xs, labels


@pytest.fixture
def data(tmp_path, rnnkit_cache):
    folder = tmp_path / "bm"
    folder.mkdir()
    write_uea_split(folder, "BasicMotions", basic_motions.CLASSES, _recordings, 8)
    return folder


def test_loader_reads_a_folder_of_ts_files(data):
    (x_train, y_train), (x_test, y_test) = basic_motions.load_data(data)
    assert x_train.shape == (8, 100, 6) and x_test.shape == (8, 100, 6)
    assert y_train.tolist() == [0, 1, 2, 3] * 2
    xs, _ = _recordings(8, 0)
    np.testing.assert_allclose(x_train[3], xs[3], rtol=1e-6)


def test_loader_refuses_a_folder_without_the_files(tmp_path):
    with pytest.raises(Exception, match="has no BasicMotions_TRAIN.ts"):
        basic_motions.load_data(tmp_path)


def test_command_train_evaluate_predict(data, tmp_path, capsys):
    model = tmp_path / "act.rnnkit"
    train_app("activity", data, model, "--hidden", "4", "--epochs", "3", "--batch", "4")
    capsys.readouterr()
    assert (
        cli.main(["activity", "evaluate", "--json", "--data", str(data), "--model", str(model)])
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["model"]["n"] == 8 and sum(map(sum, out["model"]["confusion"])) == 8
    assert out["baselines"]["majority_class"] == 0.25
    assert out["baselines"]["1nn_dtw_dependent"] == 1.0  # the toy classes are far apart
    assert out["published"]["1nn_dtw_dependent_accuracy"] == 0.975

    xs, _ = _recordings(1, 5)
    csv = tmp_path / "rec.csv"
    csv.write_text(
        "acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z\n"
        + "\n".join(",".join(f"{v:.5f}" for v in row) for row in xs[0])
    )
    assert cli.main(["activity", "predict", "--model", str(model), "--file", str(csv)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("rec.csv: ") and line.split()[1] in basic_motions.CLASSES
    assert (
        cli.main(["activity", "predict", "--model", str(model), str(data / "BasicMotions_TEST.ts")])
        == 0
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 8 and lines[0].endswith("[file says Standing]")

    pytest.importorskip("matplotlib")
    assert (
        cli.main(
            [
                "activity",
                "plot",
                "--data",
                str(data),
                "--model",
                str(model),
                "--out",
                str(tmp_path / "img"),
            ]
        )
        == 0
    )
    for name in ("activity_confusion.png", "activity_training.png"):
        assert (tmp_path / "img" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "rows, message",
    [
        ([[0.0] * 6] * 99, "expected 100 rows (steps); got 99"),
        ([[0.0] * 5] * 100, "line 1: expected 6 numbers (acc x, y, z, gyro x, y, z); got 5"),
    ],
)
def test_predict_refuses_a_recording_of_the_wrong_shape(data, tmp_path, capsys, rows, message):
    model = tmp_path / "act.rnnkit"
    train_app("activity", data, model, "--hidden", "2", "--epochs", "1")
    csv = tmp_path / "bad.csv"
    csv.write_text("\n".join(",".join(str(v) for v in r) for r in rows))
    capsys.readouterr()
    assert cli.main(["activity", "predict", "--model", str(model), str(csv)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_baselines_are_cached_by_the_data_they_are_computed_on(tmp_path, monkeypatch):
    from rnnkit.apps._baselines import cached

    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path))
    calls = []

    def compute():
        calls.append(1)
        return {"acc": 0.5}

    a = np.arange(6.0)
    assert cached("t", [a], compute) == {"acc": 0.5}
    assert cached("t", [a], compute) == {"acc": 0.5} and len(calls) == 1
    assert cached("t", [a + 1], compute) == {"acc": 0.5} and len(calls) == 2  # other data
    assert cached("t", [a.reshape(2, 3)], compute) and len(calls) == 3  # other shape
