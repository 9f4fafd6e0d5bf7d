"""rnnkit.distributed: data-parallel training equals one process's training.

The MPI tests launch ``mpiexec -n 2 python tests/distributed_run.py ...`` (loopback only)
and are skipped, saying why, when mpi4py or mpiexec is not installed
(pip install "rnnkit[mpi]")."""

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rnnkit
from rnnkit import distributed
from rnnkit.distributed import Communicator, DataParallel, DistributedError

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import distributed_run as run  # noqa: E402

# the mpiexec next to this Python (the MPICH wheel's) before any other MPI's on the PATH
MPIEXEC = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which("mpiexec")
HAVE_MPI = importlib.util.find_spec("mpi4py") is not None and MPIEXEC is not None
needs_mpi = pytest.mark.skipif(
    not HAVE_MPI, reason='mpi4py or mpiexec is not installed (pip install "rnnkit[mpi]")'
)


def _env():
    env = dict(os.environ)
    for name in distributed.SIZE_VARIABLES + ("PMI_RANK", "PMI_FD", "OMPI_COMM_WORLD_RANK"):
        env.pop(name, None)  # not inherited from a launcher around pytest
    env.setdefault("UCX_TLS", "self,sm")  # loopback / shared memory only
    env.setdefault("UCX_NET_DEVICES", "lo")
    env["PYTHONPATH"] = os.pathsep.join([str(HERE.parent), env.get("PYTHONPATH", "")])
    return env


