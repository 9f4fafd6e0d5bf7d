"""The programs tests/test_distributed.py runs under ``mpiexec -n 2`` (and in one process).

python tests/distributed_run.py equal OUT.npz      fit(distributed=True); rank 0 writes
                                                   the parameters and the history to OUT
python tests/distributed_run.py fail               rank 1 raises during its third update
python tests/distributed_run.py mismatch           rank 1 has other data than rank 0
python tests/distributed_run.py autocomplete DIR [FILE]   autocomplete's streams: 4 updates
                                                   with a checkpoint after each (DIR/ckpt),
                                                   or 3 more from FILE; the last checkpoint is DIR/ckpt.rnnkit
python tests/distributed_run.py callbacks DIR       validation, early stopping, a checkpoint
                                                   and a CSV log in DIR; each rank writes
                                                   its epochs and last val_loss to DIR/rankR.txt
python tests/distributed_run.py killed DIR          as autocomplete, but rank 1 is killed
                                                   (SIGKILL) at its 5th update
"""

import sys

import numpy as np

import rnnkit
from rnnkit import LSTM, Dense, Dropout, Embedding, Sequential, callbacks, optim

N, T, V = 21, 10, 9  # samples, steps, vocabulary (0 is padding)


def data(seed=5):
    """Token sequences with padding at the end (masks), and next-token targets."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(4, T + 1, N)
    x = rng.integers(1, V, (N, T))
    x[np.arange(T)[None, :] >= lengths[:, None]] = 0
    y = np.roll(x, -1, axis=1) % V
    return x, y


def model(seed=0):
    rnnkit.set_seed(seed)
    m = Sequential(
        [
            Embedding(V, 5, mask_zero=True, dtype="float64"),
            LSTM(7, return_sequences=True, dropout=0.2, recurrent_dropout=0.3, dtype="float64"),
            Dropout(0.25, dtype="float64"),
            Dense(V, dtype="float64"),
        ]
    )
    # clip_global_norm small enough to fire on most updates
    m.compile(
        loss="sparse_categorical_crossentropy",
        from_logits=True,
        metrics=["accuracy"],
        optimizer=optim.Adam(0.05, clip_global_norm=0.5),
    )
    return m


def fit(m, distributed, x=None, y=None, cbs=None):
    if x is None:
        x, y = data()
    # batch 7 over 2 ranks: shards of 3 and 4 rows; T = 10 with k1 = 4: 3 updates a batch
    return m.fit(
        x,
        y,
        batch_size=7,
        epochs=2,
        verbose=0,
        tbptt=(4, 6),
        shuffle=True,
        validation_split=0.0,
        callbacks=cbs,
        distributed=distributed,
    )


class FailOnRank1(callbacks.Callback):
    def on_batch_end(self, step, logs=None):
        from rnnkit import distributed

        if distributed.rank() == 1 and step == 2:
            raise RuntimeError("a deliberate failure on rank 1")


def autocomplete(outdir, resume_from=None, kill_at=None):
    before = rnnkit.backend.floatx()
    rnnkit.set_floatx("float64")  # to compare to float64 rounding
    try:
        _autocomplete(outdir, resume_from, kill_at)
    finally:
        rnnkit.set_floatx(before)


def _autocomplete(outdir, resume_from, kill_at):
    from pathlib import Path

    from rnnkit import distributed
    from rnnkit.apps import autocomplete as app
    from rnnkit.data.text import CharVocab

    rng = np.random.default_rng(0)
    text = "".join(rng.choice(list("abcde fgh\n"), 3000))
    vocab = CharVocab.from_text(text)
    s = app.Settings(hidden=8, embed=4, batch=5, bptt=6, seed=3)
    train_ids, _ = app.split(vocab.encode(text), s.val_fraction)
    position = 0
    if resume_from:
        m, vocab, s, meta = app.load(resume_from)
        position = meta["position"]
    else:
        m = app.build_model(len(vocab), s)
    dp = distributed.DataParallel() if distributed.launched_size() > 1 else None
    out = Path(outdir)

    def save(pos, secs):
        app.save(m, out / "ckpt.rnnkit", vocab, s, pos, secs, complete=False)

    checkpoint = (
        save
        if dp is None
        else dp.begin_command(
            m, save, dp.output(sys.stdout), {"the text": distributed.fingerprint(train_ids)}
        )
    )
    if kill_at:  # rank 1 dies (SIGKILL) at update kill_at
        collective, calls = checkpoint, []

        def checkpoint(pos, secs):
            calls.append(pos)
            if dp.rank == 1 and len(calls) == kill_at:
                import os
                import signal

                os.kill(os.getpid(), signal.SIGKILL)
            collective(pos, secs)

    app.train(
        m,
        train_ids,
        s,
        minutes=10,
        position=position,
        verbose=False,
        on_checkpoint=checkpoint,
        checkpoint_every=-1.0,  # after every update
        max_updates=1000 if kill_at else 3 if resume_from else 4,
        distributed=dp,
    )


def main(argv):
    mode = argv[1]
    from rnnkit import distributed

    if mode == "equal":
        m = model()
        h = fit(m, True)
        if distributed.is_root():
            arrays = {f"p{i}": np.asarray(v) for i, v in enumerate(m.params.values())}
            arrays["loss"] = np.asarray(h.history["loss"])
            arrays["accuracy"] = np.asarray(h.history["accuracy"])
            arrays["step_loss"] = np.asarray(h.steps["loss"])
            arrays["grad_norm"] = np.asarray(h.steps["grad_norm"])
            arrays["size"] = np.asarray(distributed.size())
            np.savez(argv[2], **arrays)
    elif mode == "fail":
        fit(model(), True, cbs=[FailOnRank1()])
    elif mode == "callbacks":
        from pathlib import Path

        x, y = data()
        cbs = [
            callbacks.EarlyStopping(monitor="val_loss", patience=1),
            callbacks.ModelCheckpoint(str(Path(argv[2]) / "best.rnnkit"), save_best_only=True),
            callbacks.CSVLogger(str(Path(argv[2]) / "log.csv")),
        ]
        h = model().fit(
            x,
            y,
            batch_size=4,
            epochs=30,
            verbose=1,
            validation_split=0.25,
            callbacks=cbs,
            distributed=True,
        )
        (Path(argv[2]) / f"rank{distributed.rank()}.txt").write_text(
            f"{len(h.epoch)} epochs, val_loss {h.history['val_loss'][-1]!r}"
        )
    elif mode == "killed":
        autocomplete(argv[2], kill_at=5)
    elif mode == "autocomplete":
        autocomplete(argv[2], argv[3] if len(argv) > 3 else None)
    elif mode == "mismatch":
        x, y = data(seed=5 + distributed.rank())
        try:
            fit(model(), True, x, y)
        except distributed.DistributedError as e:
            print(f"rank {distributed.rank()} raised: {e}", flush=True)
            return 3
    return 0


if __name__ == "__main__":
    import faulthandler

    faulthandler.dump_traceback_later(45, exit=True)  # a hang shows where it is, then ends
    sys.exit(main(sys.argv))
