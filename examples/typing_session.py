"""The interactive suggestions of ``rnnkit autocomplete``, fed a scripted session instead
of the keyboard, and printed as a terminal would show them (each typed line after its
"> " or "+ " prompt): what docs/autocomplete.md's "Typing" transcript shows.

    python examples/typing_session.py MODEL.rnnkit "Shall I compare thee to a " 1 4 "?" "" ""

Each argument after the model is one line typed: text, a suggestion's number, ?, or ""
(an empty line).  The model adapts to each finished line, as the command does."""

import os
import sys

from rnnkit import cli
from rnnkit.apps.autocomplete import Autocompleter


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        sys.exit(__doc__)
    if not os.path.isfile(argv[0]):
        sys.exit(f"typing_session.py: MODEL must be a model file; got {argv[0]!r}, not a file")
    ac = Autocompleter.load(argv[0])
    script = iter(argv[1:])

    def typed(prompt):
        try:
            line = next(script)
        except StopIteration:
            raise EOFError from None
        print(prompt + line)
        return line

    cli.suggestion_session(
        lambda prompt, until: ac.suggest(prompt, k=3, until=until),
        ac.next_chars,
        typed,
        print,
        3,
        learn=ac.adapt,
    )


if __name__ == "__main__":
    main()
