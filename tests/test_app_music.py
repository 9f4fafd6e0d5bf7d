"""rnnkit music: the chorale reader, the n-gram baselines, the MIDI writer and the command,
on tiny MusicXML scores written here (plain .xml and compressed .mxl)."""

import io
import math
import zipfile

import numpy as np
import pytest

from rnnkit.apps import music
from rnnkit.datasets import bach_chorales

from helpers import run_cli, train_and_evaluate, train_args

STEPS = ["C", "D", "E", "F", "G", "A", "B"]


def note_xml(step, octave, duration, alter=0, tie=None, extra=""):
    alter_xml = f"<alter>{alter}</alter>" if alter else ""
    tie_xml = f'<tie type="{tie}"/>' if tie else ""
    return (
        f"<note>{extra}<pitch><step>{step}</step>{alter_xml}<octave>{octave}</octave></pitch>"
        f"<duration>{duration}</duration>{tie_xml}<voice>1</voice></note>"
    )


def score_xml(soprano_notes, with_soprano=True):
    name = "Soprano" if with_soprano else "Piano"
    return (
        "<?xml version='1.0' encoding='UTF-8'?><score-partwise><part-list>"
        "<score-part id='P1'><part-name>Violin</part-name></score-part>"
        f"<score-part id='P2'><part-name>{name}</part-name></score-part></part-list>"
        "<part id='P1'><measure number='1'><attributes><divisions>2</divisions></attributes>"
        + note_xml("C", 3, 8)
        + "</measure></part>"
        "<part id='P2'><measure number='1'><attributes><divisions>2</divisions></attributes>"
        + "".join(soprano_notes)
        + "</measure></part></score-partwise>"
    ).encode()


def tune(k):
    """A little melody, the same tune every other chorale, one of them a step higher."""
    base = 2 if k % 4 == 1 else 0
    notes = []
    for i in range(8):
        s = (base + [0, 1, 2, 0, 2, 3, 4, 4][i]) % 7
        notes.append(note_xml(STEPS[s], 5 if s < 5 else 4, 2 if i % 3 else 1))
    return notes


def write_chorales(folder, n=12):
    folder.mkdir()
    for k in range(n):
        data = score_xml(tune(k))
        if k % 3 == 0:  # compressed MusicXML, as in music21's corpus
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w") as z:
                z.writestr(
                    "META-INF/container.xml",
                    "<container><rootfiles><rootfile "
                    f"full-path='c{k}.xml'/></rootfiles></container>",
                )
                z.writestr(f"c{k}.xml", data)
            (folder / f"bwv{k:02d}.mxl").write_bytes(buf.getvalue())
        else:
            (folder / f"bwv{k:02d}.xml").write_bytes(data)
    (folder / "bwv99.xml").write_bytes(score_xml(tune(0), with_soprano=False))  # skipped
    return folder


@pytest.fixture
def corpus(tmp_path, rnnkit_cache):
    return write_chorales(tmp_path / "chorales")


def test_soprano_notes_ties_rests_chords_grace():
    notes = [
        note_xml("F", 4, 2, alter=1, tie="start"),
        note_xml("F", 4, 1, alter=1, tie="stop"),
        "<note><rest/><duration>1</duration><voice>1</voice></note>",
        note_xml("A", 4, 2),
        note_xml("C", 5, 2, extra="<chord/>"),
        note_xml("D", 5, 0, extra="<grace/>"),
        note_xml("B", 4, 4, alter=-1),
        "<backup><duration>4</duration></backup>",
        note_xml("C", 4, 4).replace("<voice>1</voice>", "<voice>2</voice>"),
    ]
    got = bach_chorales.soprano_notes(score_xml(notes), "x")
    assert got == [(66, 1.5), (None, 0.5), (69, 1.0), (70, 2.0)]
    assert bach_chorales.soprano_notes(score_xml(notes, with_soprano=False), "x") is None


def test_folder_is_read_and_split_by_chorale(corpus):
    items = bach_chorales.chorales(corpus)
    assert [n for n, _ in items] == [f"bwv{k:02d}" for k in range(12)]  # bwv99: no soprano
    assert items[0][1][:3] == [(72, 0.5), (74, 1.0), (76, 1.0)]
    (train_names, train), (test_names, test) = bach_chorales.load_data(corpus)
    assert test_names == ["bwv09"] and len(train_names) == 11
    parts = bach_chorales.split(items)
    assert [n for n, _ in parts["validation"]] == ["bwv04"]


