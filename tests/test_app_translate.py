"""rnnkit translate: the Bible verse pairs, the baselines and the command, on a tiny SWORD
library written here in the packages' own format (two RawText modules, KJV versification)."""

import struct

import numpy as np
import pytest

pytest.importorskip("pysword")
pytest.importorskip("sacrebleu")

from rnnkit.apps import translate as tr  # noqa: E402
from rnnkit.datasets import bible_en_es  # noqa: E402

from helpers import run_cli, train_and_evaluate, train_args

GEN_CHAPTERS = [31, 25]  # verses of Genesis 1 and 2 in the KJV versification

SUBJECTS = [
    ("the man", "el hombre"),
    ("the dog", "el perro"),
    ("the woman", "la mujer"),
    ("the king", "el rey"),
]
VERBS = [("eats", "come"), ("sees", "ve"), ("takes", "toma"), ("loves", "ama")]
OBJECTS = [("bread", "pan"), ("water", "agua"), ("the house", "la casa"), ("fish", "pescado")]


TINY = ("--minutes", "0.05", "--units", "8", "--embed", "8")  # a model trained in 3 s


def train_tiny(capsys, library, model, *options):
    """``evaluate --json``'s result for a tiny model trained into ``model``."""
    return train_and_evaluate(capsys, "translate", library, model, *TINY, *options)


