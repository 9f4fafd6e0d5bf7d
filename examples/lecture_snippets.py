"""The lecture's three Keras snippets, run as written with rnnkit in place of keras,
on a noisy sine series; each must beat the naive forecast "next = last".

    python examples/lecture_snippets.py [--epochs 20]
"""

import argparse

import numpy as np

import rnnkit
from rnnkit import Dense, Sequential, SimpleRNN


def noisy_sine_windows(n_series=10000, steps=50, ahead=1, seed=42):
    """Geron's generate_time_series: two sines of random phase and frequency plus
    noise.  x (N, steps, 1) and the next ``ahead`` values y (N, ahead)."""
    rng = np.random.default_rng(seed)
    f1, f2, o1, o2 = rng.random((4, n_series, 1))
    t = np.linspace(0, 1, steps + ahead)
    series = 0.5 * np.sin((t - o1) * (f1 * 10 + 10)) + 0.2 * np.sin((t - o2) * (f2 * 20 + 20))
    series += 0.1 * (rng.random((n_series, steps + ahead)) - 0.5)
    series = series.astype("float32")
    return series[:, :steps, None], series[:, steps:]


def snippets():
    """The models exactly as on the slides (keras.models/keras.layers -> rnnkit), with
    how many future values each predicts: one per output unit."""
    return {
        "one recurrent neuron": (
            1,
            Sequential(
                [
                    SimpleRNN(1, input_shape=[None, 1]),
                ]
            ),
        ),
        "a layer of five neurons": (
            5,
            Sequential(
                [  # forecasts the next five values
                    SimpleRNN(5, input_shape=[None, 1]),
                ]
            ),
        ),
        "deep RNN": (
            1,
            Sequential(
                [
                    SimpleRNN(20, return_sequences=True, input_shape=[None, 1]),
                    SimpleRNN(20, return_sequences=True),
                    SimpleRNN(1),
                ]
            ),
        ),
        "deep RNN + Dense": (
            1,
            Sequential(
                [
                    SimpleRNN(20, return_sequences=True, input_shape=[None, 1]),
                    SimpleRNN(20),
                    Dense(1),
                ]
            ),
        ),
    }


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--series", type=int, default=10000)
    p.add_argument("--learning-rate", type=float, default=0.001, help="Adam's (Keras's default)")
    p.add_argument("--verbose", type=int, default=0)
    args = p.parse_args(argv)
    rnnkit.set_seed(42)
    results = {}
    for name, (ahead, model) in snippets().items():
        x, y = noisy_sine_windows(args.series, ahead=ahead)
        n_train, n_val = int(0.7 * len(x)), int(0.9 * len(x))
        x_val, y_val = x[n_train:n_val], y[n_train:n_val]
        naive = float(np.mean((x_val[:, -1] - y_val) ** 2))  # repeat the last value
        model.compile(loss="mse", optimizer=rnnkit.optim.Adam(args.learning_rate))
        model.fit(
            x[:n_train],
            y[:n_train],
            epochs=args.epochs,
            validation_data=(x_val, y_val),
            verbose=args.verbose,
        )
        mse = model.evaluate(x_val, y_val)
        results[name] = (mse, naive)
        print(
            f"{name:>24}: {model.count_params():4d} parameters, validation MSE {mse:.4f}, "
            f"naive forecast {naive:.4f} ({'beats' if mse < naive else 'does NOT beat'} it)"
        )
    return results


if __name__ == "__main__":
    main()