def test_bad_musicxml_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.xml"
    bad.write_bytes(b"<score-partwise><part-list>")
    with pytest.raises(bach_chorales.DataUnavailable, match="not well-formed"):
        bach_chorales.chorales(bad)
    (tmp_path / "empty").mkdir()
    with pytest.raises(bach_chorales.DataUnavailable, match="no .mxl or .xml"):
        bach_chorales.chorales(tmp_path / "empty")
    with pytest.raises(bach_chorales.DataUnavailable, match="no such file"):
        bach_chorales.chorales(tmp_path / "nothing")


def test_note_names():
    assert music.parse_note("C5") == (72, 1.0)
    assert music.parse_note("F#4:0.5") == (66, 0.5)
    assert music.parse_note("Bb3:2") == (58, 2.0)
    assert music.parse_note("B-3:1/2") == (58, 0.5)
    assert music.parse_note("R:1") == (None, 1.0)
    assert music.token((61, 1.5)) == "C#4:1.5" and music.note_of("C#4:1.5") == (61, 1.5)
    for bad in ("H4", "C", "C5:0", "C5:x"):
        with pytest.raises(music.AppInputError, match="--primer"):
            music.parse_note(bad)


def test_kneser_ney_is_a_distribution_and_beats_unigram_on_a_pattern():
    train = [[3, 4, 5, 3, 4, 5, 3, 4, 6]] * 5
    V = 5
    for order in (2, 3, 4):
        lm = music.KneserNey(train, order, V)
        for h in ([1, 1, 1], [3, 4, 5], [6, 6, 6], [4, 4, 4]):
            total = sum(lm.prob(h, w) for w in range(2, 2 + V))
            assert total == pytest.approx(1.0, abs=1e-12)
    test = [[3, 4, 5, 3, 4, 5]]
    kn, n = music.KneserNey(train, 3, V).nll(test)
    uni, n2 = music.unigram_nll(train, test, V)
    assert n == n2 == 6
    # add-one unigram by hand: counts 3:15, 4:15, 5:10 of 45 tokens, V = 5
    assert uni == pytest.approx(
        -(2 * math.log(16 / 50) + 2 * math.log(16 / 50) + 2 * math.log(11 / 50))
    )
    assert kn / n < 0.5 * uni / n


def test_continuous_cache_is_the_formula_causal_and_a_distribution():
    rng = np.random.default_rng(0)
    T, units, V = 7, 5, 6
    H = rng.normal(size=(T, units))
    P = rng.dirichlet(np.ones(V), size=T)
    notes = [3, 4, 3, 5, 3, 4, 2]
    theta, lam = 0.7, 0.2
    Q = music.cached_probs(H, P, notes, theta, lam)
    assert np.allclose(Q.sum(axis=1), 1.0) and np.allclose(Q[0], P[0])
    for t in range(1, T):  # p = (1-λ) P[t] + λ Σ_{i<t} softmax_i(θ h_t·h_i) onehot(notes[i])
        s = np.array([theta * H[t] @ H[i] for i in range(t)])
        a = np.exp(s - s.max()) / np.exp(s - s.max()).sum()
        cache = np.zeros(V)
        for i in range(t):
            cache[notes[i]] += a[i]
        assert np.allclose(Q[t], (1 - lam) * P[t] + lam * cache, rtol=1e-12, atol=1e-15)
    # causal: changing later states or notes leaves the earlier rows alone
    H2, notes2 = H.copy(), list(notes)
    H2[6:] += 1.0  # row t reads h_0..h_t and the notes before t
    notes2[5] = 1
    assert np.allclose(music.cached_probs(H2, P, notes2, theta, lam)[:6], Q[:6])
    assert music.cached_probs(H, P, notes, theta, 0.0) is P  # λ = 0: the LSTM alone
    A = music.cache_weights(H, theta)
    assert np.allclose(A[1:].sum(axis=1), 1.0) and not A[0].any() and not np.triu(A).any()


def test_the_cache_learns_to_copy_a_repeated_phrase():
    """A model that knows nothing (uniform P) but whose states tell the positions of a
    repeated phrase apart: the cache set on such melodies gives the repeat most of the
    probability, so fit_cache picks λ > 0 and lowers the NLL below log V."""

    phrase = [3, 5, 4, 6]
    seq = phrase + phrase + phrase
    T = len(seq)
    H = np.stack([np.eye(4)[t % 4] * 3 for t in range(T)])  # h_t codes the position in the phrase
    P = np.full((T, 8), 1 / 8)
    base = -np.log(P[np.arange(T), seq]).mean()
    best = min(
        (-np.log(music.cached_probs(H, P, seq, th, lam)[np.arange(T), seq]).mean(), lam)
        for th in music.CACHE_THETAS
        for lam in music.CACHE_WEIGHTS
    )
    assert best[1] > 0 and best[0] < 0.8 * base