def sentences():
    out = []
    for i in range(sum(GEN_CHAPTERS)):
        s, v, o = SUBJECTS[i % 4], VERBS[(i // 4) % 4], OBJECTS[(i // 16 + i) % 4]
        out.append((f"And {s[0]} {v[0]} {o[0]}.", f"Y {s[1]} {v[1]} {o[1]}."))
    return out


def _index(chapter, verse):
    """Index of Genesis chapter:verse in the 'ot' files (after the testament, book and
    chapter headings, as pysword counts)."""
    return 3 + sum(n + 1 for n in GEN_CHAPTERS[: chapter - 1]) + verse


def write_module(root, name, lang, texts):
    folder = root / "modules" / "texts" / "rawtext" / name.lower()
    folder.mkdir(parents=True)
    refs = [(c, v) for c, n in enumerate(GEN_CHAPTERS, 1) for v in range(1, n + 1)]
    size = _index(len(GEN_CHAPTERS), GEN_CHAPTERS[-1]) + 1
    entries, blob = [(0, 0)] * size, b""
    for (c, v), text in zip(refs, texts):
        data = text.encode("utf-8")
        entries[_index(c, v)] = (len(blob), len(data))
        blob += data
    (folder / "ot").write_bytes(blob)
    (folder / "ot.vss").write_bytes(b"".join(struct.pack("<IH", *e) for e in entries))
    (root / "mods.d").mkdir(exist_ok=True)
    (root / "mods.d" / f"{name.lower()}.conf").write_text(
        f"[{name}]\nDataPath=./modules/texts/rawtext/{name.lower()}/\nModDrv=RawText\n"
        f"Encoding=UTF-8\nLang={lang}\nVersification=KJV\nDescription=test\n",
        encoding="utf-8",
    )


@pytest.fixture
def library(tmp_path, rnnkit_cache):
    root = tmp_path / "sword"
    pairs = sentences()
    write_module(root, "TestEn", "en", [e for e, _ in pairs])
    write_module(root, "TestEs", "es", [s for _, s in pairs])
    return root


def test_the_library_is_read_and_split_every_tenth_verse(library):
    rows = bible_en_es.verse_pairs(library)
    assert len(rows) == 56
    assert rows[0][1:] == ["Gen 1:1", "And the man eats bread.", "Y el hombre come pan."]
    assert rows[31][1] == "Gen 2:1" and rows[31][0] == 31
    (en_tr, es_tr), (en_te, es_te) = bible_en_es.load_data(library)
    assert len(en_te) == 5 and len(en_tr) == 51  # verses 9, 19, 29, 39, 49 are test
    assert en_te[0] == rows[9][2] and es_te[1] == rows[19][3]
    parts = bible_en_es.split(rows)
    assert [r[0] for r in parts["validation"]] == [4, 14, 24, 34, 44, 54]
    assert bible_en_es.split(rows, max_words=4)["train"] == []  # all have 5+ words


def test_clean_fixes_the_capitalised_first_word():
    assert bible_en_es.clean("EN el principio  ¶ crió", "es") == "En el principio crió"
    assert bible_en_es.clean("¿QUIÉN es éste?", "es") == "¿Quién es éste?"
    assert bible_en_es.clean("the LORD said", "en") == "the LORD said"


def test_text_helpers():
    assert tr.tokenize("Y dijo Dios: Sea la luz.") == [
        "Y",
        "dijo",
        "Dios",
        ":",
        "Sea",
        "la",
        "luz",
        ".",
    ]
    assert tr.detokenize(["¿", "qué", "es", "?", "y", ",", "no"]) == "¿qué es? y, no"
    case = tr.truecase_map(["Y dijo Dios a Moisés.", "Dios es."])
    assert case == {"dios": "Dios", "moisés": "Moisés"}
    assert tr.recase(["y", "dijo", "dios", ".", "sea"], case) == "Y dijo Dios. Sea"


def test_ibm1_learns_the_word_pairs():
    pairs = [(tr.tokenize(e.lower()), tr.tokenize(s.lower())) for e, s in sentences()]
    d = tr.ibm1_dictionary(pairs)
    for e, s in SUBJECTS[:2] + VERBS + OBJECTS:
        assert d[e.split()[-1]] == s.split()[-1]
    assert d["and"] == "y"
    assert tr.dictionary_translate(["Dog", "Zorro"], d) == ["perro", "zorro"]


def test_unknown_words_are_copied_in_order():
    meta = {
        "source_vocab": ["the", "dog"],
        "target_vocab": ["el", "perro"],
        "truecase": {},
        "dictionary": {"moses": "Moisés"},
        "max_tokens": 10,
    }
    t = tr.Translator(None, meta)
    assert t._sentence(["Moses", "the", "Zorro"], [tr.UNK, 4, tr.UNK, tr.UNK]) == "Moisés el Zorro"


def test_train_evaluate_predict(library, tmp_path, capsys):
    model = str(tmp_path / "t.rnnkit")
    result = train_tiny(capsys, library, model)
    try:
        import matplotlib  # noqa: F401

        assert (tmp_path / "t.rnnkit.png").stat().st_size > 1000  # the training curve
    except ImportError:
        pass
    assert result["test_verses"] == 5
    base = result["baselines"]
    word = base["word-for-word dictionary (IBM model 1)"]
    # the dictionary knows every word of these sentences; copying shares little
    assert word["chrF"] > base["copy the source"]["chrF"] + 20
    assert base["copy the source"]["chrF"] < 40
    for v in result["model"].values():
        assert 0.0 <= v["chrF"] <= 100.0 and np.isfinite(v["BLEU"])
    code, out, err = run_cli(
        ["translate", "predict", "--model", model, "--beam", "2", "And the dog sees Zorblax."],
        capsys,
    )
    assert code == 0, err
    assert len(out.strip().splitlines()) == 1


def test_bad_inputs_are_one_line_errors(library, tmp_path, capsys):
    code, _, err = run_cli(
        [
            "translate",
            "train",
            "--data",
            str(tmp_path),
            "--model",
            str(tmp_path / "x.rnnkit"),
            "--minutes",
            "0.05",
        ],
        capsys,
    )
    assert code == 1 and "not a SWORD library" in err and "Traceback" not in err
    code, _, err = run_cli(
        train_args("translate", library, str(tmp_path / "odd.rnnkit"), "--units", "7"), capsys
    )
    assert code != 0 and "--units must be even with --bidirectional" in err
    assert "got 7" in err and "Traceback" not in err
    model = str(tmp_path / "t.rnnkit")
    assert (
        run_cli(
            train_args(
                "translate",
                library,
                model,
                "--minutes",
                "0.05",
                "--units",
                "4",
                "--embed",
                "4",
                "--attention",
            ),
            capsys,
        )[0]
        == 0
    )
    code, _, err = run_cli(["translate", "predict", "--model", model, "?!"], capsys)
    assert code == 2 and "nothing to translate" in err
    code, _, err = run_cli(
        [
            "translate",
            "train",
            "--data",
            str(library),
            "--model",
            model,
            "--minutes",
            "0.05",
            "--learning-rate",
            "-1",
        ],
        capsys,
    )
    assert code == 2 and "--learning-rate" in err


def test_attention_backward_matches_finite_differences():
    from rnnkit.seq2seq_attention import Attention

    rng = np.random.default_rng(1)
    att = Attention(5, dtype="float64")
    att.params["Wa"][...] = rng.normal(size=(5, 5))
    h, e = rng.normal(size=(2, 3, 5)), rng.normal(size=(2, 4, 5))
    m = np.array([[1, 1, 1, 0], [1, 1, 0, 0]], dtype=np.float64)
    w = rng.normal(size=(2, 3, 5))

    def loss():
        return float((att.forward((h, e, m)) * w).sum())

    loss()
    dh, de = att.backward(w)
    grads = dict(att._grads)
    assert np.abs(de[0, 3]).max() == 0 and np.abs(de[1, 2:]).max() == 0  # padding: no gradient
    for name, arr, grad in [
        ("Wa", att.params["Wa"], grads["Wa"]),
        ("Wc", att.params["Wc"], grads["Wc"]),
        ("h", h, dh),
        ("e", e, de),
    ]:
        num = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            keep = arr[idx]
            arr[idx] = keep + 1e-6
            up = loss()
            arr[idx] = keep - 1e-6
            down = loss()
            arr[idx] = keep
            num[idx] = (up - down) / 2e-6
        assert np.abs(num - grad).max() <= 1e-6 * np.abs(num).max(), name


def test_ibm1_matches_the_textbook_em_loop():
    """The vectorised EM against Brown et al.'s loops, word by word, on the test pairs."""
    pairs = [(tr.tokenize(e.lower()) + ["<null>"], tr.tokenize(s.lower())) for e, s in sentences()]
    t = {}
    for en, es in pairs:
        for e in en:
            t.setdefault(e, set()).update(es)
    t = {e: {f: 1.0 / len(fs) for f in fs} for e, fs in t.items()}
    for _ in range(5):
        count = {e: dict.fromkeys(d, 0.0) for e, d in t.items()}
        for en, es in pairs:
            for f in es:
                z = sum(t[e][f] for e in en)
                for e in en:
                    count[e][f] += t[e][f] / z
        t = {e: {f: c / sum(d.values()) for f, c in d.items()} for e, d in count.items()}
    ew = sorted(t)
    fw = sorted({f for _, es in pairs for f in es})
    src = tr._padded([[ew.index(w) for w in en] for en, _ in pairs])
    tgt = tr._padded([[fw.index(w) for w in es] for _, es in pairs])
    keys, got = tr.ibm1(src, tgt, len(fw), iterations=5)
    want = [t[ew[k // len(fw)]][fw[k % len(fw)]] for k in keys]
    assert len(keys) == sum(len(d) for d in t.values())
    np.testing.assert_allclose(got, want, rtol=1e-12)
    keys2, got2 = tr.ibm1(src, tgt, len(fw), iterations=5, chunk=2)  # pairs two at a time
    np.testing.assert_array_equal(keys2, keys)
    np.testing.assert_allclose(got2, got, rtol=1e-12)


def encoded_sentences():
    """(en, es, src vocab, tgt vocab, x, y, longest) of the test sentences, every word known."""
    en = [tr.tokenize(e.lower()) for e, _ in sentences()]
    es = [tr.tokenize(s.lower()) for _, s in sentences()]
    src = tr.Vocab.from_sentences(en, ["<pad>", "<unk>"], 1)
    tgt = tr.Vocab.from_sentences(es, tr.SPECIALS, 1)
    n = max(len(t) for t in en + es)
    x, y = tr.encode_sources(en, src, n), tr.encode_targets(es, tgt, n)
    return en, es, src, tgt, x, y, n


def test_the_sparse_lexicon_is_the_top_of_each_row():
    _, _, src, tgt, x, y, _ = encoded_sentences()
    dense = tr.ibm1_lexicon(x, y, len(src), len(tgt))
    ids, p = tr.ibm1_lexicon(x, y, len(src), len(tgt), entries=3)
    assert ids.shape == p.shape == (len(src), 3)
    np.testing.assert_allclose(p, -np.sort(-dense, axis=1)[:, :3], rtol=1e-12)
    np.testing.assert_array_equal(np.take_along_axis(dense, ids, axis=1), p)


def test_ibm1_lexicon_is_the_dictionarys_table_over_the_vocabularies():
    en, es, src, tgt, x, y, n = encoded_sentences()
    L = tr.ibm1_lexicon(x, y, len(src), len(tgt))
    assert L.shape == (len(src), len(tgt))
    assert (L[tr.SRC_PAD] == 0).all() and (L[:, [tr.PAD, tr.START, tr.END]] == 0).all()
    np.testing.assert_allclose(L[2:].sum(axis=1), 1.0, rtol=1e-12)  # p(· | English word)
    d = tr.ibm1_dictionary(list(zip(en, es)))
    for e, s in d.items():  # every word known: the dictionary's word is a best one
        row = L[src.index[e]]  # ("." and "y" tie for "." and "and": in every sentence)
        assert row[tgt.index[s]] >= row.max() * (1 - 1e-12), e
    # unknown words: a made-up pair seen once each becomes <unk> on both sides
    en2, es2 = en + [["zorblax", "eats", "bread"]], es + [["zorblax", "come", "pan"]]
    src2 = tr.Vocab.from_sentences(en2, ["<pad>", "<unk>"], 2)
    tgt2 = tr.Vocab.from_sentences(es2, tr.SPECIALS, 2)
    L2 = tr.ibm1_lexicon(
        tr.encode_sources(en2, src2, n), tr.encode_targets(es2, tgt2, n), len(src2), len(tgt2)
    )
    assert L2[tr.SRC_UNK].argmax() == tr.UNK


def test_train_evaluate_predict_with_the_lexicon(library, tmp_path, capsys):
    import rnnkit

    model = str(tmp_path / "lex.rnnkit")
    result = train_tiny(capsys, library, model, "--lexicon")
    for v in result["model"].values():
        assert 0.0 <= v["chrF"] <= 100.0 and np.isfinite(v["BLEU"])
    m = rnnkit.load_model(model)
    assert type(m).__name__ == "LexiconAttentionEncoderDecoder"
    assert m.metadata["settings"]["lexicon"] and m.metadata["settings"]["attention"]
    L = m.lexicon.table()  # the IBM-1 table, stored in the model file
    src = tr.Vocab(m.metadata["source_vocab"], ["<pad>", "<unk>"])
    tgt = tr.Vocab(m.metadata["target_vocab"], tr.SPECIALS)
    (dog,), (perro,) = tr.Translator(m, m.metadata).units(["dog"]), ["perro</w>"]
    assert tgt.words[int(L[src.index[dog]].argmax())] == perro
    code, out, err = run_cli(
        ["translate", "predict", "--model", model, "--beam", "2", "And the dog sees Zorblax."],
        capsys,
    )
    assert code == 0, err
    assert len(out.strip().splitlines()) == 1


def test_unknown_words_are_replaced_through_the_attended_source_word():
    meta = {
        "source_vocab": ["and", "bread", "ate"],
        "target_vocab": ["y", "pan", "comió"],
        "truecase": {},
        "dictionary": {"manna": "maná", "ate": "comió"},
        "max_tokens": 10,
    }
    t = tr.Translator(None, meta)
    src = ["And", "Zorblax", "ate", "manna"]  # the encoder reads them reversed: 3 2 1 0
    y, comio = t.tgt.index["y"], t.tgt.index["comió"]
    ids = [y, tr.UNK, comio, tr.UNK]
    # <unk> while attending to "Zorblax" (position 2), then to "manna" (position 0)
    assert t._sentence(src, ids, [3, 2, 1, 0]) == "Y Zorblax comió maná"
    # without attention: the source words the model does not know, in order
    assert t._sentence(src, ids) == "Y Zorblax comió maná"
    assert t._sentence(src, [tr.UNK, tr.UNK, tr.UNK]) == "Zorblax maná"


def test_subwords_split_and_join_any_word():
    from rnnkit.data.subwords import Subwords

    words = {"dijo": 50, "dijeron": 20, "hijo": 30, "hijos": 25, "moisés": 5, "a": 9}
    sw = Subwords.learn(words, merges=100)
    assert all(sw.split(w) == [w + "</w>"] for w in words)  # frequent enough: one unit each
    assert Subwords.learn(words, merges=100).merges == sw.merges  # the same merges each time
    for w in ["dijimos", "hijas", "zorblax", "ñ", "moisés"]:  # new words, new letters too
        assert Subwords.join(sw.split(w)) == [w]
    assert Subwords.join(sw.split_all(["hijas", "de", "moisés"])) == ["hijas", "de", "moisés"]
    assert len(Subwords.learn(words, merges=3).merges) == 3
    # a pair seen once is never merged: the learning stops early
    assert Subwords.learn({"xy": 1}, merges=10).merges == []
    # pieces shared by words: "hijo" and "hijos" share the merges of h i j o
    assert sw.split("hijitos")[0].startswith("hij")


def test_subword_units_become_words_and_unknown_units_are_copied():
    from rnnkit.data.subwords import Subwords

    sw = Subwords.learn({"comió": 9, "pan": 9, "y": 9, "and": 9, "ate": 9, "bread": 9}, 50)
    meta = {
        "source_vocab": sw.split_all(["and", "ate", "bread"]),
        "target_vocab": sw.split_all(["y", "comió", "pan"]),
        "truecase": {},
        "dictionary": {},
        "max_tokens": 10,
        "subwords": sw.merges,
    }
    t = tr.Translator(None, meta)
    assert t.units(["And", "Zorblax"])[:1] == ["and</w>"]
    assert Subwords.join(t.units(["And", "Zorblax"])) == ["and", "zorblax"]
    ids = [t.tgt.index[u] for u in sw.split_all(["y", "comió"])]
    src = ["And", "Zorblax", "ate"]
    units = t.units(src)  # read reversed: the last unit is position 0
    z = [len(units) - 1 - k for k, u in enumerate(units) if k > 0 and k < len(units) - 1]
    # the units of the unknown name, each an <unk> written while attending to it
    out = t._sentence(src, ids + [tr.UNK] * len(z), [0] * len(ids) + z)
    assert out == "Y comió Zorblax"  # the name keeps the source's capital


def test_a_new_name_spelled_wrong_through_known_units_is_copied():
    from rnnkit.data.subwords import Subwords

    sw = Subwords.learn({"y": 9, "and": 9, "zorra": 9, "dijo": 9, "said": 9, "moses": 9}, 50)
    meta = {
        "source_vocab": sw.split_all(["and", "said", "moses"]),
        "target_vocab": sw.split_all(["y", "dijo", "zorra", ":"]),
        "truecase": {},
        "dictionary": {"and": "y", "said": "dijo", "moses": "moisés"},
        "max_tokens": 10,
        "subwords": sw.merges,
    }
    t = tr.Translator(None, meta)
    src = ["And", "Zorblax", "said"]
    n = len(t.units(src))
    at_name = n - 1 - t.units(src).index(t.units(["zorblax"])[0])  # reversed position
    y, zorra, dijo = (t.tgt.index[u] for u in sw.split_all(["y", "zorra", "dijo"]))
    # "y" written while attending to the name keeps its word; "zorra" becomes the name
    assert t._sentence(src, [y, zorra, dijo], [at_name, at_name, 0]) == "Y Zorblax dijo"
    # twice in a row: once; a known word (Moses) is never replaced
    assert t._sentence(src, [zorra, zorra, dijo], [at_name, at_name, 0]) == "Zorblax dijo"
    assert t._sentence(["Moses", "said"], [zorra], [1]) == "Zorra"
    assert t._sentence(src, [zorra]) == "Zorra"  # without attention: as written


def test_word_level_model_with_subwords_0(library, tmp_path, capsys):
    import rnnkit

    model = str(tmp_path / "w.rnnkit")
    result = train_tiny(capsys, library, model, "--subwords", "0")
    assert 0.0 <= result["model"]["greedy"]["chrF"] <= 100.0
    meta = rnnkit.load_model(model).metadata
    assert meta["subwords"] == [] and "dog" in meta["source_vocab"]
    from rnnkit import cli

    with pytest.raises(SystemExit) as e:
        cli.main(train_args("translate", library, str(tmp_path / "x.rnnkit"), "--subwords", "-1"))
    err = capsys.readouterr().err
    assert e.value.code == 2 and "--subwords" in err and "'-1'" in err
