"""Data-parallel training over MPI: the same model code on 1, 2 or 64 processes.

Each of p processes (ranks) holds the same model.  Every global batch of N samples is
cut into p contiguous shards of ⌊N/p⌋ or ⌈N/p⌉ rows; rank r runs forward and BPTT on
its n_r rows, and one allreduce sums what the ranks computed before the optimizer's
clip + update, so every rank makes the same update one process makes on the whole
batch:

    g = (1/N) Σ_r n_r g_r          g_r: the gradient of rank r's own batch mean
    L = (1/N) Σ_r n_r L_r          (rnnkit's losses are means over the batch's samples)

The gradients of a step are packed into one contiguous buffer with three more slots
(n_r L_r, n_r, and rank 0's clock) and summed in place by one ``Allreduce`` (a few large
buckets above ``BUCKET`` elements): no per-tensor messages.  Clipping by global norm
then sees the global gradient ‖g‖, not a rank's share.  Dropout masks do not depend on
the rank: every rank draws the random numbers of the whole global batch from the same
generator and keeps its own rows, so each sample gets the mask it gets in one process.

Use:   model.fit(x, y, batch_size=64, distributed=True)     (every rank passes the
       whole data set; rank r trains on its share of each batch of 64)
       mpiexec -n 4 rnnkit autocomplete --minutes 3           (each rank its own streams)

mpi4py is imported only when a run is launched with more than one process
(``mpiexec -n 2 ...``); without it the single-process ``Communicator`` runs the same
code path, so ``distributed=True`` also works in one plain process.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import socket
import sys
import time
import zlib

import numpy as np

from . import backend

BUCKET = 1 << 24  # elements per Allreduce (128 MiB of float64)
# the variables through which launchers tell a process how many processes were started
SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MV2_COMM_WORLD_SIZE")
INSTALL_HINT = (
    'pip install "rnnkit[mpi]" (mpi4py and an MPICH wheel), or mpi4py built '
    "against the cluster's MPI (see docs/distributed.md)"
)


class DistributedError(ValueError):
    """A data-parallel run that cannot go on: ranks that disagree, or no MPI."""


# -- communicators ------------------------------------------------------------------------------
class Communicator:
    """One process: every collective is the identity.  ``MPICommunicator`` is the real one."""

    rank, size = 0, 1

    def allreduce_(self, buf):
        """Sum ``buf`` (a contiguous NumPy array) over the ranks, in place."""

    def bcast_(self, buf, root=0):
        """Overwrite ``buf`` with root's."""

    def bcast(self, obj, root=0):
        return obj

    def allgather(self, obj):
        return [obj]

    def gather(self, obj, root=0):
        return [obj]

    def barrier(self):
        pass

    def abort(self, code=1):
        sys.exit(code)

    def describe(self):
        return "1 process"


class MPICommunicator(Communicator):
    """mpi4py's COMM_WORLD (or a given communicator)."""

    def __init__(self, comm=None):
        from mpi4py import MPI

        self.MPI = MPI
        self.comm = comm if comm is not None else MPI.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()

    def allreduce_(self, buf):
        flat = buf.reshape(-1)
        for start in range(0, flat.size, BUCKET):
            self.comm.Allreduce(self.MPI.IN_PLACE, flat[start : start + BUCKET], op=self.MPI.SUM)

    def bcast_(self, buf, root=0):
        flat = buf.reshape(-1)
        for start in range(0, flat.size, BUCKET):
            self.comm.Bcast(flat[start : start + BUCKET], root=root)

    def bcast(self, obj, root=0):
        return self.comm.bcast(obj, root=root)

    def allgather(self, obj):
        return self.comm.allgather(obj)

    def gather(self, obj, root=0):
        return self.comm.gather(obj, root=root)

    def barrier(self):
        self.comm.Barrier()

    def abort(self, code=1):
        sys.stdout.flush()
        sys.stderr.flush()
        self.comm.Abort(code)

    def describe(self):
        who = self.allgather((os.getpid(), socket.gethostname()))
        ranks = ", ".join(f"rank {r}: pid {pid} on {host}" for r, (pid, host) in enumerate(who))
        return f"{self.size} MPI processes ({ranks})"


