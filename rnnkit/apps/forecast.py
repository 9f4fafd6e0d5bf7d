"""Tomorrow's maximum temperature in Seattle from the last days' weather (sequence -> vector).

    window of W days x 11 features -> GRU(32) -> Dense(1)        (W = 7 by default)

Data: Seattle's daily weather 2012-2015 from vega_datasets 0.9.0
(``rnnkit.datasets.seattle_weather``): precipitation, temp_max, temp_min, wind, the weather
category one-hot and the day of the year as sin/cos.  Train on target days in 2012-2014,
test on the 365 target days of 2015.  The numeric inputs are standardized with the
statistics of the training windows; the network predicts the change from today's maximum
(standardized).  Early stopping on a validation tail: the windows whose target day is in the
second half of 2014 (the best epoch's weights are kept).  The default model is the average
of 5 such networks trained from different seeds (members); 2015 is never looked at in
training or in choosing any setting.  Baselines on the same test days: persistence
(tomorrow = today) and least squares on the same inputs.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from .. import optim
from ..callbacks import Callback, EarlyStopping
from ..datasets import seattle_weather as sw
from ..layers import GRU, LSTM, Dense
from ..models import Sequential
from ..progress import ProgressBar
from ..seeding import set_seed
from .task import App, AppInputError, add_batch_and_learning_rate, positive_int

CELLS = {"gru": GRU, "lstm": LSTM}
VAL_WINDOWS = 184  # the validation tail: 2014-07-01 .. 2014-12-31 on the real data
TARGET = sw.FEATURES.index("temp_max")
N_NUMERIC = len(sw.NUMERIC)  # only these are standardized (one-hot and sin/cos are left)


# -- data ---------------------------------------------------------------------------------------
def _split(table, window):
    x, y, dates = sw.windows(table, window)
    test = sw.split_mask(dates)
    if not test.any() or test.all():
        raise AppInputError(
            f"the weather data need target days both before {sw.TEST_YEAR} "
            f"(training) and in {sw.TEST_YEAR} (test); got {dates[0]} .. "
            f"{dates[-1]}"
        )
    return x, y, np.array(dates), test


def _validation(n_train):
    """The last VAL_WINDOWS training windows (a quarter if there are fewer than 4x that)."""
    n_val = VAL_WINDOWS if n_train >= 4 * VAL_WINDOWS else max(1, n_train // 4)
    val = np.zeros(n_train, bool)
    val[n_train - n_val :] = True
    return val


def _stats(x):
    flat = x.reshape(-1, x.shape[-1])
    mu, sd = flat.mean(0), flat.std(0)
    mu[N_NUMERIC:], sd[N_NUMERIC:] = 0.0, 1.0
    sd[sd == 0] = 1.0
    return mu, sd


def _norm(x, meta):
    return ((x - np.array(meta["mean"])) / np.array(meta["std"])).astype(np.float32)


def _forecast(model, meta, x):
    """The members' average forecast in °C for windows ``x`` (raw units)."""
    xn = _norm(x, meta)
    preds = []
    saved = {k: v.copy() for k, v in model.params.items()}
    try:
        for member in [None] + list(meta.get("members", [])):
            if member is not None:
                for v, w in zip(model.params.values(), member, strict=True):
                    v[...] = np.asarray(w, dtype=v.dtype).reshape(v.shape)
            preds.append(np.asarray(model.predict(xn, batch_size=256))[:, 0])
    finally:
        for k, v in model.params.items():
            v[...] = saved[k]
    p = np.stack(preds)
    return p.mean(0) * meta["target_std"] + x[:, -1, TARGET], p * meta["target_std"] + x[
        :, -1, TARGET
    ]


