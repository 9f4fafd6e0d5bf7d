"""The lecture's temperature example, trained with hand-written BPTT.

Given the temperatures of the previous three days, predict tomorrow's: a SimpleRNN
reads the three days, a Dense layer maps its last state to the forecast.  The
training loop is written out (forward, loss, backward, SGD step) so every piece
of BPTT is visible.  Run:  python examples/quickstart.py
"""

import numpy as np

import rnnkit
from rnnkit import Dense, Sequential, SimpleRNN

rnnkit.set_seed(0)
rng = np.random.default_rng(0)

# A year of synthetic daily temperatures: a seasonal cycle plus weather noise (°C).
days = np.arange(3 * 365)
temps = 15 + 10 * np.sin(2 * np.pi * days / 365) + rng.normal(0, 1.5, days.size)
x = np.stack([temps[i : i + 3] for i in range(days.size - 3)])[..., None]  # (N, 3, 1)
y = temps[3:, None]  # (N, 1)
mean, std = temps.mean(), temps.std()
x, y = ((x - mean) / std).astype("float32"), ((y - mean) / std).astype("float32")
split = int(0.8 * len(x))

model = Sequential([SimpleRNN(8, input_shape=[None, 1]), Dense(1)])
lr, batch = 0.05, 32
for epoch in range(1, 21):
    order = rng.permutation(split)
    for i in range(0, split, batch):
        idx = order[i : i + batch]
        pred = model.forward(x[idx], training=True)
        model.backward(2 * (pred - y[idx]) / len(idx))  # ∂(mean squared error)/∂pred
        for name, p in model.params.items():
            p -= lr * np.clip(model.grads[name], -5, 5)  # SGD with clipping by value
    if epoch % 5 == 0:
        val = model.forward(x[split:])
        rmse = float(np.sqrt(np.mean((val - y[split:]) ** 2))) * std
        naive = float(np.sqrt(np.mean((x[split:, -1] - y[split:]) ** 2))) * std
        print(
            f"epoch {epoch:2d}: validation RMSE {rmse:.2f} °C  (tomorrow = today: {naive:.2f} °C)"
        )