def launched_size(environ=None) -> int:
    """How many processes the launcher (mpiexec, srun) started, from its environment; 1
    when the process was not started by one."""
    environ = os.environ if environ is None else environ
    for name in SIZE_VARIABLES:
        value = environ.get(name)
        if value:
            try:
                return max(1, int(value))
            except ValueError:
                raise DistributedError(
                    f"the launcher set {name}={value!r}, which is not a number of processes"
                ) from None
    return 1


_WORLD = None


def world() -> Communicator:
    """The communicator of this run: MPI's COMM_WORLD when launched as several processes
    (mpi4py imported then, and only then), else the single-process Communicator."""
    global _WORLD
    if _WORLD is not None:
        return _WORLD
    n = launched_size()
    if n <= 1:
        _WORLD = Communicator()
        return _WORLD
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        raise DistributedError(
            f"this process was started as one of {n} (by mpiexec or srun), "
            f"but mpi4py is not installed, so the {n} processes cannot "
            f"work together; {INSTALL_HINT}"
        ) from None
    comm = MPICommunicator()
    if comm.size != n:
        raise DistributedError(
            f"the launcher started {n} processes, but MPI sees {comm.size}: "
            f"mpi4py was built against another MPI than the mpiexec used "
            f"(run the mpiexec of that MPI; see docs/distributed.md)"
        )
    _WORLD = comm
    _install_excepthook(comm)
    return comm


def rank() -> int:
    return world().rank


def size() -> int:
    return world().size


def is_root() -> bool:
    return world().rank == 0


def _install_excepthook(comm):
    """An exception nobody catches on one rank stops every rank (MPI_Abort), instead of
    leaving the others waiting forever in the next allreduce."""
    previous = sys.excepthook

    def hook(tp, value, tb):
        previous(tp, value, tb)
        stop_job(1, f"{tp.__name__}")

    sys.excepthook = hook


def stop_job(code=1, why="", comm=None):
    """On a rank of a multi-process run that cannot go on: say which rank failed, then
    stop all ranks (MPI_Abort; mpiexec ends the job).  Without MPI: nothing."""
    comm = comm if comm is not None else _WORLD
    if comm is None or comm.size <= 1:
        return
    reason = f" ({why})" if why else ""
    print(
        f"rnnkit: rank {comm.rank} of {comm.size} failed{reason}; stopping all {comm.size} ranks",
        file=sys.stderr,
    )
    comm.abort(code or 1)


# -- consistency checks ---------------------------------------------------------------------------
def fingerprint(*arrays) -> str:
    """A short checksum of arrays' shapes, dtypes and bytes (to compare ranks' data)."""
    crc = 0
    for a in arrays:
        if a is None:
            crc = zlib.crc32(b"None", crc)
            continue
        if isinstance(a, (list, tuple)):
            crc = zlib.crc32(fingerprint(*a).encode(), crc)
            continue
        a = np.ascontiguousarray(backend.to_numpy(a))
        crc = zlib.crc32(f"{a.shape}{a.dtype.str}".encode(), crc)
        crc = zlib.crc32(a.view(np.uint8).reshape(-1).data, crc)
    return f"{crc:08x}"


def check_same(comm, what: dict, who="distributed"):
    """Every rank passes its ``what``; all must be equal.  Otherwise every rank raises the
    same DistributedError naming the first entry that differs and the ranks' values."""
    every = comm.allgather(what)
    for key in what:
        values = [w.get(key) for w in every]
        if any(v != values[0] for v in values[1:]):
            shown = "; ".join(f"rank {r}: {v}" for r, v in enumerate(values))
            raise DistributedError(
                f"{who}: the ranks disagree on {key} ({shown}); every rank "
                f"must run the same model on the same data"
            )
    keys = [sorted(w) for w in every]
    if any(k != keys[0] for k in keys[1:]):
        raise DistributedError(f"{who}: the ranks checked different things: {keys}")


