"""The autocomplete model trained with PyTorch 2.13 (CPU) for the same wall-clock time,
on the same split of the same text, with the same architecture and training settings
as `rnnkit autocomplete`, then scored the same way (validation bits per character).

    python benchmarks/autocomplete_torch.py --minutes 3 [--text FILE] [--hidden 256]
    python benchmarks/autocomplete_torch.py --minutes 3 --framework rnnkit   # the same loop in rnnkit

Both frameworks read the text as `--batch` parallel streams, carry the state from
chunk to chunk, backpropagate `--bptt` steps (truncated BPTT), use Adam with
decoupled weight decay (AdamW; plain Adam with `--weight-decay 0`) and global-norm
clipping, and are evaluated on the held-out tail of the text.
"""

import argparse
import json
import math
import os
import time


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--framework", choices=["torch", "rnnkit"], default="torch")
    p.add_argument("--minutes", type=float, default=3.0)
    p.add_argument("--text")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--embed", type=int, default=32)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--bptt", type=int, default=32)
    p.add_argument("--learning-rate", type=float, default=1e-2)
    p.add_argument(
        "--dropout",
        type=float,
        default=0.0,
        help="dropout on the recurrent layer's input and output (rnnkit: variational, one "
        "mask per stream and chunk; PyTorch: nn.Dropout, one mask per step)",
    )
    p.add_argument(
        "--max-passes",
        type=float,
        default=None,
        help="stop after this many passes over the text, as `rnnkit autocomplete` does "
        "(default: its default, Settings.max_passes; 0: no limit)",
    )
    p.add_argument(
        "--weight-decay",
        type=float,
        default=None,
        help="decoupled weight decay (rnnkit: optim.AdamW; PyTorch: torch.optim.AdamW; "
        "default: `rnnkit autocomplete`'s, Settings.weight_decay; 0: plain Adam)",
    )
    p.add_argument("--threads", type=int, default=int(os.environ.get("THREADS", "2")))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="write the result here")
    args = p.parse_args(argv)

    from rnnkit.apps import autocomplete as app
    from rnnkit.data import CharVocab, shakespeare_works

    if args.max_passes is None:
        args.max_passes = app.Settings.max_passes
    app.check_max_passes(args.max_passes, "--max-passes")
    if args.weight_decay is None:
        args.weight_decay = app.Settings.weight_decay
    app.check_weight_decay(args.weight_decay, "--weight-decay")
    text = app.read_text_file(args.text) if args.text else shakespeare_works()
    vocab = CharVocab.from_text(text)
    train_ids, val_ids = app.split(vocab.encode(text), 0.05)
    # the network learns from what `rnnkit autocomplete` trains it on: the training text
    # without the blocks that choose its n-gram memory's weight (app.network_ids)
    train_ids = app.network_ids(train_ids, app.Settings())
    if args.framework == "rnnkit":
        s = app.Settings(
            hidden=args.hidden,
            layers=args.layers,
            embed=args.embed,
            batch=args.batch,
            bptt=args.bptt,
            learning_rate=args.learning_rate,
            seed=args.seed,
            dropout=args.dropout,
            max_passes=args.max_passes,
            weight_decay=args.weight_decay,
        )
        model = app.build_model(len(vocab), s)
        r = app.train(model, train_ids, s, args.minutes, verbose=False)
        seconds, chars, passes = r.seconds, r.chars, r.passes
        val = app.evaluate_bpc(model, val_ids)
    else:
        val, seconds, chars, passes = train_torch(args, train_ids, val_ids, len(vocab))
    result = {
        "framework": args.framework,
        "minutes": args.minutes,
        "val_bpc": val,
        "trained_seconds": seconds,
        "chars_per_second": chars / seconds,
        "passes": passes,
        "max_passes": args.max_passes,
        "hidden": args.hidden,
        "layers": args.layers,
        "batch": args.batch,
        "dropout": args.dropout,
        "weight_decay": args.weight_decay,
        "threads": args.threads,
    }
    print(json.dumps(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return result


def train_torch(args, train_ids, val_ids, V):
    import torch
    from torch import nn

    from rnnkit.apps.autocomplete import streams

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    class CharLM(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(V, args.embed)
            self.rnn = nn.LSTM(args.embed, args.hidden, num_layers=args.layers, batch_first=True)
            self.head = nn.Linear(args.hidden, V)
            self.drop = nn.Dropout(args.dropout)

        def forward(self, x, state=None):
            h, state = self.rnn(self.drop(self.embed(x)), state)
            return self.head(self.drop(h)), state

    model = CharLM()
    model.train()
    opt = (  # eps as rnnkit's (Keras's)
        torch.optim.AdamW(
            model.parameters(), lr=args.learning_rate, eps=1e-7, weight_decay=args.weight_decay
        )
        if args.weight_decay
        else torch.optim.Adam(model.parameters(), lr=args.learning_rate, eps=1e-7)
    )
    x, y = (torch.from_numpy(a) for a in streams(train_ids, args.batch))
    L = x.shape[1]
    budget, start, pos, state, chars = args.minutes * 60, time.perf_counter(), 0, None, 0
    most_chars = args.max_passes * x.numel() if args.max_passes else math.inf
    while time.perf_counter() - start < budget and chars < most_chars:
        if pos >= L - 1:
            pos, state = 0, None
        xb, yb = x[:, pos : pos + args.bptt], y[:, pos : pos + args.bptt]
        logits, state = model(xb, state)
        state = tuple(s.detach() for s in state)  # truncate: carry the state, not its graph
        # the same loss as rnnkit: the sum over the chunk's steps, averaged over the streams
        loss = (
            nn.functional.cross_entropy(logits.reshape(-1, V), yb.reshape(-1), reduction="sum")
            / xb.shape[0]
        )
        pos += xb.shape[1]
        chars += xb.numel()
        # the same cosine decay: over the budget, or the passes when they end the run sooner
        progress = min(max((time.perf_counter() - start) / budget, chars / most_chars), 1.0)
        for group in opt.param_groups:
            group["lr"] = args.learning_rate * (
                0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress))
            )
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
    seconds = time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        vx, vy = (torch.from_numpy(a) for a in streams(val_ids, 32))
        total, count, state = 0.0, 0, None
        for s in range(0, vx.shape[1], 256):
            logits, state = model(vx[:, s : s + 256], state)
            total += nn.functional.cross_entropy(
                logits.reshape(-1, V), vy[:, s : s + 256].reshape(-1), reduction="sum"
            ).item()
            count += vy[:, s : s + 256].numel()
    return total / count / math.log(2.0), seconds, chars, chars / x.numel()


if __name__ == "__main__":
    main()
