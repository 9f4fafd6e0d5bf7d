"""``rnnkit autocomplete`` in a pseudo-terminal, typed to by a script: the screen a person
sees as the suggestions drop down while they type (``rnnkit/apps/typing_ui.py``), as text.
docs/autocomplete.md's picture of it comes from here.

    pip install pyte          # the terminal emulator that draws the screen
    python examples/terminal_session.py MODEL.rnnkit "Shall I compare th" TAB ENTER ENTER

Each argument after the model is typed in turn (TAB, ENTER and CTRL-D name those keys);
after each, the output is read until it has been quiet for --settle seconds and the
screen is printed.  Exits with the command's status.  Linux and macOS (the pty module)."""

from __future__ import annotations

import argparse
import os
import select
import sys
import time

KEYS = {"TAB": "\t", "ENTER": "\r", "CTRL-D": "\x04"}


class Terminal:
    """The command on a pseudo-terminal of rows x columns, its screen drawn by pyte."""

    def __init__(self, argv, rows=24, columns=100, env=None):
        import fcntl
        import pty
        import struct
        import termios

        import pyte

        self.screen = pyte.Screen(columns, rows)
        self.stream = pyte.ByteStream(self.screen)
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: the command, on the pseudo-terminal
            os.execve(argv[0], argv, dict(env or os.environ, TERM="xterm"))
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        self.closed = False

    def read(self, settle: float, limit: float, want: str = "") -> None:
        """Draw what the command prints until it has been quiet ``settle`` seconds (and
        the screen shows ``want``), ``limit`` seconds have passed, or it has ended."""
        start = last = time.monotonic()
        while not self.closed and time.monotonic() - start < limit:
            ready, _, _ = select.select([self.fd], [], [], 0.05)
            if ready:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:  # the command ended
                    chunk = b""
                if not chunk:
                    self.closed = True
                    break
                self.stream.feed(chunk)
                last = time.monotonic()
                if b"\x1b[6n" in chunk:  # "where is the cursor?", as a terminal answers
                    y, x = self.screen.cursor.y + 1, self.screen.cursor.x + 1
                    os.write(self.fd, f"\x1b[{y};{x}R".encode())
            elif time.monotonic() - last >= settle and want in self.text():
                break

    def type(self, keys: str) -> None:
        os.write(self.fd, keys.encode())

    def text(self) -> str:
        """The screen's lines, trailing blanks and blank lines at the end left out."""
        lines = [line.rstrip() for line in self.screen.display]
        while lines and not lines[-1]:
            lines.pop()
        return "\n".join(lines)

    def finish(self, settle: float, limit: float) -> int:
        if not self.closed:
            self.type("\x04")  # Ctrl-D, in case the keys did not end the session
            self.read(settle, limit)
        _, status = os.waitpid(self.pid, 0)
        os.close(self.fd)
        return os.waitstatus_to_exitcode(status)


def session(model, keys, settle=1.0, limit=120.0, env=None, show=print) -> int:
    """Run ``rnnkit autocomplete --model MODEL`` in a terminal, type ``keys``, ``show``
    the screen after each; returns the command's exit status."""
    code = "import sys; from rnnkit.cli import main; sys.exit(main(sys.argv[1:]))"
    term = Terminal([sys.executable, "-c", code, "autocomplete", "--model", str(model)], env=env)
    term.read(settle, limit, want="Ctrl-D quits")
    for key in keys:
        term.type(KEYS.get(key, key))
        term.read(settle, limit)
        show(f"--- after {key!r}:\n{term.text()}")
    return term.finish(settle, limit)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model")
    p.add_argument("keys", nargs="*", help="text to type; TAB, ENTER, CTRL-D name those keys")
    p.add_argument("--settle", type=float, default=1.0, help="quiet seconds after each key")
    args = p.parse_args(argv)
    if not os.path.isfile(args.model):
        p.error(f"MODEL must be a model file; got {args.model!r}, which is not a file")
    try:
        import pyte  # noqa: F401
    except ImportError:
        p.error("this example draws the screen with pyte: pip install pyte")
    return session(args.model, args.keys, args.settle)


if __name__ == "__main__":
    sys.exit(main())
