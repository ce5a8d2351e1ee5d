"""What the CLI prints is text, never terminal control: documents, titles and server messages
may carry escape sequences that would rewrite the screen, retitle the window or worse."""

from __future__ import annotations

import re
from typing import TextIO

# ESC sequences (CSI, OSC and the rest), then C0 controls other than tab, newline and carriage
# return, DEL, and C1 controls.
_CONTROL = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]?"
    r"|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\x80-\x9f]"
)


def strip_controls(text: str) -> str:
    """Returns `text` without terminal control sequences or control characters."""
    return _CONTROL.sub("", text)


class PlainText:
    """A text stream that writes what it is given without terminal control."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(strip_controls(text))
        return len(text)

    def __getattr__(self, name: str) -> object:  # flush, isatty, encoding, buffer …
        return getattr(self._stream, name)
