"""rnnkit speaker: variable-length utterances through masks, end to end on tiny
JapaneseVowels files written in the archive's .ts format."""

import json

import numpy as np
import pytest

from rnnkit import cli, load_model
from rnnkit.apps import speaker
from rnnkit.datasets import japanese_vowels
from rnnkit.datasets._uea import pad, write_ts

from helpers import train_app, write_uea_split


def _utterances(n, seed):
    """Three toy speakers (1, 2, 3): each has its own mean cepstrum; 5 to 12 frames."""
    rng = np.random.default_rng(seed)
    centres = np.arange(3)[:, None] * 0.8 - 0.8 + np.zeros((3, 12))
    xs, labels = [], []
    for i in range(n):
        c = i % 3
        T = int(rng.integers(5, 13))
        xs.append((centres[c] + 0.1 * rng.normal(size=(T, 12))).astype(np.float32))
        labels.append(japanese_vowels.CLASSES[c])
    return xs, labels


@pytest.fixture
def data(tmp_path, rnnkit_cache):
    folder = tmp_path / "jv"
    folder.mkdir()
    write_uea_split(folder, "JapaneseVowels", japanese_vowels.CLASSES, _utterances, 9)
    return folder


def test_loader_keeps_every_frame(data):
    (x_train, y_train), (x_test, y_test) = japanese_vowels.load_data(data)
    xs, _ = _utterances(9, 0)
    assert [len(s) for s in x_train] == [len(s) for s in xs]  # nothing truncated
    np.testing.assert_allclose(x_train[4], xs[4], rtol=1e-6)
    assert y_train.tolist() == [0, 1, 2] * 3
    padded, lengths = pad(x_train)
    assert padded.shape == (9, max(lengths), 12)
    assert (padded[0, lengths[0] :] == 0).all()


def test_loader_refuses_a_wrong_number_of_coefficients(tmp_path):
    for part in ("TRAIN", "TEST"):
        write_ts(
            tmp_path / f"JapaneseVowels_{part}.ts",
            [np.zeros((5, 11)) + 1.0],
            ["1"],
            "JapaneseVowels",
            list(japanese_vowels.CLASSES),
        )
    with pytest.raises(ValueError, match="every frame must have 12 coefficients; a case has 11"):
        japanese_vowels.load_data(tmp_path)


def test_command_train_evaluate_predict_and_masking(data, tmp_path, capsys):
    model_path = tmp_path / "spk.rnnkit"
    train_app("speaker", data, model_path, "--hidden", "4", "--epochs", "3", "--batch", "3")
    capsys.readouterr()
    assert (
        cli.main(["speaker", "evaluate", "--json", "--data", str(data), "--model", str(model_path)])
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["model"]["n"] == 9 and sum(map(sum, out["model"]["confusion"])) == 9
    assert out["baselines"]["majority_class"] == pytest.approx(3 / 9, abs=1e-4)
    assert out["baselines"]["1nn_dtw_dependent"] == 1.0
    assert out["published"]["fcn_accuracy"] == 0.993

    # masks: an utterance's answer does not depend on the padding it gets in a batch
    model = load_model(model_path)
    xs, _ = _utterances(4, 7)
    alone = [model.predict(speaker._inputs([s], model.metadata))[0] for s in xs]
    batch = model.predict(speaker._inputs(xs, model.metadata))
    np.testing.assert_allclose(batch, np.array(alone), rtol=1e-5, atol=1e-6)

    csv = tmp_path / "utt.csv"
    csv.write_text("\n".join(" ".join(f"{v:.4f}" for v in row) for row in xs[0]))
    assert cli.main(["speaker", "predict", "--model", str(model_path), str(csv)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("utt.csv: speaker ") and f"{len(xs[0])} frames" in line


def test_predict_refuses_a_frame_of_the_wrong_width(data, tmp_path, capsys):
    model_path = tmp_path / "spk.rnnkit"
    train_app("speaker", data, model_path, "--hidden", "2", "--epochs", "1")
    csv = tmp_path / "utt.csv"
    csv.write_text("\n".join(",".join(["0.5"] * 12) for _ in range(4)) + "\n1,2,3\n")
    capsys.readouterr()
    assert cli.main(["speaker", "predict", "--model", str(model_path), "--file", str(csv)]) == 2
    err = capsys.readouterr().err
    assert "line 5: expected 12 numbers" in err and "Traceback" not in err