# -- data-parallel training -----------------------------------------------------------------------------
class _ShardedGenerator:
    """A layer's generator whose per-sample draws are those of the whole global batch:
    ``random((n_r, ...))`` draws ``(N, ...)`` and returns this rank's rows, so every rank's
    generator advances alike and every sample gets the numbers it gets in one process.
    A draw of k rows per sample (TimeDistributed's N·T rows) is cut the same way."""

    def __init__(self, gen, dp):
        self._gen = gen
        self._dp = dp

    def random(self, size=None, dtype=np.float64, out=None):
        rows = self._dp.rows
        if rows is not None and size is not None and out is None:
            shape = (size,) if isinstance(size, (int, np.integer)) else tuple(size)
            lo, hi, n = rows
            mine = hi - lo
            if shape and mine and shape[0] % mine == 0 and mine != n:
                k = shape[0] // mine
                full = self._gen.random((n * k,) + shape[1:], dtype=dtype)
                return full[lo * k : hi * k]
        return self._gen.random(size, dtype=dtype, out=out)

    def __getattr__(self, name):
        return getattr(self._gen, name)


class DataParallel:
    """The engine: attach it to a model (``model._data_parallel``) and the training loops
    (rnnkit.training's train_step and tbptt_steps) sum gradients and losses over the ranks
    between BPTT and the optimizer.  ``rows`` (lo, hi, N): this rank's rows of the
    current global batch."""

    def __init__(self, comm=None):
        self.comm = comm if comm is not None else world()
        self.rank, self.size = self.comm.rank, self.comm.size
        self.rows = None
        self.model = None
        self._t0 = time.perf_counter()
        self._elapsed = 0.0
        self._buf = None
        self.allreduce_seconds = 0.0  # time spent in the gradient allreduce (telemetry)
        self.allreduce_calls = 0

    @property
    def is_root(self):
        return self.rank == 0

    # -- sharding ----------------------------------------------------------------------------
    def bounds(self, n):
        """(lo, hi): this rank's contiguous rows of a global batch of n."""
        return self.rank * n // self.size, (self.rank + 1) * n // self.size

    def shard(self, idx):
        """This rank's share of a global batch's sample indices (a slice or an index array)."""
        if isinstance(idx, slice):
            idx = np.arange(idx.start or 0, idx.stop)
        n = len(idx)
        lo, hi = self.bounds(n)
        if hi == lo:
            raise DistributedError(
                f"a global batch of {n} samples cannot be shared by "
                f"{self.size} ranks (rank {self.rank} would get none)"
            )
        self.rows = (lo, hi, n)
        return idx[lo:hi]

    def shard_streams(self, model, *arrays):
        """This rank's rows of (B, L) stream arrays (autocomplete's parallel text streams),
        and of the stateful layers' carried states when they hold all B rows."""
        B = int(arrays[0].shape[0])
        lo, hi = self.bounds(B)
        if hi == lo:
            raise DistributedError(
                f"{B} streams cannot be shared by {self.size} ranks; use "
                f"at least {self.size} streams (--batch)"
            )
        self.rows = (lo, hi, B)
        self._t0, self._elapsed = time.perf_counter(), 0.0  # clock() counts from here
        for layer in model.walk():
            states = getattr(layer, "states", None) if getattr(layer, "stateful", False) else None
            if states is not None and all(s.shape[0] == B for s in states):
                layer.states = [s[lo:hi].copy() for s in states]
        return tuple(a[lo:hi] for a in arrays)

    # -- attach / start ------------------------------------------------------------------------
    def attach(self, model):
        """Route ``model``'s training steps through this engine and make its generators'
        per-sample draws rank-independent.  ``detach`` undoes it."""
        self.model = model
        model._data_parallel = self
        for layer in model.walk():
            noise = getattr(layer, "noise_shape", None)
            fixed_batch = noise is not None and len(noise) and noise[0] is not None
            if not fixed_batch and not isinstance(layer.rng, _ShardedGenerator):
                layer.rng = _ShardedGenerator(layer.rng, self)
        return self

    def detach(self):
        model, self.model = self.model, None
        if model is None:
            return
        if getattr(model, "_data_parallel", None) is self:
            del model._data_parallel
        for layer in model.walk():
            if isinstance(layer.rng, _ShardedGenerator):
                layer.rng = layer.rng._gen
        self.rows = None

    def start(self, model, check=None, who="distributed"):
        """Check that every rank has the same model (and ``check``: {name: value} that must
        agree), then give every rank rank 0's parameters, optimizer state and generator
        states.  Errors are raised on every rank alike."""
        params = model.params
        what = {
            "the parameters": sorted((k, tuple(v.shape), str(v.dtype)) for k, v in params.items()),
            "the optimizer": type(model.optimizer).__name__ if model.optimizer else None,
        }
        what.update(check or {})
        check_same(self.comm, what, who)
        if self.size == 1:
            return
        keys = list(params)
        flat = self._pack([params[k] for k in keys])
        self.comm.bcast_(flat)
        self._unpack(flat, keys, params)
        opt = model.optimizer
        if opt is not None:
            state = opt.state_arrays() if self.is_root else None
            layout = self.comm.bcast(
                None
                if state is None
                else [(k, a.shape, a.dtype.str) for k, a in state.items()]
                + [("__iterations__", opt.iterations)]
            )
            iterations = layout.pop()[1]
            arrays = {
                k: (state[k] if self.is_root else np.empty(s, np.dtype(d))) for k, s, d in layout
            }
            for a in arrays.values():
                self.comm.bcast_(a)
            opt.load_state_arrays(arrays, iterations)
        rng = self.comm.bcast({l.name: l.rng.bit_generator.state for l in model.walk()})
        for layer in model.walk():
            layer.rng.bit_generator.state = rng[layer.name]

    # -- the step ------------------------------------------------------------------------------------
    def _pack(self, arrays, extra=0):
        arrays = [backend.to_numpy(a) for a in arrays]
        dtype = np.result_type(*arrays) if arrays else np.float64
        total = sum(a.size for a in arrays)
        buf = self._buf
        if buf is None or buf.size != total + extra or buf.dtype != dtype:
            buf = self._buf = np.empty(total + extra, dtype)
        if arrays:
            np.concatenate([a.reshape(-1) for a in arrays], out=buf[:total])
        return buf

    @staticmethod
    def _unpack(flat, keys, into):
        off = 0
        for k in keys:
            target = into[k]
            piece = flat[off : off + target.size].reshape(target.shape)
            if isinstance(target, np.ndarray):
                target[...] = piece
            else:
                target[...] = backend.asarray(piece, dtype=target.dtype)
            off += target.size

    def backward_and_apply(self, model, value, dy, n, apply=True):
        """BPTT of this rank's rows, one allreduce of gradients, loss and sample count, then
        the optimizer's clip + update with the global gradient.  Returns the step record
        with the global loss.  A rank whose loss is not finite sends NaN, so every rank
        sees the same non-finite global loss and skips the update alike."""
        finite = math.isfinite(value)
        if finite:
            model.backward(dy)
        params = model.trainable_params()
        grads = model.trainable_grads() if finite else params  # (NaN is sent instead)
        keys = list(params)
        buf = self._pack([grads[k] for k in keys], extra=3)
        total = buf.size - 3
        if finite:
            buf[:total] *= n
            buf[total] = value * n
        else:
            buf[: total + 1] = np.nan
        buf[total + 1] = n
        buf[total + 2] = time.perf_counter() - self._t0 if self.is_root else 0.0
        t = time.perf_counter()
        self.comm.allreduce_(buf)
        self.allreduce_seconds += time.perf_counter() - t
        self.allreduce_calls += 1
        N = float(buf[total + 1])
        self._elapsed = float(buf[total + 2])
        loss = float(buf[total]) / N
        record = {"loss": loss}
        if not math.isfinite(loss):
            return record
        g = buf[:total]
        g /= N
        if apply:
            summed, off = {}, 0
            for k in keys:
                p = params[k]
                summed[k] = backend.asarray(g[off : off + p.size].reshape(p.shape), dtype=p.dtype)
                off += p.size
            record.update(model.optimizer.apply(params, summed))
        else:
            self._unpack(g, keys, grads)
        return record

    def clock(self):
        """Rank 0's ``time.perf_counter()`` as of the last step, the same on every rank: loops
        that stop after a wall-clock budget stop at the same step on all ranks."""
        if self.size == 1:
            return time.perf_counter()
        return self._t0 + self._elapsed

    def reduce_accumulator(self, acc):
        """Sum an epoch accumulator's loss and metric sums over the ranks (rnnkit.training)."""
        names = list(acc.sums)
        buf = np.array(
            [acc.loss_sum, acc.count] + [v for k in names for v in acc.sums[k]], dtype=np.float64
        )
        self.comm.allreduce_(buf)
        acc.loss_sum, acc.count = float(buf[0]), int(buf[1])
        for i, k in enumerate(names):
            acc.sums[k] = [float(buf[2 + 2 * i]), float(buf[3 + 2 * i])]

    # -- files and output ------------------------------------------------------------------------------
    def root_first(self, fn, *args, **kwargs):
        """``fn`` on rank 0 first (e.g. a download into the shared cache), then on the others."""
        if self.is_root:
            try:
                result = fn(*args, **kwargs)
            except BaseException:
                self.comm.bcast(False)
                raise
            self.comm.bcast(True)
            return result
        if not self.comm.bcast(None):
            raise DistributedError(f"rank 0 failed (see its message); rank {self.rank} stops too")
        return fn(*args, **kwargs)

    def root_checkpoint(self, model, save):
        """A checkpoint function for a training loop: every rank sends its rows of the carried
        states to rank 0, which writes the file with the whole batch's states (so it resumes
        with any number of ranks, or in one process).  Called while handling Ctrl-C, when
        the ranks are not in step, rank 0 writes without the carried states instead."""

        def checkpoint(*args, **kwargs):
            layers = [
                l
                for l in model.walk()
                if getattr(l, "stateful", False) and getattr(l, "states", None) is not None
            ]
            if isinstance(sys.exc_info()[1], KeyboardInterrupt):
                if self.is_root:
                    saved = [(l, l.states) for l in layers]
                    for l in layers:
                        l.states = None
                    try:
                        save(*args, **kwargs)
                    finally:
                        for l, s in saved:
                            l.states = s
                return
            gathered = self.comm.gather([[backend.to_numpy(s) for s in l.states] for l in layers])
            if not self.is_root:
                return
            saved = [(l, l.states) for l in layers]
            try:
                for i, l in enumerate(layers):
                    l.states = [
                        backend.asarray(np.concatenate([g[i][j] for g in gathered]))
                        for j in range(len(l.states))
                    ]
                save(*args, **kwargs)
            finally:
                for l, s in saved:
                    l.states = s

        return checkpoint

    @contextlib.contextmanager
    def quiet_unless_root(self):
        """Standard output of the ranks other than 0 goes nowhere."""
        if self.is_root:
            yield
            return
        with contextlib.redirect_stdout(io.StringIO()) as sink:
            yield
            sink.truncate(0)

    # -- the rnnkit command --------------------------------------------------------------------------
    def output(self, out):
        """Where a rank writes its messages: ``out`` on rank 0, nowhere elsewhere."""
        return out if self.is_root else _Nowhere()

    def begin_command(self, model, checkpoint, out, check):
        """Before a command's training loop: the same model, settings and data on every rank
        (``check``), rank 0's parameters everywhere, the model attached, one line saying who
        works; returns ``checkpoint`` made collective (rank 0 writes the file)."""
        self.start(model, check, who="rnnkit")
        self.attach(model)
        described = self.comm.describe()
        print(
            f"Data-parallel: {described}; each rank trains on its share of the streams, "
            f"rank 0 saves.",
            file=out,
        )
        return self.root_checkpoint(model, checkpoint)