# -- train --------------------------------------------------------------------------------------
def configure_train(p):
    g = p.add_argument_group("model")
    g.add_argument(
        "--window", type=positive_int, default=7, help="days read before each forecast (default: 7)"
    )
    g.add_argument(
        "--cell", choices=sorted(CELLS), default="gru", help="recurrent cell (default: gru)"
    )
    g.add_argument("--units", type=positive_int, default=32, help="recurrent units (default: 32)")
    g.add_argument(
        "--members",
        type=positive_int,
        default=5,
        help="networks from different seeds whose forecasts are averaged (default: 5)",
    )
    g = p.add_argument_group("training")
    g.add_argument(
        "--epochs",
        type=positive_int,
        default=200,
        help="at most this many epochs per member (default: 200)",
    )
    g.add_argument(
        "--patience",
        type=positive_int,
        default=20,
        help="stop a member after this many epochs without a better validation loss (default: 20)",
    )
    add_batch_and_learning_rate(g, batch=32, learning_rate=3e-3)


class _Progress(Callback):
    """One bar over all members' epochs; also enforces the time budget."""

    def __init__(self, bar, epochs, member, deadline):
        self.bar, self.epochs, self.member, self.deadline = bar, epochs, member, deadline
        self.out_of_time = False

    def on_epoch_end(self, epoch, logs=None):  # epochs are short: checked once each
        if time.perf_counter() > self.deadline:
            self.out_of_time = True
            self.model.stop_training = True
        if self.bar:
            self.bar.update(
                self.member * self.epochs + epoch + 1,
                {
                    "member": self.member + 1,
                    "loss": logs.get("loss", 0.0),
                    "val_mae_C": logs.get("val_mae_C", 0.0),
                },
            )


def train(args):
    if not args.learning_rate > 0:
        raise AppInputError(f"--learning-rate must be positive; got {args.learning_rate}")
    table = sw.load_table(args.data, quiet=args.quiet)
    x, y, dates, test = _split(table, args.window)
    x, y, dates = x[~test], y[~test], dates[~test]
    val = _validation(len(x))
    if val.all() or (~val).sum() < 2:
        raise AppInputError(
            f"too few training days: {len(x)} window(s) of {args.window} days before {sw.TEST_YEAR}"
        )
    mu, sd = _stats(x[~val])
    base = x[:, -1, TARGET]
    target_std = float(np.std((y - base)[~val])) or 1.0
    meta = {
        "window": args.window,
        "cell": args.cell,
        "units": args.units,
        "features": list(sw.FEATURES),
        "mean": mu.tolist(),
        "std": sd.tolist(),
        "target_std": target_std,
    }
    xn = _norm(x, meta)
    t = ((y - base) / target_std)[:, None].astype(np.float32)
    deadline = time.perf_counter() + args.minutes * 60
    bar = None if args.quiet else ProgressBar(args.members * args.epochs, unit="epochs")
    first, members, log = None, [], []
    for k in range(args.members):
        set_seed(args.seed + k)
        model = Sequential(
            [CELLS[args.cell](args.units, input_shape=[None, len(sw.FEATURES)]), Dense(1)]
        )
        model.compile(loss="mse", optimizer=optim.Adam(args.learning_rate, clip_global_norm=5.0))
        progress = _Progress(bar, args.epochs, k, deadline)
        stop = EarlyStopping(patience=args.patience, restore_best_weights=True)
        history = model.fit(
            xn[~val],
            t[~val],
            validation_data=(xn[val], t[val]),
            epochs=args.epochs,
            batch_size=args.batch,
            verbose=0,
            callbacks=[_MAE(target_std, xn[val], t[val]), stop, progress],
        )
        val_mae = history.history["val_mae_C"]
        log.append(
            {
                "member": k + 1,
                "seed": args.seed + k,
                "epochs": len(val_mae),
                "best_epoch": int(np.argmin(history.history["val_loss"])) + 1,
                "val_mae_C": round(float(min(val_mae)), 4) if val_mae else None,
            }
        )
        if first is None:
            first = model
        else:
            members.append([v.ravel().tolist() for v in model.params.values()])
        if progress.out_of_time:
            if not args.quiet:
                print(
                    f"\ntime budget of {args.minutes:g} min reached after {k + 1} member(s)",
                    file=sys.stderr,
                )
            break
    if bar:
        bar.finish(bar.total, {"members": len(log)})
    meta.update(
        members=members,
        training=log,
        train_windows=int((~val).sum()),
        validation_windows=int(val.sum()),
        validation_from=str(dates[val][0]),
    )
    val_pred, _ = _forecast(first, meta, x[val])
    meta["val_mae_C"] = round(float(np.mean(np.abs(val_pred - y[val]))), 4)
    return first, meta


