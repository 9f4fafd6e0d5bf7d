"""Activity recognition from a smart watch with a bidirectional GRU (the library, not the CLI).

UEA BasicMotions: 100 steps x 6 channels (accelerometer, gyroscope) -> standing, running,
walking or badminton; the archive's 40 / 40 split (from PyPI's aeon 1.6.0 data files).  Each
channel is standardised with the training split's statistics.  Under a minute on two cores.
Run:  python examples/activity.py
"""

import numpy as np

import rnnkit
from rnnkit import GRU, Bidirectional, Dense, Dropout, Sequential, optim
from rnnkit.apps._baselines import dtw_distances, nearest_neighbour
from rnnkit.datasets import basic_motions

rnnkit.set_seed(0)
(x_train, y_train), (x_test, y_test) = basic_motions.load_data()
mean, std = x_train.mean(axis=(0, 1)), x_train.std(axis=(0, 1))

model = Sequential(
    [Bidirectional(GRU(32), input_shape=[100, 6]), Dropout(0.3), Dense(4, activation="softmax")]
)
epochs, batch = 60, 16
model.compile(
    loss="sparse_categorical_crossentropy",
    metrics=["accuracy"],
    optimizer=optim.Adam(optim.CosineDecay(1e-2, epochs * 3, alpha=0.05), clip_global_norm=5.0),
)
model.fit((x_train - mean) / std, y_train, batch_size=batch, epochs=epochs, verbose=0)
pred = model.predict((x_test - mean) / std).argmax(-1)
print(f"bidirectional GRU: test accuracy {np.mean(pred == y_test):.3f}")
dtw = nearest_neighbour(dtw_distances(list(x_test), list(x_train)), y_train)
print(f"1-NN DTW_D:        test accuracy {np.mean(dtw == y_test):.3f}")
