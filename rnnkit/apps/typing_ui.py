"""Suggestions as you type: ``rnnkit autocomplete``'s interactive mode in a terminal.

Each keystroke asks the model again: the completions of the current word and of the
phrase drop down under the cursor (their probabilities beside them), Tab or the arrow keys
pick one, and the bottom line shows the likeliest next characters.  Enter finishes the
line (the model learns from it when ``learn`` is given), Enter on an empty line or Ctrl-D
quits.  Built on prompt_toolkit; ``rnnkit.cli.suggestion_session`` is the line-by-line
mode for a terminal without it (or ``--line-mode``).

``suggest(prompt, until)`` returns the model's ``Suggestion`` list, ``next_chars(prompt)``
its [(character, probability)]: the same functions the line mode takes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.history import FileHistory

from .autocomplete import accepted_text, percent_text, quoted, word_typed


class SuggestionCompleter(Completer):
    """prompt_toolkit's completer over the model's suggestions: for the text before the
    cursor, the k completions of the word, then the k of the phrase (those not already
    offered), each replacing the part of its word already typed."""

    def __init__(self, suggest: Callable[[str, str], list]):
        self.suggest = suggest

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterable[Completion]:
        prompt = document.text_before_cursor
        typed = word_typed(prompt)
        offered = set()
        for until in ("word", "phrase"):
            for s in self.suggest(prompt, until):
                insert = typed + accepted_text(s, until)
                if insert in offered or insert == typed:  # nothing to add
                    continue
                offered.add(insert)
                yield Completion(
                    insert,
                    start_position=-len(typed),
                    display=typed + s.text,
                    display_meta=f"{percent_text(s.probability)} {until}",
                )


def next_chars_line(next_chars: Callable[[str], list], prompt: str, k=6) -> FormattedText:
    """The bottom toolbar: the k likeliest next characters after ``prompt``."""
    shown = "  ".join(f"{quoted(c)} {percent_text(p)}" for c, p in next_chars(prompt)[:k])
    return FormattedText([("", f" next: {shown}")])


def live_session(
    suggest: Callable[[str, str], list],
    next_chars: Callable[[str], list],
    learn: Callable[[str], object] | None = None,
    print_fn=print,
    history_file=None,
    **session_args,
) -> int:
    """Read lines with suggestions dropping down as they are typed, until Ctrl-D or an
    empty line; each finished line goes to ``learn`` (the model adapts to it).
    ``history_file``: where the lines are kept for the up arrow (none by default);
    ``session_args`` go to prompt_toolkit's PromptSession (tests pass a pipe input and a
    dummy output).  Returns 0."""
    print_fn(
        "Type: the suggestions drop down as you write (Tab or the arrows pick one), the "
        "likeliest next characters are at the bottom. Enter starts a new line; an empty "
        "line or Ctrl-D quits."
    )
    if history_file is not None:
        Path(history_file).parent.mkdir(parents=True, exist_ok=True)
        session_args.setdefault("history", FileHistory(str(history_file)))
    session: PromptSession = PromptSession(
        completer=SuggestionCompleter(suggest),
        complete_while_typing=True,
        bottom_toolbar=lambda: next_chars_line(next_chars, session.default_buffer.text),
        **session_args,
    )
    while True:
        try:
            line = session.prompt("> ")
        except (EOFError, KeyboardInterrupt):
            return 0
        if not line:
            return 0
        if learn and len(line) >= 2:
            learn(line + "\n")
