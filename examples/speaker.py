"""Speaker recognition from utterances of different lengths, through masks (library API).

UEA JapaneseVowels: 7-29 frames x 12 LPC cepstral coefficients -> one of 9 speakers; the
archive's 270 / 370 split.  The utterances are padded with all-zero frames and a Masking
layer tells the bidirectional GRU to skip them, so nothing is truncated and the backward
direction starts at each utterance's own last frame.  A few minutes on two cores.
Run:  python examples/speaker.py
"""

import numpy as np

import rnnkit
from rnnkit import GRU, Bidirectional, Dense, Dropout, Masking, Sequential, optim
from rnnkit.datasets import japanese_vowels

rnnkit.set_seed(0)
(x_train, y_train), (x_test, y_test) = japanese_vowels.load_data()
frames = np.concatenate(x_train)
mean, std = frames.mean(axis=0), frames.std(axis=0)  # training statistics only
xtr, _ = japanese_vowels.pad([(s - mean) / std for s in x_train])
xte, _ = japanese_vowels.pad([(s - mean) / std for s in x_test])

model = Sequential(
    [
        Masking(0.0, input_shape=[None, 12]),
        Bidirectional(GRU(128)),
        Dropout(0.5),
        Dense(9, activation="softmax"),
    ]
)
epochs, batch = 40, 16
steps = epochs * int(np.ceil(len(xtr) / batch))
model.compile(
    loss="sparse_categorical_crossentropy",
    metrics=["accuracy"],
    optimizer=optim.Adam(optim.CosineDecay(3e-3, steps, alpha=0.05), clip_global_norm=5.0),
)
model.fit(xtr, y_train, batch_size=batch, epochs=epochs, verbose=2)
pred = model.predict(xte).argmax(-1)
print(f"test accuracy {np.mean(pred == y_test):.4f} on {len(y_test)} utterances")
