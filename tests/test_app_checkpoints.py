"""The applications' epoch bookkeeping: the best epoch's weights, and checkpoint
averaging over the last epochs (``rnnkit/apps/_buckets.py``)."""

import numpy as np

from rnnkit.apps._buckets import average_last_epochs, keep_best


class Weights:
    """A stand-in model: just weights."""

    def __init__(self):
        self.w = [np.zeros(3), np.zeros((2, 2))]

    def get_weights(self):
        return [a.copy() for a in self.w]

    def set_weights(self, w):
        self.w = [np.array(a, dtype=float) for a in w]


def run_epochs(model, values, target, average):
    def score():  # higher is better: the closer the first weight is to ``target``
        return -float(np.abs(model.w[0] - target).sum())

    after_epoch, history, best = keep_best(
        model,
        score,
        key="s",
        digits=6,
        describe=str,
        higher=True,
        worst=-np.inf,
        quiet=True,
        average=average,
    )
    for epoch, v in enumerate(values, 1):
        model.w = [np.full(3, v), np.full((2, 2), v)]
        after_epoch(epoch, loss=0.0)

    def averaged():
        return average_last_epochs(model, score, best, higher=True, describe=str, quiet=True)

    return history, best, averaged


def test_the_mean_of_the_last_epochs_is_kept_when_it_scores_better():
    model = Weights()
    # the weights oscillate around 2.0: each epoch alone misses it, their mean does not
    history, best, averaged = run_epochs(model, [0.0, 1.0, 3.0, 1.5, 2.5], 2.0, average=2)
    assert [h["s"] for h in history] == [-6.0, -3.0, -3.0, -1.5, -1.5]
    assert best["score"] == -1.5 and best["weights"][0][0] == 1.5  # the first of the best
    assert averaged() == 0.0  # (1.5 + 2.5) / 2 = 2
    assert best["score"] == 0.0
    np.testing.assert_array_equal(best["weights"][1], np.full((2, 2), 2.0))


def test_a_worse_mean_is_not_kept_and_short_runs_are_not_averaged():
    model = Weights()
    _, best, averaged = run_epochs(model, [0.0, 2.0, 5.0], 2.0, average=2)
    assert averaged() == -4.5  # (2 + 5) / 2 = 3.5: worse than epoch 2
    assert best["score"] == 0.0 and best["weights"][0][0] == 2.0
    _, best, averaged = run_epochs(Weights(), [1.0], 2.0, average=3)
    assert averaged() is None and best["weights"][0][0] == 1.0
    _, best, averaged = run_epochs(Weights(), [1.0, 2.0, 3.0], 2.0, average=0)
    assert averaged() is None and best["recent"] == []
