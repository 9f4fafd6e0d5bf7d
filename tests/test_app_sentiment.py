"""`rnnkit sentiment` end to end on a tiny file in the source's format (id<TAB>rating<TAB>text,
CRLF lines as in movieReviewSnippets_GroundTruth.txt): the split, the labels, the
baselines' numbers, the model learning, and the user's mistakes."""

import json

import numpy as np
import pytest

from rnnkit.apps import sentiment
from rnnkit.datasets import movie_reviews

from helpers import run_cli, train_app

POS = ["gripping", "beautiful", "moving", "funny", "brilliant", "charming", "superb"]
NEG = ["dull", "tedious", "awful", "boring", "clumsy", "lifeless", "mess"]
FILL = ["the", "film", "a", "is", "story", "its", "and", "director", "cast", "of", "this"]


def snippets(n=300, seed=0):
    """n snippets, each with 1-3 words of one polarity among fillers; ids 1..n; the
    rating's sign follows the polarity; ids 7 and 14 are rated exactly 0."""
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(1, n + 1):
        positive = bool(rng.integers(2))
        words = list(rng.choice(FILL, size=rng.integers(3, 25)))
        for _ in range(rng.integers(1, 4)):
            words.insert(
                int(rng.integers(len(words) + 1)), str(rng.choice(POS if positive else NEG))
            )
        rating = 0.0 if i in (7, 14) else (1 if positive else -1) * float(rng.uniform(0.2, 3))
        lines.append(f"{i}\t{rating!r}\t{' '.join(words).capitalize()}.")
    return "\r\n".join(lines) + "\r\n"


@pytest.fixture(autouse=True)
def cache(rnnkit_cache):
    return rnnkit_cache


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "movieReviewSnippets_GroundTruth.txt"
    path.write_bytes(snippets().encode("utf-8"))
    return path


TINY = [
    "--embed",
    "16",
    "--units",
    "8",
    "--epochs",
    "12",
    "--patience",
    "12",
    "--batch",
    "16",
    "--learning-rate",
    "0.01",
    "--dropout",
    "0.2",
    "--minutes",
    "60",
    "--quiet",
]


def test_split_labels_and_zero_ratings(data):
    records = movie_reviews.load_records(data)
    assert records["ids"] == list(range(1, 301))
    train, test = movie_reviews.split(records)
    assert len(train) + len(test) == 298  # ids 7 and 14 (rating 0) dropped
    assert [i for i, *_ in test] == list(range(5, 301, 5))  # test = ids divisible by 5
    assert all((r > 0) == (y == 1) for _, r, _, y in train + test)
    (xtr, ytr), (xte, yte) = movie_reviews.load_data(data)
    assert len(xtr) == 238 and len(xte) == 60 and set(np.unique(ytr)) == {0, 1}


def test_tokenize():
    assert movie_reviews.tokenize("It won't bust your gut    and ''Conan'' is fun.") == [
        "it",
        "won",
        "'t",
        "bust",
        "your",
        "gut",
        "and",
        '"',
        "conan",
        '"',
        "is",
        "fun",
        ".",
    ]


def test_train_evaluate_predict(data, capsys, tmp_path):
    model = tmp_path / "s.rnnkit"
    code, _, err = run_cli(
        ["sentiment", "train", "--data", str(data), "--model", str(model), *TINY], capsys
    )
    assert code == 0, err
    code, out, err = run_cli(
        ["sentiment", "evaluate", "--data", str(data), "--model", str(model), "--json"], capsys
    )
    assert code == 0, err
    r = json.loads(out)
    _, test = movie_reviews.split(movie_reviews.load_records(data))
    y = np.array([t[3] for t in test])
    majority = r["baselines"]["majority_class"]
    assert majority["accuracy"] == round(
        float(np.mean(y == (majority["predicts"] == "positive"))), 4
    )
    assert r["baselines"]["bow_logistic_regression"]["accuracy"] >= 0.95  # separable words
    assert r["model"]["accuracy"] >= 0.9, r["model"]
    buckets = r["model"]["by_length"]
    assert sum(b["snippets"] for b in buckets.values()) == len(test) == 60
    assert r["data"]["test_snippets"] == 60 and "published_reference" in r
    vader = r["baselines"]["vader_compound"]
    assert "accuracy" in vader or "unavailable" in vader

    code, out, err = run_cli(
        [
            "sentiment",
            "predict",
            "--model",
            str(model),
            "a gripping, beautiful film",
            "a dull and tedious mess",
            "zzyzx qwerty",
        ],
        capsys,
    )
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0].startswith("positive\t") and lines[1].startswith("negative\t")
    for line in lines:  # unseen words still answered
        p = float(line.split("\t")[1].split("=")[1])
        assert 0.0 <= p <= 1.0
    assert lines[2].endswith("zzyzx qwerty")

    for empty in ["", "   ", " \t "]:
        code, _, err = run_cli(["sentiment", "predict", "--model", str(model), empty], capsys)
        assert code == 2 and "expected a sentence to rate" in err and "Traceback" not in err
    words = tmp_path / "lines.txt"
    words.write_text("superb and charming\n\nawful\n", encoding="utf-8")
    code, out, err = run_cli(
        ["sentiment", "predict", "--model", str(model), "--file", str(words)], capsys
    )
    assert code == 0 and len(out.strip().splitlines()) == 2


