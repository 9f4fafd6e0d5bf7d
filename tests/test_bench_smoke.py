"""The CPU benchmark runs (on a tiny grid) and both frameworks compute the same numbers.

A smoke test so that benchmarks/bench_cpu.py cannot rot: it never asserts a timing.
"""

import importlib.util
import json
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "benchmarks", "bench_cpu.py")


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_cpu", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_flop_count_and_statistics():
    bench = load_bench()
    # LSTM, N=2, T=3, H=4, D=5: G = 16; forward 2*T*N*G*(D+H) = 1728, training 3x
    assert bench.matmul_flops("lstm", 2, 3, 4, 5, "infer") == 1728
    assert bench.matmul_flops("lstm", 2, 3, 4, 5, "train") == 3 * 1728
    assert bench.matmul_flops("gru", 1, 1, 1, 1, "infer") == 12
    s = bench.summary([1.0, 2.0, 3.0, 4.0, 100.0])
    assert s["median"] == 3.0 and s["iqr"] == 2.0 and s["min"] == 1.0 and s["max"] == 100.0
    assert abs(bench.geomean([0.5, 2.0]) - 1.0) < 1e-12
    assert bench.checks_agree({"y": 1.0}, {"y": 1.001}) and not bench.checks_agree(
        {"y": 1.0}, {"y": 1.5}
    )


def test_worker_env_clears_blas_variables(monkeypatch):
    bench = load_bench()
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    monkeypatch.setenv("OPENBLAS_L2_SIZE", "1048576")
    clean = bench.worker_env(2, "clean")
    assert "OPENBLAS_CORETYPE" not in clean and "OPENBLAS_L2_SIZE" not in clean
    assert clean["OPENBLAS_NUM_THREADS"] == "2" and clean["OMP_NUM_THREADS"] == "2"
    inherit = bench.worker_env(1, "inherit")
    assert inherit["OPENBLAS_CORETYPE"] == "Haswell" and inherit["MKL_NUM_THREADS"] == "1"


