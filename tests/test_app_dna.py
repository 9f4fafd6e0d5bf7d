"""rnnkit dna: the StatLog splice-junction loader, the baselines, and the command end to end
on a tiny DNA.rda written in mlbench's format (180 indicator factors + Class)."""

import json

import numpy as np
import pytest

from rnnkit import cli
from rnnkit.apps import dna
from rnnkit.apps._baselines import LogisticRegression, choose_l2
from rnnkit.datasets import splice_dna

from helpers import train_app

rdata = pytest.importorskip("rdata")
pd = pytest.importorskip("pandas")

CODES = {"A": (1, 0, 0), "C": (0, 1, 0), "G": (0, 0, 1), "T": (0, 0, 0)}


def _sequences(n, seed=0):
    """Toy junctions: ei has GT right after the junction, ie AG right before it, n neither."""
    rng = np.random.default_rng(seed)
    seqs, labels = [], []
    for i in range(n):
        cls = ("ei", "ie", "n")[i % 3]
        s = list(rng.choice(list("ACGT"), size=60))
        if cls == "ei":
            s[30:32] = "GT"
        elif cls == "ie":
            s[28:30] = "AG"
        else:
            s[30:32] = "CC"
            s[28:30] = "TT"
        seqs.append("".join(s))
        labels.append(cls)
    return seqs, labels


def write_rda(path, seqs, labels, bits=None):
    bits = bits if bits is not None else [[b for ch in s for b in CODES[ch]] for s in seqs]
    cols = {
        f"V{i + 1}": pd.Categorical([str(row[i]) for row in bits], categories=["0", "1"])
        for i in range(180)
    }
    frame = pd.DataFrame(cols)
    frame["Class"] = pd.Categorical(labels, categories=["ei", "ie", "n"])
    rdata.write_rda(str(path), {"DNA": frame})
    return path


@pytest.fixture
def data(tmp_path, rnnkit_cache):
    seqs, labels = _sequences(36)
    return write_rda(tmp_path / "DNA.rda", seqs, labels), seqs, labels


def test_loader_decodes_the_indicators_and_splits_in_order(data):
    path, seqs, labels = data
    (x_train, y_train), (x_test, y_test) = splice_dna.load_data(path)
    assert list(x_train) + list(x_test) == seqs  # 100 A, 010 C, 001 G, 000 T
    assert len(x_train) == 24 and len(x_test) == 12  # small copy: first two thirds
    assert [splice_dna.CLASSES[i] for i in np.concatenate([y_train, y_test])] == labels


def test_loader_refuses_an_undefined_indicator_triple(tmp_path):
    seqs, labels = _sequences(6)
    bits = [[b for ch in s for b in CODES[ch]] for s in seqs]
    bits[2][3 * 9 : 3 * 10] = [1, 1, 0]  # row 3, base 10
    path = write_rda(tmp_path / "bad.rda", seqs, labels, bits)
    with pytest.raises(ValueError, match=r"row 3, base 10 has indicators \(1, 1, 0\)"):
        splice_dna.load_data(path)


def test_loader_refuses_a_file_that_is_not_r_data(tmp_path):
    p = tmp_path / "DNA.rda"
    p.write_bytes(b"not an R file at all")
    with pytest.raises(ValueError, match="not a readable R data file"):
        splice_dna.load_data(p)


def test_one_hot_spreads_ambiguity_codes_and_fold_reads_outwards():
    x = splice_dna.one_hot(["ACGTNR"])[0]
    assert x[:4].tolist() == np.eye(4).tolist()
    assert x[4].tolist() == [0.25] * 4 and x[5].tolist() == [0.5, 0, 0.5, 0]  # N, R = A/G
    seq = "A" * 29 + "C" + "G" + "T" * 29  # junction between C and G
    f = dna.encode([seq])[0]
    assert f.shape == (30, 8)
    assert f[0, :4].tolist() == [0, 1, 0, 0] and f[0, 4:].tolist() == [0, 0, 1, 0]
    assert f[29, :4].tolist() == [1, 0, 0, 0] and f[29, 4:].tolist() == [0, 0, 0, 1]


def test_positional_kmers_count_each_position_once():
    f = dna.kmer_features(["ACGT" * 15], ks=(1, 2, 3))
    assert f.shape == (1, 60 * 4 + 59 * 16 + 58 * 64)
    assert f.sum() == 60 + 59 + 58


def test_kmer_blocks_are_the_dense_kmer_features():
    seqs, _ = _sequences(5, seed=2)
    dense = dna.kmer_features(seqs)
    blocks = dna.kmer_blocks(seqs)
    assert blocks.shape == dense.shape
    w = np.random.default_rng(0).normal(size=(dense.shape[1], 3))
    g = np.random.default_rng(1).normal(size=(5, 3))
    np.testing.assert_allclose(blocks @ w, dense @ w, rtol=1e-10)
    np.testing.assert_allclose(blocks.rmatmul(g), dense.T @ g, rtol=1e-10, atol=1e-12)


def test_logistic_regression_learns_a_separable_rule():
    seqs, labels = _sequences(450, seed=3)
    x = dna.kmer_features(seqs, (1,))
    y = np.array([splice_dna.CLASSES.index(c) for c in labels])
    l2, scores = choose_l2(x[:300], y[:300])
    assert l2 in (1e-4, 1e-3, 1e-2, 1e-1) and len(scores) == 4
    model = LogisticRegression(l2=l2).fit(x[:300], y[:300])
    assert np.mean(model.predict(x[300:]) == y[300:]) >= 0.93  # majority: 1/3
    p = model.predict_proba(x[300:])
    assert np.allclose(p.sum(axis=1), 1.0) and (p > 0).all()


def test_command_train_evaluate_predict(data, tmp_path, capsys):
    path, seqs, labels = data
    model = tmp_path / "dna.rnnkit"
    train_app("dna", path, model, "--hidden", "4", "--epochs", "2", "--batch", "8")
    capsys.readouterr()
    assert cli.main(["dna", "evaluate", "--json", "--data", str(path), "--model", str(model)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"]["n"] == 12 and 0 <= out["model"]["test_accuracy"] <= 1
    assert out["baselines"]["majority_class"] == pytest.approx(
        4 / 12, abs=1e-4
    )  # 'ei' first of the tie
    assert 0 <= out["baselines"]["logistic_regression_onehot"]["accuracy"] <= 1
    assert out["published"]["kbann_accuracy"] == 0.937
    assert sum(map(sum, out["model"]["confusion"])) == 12

    assert cli.main(["dna", "predict", "--model", str(model), seqs[0], seqs[1].lower()]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    for line in lines:
        assert line.split()[0] in splice_dna.CLASSES
        probs = [float(v) for v in line.split("p: ")[1].split("[")[0].split()[1::2]]
        assert sum(probs) == pytest.approx(1.0, abs=2e-3)


@pytest.mark.parametrize(
    "text, message",
    [
        ("ACGT", "must have 60 bases; got 4"),
        ("A" * 59 + "X", "base 60 is 'X'"),
        ("A" * 61, "must have 60 bases; got 61"),
    ],
)
def test_predict_refuses_bad_sequences_in_one_line(data, tmp_path, capsys, text, message):
    path, _, _ = data
    model = tmp_path / "dna.rnnkit"
    train_app("dna", path, model, "--hidden", "2", "--epochs", "1")
    capsys.readouterr()
    assert cli.main(["dna", "predict", "--model", str(model), text]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_train_refuses_a_missing_data_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path))
    assert cli.main(["dna", "train", "--data", str(tmp_path / "nope.rda"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "nope.rda: no such file" in err and "--text" not in err  # no autocomplete hint