class _MAE(Callback):
    """Adds val_mae_C (the validation MAE in °C) to each epoch's logs."""

    def __init__(self, target_std, vx, vy):
        self.target_std, self.vx, self.vy = target_std, vx, vy

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and "val_loss" in logs:
            p = np.asarray(self.model.predict(self.vx, batch_size=256))
            logs["val_mae_C"] = float(np.mean(np.abs(p - self.vy))) * self.target_std


# -- evaluate -----------------------------------------------------------------------------------
def _least_squares(x_train, y_train, x_test):
    a = np.c_[x_train.reshape(len(x_train), -1), np.ones(len(x_train))]
    b = np.c_[x_test.reshape(len(x_test), -1), np.ones(len(x_test))]
    w = np.linalg.lstsq(a, y_train, rcond=None)[0]
    return b @ w


def _metrics(pred, y):
    e = pred - y
    return {
        "mae_C": round(float(np.mean(np.abs(e))), 4),
        "rmse_C": round(float(np.sqrt(np.mean(e * e))), 4),
    }


def evaluate(model, metadata, args):
    table = sw.load_table(args.data)
    window = metadata["window"]
    x, y, dates, test = _split(table, window)
    pred, each = _forecast(model, metadata, x[test])
    persistence = x[test, -1, TARGET]
    linear = _least_squares(x[~test], y[~test], x[test])
    # the linear model's window chosen on the validation tail, then refitted on all training
    xtr, ytr = x[~test], y[~test]
    val = _validation(len(xtr))
    choices = {}
    for w in (1, 2, 3, 5, 7, 14):
        if w > window:
            continue
        p = _least_squares(xtr[~val][:, -w:], ytr[~val], xtr[val][:, -w:])
        choices[w] = float(np.mean(np.abs(p - ytr[val])))
    best_w = min(choices, key=choices.get)
    linear_best = _least_squares(xtr[:, -best_w:], ytr, x[test][:, -best_w:])
    result = {
        "task": "tomorrow's maximum temperature in Seattle (°C) from the last days' weather",
        "data": {
            "source": "seattle-weather.csv, vega_datasets==0.9.0",
            "split": f"test = the {int(test.sum())} target days in {sw.TEST_YEAR} "
            f"({dates[test][0]} .. {dates[test][-1]}); train = target days "
            f"before, validation tail from {metadata.get('validation_from')}",
            "window_days": window,
            "train_windows": int((~test).sum()),
            "test_windows": int(test.sum()),
        },
        "model": {
            **_metrics(pred, y[test]),
            "members": len(each),
            "member_mae_C": [round(float(np.mean(np.abs(p - y[test]))), 4) for p in each],
            "architecture": f"{metadata.get('cell', 'gru').upper()}"
            f"({metadata.get('units')}) -> Dense(1), average of "
            f"{len(each)}",
            "validation_mae_C": metadata.get("val_mae_C"),
            "train_seconds": metadata.get("train_seconds"),
        },
        "baselines": {
            "persistence": {**_metrics(persistence, y[test]), "rule": "tomorrow = today"},
            "linear_same_inputs": {
                **_metrics(linear, y[test]),
                "rule": f"least squares on the same {window} days x "
                f"{len(sw.FEATURES)} features (+ bias), fitted on "
                f"all training windows",
            },
            "linear_window_chosen_on_validation": {
                **_metrics(linear_best, y[test]),
                "window_days": best_w,
                "rule": "least squares on the last k days, k chosen on the validation tail",
            },
        },
        "published_reference": {
            "note": "no published result on this exact split; the RNN lecture's example "
            "predicts the same quantity from 2-3 days of temp_max alone",
        },
    }
    plot = getattr(args, "plot", None)
    if plot:
        plot_year(
            dates[test],
            y[test],
            pred,
            persistence,
            plot,
            mae=result["model"]["mae_C"],
            mae_persistence=result["baselines"]["persistence"]["mae_C"],
        )
        result["plot"] = str(plot)
    return result


