"""Baselines the sequence classifiers (dna, activity, speaker) are measured against, in NumPy.

    majority_class(y_train, n_test)          every answer is the training split's commonest class
    dtw_distances(queries, references)       dependent multivariate DTW (DTW_D), full window
    nearest_neighbour(dist, y_reference)     1-NN from a distance matrix
    LogisticRegression(l2).fit(x, y)         softmax regression, L2-penalised, Newton-free:
                                             full-batch gradient descent with Nesterov momentum

DTW_D (Shokoohi-Yekta et al.) warps all channels together: the cost of matching step i of one
series with step j of the other is the squared Euclidean distance of the two D-vectors, and

    D[i, j] = cost(i, j) + min(D[i-1, j-1], D[i-1, j], D[i, j-1]),   distance = D[n-1, m-1]

computed here one anti-diagonal (i + j = k) at a time for many pairs at once.  Series of
different lengths are padded; the padded cells lie beyond each pair's end, which never
feeds back into D[n-1, m-1], so every pair reads its own corner.
"""

from __future__ import annotations

import numpy as np


def majority_class(y_train, n_test: int) -> np.ndarray:
    """``n_test`` copies of the commonest training label (the smallest one on a tie)."""
    counts = np.bincount(np.asarray(y_train))
    return np.full(int(n_test), int(np.argmax(counts)), dtype=np.int64)


def _stack(series):
    lengths = np.array([len(s) for s in series], dtype=np.int64)
    D = series[0].shape[1]
    x = np.zeros((len(series), int(lengths.max()), D), dtype=np.float64)
    for i, s in enumerate(series):
        x[i, : len(s)] = s
    return x, lengths