def test_predict_probability_matches_the_model(data, tmp_path, capsys):
    model_path = tmp_path / "s.rnnkit"
    train_app("sentiment", data, model_path, "--embed", "8", "--units", "4", "--epochs", "2")
    from rnnkit.apps.task import load_app_model

    model, meta = load_app_model(model_path, sentiment.APP)
    index = {w: i + 2 for i, w in enumerate(meta["vocab"])}
    text = "the cast is brilliant"
    ids = np.array([[index.get(w, sentiment.UNK) for w in movie_reviews.tokenize(text)]])
    p = float(np.asarray(model.predict(ids))[0, 0])
    line = sentiment.predict(model, meta, [text], None)[0]
    assert line.split("\t")[1] == f"p(positive)={p:.3f}"
    assert meta["vocab"][:2] != ["", ""] and "brilliant" in index


@pytest.mark.parametrize(
    "text, message",
    [
        ("1\t0.5\tfine\r\n2\tgood film\r\n", "line 2: expected 'id<TAB>rating<TAB>text'"),
        ("1\tgreat\tfine\r\n", "expected an integer id and a numeric rating"),
        ("1\t7.5\tfine\r\n", "rating must be in [-4, 4]"),
        ("1\t0.5\ta\r\n1\t-0.5\tb\r\n", "ids are not unique"),
        ("\r\n\r\n", "holds no snippets"),
        ("".join(f"{i}\t0.5\tgood\r\n" for i in range(1, 9)), "too few training snippets"),
    ],
)
def test_malformed_data(tmp_path, capsys, text, message):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(text.encode("utf-8"))
    code, _, err = run_cli(["sentiment", "train", "--data", str(bad), *TINY], capsys)
    assert code in (1, 2) and message in err and "Traceback" not in err


def test_bad_options_and_missing_model(data, tmp_path, capsys):
    code, _, err = run_cli(["sentiment", "train", "--data", str(data), "--dropout", "1.5"], capsys)
    assert code == 2 and "--dropout must be in [0, 1)" in err
    code, _, err = run_cli(
        ["sentiment", "predict", "--model", str(tmp_path / "none.rnnkit"), "good"], capsys
    )
    assert code == 1 and "run 'rnnkit sentiment train' first" in err


def test_bag_of_words_logistic_regression_separates_words():
    rng = np.random.default_rng(0)
    seqs = [np.array([2 + int(rng.integers(2)) * 3, 4]) for _ in range(80)]  # word 2 vs word 5
    y = np.array([float(s[0] == 5) for s in seqs])
    p, l2 = sentiment.bow_logistic_regression(
        seqs[:60], y[:60], seqs[60:70], y[60:70], seqs[70:], vocab_size=6
    )
    assert np.all((p > 0.5) == (y[70:] > 0.5)) and l2 in (1e-5, 1e-4, 1e-3, 1e-2)


def test_data_from_the_archives(data, tmp_path):
    """--data also takes hutto_ICWSM_2014.tar.gz or the package's source archive."""
    import io
    import tarfile

    def tar_gz(path, name, blob):
        with tarfile.open(path, "w:gz") as t:
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            t.addfile(info, io.BytesIO(blob))
        return path

    inner = tar_gz(tmp_path / "hutto_ICWSM_2014.tar.gz", movie_reviews.MEMBER, data.read_bytes())
    outer = tar_gz(
        tmp_path / "vaderSentiment-3.3.2.tar.gz", movie_reviews.INNER, inner.read_bytes()
    )
    expected = movie_reviews.load_records(data)
    assert movie_reviews.load_records(inner) == expected == movie_reviews.load_records(outer)
    empty = tar_gz(tmp_path / "other.tar.gz", "something/else.txt", b"x")
    with pytest.raises(movie_reviews.DataUnavailable, match="holds neither"):
        movie_reviews.load_records(empty)


def test_example_script_runs_on_a_local_file(data, capsys):
    import pathlib
    import runpy

    script = pathlib.Path(__file__).parent.parent / "examples" / "sentiment.py"
    main = runpy.run_path(str(script), run_name="example")["main"]
    r = main(["--epochs", "2", "--units", "8"], path=data)
    assert 0.0 <= r["accuracy"] <= 1.0
    assert "test accuracy" in capsys.readouterr().out