class _Nowhere(io.TextIOBase):
    def write(self, s):
        return len(s)

    def isatty(self):
        return False


# -- model.fit(..., distributed=True) --------------------------------------------------------------------
ROOT_ONLY_CALLBACKS = ("ModelCheckpoint", "CSVLogger")


def callbacks_for_rank(callbacks, is_root):
    """The callbacks a rank runs: all on rank 0; elsewhere those that steer training
    (early stopping, learning-rate changes, NaN checks), not those that write files
    (ModelCheckpoint, CSVLogger, or any with ``root_only = True``)."""
    if is_root:
        return list(callbacks or [])
    return [
        c
        for c in (callbacks or [])
        if not getattr(c, "root_only", False) and type(c).__name__ not in ROOT_ONLY_CALLBACKS
    ]


def fit(
    model,
    x,
    y,
    batch_size=32,
    epochs=1,
    verbose=1,
    callbacks=None,
    validation_split=0.0,
    validation_data=None,
    shuffle=True,
    initial_epoch=0,
    tbptt=None,
    sample_weight=None,
    comm=None,
):
    """``model.fit`` data-parallel: every rank passes the whole data set and the global
    ``batch_size``; rank r trains on rows [r·N/p, (r+1)·N/p) of each batch.  The result
    equals one process's fit to float rounding.  Rank 0 alone prints and runs the
    callbacks that write files.  A rank that fails stops every rank."""
    from . import training
    from .training import _as_arrays, num_samples, take

    if not isinstance(comm, Communicator):  # True, or an mpi4py communicator
        comm = MPICommunicator(comm) if hasattr(comm, "Get_rank") else world()
    dp = DataParallel(comm)
    x, y = _as_arrays(x), _as_arrays(y)
    n = num_samples(x, "x")
    n_train = n - (
        int(round(n * validation_split)) if validation_data is None and validation_split else 0
    )
    if (
        isinstance(batch_size, (int, np.integer))
        and not isinstance(batch_size, bool)
        and batch_size >= 1
        and n_train >= 1
    ):
        smallest = min(batch_size, n_train % batch_size or batch_size)
        if smallest < comm.size:
            raise DistributedError(
                f"fit(distributed=True): a batch of {smallest} samples (batch_size={batch_size}, "
                f"{n_train} training samples) cannot be shared by {comm.size} ranks; every "
                f"batch needs at least one sample per rank"
            )
    if not model.built:  # build the weights (rank 0's are sent to all)
        states = [(l, l.states) for l in model.walk() if hasattr(l, "states")]
        model.forward(take(x, slice(0, 1)), training=False)
        for l, s in states:
            l.states = s
    check = {
        "the data (x, y, sample_weight)": fingerprint(x, y, sample_weight),
        "the validation data": fingerprint(*(validation_data or ())),
        "the fit arguments": (
            batch_size,
            epochs,
            validation_split,
            shuffle,
            initial_epoch,
            str(tbptt),
        ),
    }
    dp.start(model, check, who="fit(distributed=True)")
    dp.attach(model)
    try:
        with dp.quiet_unless_root():
            return training.fit(
                model,
                x,
                y,
                batch_size=batch_size,
                epochs=epochs,
                verbose=verbose if dp.is_root else 0,
                callbacks=callbacks_for_rank(callbacks, dp.is_root),
                validation_split=validation_split,
                validation_data=validation_data,
                shuffle=shuffle,
                initial_epoch=initial_epoch,
                tbptt=tbptt,
                sample_weight=sample_weight,
            )
    except BaseException as e:
        if comm.size > 1:  # the other ranks wait in the next allreduce: stop them
            import traceback

            traceback.print_exc()
            stop_job(1, f"{type(e).__name__}: {e}", comm)
        raise
    finally:
        dp.detach()


# -- the rnnkit command -------------------------------------------------------------------------------
def for_command():
    """The DataParallel of a command launched as several processes (mpiexec -n p rnnkit
    ...), or None in one process."""
    if launched_size() <= 1:
        return None
    comm = world()
    return DataParallel(comm) if comm.size > 1 else None


__all__ = [
    "Communicator",
    "MPICommunicator",
    "DataParallel",
    "DistributedError",
    "world",
    "rank",
    "size",
    "is_root",
    "launched_size",
    "fit",
    "stop_job",
    "check_same",
    "fingerprint",
    "callbacks_for_rank",
    "for_command",
]
