#!/usr/bin/env python
"""Characters a second of text generation with an autocomplete model, for each way of
computing the recurrent products (``RNNKIT_PRODUCTS``), each in a fresh process.

Generation runs one short loop per character (a batch of one, one step), so what a loop
costs before its first step (packing the weights) counts as much as the step itself.

    python benchmarks/generate_speed.py MODEL.rnnkit [--chars 300] [--ways auto packed split]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

PROMPT = "To be, or not to be"


def measure(path: str, chars: int) -> float:
    """Characters a second of ``Autocompleter.generate`` (after a short warm-up)."""
    from rnnkit.apps.autocomplete import Autocompleter

    ac = Autocompleter.load(path)
    ac.generate(PROMPT, 20)
    t0 = time.perf_counter()
    ac.generate(PROMPT, chars)
    return chars / (time.perf_counter() - t0)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="an autocomplete model file (rnnkit autocomplete --save)")
    p.add_argument("--chars", type=int, default=300, help="characters to generate (300)")
    p.add_argument("--ways", nargs="+", default=["auto", "packed", "split", "blas"])
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if not os.path.exists(args.model):
        p.error(f"model: no such file {args.model!r}")
    if args.chars < 1:
        p.error(f"--chars must be at least 1; got {args.chars}")
    if args.worker:
        print(f"{measure(args.model, args.chars):.1f}")
        return 0
    for way in args.ways:
        env = dict(os.environ, RNNKIT_PRODUCTS=way)
        cmd = [sys.executable, __file__, args.model, "--chars", str(args.chars), "--worker"]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if out.returncode != 0:
            print(f"{way:>7}: failed: {out.stderr.strip().splitlines()[-1:]}")
            return 1
        print(f"{way:>7}: {float(out.stdout):,.0f} characters a second")
    return 0


if __name__ == "__main__":
    sys.exit(main())
