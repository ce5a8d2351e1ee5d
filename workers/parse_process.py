"""Parsing HTML in a child process, under a time limit per document.

Lexbor is C: a signal cannot interrupt it, and a document that makes it slow (or crash) would
otherwise hold the worker, and every document batched with it, for as long as it likes. Each
worker process keeps one child that parses a document at a time; one that is not done within
the limit is killed, its document fails with `parse`, and the next document gets a new child.
Plain text and Markdown need no parsing and never leave the process.

The protocol on the child's standard input and output: a request is an 8-byte length and that
many bytes of UTF-8; a reply is a status byte (0: text, 1: an error message), an 8-byte length
and the UTF-8 bytes.
"""

from __future__ import annotations

import os
import select
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from workers import parsing

_LENGTH = struct.Struct("!Q")
_REPLY = struct.Struct("!BQ")
_OK, _ERROR = 0, 1


class ParseTimeout(Exception):
    """Parsing a document took longer than the limit."""


class ParseProcess:
    """Parses documents in a child process that is killed when one outlasts `time_limit_s`."""

    def __init__(self, time_limit_s: float) -> None:
        self.time_limit_s = time_limit_s
        self._child: subprocess.Popen[bytes] | None = None

    def parse(self, content: str, content_type: str) -> str:
        """Returns the text to chunk, as `parsing.parse` does; raises ParseTimeout."""
        if content_type != parsing.HTML:
            return parsing.parse(content, content_type)
        child = self._running()
        assert child.stdin is not None and child.stdout is not None
        payload = content.encode("utf-8", "surrogatepass")
        try:
            child.stdin.write(_LENGTH.pack(len(payload)))
            child.stdin.write(payload)
            child.stdin.flush()
            deadline = time.monotonic() + self.time_limit_s
            status, length = _REPLY.unpack(_read(child.stdout, _REPLY.size, deadline))
            body = _read(child.stdout, length, deadline).decode("utf-8", "surrogatepass")
        except ParseTimeout:
            self.close()
            raise ParseTimeout(f"parsing took longer than {self.time_limit_s:g} s") from None
        except (OSError, EOFError) as error:
            self.close()
            raise RuntimeError(f"the parser process ended: {error}") from None
        except BaseException:  # interrupted (a task's soft time limit): its reply never comes
            self.close()
            raise
        if status != _OK:
            raise ValueError(body)
        return body

    def close(self) -> None:
        """Stops the child, if one runs."""
        child, self._child = self._child, None
        if child is None:
            return
        child.kill()
        child.wait()
        for stream in (child.stdin, child.stdout):
            if stream is not None:
                stream.close()

    def _running(self) -> subprocess.Popen[bytes]:
        if self._child is None or self._child.poll() is not None:
            self.close()
            root = str(Path(__file__).resolve().parent.parent)
            path = os.environ.get("PYTHONPATH")
            env = {**os.environ, "PYTHONPATH": root + (os.pathsep + path if path else "")}
            self._child = subprocess.Popen(
                [sys.executable, "-m", "workers.parse_process"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=env,
            )
        return self._child


def _read(stream: IO[bytes], size: int, deadline: float) -> bytes:
    """Reads exactly `size` bytes before `deadline`."""
    fd = stream.fileno()
    chunks: list[bytes] = []
    left = size
    while left:
        wait = deadline - time.monotonic()
        if wait <= 0 or not select.select([fd], [], [], wait)[0]:
            raise ParseTimeout
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise EOFError("no reply")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _serve(requests: IO[bytes], replies: IO[bytes]) -> None:
    """The child: parses one HTML document per request until its input ends."""
    while True:
        header = requests.read(_LENGTH.size)
        if len(header) < _LENGTH.size:
            return
        (length,) = _LENGTH.unpack(header)
        content = requests.read(length).decode("utf-8", "surrogatepass")
        try:
            status, reply = _OK, parsing.parse(content, parsing.HTML)
        except Exception as error:  # the document's problem: reported, the child lives on
            status, reply = _ERROR, f"{type(error).__name__}: {error}"
        body = reply.encode("utf-8", "surrogatepass")
        replies.write(_REPLY.pack(status, len(body)))
        replies.write(body)
        replies.flush()


if __name__ == "__main__":
    _serve(sys.stdin.buffer, sys.stdout.buffer)
