"""Tomorrow's maximum temperature in Seattle from the last week's weather, with the library
API (the command `rnnkit forecast train` does the same with an average of 5 networks).

Data: Seattle's daily weather 2012-2015 (PyPI vega_datasets==0.9.0, fetched once): each day
is precipitation, temp_max, temp_min, wind, the weather category one-hot and the day of
the year as sin/cos.  Train on target days in 2012-2014 (early stopping on the second half
of 2014), test on the 365 days of 2015.

    python examples/forecast.py [--window 7] [--units 32]
"""

import argparse

import numpy as np

import rnnkit
from rnnkit import GRU, Dense, Sequential, optim
from rnnkit.callbacks import EarlyStopping
from rnnkit.datasets import seattle_weather


def main(argv=None, path=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--window", type=int, default=7, help="days read per forecast")
    p.add_argument("--units", type=int, default=32)
    p.add_argument("--epochs", type=int, default=200)
    args = p.parse_args(argv)
    rnnkit.set_seed(0)
    (x, y), (x_test, y_test) = seattle_weather.load_data(path, window=args.window)
    n_val = min(184, len(x) // 4)  # the last half year of training targets
    x_fit, y_fit, x_val, y_val = x[:-n_val], y[:-n_val], x[-n_val:], y[-n_val:]

    # standardize the four measured columns; predict the change from today's maximum
    mean, std = x_fit.reshape(-1, x.shape[-1]).mean(0), x_fit.reshape(-1, x.shape[-1]).std(0)
    mean[4:], std[4:] = 0.0, 1.0
    norm = lambda a: ((a - mean) / std).astype("float32")  # noqa: E731
    today = lambda a: a[:, -1, 1]  # noqa: E731
    scale = float(np.std(y_fit - today(x_fit)))
    target = lambda a, b: ((b - today(a)) / scale)[:, None].astype("float32")  # noqa: E731

    model = Sequential([GRU(args.units, input_shape=[None, x.shape[-1]]), Dense(1)])
    model.compile(loss="mse", optimizer=optim.Adam(3e-3, clip_global_norm=5.0))
    model.fit(
        norm(x_fit),
        target(x_fit, y_fit),
        epochs=args.epochs,
        batch_size=32,
        validation_data=(norm(x_val), target(x_val, y_val)),
        verbose=0,
        callbacks=[EarlyStopping(patience=20, restore_best_weights=True)],
    )
    forecast = model.predict(norm(x_test))[:, 0] * scale + today(x_test)
    mae = float(np.mean(np.abs(forecast - y_test)))
    persistence = float(np.mean(np.abs(today(x_test) - y_test)))
    print(f"2015, {len(y_test)} days: GRU MAE {mae:.2f} °C; tomorrow = today {persistence:.2f} °C")
    return {"mae": mae, "persistence": persistence}


if __name__ == "__main__":
    main()