def dtw_distances(queries, references, chunk_pairs=20000, progress=None) -> np.ndarray:
    """(len(queries), len(references)) matrix of DTW_D distances (full warping window).

    ``queries``, ``references``: sequences of arrays (steps, channels), lengths may differ.
    ``progress``: optional callable(done_queries) called after each chunk."""
    q, qlen = _stack(queries)
    r, rlen = _stack(references)
    if q.shape[2] != r.shape[2]:
        raise ValueError(
            f"dtw_distances: the queries have {q.shape[2]} channels and the references {r.shape[2]}"
        )
    Nq, Tq, _ = q.shape
    Nr, Tr, _ = r.shape
    out = np.empty((Nq, Nr))
    per = max(1, chunk_pairs // max(Nr, 1))
    rr = np.einsum("ntd,ntd->nt", r, r)  # (Nr, Tr)
    for start in range(0, Nq, per):
        qb = q[start : start + per]
        n = len(qb)
        qq = np.einsum("ntd,ntd->nt", qb, qb)
        dot = (qb.reshape(n * Tq, -1) @ r.reshape(Nr * Tr, -1).T).reshape(n, Tq, Nr, Tr)
        cost = qq[:, :, None, None] + rr[None, None, :, :] - 2.0 * dot  # (n, Tq, Nr, Tr)
        np.maximum(cost, 0.0, out=cost)
        cost = np.ascontiguousarray(cost.transpose(1, 3, 0, 2)).reshape(Tq, Tr, n * Nr)
        acc = np.full((Tq + 1, Tr + 1, n * Nr), np.inf)  # pairs last: contiguous rows
        acc[0, 0] = 0.0
        for k in range(Tq + Tr - 1):
            i = np.arange(max(0, k - Tr + 1), min(k, Tq - 1) + 1)
            j = k - i
            best = np.minimum(np.minimum(acc[i, j], acc[i, j + 1]), acc[i + 1, j])
            acc[i + 1, j + 1] = cost[i, j] + best
        pairs = np.arange(n * Nr).reshape(n, Nr)
        li = np.broadcast_to(qlen[start : start + n][:, None], (n, Nr))
        lj = np.broadcast_to(rlen[None, :], (n, Nr))
        out[start : start + n] = acc[li, lj, pairs]
        if progress is not None:
            progress(start + n)
    return out


def dtw_reference(a, b) -> float:
    """DTW_D of two series by the textbook double loop (for tests of ``dtw_distances``)."""
    n, m = len(a), len(b)
    acc = np.full((n + 1, m + 1), np.inf)
    acc[0, 0] = 0.0
    for i in range(n):
        for j in range(m):
            c = float(np.sum((np.asarray(a[i], float) - np.asarray(b[j], float)) ** 2))
            acc[i + 1, j + 1] = c + min(acc[i, j], acc[i, j + 1], acc[i + 1, j])
    return float(acc[n, m])


def nearest_neighbour(dist, y_reference) -> np.ndarray:
    """The label of each query's nearest reference (the first one on a tie)."""
    return np.asarray(y_reference)[np.argmin(dist, axis=1)]


class OneHotBlocks:
    """A 0/1 feature matrix with exactly one 1 in each of B blocks per row, stored as the
    (N, B) column indices of the ones: products cost N*B instead of N*F (positional k-mers of
    DNA: B = 177 ones among F = 4,896 columns)."""

    def __init__(self, index, n_features):
        self.index = np.asarray(index, dtype=np.int64)
        self.shape = (self.index.shape[0], int(n_features))

    def __getitem__(self, rows):
        return OneHotBlocks(self.index[rows], self.shape[1])

    def __matmul__(self, w):  # (N, F) @ (F, K)
        return w[self.index].sum(axis=1)

    def rmatmul(self, g):  # (N, F).T @ (N, K)
        flat = self.index.ravel()
        reps = self.index.shape[1]
        return np.stack(
            [
                np.bincount(flat, weights=np.repeat(g[:, c], reps), minlength=self.shape[1])
                for c in range(g.shape[1])
            ],
            axis=1,
        )


def _matmul(x, w):
    return x @ w


def _rmatmul(x, g):
    return x.rmatmul(g) if isinstance(x, OneHotBlocks) else x.T @ g


class LogisticRegression:
    """Multinomial logistic regression with an L2 penalty (not on the biases), fitted by
    full-batch gradient descent with Nesterov momentum; deterministic (starts from zeros).
    ``x``: a dense array or ``OneHotBlocks``."""

    def __init__(self, l2=1e-3, iterations=500, learning_rate=0.5):
        self.l2, self.iterations, self.learning_rate = float(l2), int(iterations), learning_rate
        self.w = self.b = None

    @staticmethod
    def _as_features(x):
        return x if isinstance(x, OneHotBlocks) else np.asarray(x, dtype=np.float64)

    def _probs(self, x, w, b):
        z = _matmul(x, w) + b
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def fit(self, x, y, n_classes=None):
        x = self._as_features(x)
        y = np.asarray(y)
        k = int(n_classes or y.max() + 1)
        onehot = np.eye(k)[y]
        n, d = x.shape
        w, b = np.zeros((d, k)), np.zeros(k)
        vw, vb = np.zeros_like(w), np.zeros_like(b)
        # step size from the curvature bound of the softmax loss: ||X||^2 / (2n) + l2
        lipschitz = 0.5 * _top_singular_value(x) ** 2 / n + self.l2
        lr = self.learning_rate / lipschitz
        for _ in range(self.iterations):
            lw, lb = w + 0.9 * vw, b + 0.9 * vb
            g = (self._probs(x, lw, lb) - onehot) / n
            gw = _rmatmul(x, g) + self.l2 * lw
            gb = g.sum(axis=0)
            vw = 0.9 * vw - lr * gw
            vb = 0.9 * vb - lr * gb
            w, b = w + vw, b + vb
        self.w, self.b = w, b
        return self

    def predict_proba(self, x):
        return self._probs(self._as_features(x), self.w, self.b)

    def predict(self, x):
        return np.argmax(self.predict_proba(x), axis=1)


def _top_singular_value(x, iterations=50):
    """The largest singular value of x by power iteration (a full SVD is slow for wide x);
    deterministic start, 2 % above the estimate so that the step stays safe."""
    v = np.ones((x.shape[1], 1)) / np.sqrt(x.shape[1])
    s = 0.0
    for _ in range(iterations):
        u = _matmul(x, v)
        s = float(np.linalg.norm(u))
        if s == 0.0:
            return 1e-12
        v = _rmatmul(x, u / s)
        v /= max(float(np.linalg.norm(v)), 1e-300)
    return 1.02 * float(np.linalg.norm(_matmul(x, v)))


def choose_l2(x, y, grid=(1e-4, 1e-3, 1e-2, 1e-1), holdout=0.2, seed=0, **kwargs):
    """The L2 penalty of ``grid`` with the best accuracy on a seeded holdout of the training
    data (ties: the larger penalty).  The test split is never looked at."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    n_val = max(1, int(round(holdout * len(y))))
    val, fit = order[:n_val], order[n_val:]
    k = int(np.max(y)) + 1
    scores = []
    for l2 in grid:
        m = LogisticRegression(l2=l2, **kwargs).fit(x[fit], y[fit], n_classes=k)
        scores.append((float(np.mean(m.predict(x[val]) == y[val])), l2))
    best = max(scores)[0]
    return max(l2 for s, l2 in scores if s == best), scores


def accuracy(y_true, y_pred) -> float:
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


def confusion(y_true, y_pred, n_classes) -> list:
    m = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(m, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return m.tolist()


BASELINE_CACHE_VERSION = 1


def cached(name: str, arrays, compute):
    """``compute()``'s JSON result, kept in ``cache_dir()/baselines/<name>-<digest>.json``; the
    digest is SHA-256 of ``arrays`` (the data the baselines are fitted and scored on) and of
    BASELINE_CACHE_VERSION, so other data or another version of this code computes anew.
    The baselines do not depend on the trained model, so evaluate pays for them once."""
    import hashlib
    import json

    from ..atomicfile import atomic_write_text
    from ..data.fetch import cache_dir

    h = hashlib.sha256(f"{name}:{BASELINE_CACHE_VERSION}".encode())
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())
    path = cache_dir() / "baselines" / f"{name}-{h.hexdigest()[:16]}.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    result = compute()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(result))
    except OSError:
        pass  # a read-only cache only costs the time
    return result
