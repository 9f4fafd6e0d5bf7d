"""The lecture's forecasting example on real data: predict tomorrow's maximum
temperature in Seattle from the previous two days, then from the previous three
(Seattle daily weather 2012–2015 from PyPI's vega_datasets==0.9.0, fetched once).

The network is the lecture's one-unit-per-step RNN unrolled over the days, with
a Dense output layer: s_t = tanh(x_t U + s_{t-1} W + b), y = s_T V + c.

    python examples/temperature.py [--epochs 30]
"""

import argparse

import numpy as np

import rnnkit
from rnnkit import Dense, Sequential, SimpleRNN
from rnnkit.data import pypi_archive, read_csv_rows, sliding_windows


def seattle_max_temperatures():
    rows = read_csv_rows(
        pypi_archive("vega_datasets", "0.9.0"), "vega_datasets/_data/seattle-weather.csv"
    )
    return np.array([float(r["temp_max"]) for r in rows])  # °C, one per day


def main(argv=None, temps=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--units", type=int, default=8)
    args = p.parse_args(argv)
    temps = seattle_max_temperatures() if temps is None else np.asarray(temps, float)
    split = int(0.75 * len(temps))  # train on the first three years
    mean, std = temps[:split].mean(), temps[:split].std()
    z = ((temps - mean) / std).astype("float32")
    results = {}
    for days in (2, 3):
        rnnkit.set_seed(0)
        x, y = sliding_windows(z, days)
        x, y = x[..., None], y[:, None]
        xt, yt, xv, yv = x[: split - days], y[: split - days], x[split - days :], y[split - days :]
        model = Sequential([SimpleRNN(args.units, input_shape=[None, 1]), Dense(1)])
        model.compile(loss="mse", optimizer=rnnkit.optim.Adam(0.01))
        model.fit(xt, yt, epochs=args.epochs, batch_size=32, verbose=0)
        rmse = float(np.sqrt(model.evaluate(xv, yv))) * std
        naive = float(np.sqrt(np.mean((xv[:, -1] - yv) ** 2))) * std
        results[days] = (rmse, naive)
        print(
            f"from the previous {days} days: validation RMSE {rmse:.2f} °C "
            f"(tomorrow = today: {naive:.2f} °C)"
        )
    return results


if __name__ == "__main__":
    main()