def test_midi_round_trip():
    notes = [(67, 1.0), (None, 0.5), (69, 0.5), (71, 2.0)]
    data = music.midi_bytes(notes)
    assert data[:4] == b"MThd"
    assert music.read_midi_notes(data) == [(67, 1.0), (69, 0.5), (71, 2.0)]


def test_music21_reads_the_midi(tmp_path):
    pytest.importorskip("music21")
    from music21 import converter

    path = tmp_path / "m.mid"
    path.write_bytes(music.midi_bytes([(67, 1.0), (69, 0.5), (71, 2.0)]))
    s = converter.parse(str(path))
    got = [(n.pitch.midi, float(n.quarterLength)) for n in s.recurse().notes]
    assert got == [(67, 1.0), (69, 0.5), (71, 2.0)]


def test_train_evaluate_predict_generate(corpus, tmp_path, capsys):
    model = str(tmp_path / "m.rnnkit")
    r = train_and_evaluate(
        capsys, "music", corpus, model, "--minutes", "0.05", "--units", "8", "--embed", "4"
    )
    try:
        import matplotlib  # noqa: F401

        assert (tmp_path / "m.rnnkit.png").stat().st_size > 1000  # the training curve
    except ImportError:
        pass
    assert r["test_chorales"] == 1 and r["test_notes"] == 8
    b = r["baselines"]
    assert np.isfinite(r["model"]["LSTM"]["nll"])
    cached = [v["nll"] for k, v in r["model"].items() if k.startswith("LSTM with its")]
    assert all(np.isfinite(v) for v in cached)  # the cache is there when λ > 0 was chosen
    assert "reduction_vs_best_ngram_lstm_alone" in r
    # the test tune is a training tune: the bigram knows it far better than the unigram
    assert b["bigram (Kneser-Ney)"]["nll"] < 0.8 * b["unigram (add-one)"]["nll"]
    code, out, err = run_cli(
        ["music", "predict", "--model", model, "--top", "3", "C5:0.5 D5"], capsys
    )
    assert code == 0, err
    probs = [float(x) for x in out.split()[1::2]]
    assert len(probs) == 3 and probs == sorted(probs, reverse=True) and sum(probs) <= 1.0
    mid = tmp_path / "out" / "new.mid"
    code, out, err = run_cli(
        [
            "music",
            "generate",
            "--model",
            model,
            "--primer",
            "C5:0.5 D5",
            "--length",
            "10",
            "--seed",
            "3",
            "--out",
            str(mid),
        ],
        capsys,
    )
    assert code == 0, err
    assert len(out.split()) == 12 and out.split()[:2] == ["C5:0.5", "D5:1"]
    assert len(music.read_midi_notes(mid.read_bytes())) == 12  # no rests in this corpus
    code, out2, _ = run_cli(
        [
            "music",
            "generate",
            "--model",
            model,
            "--primer",
            "C5:0.5 D5",
            "--length",
            "10",
            "--seed",
            "3",
            "--out",
            str(mid),
        ],
        capsys,
    )
    assert out2 == out  # the seed fixes the melody


def test_bad_inputs_are_one_line_errors(corpus, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(
        [
            "music",
            "train",
            "--data",
            str(tmp_path / "empty"),
            "--minutes",
            "0.05",
            "--model",
            str(tmp_path / "x.rnnkit"),
        ],
        capsys,
    )
    assert code == 1 and "no .mxl or .xml" in err
    model = str(tmp_path / "m.rnnkit")
    assert (
        run_cli(
            train_args("music", corpus, model, "--minutes", "0.05", "--units", "4", "--embed", "4"),
            capsys,
        )[0]
        == 0
    )
    code, _, err = run_cli(["music", "predict", "--model", model, "C5 H9"], capsys)
    assert code == 2 and "'H9'" in err
    code, _, err = run_cli(
        [
            "music",
            "generate",
            "--model",
            model,
            "--temperature",
            "-1",
            "--out",
            str(tmp_path / "a.mid"),
        ],
        capsys,
    )
    assert code == 2 and "--temperature" in err
    code, _, err = run_cli(["music", "generate", "--model", model, "--out", str(tmp_path)], capsys)
    assert code == 2 and "directory" in err


def test_the_example_runs_with_the_cache(corpus, tmp_path, capsys):
    import pathlib
    import runpy

    script = pathlib.Path(__file__).parent.parent / "examples" / "music.py"
    main = runpy.run_path(str(script), run_name="example")["main"]
    out_mid = tmp_path / "e.mid"
    main(["--epochs", "1", "--out", str(out_mid)], path=corpus)
    out = capsys.readouterr().out
    assert "test NLL" in out and "with its cache" in out
    assert music.read_midi_notes(out_mid.read_bytes())