@pytest.mark.parametrize("clock", ["wall", "cpu"])
def test_quick_grid_runs(tmp_path, clock):
    frameworks = ["rnnkit", "torch"] if importlib.util.find_spec("torch") else ["rnnkit"]
    out = tmp_path / "quick"
    cmd = [
        sys.executable,
        SCRIPT,
        "--quick",
        "--repeats",
        "1",
        "--min-time",
        "0",
        "--warmup",
        "1",
        "--threads",
        "1",
        "--H",
        "6",
        "--clock",
        clock,
        "--frameworks",
        *frameworks,
        "--out",
        str(out),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((tmp_path / "quick.json").read_text())
    results = data["results"]
    # the quick grid: 3 cells x 2 modes x N in {1, 4} x T=5 x H=6
    assert len(results) == 12
    assert {(r["cell"], r["mode"], r["N"]) for r in results} == {
        (c, m, n) for c in ("simple", "lstm", "gru") for m in ("train", "infer") for n in (1, 4)
    }
    assert data["meta"]["env_workers"]["OPENBLAS_CORETYPE"] is None
    assert data["meta"]["clock"] == clock
    for r in results:
        for fw in frameworks:
            assert len(r[fw]["seconds"]) == 1 and r[fw]["seconds"][0] > 0
        if len(frameworks) == 2:
            # same weights and inputs in both processes: the same outputs and gradients
            assert r["checks_agree"], (r["cell"], r["mode"], r["N"], r["checks"])
            assert "ratio" in r
    table = (tmp_path / "quick.md").read_text()
    assert "| lstm | train | 4 | 5 | 6 |" in table


def test_training_benchmark_quick(tmp_path):
    """benchmarks/bench_training.py (Embedding -> LSTM -> Dense -> loss -> backward -> Adam)
    on one tiny point: it runs, and both frameworks start from the same loss."""
    frameworks = ["rnnkit", "torch"] if importlib.util.find_spec("torch") else ["rnnkit"]
    script = os.path.join(ROOT, "benchmarks", "bench_training.py")
    out = tmp_path / "train"
    proc = subprocess.run(
        [
            sys.executable,
            script,
            "--quick",
            "--threads",
            "1",
            "--frameworks",
            *frameworks,
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (r,) = json.loads((tmp_path / "train.json").read_text())["results"]
    assert r["rnnkit"]["seconds"][0] > 0
    if len(frameworks) == 2:
        assert r["same_first_loss"], r["first_loss"]


def test_packed_gemm_microbenchmark_builds_and_agrees(tmp_path):
    """benchmarks/packed_gemm.c (the packed product alone against OpenBLAS, quoted in
    BENCHMARKS.md) compiles against the kernel as it is and gives OpenBLAS's numbers:
    rows not a multiple of 4, K over one 256-row block, a partial last panel."""
    import glob
    import shutil
    import sysconfig

    import numpy

    cc = shutil.which(sysconfig.get_config_var("CC").split()[0]) or shutil.which("gcc")
    libs = glob.glob(
        os.path.join(
            os.path.dirname(numpy.__file__), "..", "numpy.libs", "libscipy_openblas64_*.so"
        )
    )
    if cc is None or not libs or sys.platform != "linux":
        pytest.skip("needs a C compiler and the OpenBLAS of NumPy's Linux wheel")
    exe = tmp_path / "packed_gemm"
    src = os.path.join(ROOT, "benchmarks", "packed_gemm.c")
    for defs in ([], ["-DPREFETCH_MIN_BYTES=0"]):  # with the prefetching kernel too
        build = subprocess.run(
            [
                cc,
                "-O3",
                "-fno-trapping-math",
                *defs,
                src,
                "-o",
                str(exe),
                libs[0],
                "-lpthread",
                f"-Wl,-rpath,{os.path.dirname(libs[0])}",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert build.returncode == 0, build.stderr[-3000:]
        for shape in (["7", "300", "50"], ["1", "300", "200"]):  # one row: against sgemv
            run = subprocess.run(
                [str(exe), *shape, "0.01"], capture_output=True, text=True, timeout=60
            )
            if run.returncode == 2:
                pytest.skip("this CPU has no AVX2/FMA: the packed kernel is not used")
            assert run.returncode == 0, run.stderr
            assert "packed" in run.stdout and "OpenBLAS" in run.stdout
            err = float(run.stdout.rsplit("product ", 1)[1].rstrip(")\n"))
            assert err < 1e-3, run.stdout


def test_pack_time_harness_builds_and_packs(tmp_path):
    """benchmarks/pack_time.c (the weights' packing alone, quoted in BENCHMARKS.md)
    compiles against the kernel as it is and times each packing the loops use."""
    import shutil
    import sysconfig

    cc = shutil.which(sysconfig.get_config_var("CC").split()[0]) or shutil.which("gcc")
    if cc is None or sys.platform != "linux":
        pytest.skip("needs a C compiler on Linux")
    exe = tmp_path / "pack_time"
    src = os.path.join(ROOT, "benchmarks", "pack_time.c")
    build = subprocess.run(
        [cc, "-O3", "-fno-trapping-math", src, "-o", str(exe), "-lpthread"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    for args in (
        ["300", "50", "0", "0"],
        ["300", "50", "1", "0"],
        ["300", "200", "0", "1"],
        ["1024", "1100", "0", "1", "1"],  # 4.5 MB: into the buffer the last packing kept
    ):
        run = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=60)
        if run.returncode == 2:
            pytest.skip("this CPU has no AVX2/FMA: the packed kernel is not used")
        assert run.returncode == 0, run.stderr
        low, mid, high = (float(v) for v in re.findall(r"(?:min|median|max) ([0-9.]+)", run.stdout))
        assert 0 < low <= mid <= high, run.stdout


def test_read_bandwidth_builds_and_runs(tmp_path):
    """benchmarks/read_bandwidth.c (the memory ceiling BENCHMARKS.md quotes) compiles and
    prints its figures; a bad argument is refused."""
    import shutil

    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None or sys.platform != "linux":
        pytest.skip("needs a C compiler on Linux")
    exe = tmp_path / "read_bandwidth"
    src = os.path.join(ROOT, "benchmarks", "read_bandwidth.c")
    build = subprocess.run(
        [cc, "-O2", "-pthread", src, "-o", str(exe)], capture_output=True, text=True, timeout=120
    )
    assert build.returncode == 0, build.stderr[-3000:]
    run = subprocess.run([str(exe), "1", "2"], capture_output=True, text=True, timeout=60)
    if run.returncode == 2 and "AVX-512F" in run.stderr:
        pytest.skip("this CPU has no AVX-512F")
    assert run.returncode == 0, run.stderr
    assert "GB/s" in run.stdout and "a pass" in run.stdout
    bad = subprocess.run([str(exe), "0", "2"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2


SONNETS = os.path.join(ROOT, "tests", "data", "sonnets.txt")


def run_script(path, *args):
    """``python ROOT/path args...``: the finished process, its output as text."""
    script = os.path.join(ROOT, *path.split("/"))
    return subprocess.run(
        [sys.executable, script, *map(str, args)], capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def tiny_model(tmp_path):
    """A tiny autocomplete model (two updates on the test sonnets), saved: its path."""
    from rnnkit.apps import autocomplete as app

    ac = app.Autocompleter.train(
        SONNETS, minutes=1, max_updates=2, hidden=8, batch=4, bptt=8, accuracy_samples=0
    )
    model = tmp_path / "tiny.rnnkit"
    ac.save(model)
    return model


def test_ab_word_endings_runs(tiny_model):
    """benchmarks/ab_word_endings.py scores both definitions of a suggestion's probability
    and leaves the library's as it was."""
    script = os.path.join(ROOT, "benchmarks", "ab_word_endings.py")
    run = subprocess.run(
        [sys.executable, script, str(tiny_model), "--text", SONNETS, "--samples", "5"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("% of 5") == 4 and "endings summed" in run.stdout


def test_word_accuracy_and_typing_session_run(tiny_model):
    """benchmarks/word_accuracy.py (top-3 next-word accuracy, letters typed) and
    examples/typing_session.py (the interactive suggestions fed a script)."""
    run = run_script(
        "benchmarks/word_accuracy.py", tiny_model, "--text", SONNETS, "--samples", 5,
        "--typed", 0, 2,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert "0 letters typed: " in run.stdout and "2 letters typed: " in run.stdout
    bad = run_script("benchmarks/word_accuracy.py", tiny_model, "--samples", 0)
    assert bad.returncode == 2 and "--samples must be ≥ 1" in bad.stderr
    run = run_script("examples/typing_session.py", tiny_model, "Shall I compare", 1, "?", "")
    assert run.returncode == 0, run.stderr[-3000:]
    assert "> Shall I compare\n  Shall I compare\n  to the end of the word:" in run.stdout
    assert "+ 1\n" in run.stdout and "+ ?\n" in run.stdout


def test_word_ngram_reference_runs(tiny_model):
    """benchmarks/word_ngram_reference.py: the model's top 3 beside a word trigram's, the
    two mixed and the model's ten likeliest, for each number of letters typed."""
    run = run_script(
        "benchmarks/word_ngram_reference.py", tiny_model, "--text", SONNETS, "--samples", 5,
        "--typed", 0, 1,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    for typed in (0, 1):
        assert f"{typed} letters typed, 5 boundaries: the model's top 3 " in run.stdout
    assert run.stdout.count("the word trigram's") == 2 and "10 likeliest" in run.stdout
    bad = run_script("benchmarks/word_ngram_reference.py", tiny_model, "--typed", -1)
    assert bad.returncode == 2 and "--typed ≥ 0" in bad.stderr
    gone = run_script("benchmarks/word_ngram_reference.py", str(tiny_model) + ".gone")
    assert gone.returncode == 2 and "no model file at" in gone.stderr


def test_ab_loss_runs_and_restores_the_fused_loss():
    """benchmarks/ab_loss.py times the whole iteration with and without the loss's compiled
    pass, on a tiny shape, and refuses a bad one."""
    run = run_script("benchmarks/ab_loss.py", "--shapes", "2 3 8", "--rounds", 2, "--iterations", 1)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "| 2 | 3 | 8 |" in run.stdout
    bad = run_script("benchmarks/ab_loss.py", "--shapes", "2 3")
    assert bad.returncode == 2 and "expected 'N T H'" in bad.stderr


def test_lstm_targets_reads_runs_and_names_the_bounds(tmp_path):
    """benchmarks/lstm_targets.py on committed grids: every LSTM point with its bound (the
    memory's at a batch of one with weights beyond the caches, 1.0 where PyTorch is above
    80 % of peak), the medians' geometric means; a file without LSTM points is refused."""
    runs = [
        f"benchmarks/results/{name}.json"
        for name in ("cpu-t21-xeon", "cpu-t22-lstm-xeon", "cpu-t23-lstm-xeon", "cpu-t24-lstm-xeon")
    ]
    run = run_script("benchmarks/lstm_targets.py", *[os.path.join(ROOT, r) for r in runs])
    assert run.returncode == 0, run.stderr[-3000:]
    rows = [
        line
        for line in run.stdout.splitlines()
        if line.startswith("| infer") or line.startswith("| train")
    ]
    assert len(rows) == 36
    assert "| infer | 1 | 50 | 1024 |" in run.stdout and "memory: 17.0 MB" in run.stdout
    assert "PyTorch above 80% of peak" in run.stdout
    assert "geometric mean of the medians" in run.stdout
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"meta": {"peak_gflops": 1.0}, "results": []}))
    bad = run_script("benchmarks/lstm_targets.py", empty)
    assert bad.returncode == 2 and "no LSTM points" in bad.stderr
    missing = run_script("benchmarks/lstm_targets.py", tmp_path / "none.json")
    assert missing.returncode == 2 and "none.json: not a bench_cpu.py result file" in missing.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="a pseudo-terminal (pty) is POSIX")
def test_suggestions_drop_down_in_a_terminal(tiny_model):
    """`rnnkit autocomplete` on a pseudo-terminal (examples/terminal_session.py, the screen
    drawn by pyte): typing shows the word's suggestions and the next characters, Tab puts
    the first on the line, Enter on an empty line ends the command with status 0."""
    pytest.importorskip("pyte")
    sys.path.insert(0, os.path.join(ROOT, "examples"))
    try:
        from terminal_session import Terminal
    finally:
        sys.path.pop(0)
    from rnnkit.apps.autocomplete import Autocompleter, accepted_text

    code = "import sys; from rnnkit.cli import main; sys.exit(main(sys.argv[1:]))"
    argv = [sys.executable, "-c", code, "autocomplete", "--model", str(tiny_model)]
    term = Terminal(argv)
    term.read(0.3, 120, want="Ctrl-D quits")
    ac = Autocompleter.load(tiny_model)
    first = ac.suggest("Shall I compare th", k=3)[0]
    term.type("Shall I compare th")
    term.read(0.3, 120, want=f" th{first.text} ")  # the list, however long it takes
    screen = term.text()
    assert "> Shall I compare th" in screen and " next: " in screen and "% word" in screen
    if ac.suggest("Shall I compare th", k=3, until="phrase"):
        assert "% phrase" in screen
    term.type("\t")
    line = "> Shall I compare th" + accepted_text(first, "word").rstrip()
    term.read(0.3, 120, want=line)
    assert line in term.text()
    term.type("\r")  # the line is finished (the model learns from it)
    term.read(0.3, 120)
    term.type("\r")  # an empty line quits
    term.read(0.3, 120)
    assert term.finish(0.3, 120) == 0


def test_ab_keep_dxw_runs():
    """benchmarks/ab_keep_dxw.py alternates the kept and the new backward buffer."""
    run = run_script(
        "benchmarks/ab_keep_dxw.py", "--points", "2:3:8", "--rounds", 1, "--seconds", 0.01
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "| 2 | 3 | 8 |" in run.stdout
    bad = run_script("benchmarks/ab_keep_dxw.py", "--points", "2:3")
    assert bad.returncode == 2 and "expected N:T:H" in bad.stderr


def test_layer_steps_and_ab_points_run():
    """benchmarks/layer_steps.py (a layer's inference in one process, with the chooser's
    way) and ab_x_in_loop.py with points of one's own, on tiny shapes."""
    run = run_script(
        "benchmarks/layer_steps.py", "--cell", "gru", "--N", 2, "--T", 3, 5, "--H", 8,
        "--samples", 2, "--seconds", 0.01,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert "GRU(8), N = 2" in run.stdout and run.stdout.count("T=5: ") == 2
    run = run_script("benchmarks/layer_steps.py", "--N", 4, "--T", 3, "--H", 8, "--train")
    assert run.returncode == 0, run.stderr[-3000:]
    assert "training forward and backward" in run.stdout and "T=3: " in run.stdout
    run = run_script(
        "benchmarks/ab_x_in_loop.py", "--switch", "loop_io", "--points", "lstm:4:3:8",
        "--rounds", 1, "--seconds", 0.01,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert "| lstm | 4 | 3 | 8 |" in run.stdout
    run = run_script(
        "benchmarks/ab_x_in_loop.py", "--points", "lstm:4:3:8", "--D", 5, "--rounds", 1,
        "--seconds", 0.01,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert "| lstm | 4 | 3 | 8 |" in run.stdout and "before the loop" in run.stdout
    bad = run_script("benchmarks/ab_x_in_loop.py", "--points", "lstm:4")
    assert bad.returncode == 2 and "expected CELL:N:T:H" in bad.stderr and "'lstm:4'" in bad.stderr


def test_generate_speed_runs_each_way(tiny_model, tmp_path):
    """benchmarks/generate_speed.py times generation in a fresh process per way."""
    script = os.path.join(ROOT, "benchmarks", "generate_speed.py")
    run = subprocess.run(
        [sys.executable, script, str(tiny_model), "--chars", "5", "--ways", "auto", "blas"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "auto:" in run.stdout and "blas:" in run.stdout and "characters a second" in run.stdout
    bad = subprocess.run(
        [sys.executable, script, str(tmp_path / "none.rnnkit")], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "no such file" in bad.stderr


def test_a_framework_that_is_not_installed_is_named(monkeypatch, capsys):
    bench = load_bench()
    real = bench.importlib.util.find_spec
    monkeypatch.setattr(
        bench.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "torch" else real(name, *a),
    )
    with pytest.raises(SystemExit) as e:
        bench.main(["--quick", "--frameworks", "rnnkit", "torch"])
    assert "torch is not installed" in str(e.value) and "--frameworks rnnkit" in str(e.value)


def test_ab_layers_runs_and_names_bad_shapes():
    """benchmarks/ab_layers.py (the A/B of whole layers BENCHMARKS.md quotes) runs this
    checkout against itself on a tiny shape, and refuses a shape it cannot read."""
    script = os.path.join(ROOT, "benchmarks", "ab_layers.py")
    cmd = [sys.executable, script, "--a", ROOT, "--b", ROOT, "--rounds", "2", "--seconds", "0.01"]
    proc = subprocess.run(
        cmd + ["--shapes", "4 3 8 lstm", "5 2 6 gru"], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [l for l in proc.stdout.splitlines() if l.startswith("| 4 |") or l.startswith("| 5 |")]
    assert len(rows) == 2 and rows[0].startswith("| 4 | 3 | 8 | lstm |")
    bad = subprocess.run(cmd + ["--shapes", "4 3 lstm"], capture_output=True, text=True, timeout=60)
    assert (
        bad.returncode == 2
        and "'N T H' or 'N T H CELL'" in bad.stderr
        and "'4 3 lstm'" in bad.stderr
    )


def test_scatter_rows_runs_and_names_bad_shapes():
    """benchmarks/scatter_rows.py (the scatter-add timings BENCHMARKS.md quotes) runs on a
    tiny shape, and refuses a shape it cannot read."""
    script = os.path.join(ROOT, "benchmarks", "scatter_rows.py")
    cmd = [sys.executable, script, "--repeats", "1", "--shapes"]
    proc = subprocess.run(cmd + ["40 8 5"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert any(l.startswith("| 40 | 8 | 5 |") for l in proc.stdout.splitlines())
    bad = subprocess.run(cmd + ["40 8"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "'ROWS WIDTH IDS'" in bad.stderr and "'40 8'" in bad.stderr


def test_products_alone_runs_and_names_bad_sizes():
    """benchmarks/products_alone.py (the kernel-alone table BENCHMARKS.md quotes) runs on a
    tiny shape with every way that applies, and refuses a size below 1."""
    script = os.path.join(ROOT, "benchmarks", "products_alone.py")
    cmd = [sys.executable, script, "--rounds", "1", "--reps", "2", "--H", "16"]
    proc = subprocess.run(cmd + ["--N", "8"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (row,) = [l for l in proc.stdout.splitlines() if l.startswith("| 8 | 16 |")]
    gflops = [c.strip() for c in row.strip("|").split("|")[3:]]
    # packed, packed_pf, blas, split, mkl, team, team_pf, torch
    assert len(gflops) == 8 and float(gflops[2]) > 0
    bad = subprocess.run(cmd + ["--N", "0"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--N" in bad.stderr and "'0'" in bad.stderr


# ---------------------------------------------------------------------------------------------
# benchmarks/bench_gpu.py: its CPU dry run (NumPy and PyTorch on the CPU, a tiny grid)
# ---------------------------------------------------------------------------------------------
GPU_SCRIPT = os.path.join(ROOT, "benchmarks", "bench_gpu.py")


def load_bench_gpu():
    spec = importlib.util.spec_from_file_location("bench_gpu", GPU_SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_bench_gpu_arguments_and_table():
    bench = load_bench_gpu()
    args = bench.parse_args([])
    assert args.N == [1, 32, 256] and args.T == [50, 200] and args.H == [256, 1024]
    assert len(bench.grid_points(vars(args))) == 3 * 2 * 3 * 2 * 2
    assert args.variants == ["fused"] and args.repeats == 3
    assert bench.parse_args(["--dry-run"]).variants == ["numpy"]
    with pytest.raises(SystemExit):
        bench.parse_args(["--repeats", "0"])
    s = bench.summary([2.0, 4.0, 3.0])
    assert s["median"] == 3.0 and s["iqr"] == 1.0
    assert bench.fmt_ms(s) == "3.00 ±17%"
    meta = {"variants": ["fused", "eager"], "torch": True}
    r = {
        "cell": "lstm",
        "mode": "train",
        "N": 32,
        "T": 50,
        "H": 256,
        "ms": {"fused": s, "eager": s, "torch": bench.summary([1.5])},
        "ratio": {"fused": bench.summary([2.0]), "eager": bench.summary([2.5])},
        "max_rel_error": 5e-3,
    }
    table = bench.markdown([r], meta)
    assert (
        "| lstm | train | 32 | 50 | 256 | 3.00 ±17% | 3.00 ±17% | 1.50 ±0% | 2.00 | 2.50 |" in table
    )
    assert "5.0e-03 **NO**" in table  # above the agreement tolerance: flagged
    assert "| fused | train | 1 | 2.00 |" in table


def test_bench_gpu_dry_run(tmp_path):
    out = tmp_path / "dry"
    cmd = [sys.executable, GPU_SCRIPT, "--dry-run", "--repeats", "1", "--warmup", "0"]
    cmd += ["--min-time", "0", "--cells", "lstm", "gru", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((tmp_path / "dry.json").read_text())
    assert data["meta"]["complete"] and data["meta"]["CUPY_TF32"] == "0"
    results = data["results"]
    assert {(r["cell"], r["mode"], r["N"]) for r in results} == {
        (c, m, n) for c in ("lstm", "gru") for m in ("train", "infer") for n in (1, 2)
    }
    if importlib.util.find_spec("torch"):
        # same weights and inputs: rnnkit (NumPy) and PyTorch agree to float32 rounding
        assert all(r["max_rel_error"] < 1e-5 for r in results), [
            r["max_rel_error"] for r in results
        ]
    assert "| gru | train | 2 | 3 | 4 |" in (tmp_path / "dry.md").read_text()


def test_bench_gpu_without_cupy_says_why_in_one_line():
    if importlib.util.find_spec("cupy"):
        pytest.skip("CuPy is installed here")
    proc = subprocess.run(
        [sys.executable, GPU_SCRIPT, "--quick"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert len(lines) == 1 and "CuPy cannot be imported" in lines[0], lines


def test_ab_dense_prints_both_ways_and_restores_the_layer(capsys):
    """benchmarks/ab_dense.py on a tiny shape: one table row with two times; afterwards
    Dense uses rnnkit's matmul again."""
    import rnnkit.layers.core as core
    from rnnkit.kernels import matmul

    spec = importlib.util.spec_from_file_location(
        "ab_dense", os.path.join(ROOT, "benchmarks", "ab_dense.py")
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.main(["--shapes", "8 4 3", "--repeats", "1"])
    out = capsys.readouterr().out
    row = [line for line in out.splitlines() if line.startswith("| 8 | 4 | 3 |")]
    assert len(row) == 1 and len(row[0].split("|")) == 7, out
    assert core.matmul is matmul
