"""Ways of mixing an autocomplete model with its n-gram memory, compared on held-out text:
the fixed λ the command uses (p = λ p_net + (1 − λ) p_KN), λ by bucket (the longest
context the n-gram model has seen, its count, the network's entropy), and a geometric
mixture (p ∝ p_net^a p_KN^b).  Every weight is fitted on the blocks of the training text
that choose the command's λ (``tune_mask``; the n-gram model counted on the rest), then
scored on the held-out text (the n-gram model counted on the whole training text), as the
command does.  Prints bits per character on both.

    python benchmarks/ngram_mixing.py MODEL.rnnkit [--text FILE]   (default: Shakespeare)"""

import argparse

import numpy as np

from rnnkit.apps import autocomplete as app
from rnnkit.apps.ngram import WEIGHTS, KneserNey, _lookup, tune_mask
from rnnkit.data import shakespeare_works


def distributions(model, vocab, kn, before, seg, batch=32, chunk=256):
    """The network's log-probabilities (n, V) of seg[1:n+1] read as ``batch`` streams (as
    ``char_probs``), the targets, the n-gram model's distributions (n, V), the longest
    context order it has seen before each character and that context's count."""
    app.reset(model)
    x, y = app.streams(seg, batch)
    lp = np.empty(x.shape + (len(vocab),), np.float32)
    for st in range(0, x.shape[1], chunk):
        lp[:, st : st + chunk] = app.log_softmax(model.forward(x[:, st : st + chunk]))
    app.reset(model)
    lp, y = lp.reshape(-1, len(vocab)).astype(np.float64), y.reshape(-1)
    n, V, m = len(y), len(vocab), kn.order - 1
    hist = np.concatenate([np.asarray(before[-m:], np.int64), seg])
    ctx = np.lib.stride_tricks.sliding_window_view(hist, m)[1 : 1 + n]  # m ids before each
    pk = np.concatenate([kn.next_probs(ctx[a : a + 20000]) for a in range(0, n, 20000)])
    order, count = np.zeros(n, int), np.zeros(n, np.int64)
    for k, (_, _, ctx_keys, totals, _, _) in enumerate(kn.tables, start=1):
        h = (ctx[:, m - (k - 1) :] * V ** np.arange(k - 2, -1, -1)).sum(1) if k > 1 else 0 * y
        total = _lookup(ctx_keys, totals, h)
        order[total > 0], count[total > 0] = k, total[total > 0]
    return {"lp": lp, "y": y, "pk": np.maximum(pk, 1e-12), "order": order, "count": count}


def bits(p):
    return float(-np.log2(p).mean())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("--text", help="the text the model was trained on (default: Shakespeare)")
    args = ap.parse_args()
    model, vocab, s, _ = app.load(args.model)
    text = open(args.text, encoding="utf-8").read() if args.text else shakespeare_works()
    train, val = app.split(vocab.encode(text), s.val_fraction)
    mask = tune_mask(len(train))
    sets = {
        "tune": distributions(
            model, vocab, KneserNey(train[~mask], 9, len(vocab)), train[~mask], train[mask]
        ),
        "val": distributions(model, vocab, KneserNey(train, 9, len(vocab)), train, val),
    }
    for d in sets.values():
        r = np.arange(len(d["y"]))
        d["pn"], d["pkt"] = np.exp(d["lp"][r, d["y"]]), d["pk"][r, d["y"]]
        d["entropy"] = -(np.exp(d["lp"]) * d["lp"]).sum(1)
    t, v = sets["tune"], sets["val"]
    print(f"network alone: blocks {bits(t['pn']):.4f}, held out {bits(v['pn']):.4f}")
    print(f"9-gram alone:  blocks {bits(t['pkt']):.4f}, held out {bits(v['pkt']):.4f}")
    lam = WEIGHTS[np.argmin([bits(w * t["pn"] + (1 - w) * t["pkt"]) for w in WEIGHTS])]
    fixed = bits(lam * v["pn"] + (1 - lam) * v["pkt"])
    print(f"fixed λ = {lam:.2f} (the command's):            held out {fixed:.4f}")
    buckets = {
        "the longest context seen": lambda d: d["order"],
        "its count (log2 bins)": lambda d: np.minimum(np.log2(d["count"] + 1).astype(int), 15),
        "the network's entropy (0.5-nat bins)": lambda d: np.minimum(
            (d["entropy"] / 0.5).astype(int), 9
        ),
        "context order x network entropy": lambda d: (
            d["order"] * 10 + np.minimum((d["entropy"] / 0.5).astype(int), 9)
        ),
    }
    grid = np.linspace(0, 1, 101)
    for name, key in buckets.items():
        kt, kv = key(t), key(v)
        lams = np.full(int(max(kt.max(), kv.max())) + 1, lam)
        for b in np.unique(kt):
            sel = kt == b
            if sel.sum() >= 200:  # enough characters to fit a weight
                cost = [-np.log2(w * t["pn"][sel] + (1 - w) * t["pkt"][sel]).sum() for w in grid]
                lams[b] = grid[int(np.argmin(cost))]
        lv = lams[kv]
        print(f"λ by {name + ':':40s} held out {bits(lv * v['pn'] + (1 - lv) * v['pkt']):.4f}")

    def geometric(d, a, b):
        z = a * d["lp"] + b * np.log(d["pk"])
        z -= z.max(1, keepdims=True)
        z -= np.log(np.exp(z).sum(1, keepdims=True))
        return np.exp(z[np.arange(len(d["y"])), d["y"]])

    _, a, b = min(
        (bits(geometric(t, a, b)), a, b)
        for a in np.linspace(0.3, 1.2, 10)
        for b in np.linspace(0.0, 0.8, 9)
    )
    print(
        f"geometric, a = {a:.1f}, b = {b:.1f}:                 held out {bits(geometric(v, a, b)):.4f}"
    )


if __name__ == "__main__":
    main()
