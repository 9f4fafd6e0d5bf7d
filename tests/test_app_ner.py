"""rnnkit ner: WNUT-16 named entities (tiny fixtures in the source format, no network)."""

import pytest

from rnnkit import cli
from rnnkit.apps import ner
from rnnkit.data.fetch import DataUnavailable
from rnnkit.datasets import wnut16

from helpers import run_cli, train_and_evaluate


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path / "cache"))
    return tmp_path


def _tweets(n=50):
    """Tweets in ner.txt's format: people follow "with", places follow "in"."""
    people = [["Alice"], ["Bob"], ["Carol", "Smith"], ["Dan"]]
    places = [["Paris"], ["New", "York"], ["Rome"], ["Oslo"]]
    lines = []
    for i in range(n):
        who, where = people[i % 4], places[(i // 4) % 4]
        toks = [(f"@fan{i}", "O"), ("lunch", "O"), ("with", "O")]
        toks += [(w, ("B-" if k == 0 else "I-") + "person") for k, w in enumerate(who)]
        toks += [("in", "O")]
        toks += [(w, ("B-" if k == 0 else "I-") + "geo-loc") for k, w in enumerate(where)]
        toks += [("today", "O"), (f"http://t.co/x{i}", "O")]
        lines += [f"{w}\t{t}" for w, t in toks] + ["\t"]
    return "\n".join(lines) + "\n"


def test_spans_read_bio_as_conlleval():
    assert ner.spans(["B-person", "I-person", "O", "B-geo-loc"]) == [
        (0, 2, "person"),
        (3, 4, "geo-loc"),
    ]
    assert ner.spans(["I-person", "I-person"]) == [(0, 2, "person")]  # I- starts one
    assert ner.spans(["B-person", "I-company"]) == [(0, 1, "person"), (1, 2, "company")]
    assert ner.spans(["B-person", "B-person"]) == [(0, 1, "person"), (1, 2, "person")]
    assert ner.spans(["O", "O"]) == []


def test_entity_scores_on_hand_made_cases():
    gold = [["B-person", "I-person", "O", "B-geo-loc"], ["B-company", "O"]]
    pred = [["B-person", "I-person", "O", "B-company"], ["B-company", "B-other"]]
    s = ner.entity_scores(gold, pred)
    # right: the person and the company; wrong type: geo-loc read as company; extra: other
    assert (s["correct"], s["gold"], s["predicted"]) == (2, 3, 4)
    assert s["precision"] == pytest.approx(50.0)
    assert s["recall"] == pytest.approx(200 / 3)
    assert s["f1"] == pytest.approx(2 * 50 * (200 / 3) / (50 + 200 / 3))
    assert s["per_type"]["person"]["f1"] == 100.0
    assert s["per_type"]["company"]["precision"] == 50.0
    assert s["per_type"]["geo-loc"]["recall"] == 0.0
    # a span one token short is wrong, whatever its type
    assert ner.entity_scores([["B-person", "I-person"]], [["B-person", "O"]])["f1"] == 0.0
    assert ner.entity_scores([["O"]], [["O"]])["f1"] == 0.0
    with pytest.raises(ValueError, match="gold sequence of 2 tags"):
        ner.entity_scores([["O", "O"]], [["O"]])


def test_gazetteer_longest_match_and_majority_type():
    words = [["new", "york", "rocks"], ["New", "York"], ["New", "York"], ["york", "city"]]
    tags = [
        ["B-geo-loc", "I-geo-loc", "O"],
        ["B-geo-loc", "I-geo-loc"],
        ["B-company", "I-company"],
        ["B-geo-loc", "O"],
    ]
    gaz = ner.build_gazetteer(words, tags)
    assert gaz == {("new", "york"): "geo-loc", ("york",): "geo-loc"}
    assert ner.gazetteer_tags(gaz, ["I", "love", "NEW", "York", "and", "york"]) == [
        "O",
        "O",
        "B-geo-loc",
        "I-geo-loc",
        "O",
        "B-geo-loc",
    ]
    f = ner.gazetteer_feature(gaz, ["new", "york"], list(wnut16.TAGS))
    assert f.tolist() == [
        [1 + wnut16.TAGS.index("B-geo-loc")],
        [1 + wnut16.TAGS.index("I-geo-loc")],
    ]
    # cross-fold: a tweet's own entities are not in the gazetteer it sees
    folds = ner.crossfold_gazetteer_features(
        [["Zed"], ["Zed"]], [["B-person"], ["O"]], list(wnut16.TAGS), folds=2
    )
    assert folds[0].tolist() == [[1]] and folds[1].tolist() == [[1 + wnut16.TAGS.index("B-person")]]


def test_dataset_parse_split_and_errors(tmp_path):
    f = tmp_path / "ner.txt"
    f.write_text(_tweets(10), encoding="utf-8")
    (xw, yt), (xs, ys) = wnut16.load_data(f)
    assert (len(xw), len(xs)) == (8, 2)  # 80 / 20 in file order
    assert xw[0][:4] == ["@fan0", "lunch", "with", "Alice"]
    assert yt[0][3:6] == ["B-person", "O", "B-geo-loc"]
    f.write_text("word\tB-animal\n", encoding="utf-8")
    with pytest.raises(DataUnavailable, match="line 1: expected 'token<TAB>tag'"):
        wnut16.load_data(f)


def test_train_evaluate_predict_end_to_end(cache, capsys):
    data = cache / "ner.txt"
    data.write_text(_tweets(), encoding="utf-8")
    model = cache / "ner.rnnkit"
    r = train_and_evaluate(
        capsys,
        "ner",
        data,
        model,
        "--epochs",
        "30",
        "--units",
        "16",
        "--batch",
        "4",
        "--minutes",
        "30",
    )
    # the last 10 tweets, 2 entities each; every one of them is in the training gazetteer
    assert r["data"]["test_tweets"] == 10 and r["model"]["gold"] == 20
    assert r["baselines"]["gazetteer"]["f1"] == pytest.approx(100.0)
    assert r["model"]["f1"] >= 90.0
    assert r["published"]["winner_f1"] == 52.4
    code, out, err = run_cli(
        ["ner", "predict", "--model", str(model), "lunch with Zoe Smith in Rome today"], capsys
    )
    assert code == 0, err
    assert "Rome (geo-loc)" in out and "person" in out
    code, out, err = run_cli(["ner", "predict", "--model", str(model), "   "], capsys)
    assert code == 2 and "nothing to read" in err and "Traceback" not in err


def test_repair_turns_stray_inside_tags_into_beginnings():
    assert ner._repair(["I-person", "I-person", "I-company", "O", "I-other"]) == [
        "B-person",
        "I-person",
        "B-company",
        "O",
        "B-other",
    ]


def test_bad_options_and_files_are_one_line(cache, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["ner", "train", "--entity-weight", "-1"])
    assert e.value.code == 2 and "--entity-weight" in capsys.readouterr().err
    bad = cache / "bad.txt"
    bad.write_text("only-one-column\n", encoding="utf-8")
    code, out, err = run_cli(
        ["ner", "train", "--data", str(bad), "--model", str(cache / "m.rnnkit")], capsys
    )
    assert code != 0 and "line 1" in err and "Traceback" not in err


def test_character_encoder_gradient_and_file_round_trip(tmp_path):
    import numpy as np

    import rnnkit
    from rnnkit.apps import _wordfeatures as wf

    rnnkit.set_seed(0)
    vocab = wf.FeatureVocab.build(
        [["Hello", "@bob", "http://t.co/x"], ["hello", "bob"]], tweets=True, chars=True
    )
    assert wf.word_chars("http://t.co/x", tweets=True) == "<url>"
    assert wf.word_chars("internationalisation") == "internsation"  # first 6 + last 6
    model = wf.build_tagger(vocab, 3, units=4, char_units=3)
    layer = model.layers[0]
    x = wf.pad([vocab.encode(["Hello", "bob"]), vocab.encode(["@bob"])])
    assert x.shape == (2, 2, len(wf.FEATURES) + wf.CHAR_LEN)
    weights = np.arange(1, layer.compute_output_shape((2, 2, x.shape[-1]))[-1] + 1)
    out = layer.forward(x)
    assert np.all(out[1, 1, -6:] == 0)  # padding: no character vector
    layer.backward(np.broadcast_to(weights, out.shape).astype(out.dtype).copy())
    E = layer.char_embedding.params["E"]
    i = int(x[0, 0, len(wf.FEATURES)])  # the id of "H"
    analytic = float(layer.char_embedding.grads["E"][i, 0])
    eps = 1e-2
    E[i, 0] += eps
    up = float((layer.forward(x) * weights).sum())
    E[i, 0] -= 2 * eps
    down = float((layer.forward(x) * weights).sum())
    E[i, 0] += eps
    assert analytic == pytest.approx((up - down) / (2 * eps), rel=2e-2, abs=1e-3)
    model.save(tmp_path / "m.rnnkit")
    again = rnnkit.load_model(tmp_path / "m.rnnkit")
    assert np.allclose(again.forward(x), model.forward(x))


def test_fit_labeller_keeps_the_best_of_epochs_and_averages():
    import numpy as np

    import rnnkit
    from rnnkit import optim
    from rnnkit.apps import _wordfeatures as wf

    rnnkit.set_seed(3)
    words, tags = wnut16.parse(_tweets(24))
    tagset = list(wnut16.TAGS)
    vocab = wf.FeatureVocab.build(words[:16], tweets=True)
    X = [vocab.encode(w) for w in words]
    Y = [np.array([tagset.index(t) for t in ts]) for ts in tags]
    model = wf.build_tagger(vocab, len(tagset), units=8)
    model.compile(loss="sparse_categorical_crossentropy", optimizer=optim.Adam(1e-2))

    def score(gold, pred):  # token accuracy
        return float(np.mean(np.concatenate(gold) == np.concatenate(pred)))

    history = wf.fit_labeller(
        model,
        X[:16],
        Y[:16],
        X[16:],
        Y[16:],
        score=score,
        seconds=1e9,
        epochs=8,
        batch_size=2,
        patience=99,
        quiet=True,
        rng=np.random.default_rng(0),
        average_from=2,
    )
    assert len(history) == 8
    assert len({h["val_score"] for h in history}) > 1  # the epochs differ
    assert "averaged_val_score" not in history[0]
    assert all("averaged_val_score" in h for h in history[1:])
    best = max(max(h["val_score"], h.get("averaged_val_score", -1)) for h in history)
    assert score(Y[16:], wf.predict_ids(model, X[16:])) == pytest.approx(best)