def plot_year(dates, truth, pred, persistence, path, mae, mae_persistence):
    from ..plotting import pyplot, save

    try:
        plt = pyplot()
    except ImportError as e:
        raise AppInputError(f"--plot {path}: {e}") from None
    import datetime

    days = [datetime.date.fromisoformat(d) for d in dates]
    fig, (ax, bx) = plt.subplots(
        2, 1, figsize=(11, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    ax.plot(days, truth, color="0.2", lw=1.2, label="observed max temperature")
    ax.plot(days, pred, color="tab:red", lw=1.0, label=f"rnnkit forecast (MAE {mae:.2f} °C)")
    ax.set_ylabel("°C")
    ax.set_title(
        f"Seattle {days[0].year}: tomorrow's maximum temperature, forecast vs "
        f"observed (persistence MAE {mae_persistence:.2f} °C)"
    )
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    bx.bar(days, pred - truth, color="tab:red", width=1.0, label="forecast error")
    bx.axhline(0, color="0.3", lw=0.8)
    bx.set_ylabel("error °C")
    bx.grid(alpha=0.3)
    save(fig, path)


def configure_evaluate(p):
    p.add_argument(
        "--plot",
        metavar="PATH",
        help="also draw the forecast against the observed temperatures of "
        f"{sw.TEST_YEAR} into the PNG file PATH",
    )


# -- predict ------------------------------------------------------------------------------------
def _rows_text(inputs):
    if list(inputs) == ["-"]:  # the whole CSV from standard input
        inputs = [sys.stdin.read()]
    lines = []
    for item in inputs:
        lines.extend(part.strip() for part in item.replace(";", "\n").splitlines() if part.strip())
    if not lines:
        raise AppInputError(
            f"expected days of weather as CSV rows ({','.join(sw.COLUMNS)}); got nothing"
        )
    if not lines[0].lower().startswith("date"):
        lines.insert(0, ",".join(sw.COLUMNS))
    elif len(lines) == 1:
        raise AppInputError(
            f"got only a header line ({lines[0][:60]}) and no days; to read a "
            f"whole CSV from standard input, give '-' as the input"
        )
    return "\n".join(lines)


def predict(model, metadata, inputs, args):
    window = metadata["window"]
    table = sw.parse_csv(_rows_text(inputs), origin="the input", error=AppInputError)
    days = len(table["date"])
    if days < window:
        raise AppInputError(
            f"the model reads the last {window} days; got {days} day(s) "
            f"({table['date'][0]} .. {table['date'][-1]}). Give {window} or "
            f"more rows, oldest first: as arguments, in --file FILE, or a "
            f"CSV on standard input with '-'"
        )
    x = sw.features(table)[None, -window:]
    pred, each = _forecast(model, metadata, x)
    import datetime

    last = datetime.date.fromisoformat(table["date"][-1])
    spread = f" (members {each.min():.1f} .. {each.max():.1f})" if len(each) > 1 else ""
    return [
        f"{last + datetime.timedelta(days=1)}: forecast maximum temperature "
        f"{pred[0]:.1f} °C{spread}, from {table['date'][-window]} .. {table['date'][-1]}"
    ]


def configure_predict(p):
    pass


APP = App(
    name="forecast",
    help="tomorrow's maximum temperature in Seattle from the last days' weather (GRU)",
    description=__doc__,
    train=train,
    evaluate=evaluate,
    predict=predict,
    configure_train=configure_train,
    configure_predict=configure_predict,
    configure_evaluate=configure_evaluate,
    input_help="days of weather as CSV rows date,precipitation,temp_max,temp_min,wind,weather "
    "(oldest first; several rows in one argument may be separated by ';'), "
    "or '-' to read such a CSV from standard input; or --file FILE",
    default_minutes=9.0,
)