def mpiexec(*args, n=2, timeout=90):
    try:
        return subprocess.run(
            [MPIEXEC, "-n", str(n), sys.executable, str(HERE / "distributed_run.py"), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=_env(),
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as e:
        raise AssertionError(
            f"mpiexec -n {n} ... {' '.join(args)} did not end in {timeout} s:\n"
            f"{e.stdout}\n{e.stderr}"
        ) from None


def single_process(distributed_flag):
    m = run.model()
    h = run.fit(m, distributed_flag)
    return m, h


def rel(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


# -- without MPI -----------------------------------------------------------------------------------
def test_distributed_fit_in_one_process_equals_plain_fit():
    plain, hp = single_process(False)
    dist, hd = single_process(True)
    assert len(hp.steps["loss"]) == 2 * 3 * 3  # 2 epochs × 3 batches × 3 chunks
    assert max(hp.steps["grad_norm"]) > 0.5 and any(hp.steps["clipped"])  # clipping fired
    for a, b in zip(dist.params.values(), plain.params.values()):
        assert rel(a, b) <= 1e-12
    assert hd.history["loss"] == pytest.approx(hp.history["loss"], rel=1e-12)
    assert not hasattr(dist, "_data_parallel")  # detached after fit


def test_training_differs_with_another_seed_so_the_comparison_can_fail():
    a, _ = single_process(False)
    b = run.model(seed=1)
    run.fit(b, False)
    assert max(rel(p, q) for p, q in zip(b.params.values(), a.params.values())) > 1e-3


def test_sharded_generator_gives_each_rank_its_rows_of_the_global_draw():
    gen_state = np.random.default_rng(7)
    full = np.random.default_rng(7).random((7, 3))
    parts = []
    for r in range(2):
        comm = Communicator()
        comm.rank, comm.size = r, 2
        dp = DataParallel(comm)
        dp.rows = (dp.bounds(7)[0], dp.bounds(7)[1], 7)
        g = distributed._ShardedGenerator(np.random.default_rng(7), dp)
        parts.append(g.random((dp.rows[1] - dp.rows[0], 3)))
    assert [p.shape[0] for p in parts] == [3, 4]
    np.testing.assert_array_equal(np.concatenate(parts), full)
    assert gen_state.random() == pytest.approx(np.random.default_rng(7).random())


def test_shards_cover_the_batch_once_in_order():
    rows = []
    for r in range(3):
        comm = Communicator()
        comm.rank, comm.size = r, 3
        rows.append(DataParallel(comm).shard(np.arange(10, 20)))
    np.testing.assert_array_equal(np.concatenate(rows), np.arange(10, 20))
    comm = Communicator()
    comm.rank, comm.size = 0, 3  # rows 0:0 of 2
    with pytest.raises(DistributedError, match="global batch of 2 samples cannot be shared by 3"):
        DataParallel(comm).shard(np.arange(2))


class _TwoRanks(Communicator):
    """What rank 0 sees when rank 1 passed ``other``."""

    def __init__(self, other):
        self.other = other

    def allgather(self, obj):
        return [obj, {**obj, **self.other}]


def test_ranks_that_disagree_raise_a_clear_error():
    with pytest.raises(DistributedError, match=r"disagree on the data \(rank 0: a; rank 1: b\)"):
        distributed.check_same(_TwoRanks({"the data": "b"}), {"the data": "a"})
    distributed.check_same(_TwoRanks({}), {"the data": "a"})  # equal: no error


def test_launched_size_reads_the_launchers_variables():
    assert distributed.launched_size({}) == 1
    assert distributed.launched_size({"PMI_SIZE": "4"}) == 4
    assert distributed.launched_size({"OMPI_COMM_WORLD_SIZE": "64"}) == 64
    with pytest.raises(DistributedError, match="PMI_SIZE='x'"):
        distributed.launched_size({"PMI_SIZE": "x"})


def test_a_batch_smaller_than_the_ranks_is_refused_up_front():
    comm = Communicator()
    comm.size = 4
    x, y = run.data()
    with pytest.raises(DistributedError, match="a batch of 3 samples .* cannot be shared by 4"):
        run.model().fit(x[:10], y[:10], batch_size=7, epochs=1, verbose=0, distributed=comm)


def test_missing_mpi4py_under_a_launcher_names_the_fix(monkeypatch):
    monkeypatch.setattr(distributed, "_WORLD", None)
    monkeypatch.setenv("PMI_SIZE", "2")
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # import mpi4py fails
    with pytest.raises(
        DistributedError, match=r"one of 2 .* mpi4py is not installed.*rnnkit\[mpi\]"
    ):
        distributed.world()


# -- two MPI ranks on this machine ---------------------------------------------------------------------------
@needs_mpi
def test_two_ranks_give_the_parameters_of_one_process(tmp_path):
    out = tmp_path / "two.npz"
    r = mpiexec("equal", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    two = np.load(out)
    assert int(two["size"]) == 2
    one, h = single_process(False)
    for i, v in enumerate(one.params.values()):  # 18 updates, dropout, masks, clipping
        assert rel(two[f"p{i}"], v) <= 1e-12, i
    np.testing.assert_allclose(two["grad_norm"], h.steps["grad_norm"], rtol=1e-12)
    np.testing.assert_allclose(two["loss"], h.history["loss"], rtol=1e-12)
    np.testing.assert_allclose(two["accuracy"], h.history["accuracy"], rtol=1e-12)


@needs_mpi
def test_a_failing_rank_stops_every_rank_with_its_name():
    r = mpiexec("fail", timeout=60)
    assert r.returncode != 0
    assert "a deliberate failure on rank 1" in r.stderr
    assert "rank 1 of 2 failed" in r.stderr


@needs_mpi
def test_ranks_with_different_data_all_raise():
    r = mpiexec("mismatch", timeout=60)
    assert r.returncode != 0
    for rank in (0, 1):
        assert (
            f"rank {rank} raised: fit(distributed=True): the ranks disagree on the data" in r.stdout
        ), r.stdout + r.stderr


def _checkpoint(path):
    m = rnnkit.load_model(path)
    states = [s for l in m.walk() if getattr(l, "states", None) is not None for s in l.states]
    return m, states


@needs_mpi
def test_autocomplete_streams_on_two_ranks_resume_on_one_and_three(tmp_path):
    """4 updates on 2 ranks = on 1 process (the checkpoint holds all 5 streams' states);
    3 more from the 2-rank checkpoint in 1 process = from the 1-process one on 3 ranks."""
    d = {k: tmp_path / k for k in ("one", "two", "one_more", "three_more")}
    for p in d.values():
        p.mkdir()
    assert run.main(["", "autocomplete", str(d["one"])]) == 0
    r = mpiexec("autocomplete", str(d["two"]))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Data-parallel: 2 MPI processes (rank 0: pid" in r.stdout
    assert run.main(["", "autocomplete", str(d["one_more"]), str(d["two"] / "ckpt.rnnkit")]) == 0
    r = mpiexec("autocomplete", str(d["three_more"]), str(d["one"] / "ckpt.rnnkit"), n=3)
    assert r.returncode == 0, r.stdout + r.stderr
    for a, b, updates in [("one", "two", 4), ("one_more", "three_more", 7)]:
        (ma, sa), (mb, sb) = _checkpoint(d[a] / "ckpt.rnnkit"), _checkpoint(d[b] / "ckpt.rnnkit")
        assert ma.optimizer.iterations == mb.optimizer.iterations == updates
        assert ma.metadata["position"] == mb.metadata["position"] == 6 * updates
        for p, q in zip(ma.params.values(), mb.params.values()):
            assert p.dtype == np.float64 and rel(p, q) <= 1e-12
        assert [s.shape for s in sb] == [(5, 8), (5, 8)]  # the states of all 5 streams
        for p, q in zip(sa, sb):
            assert rel(p, q) <= 1e-12


@needs_mpi
def test_bench_mpi_quick_runs_and_models_the_ring():
    """benchmarks/bench_mpi.py --quick (1 and 2 ranks, two small allreduces) cannot rot."""
    sys.path.insert(0, str(HERE.parent / "benchmarks"))
    import bench_mpi

    assert bench_mpi.ring(2, 1e6, 1e9, 0.0) == pytest.approx(4e-3)  # 2·(1/2)·4 MB / 1 GB/s
    assert bench_mpi.ring(8, 0, 1e9, 5e-6) == pytest.approx(70e-6)  # 2·7 latencies
    r = subprocess.run(
        [sys.executable, str(HERE.parent / "benchmarks" / "bench_mpi.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(),
        stdin=subprocess.DEVNULL,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "step: 2 rank(s)" in r.stdout and "p = 512" in r.stdout


@needs_mpi
def test_a_killed_rank_ends_the_job_and_the_last_checkpoint_loads(tmp_path):
    """Rank 1 dies (SIGKILL) at its 5th update: mpiexec ends rank 0 too and names a lost
    process id, which rnnkit's start line maps to its rank; checkpoint 4 is intact."""
    r = mpiexec("killed", str(tmp_path), timeout=60)
    assert r.returncode != 0
    out = r.stdout + r.stderr
    pids = dict(re.findall(r"rank (\d): pid (\d+)", out))
    assert set(pids) == {"0", "1"}, out
    # the launcher's own message names a process it lost (MPICH: "PID 123 RUNNING AT
    # host"): usually rank 1, but it reports whichever exit it sees first, and rank 0 is
    # killed by it right after rank 1 died, so either pid may be the one named
    assert any(len(re.findall(rf"\b{pid}\b", out)) >= 2 for pid in pids.values()), out
    m, states = _checkpoint(tmp_path / "ckpt.rnnkit")
    assert m.optimizer.iterations == 4 and m.metadata["position"] == 4 * 6
    assert [s.shape for s in states] == [(5, 8), (5, 8)]


@needs_mpi
def test_callbacks_stop_every_rank_alike_and_rank_0_alone_writes(tmp_path):
    one_dir, two_dir = tmp_path / "one", tmp_path / "two"
    one_dir.mkdir()
    two_dir.mkdir()
    r = mpiexec("callbacks", str(two_dir))
    assert r.returncode == 0, r.stdout + r.stderr
    ranks = {k: (two_dir / f"rank{k}.txt").read_text() for k in "01"}
    assert ranks["0"] == ranks["1"], ranks
    assert r.stdout.count("Epoch 1/30") == 1  # one progress bar: rank 0's
    assert run.main(["", "callbacks", str(one_dir)]) == 0  # the same in one process
    epochs = int(ranks["0"].split()[0])
    assert 1 < epochs < 30  # early stopping fired
    one_log = (one_dir / "log.csv").read_text().splitlines()
    two_log = (two_dir / "log.csv").read_text().splitlines()
    assert len(two_log) == len(one_log) == epochs + 1  # header + one row an epoch
    one = (one_dir / "rank0.txt").read_text().split()
    assert one[0] == str(epochs) and float(one[-1]) == pytest.approx(
        float(ranks["0"].split()[-1]), rel=1e-12
    )
    for a, b in zip(one_log[1:], two_log[1:]):
        np.testing.assert_allclose(
            np.array(b.split(","), float), np.array(a.split(","), float), rtol=1e-12
        )
    assert rnnkit.load_model(two_dir / "best.rnnkit").optimizer.iterations > 0


def test_a_non_finite_loss_is_sent_as_nan_and_no_rank_updates():
    """A rank whose loss is NaN (before any backward pass) sends NaN: the global loss is NaN
    and the update is skipped, on every rank alike."""
    m = run.model()
    x, _ = run.data()
    out = m.forward(x[:3], training=True)
    before = [p.copy() for p in m.params.values()]
    dp = DataParallel(Communicator()).attach(m)
    try:
        record = dp.backward_and_apply(m, float("nan"), np.zeros_like(out), 3)
    finally:
        dp.detach()
    assert set(record) == {"loss"} and np.isnan(record["loss"])
    for p, q in zip(m.params.values(), before):
        np.testing.assert_array_equal(p, q)
    assert m.optimizer.iterations == 0
