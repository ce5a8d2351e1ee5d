"""Parsing HTML and files in a child process, under a time and memory limit per document.

Lexbor, PDFium and the OCR models are C and C++: a signal cannot interrupt them, and a document
that makes them slow, greedy or crash would otherwise hold the worker, and every document
batched with it, for as long as it likes. Each worker process keeps one child that parses a
document at a time, with its address space capped (`memory_bytes`); one that is not done
within the limit is killed, its document fails with `parse`, and the next document gets a new
child. Plain text and Markdown sent as text need no parsing and never leave the process.

The protocol on the child's standard input and output: the child first writes one byte, `R`,
once its imports are done (the time limit counts parsing, not the start). A request is an
8-byte length and that many bytes of a JSON header (`{"kind": "html"}` or `{"kind": "file",
"content_type", "filename", "options"}`), then an 8-byte length and the payload (UTF-8 HTML,
or the file's bytes). A reply is a status byte (0: a result, 1: an error message, 2: a busy
provider, as JSON), an 8-byte length and that many bytes of UTF-8 (the text, or the parsed
file as JSON).
"""

from __future__ import annotations

import base64
import json
import os
import resource
import select
import struct
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from workers import parsing
from workers.formats import Options, Parsed, extract
from workers.formats.extracted import Extracted, ProviderBusy
from workers.formats.mail import Attachment

_LENGTH = struct.Struct("!Q")
_REPLY = struct.Struct("!BQ")
_OK, _ERROR, _BUSY = 0, 1, 2
_READY = b"R"  # the child's first byte, once it has imported what it parses with
STARTUP_LIMIT_S = 60.0


class ParseTimeout(Exception):
    """Parsing a document took longer than the limit."""


class ParseProcess:
    """Parses documents in a child process that is killed when one outlasts `time_limit_s`."""

    def __init__(self, time_limit_s: float, memory_bytes: int | None = None) -> None:
        self.time_limit_s = time_limit_s
        self.memory_bytes = memory_bytes
        self._child: subprocess.Popen[bytes] | None = None

    def parse(self, content: str, content_type: str) -> str:
        """Returns the text to chunk, as `parsing.parse` does; raises ParseTimeout."""
        if content_type != parsing.HTML:
            return parsing.parse(content, content_type)
        return self._ask({"kind": "html"}, content.encode("utf-8", "surrogatepass"))

    def parse_file(self, data: bytes, content_type: str, filename: str, options: Options) -> Parsed:
        """Parses a file, as `workers.formats.extract` does; raises ParseTimeout."""
        header = {
            "kind": "file",
            "content_type": content_type,
            "filename": filename,
            "options": options.__dict__,
        }
        return _parsed_from_json(json.loads(self._ask(header, data)))

    def _ask(self, header: Mapping[str, object], payload: bytes) -> str:
        child = self._running()
        assert child.stdin is not None and child.stdout is not None
        head = json.dumps(header).encode()
        try:
            child.stdin.write(_LENGTH.pack(len(head)) + head + _LENGTH.pack(len(payload)))
            child.stdin.write(payload)
            child.stdin.flush()
            deadline = time.monotonic() + self.time_limit_s
            status, length = _REPLY.unpack(_read(child.stdout, _REPLY.size, deadline))
            body = _read(child.stdout, length, deadline).decode("utf-8", "surrogatepass")
        except ParseTimeout:
            self.close()
            raise ParseTimeout(f"parsing took longer than {self.time_limit_s:g} s") from None
        except (OSError, EOFError) as error:
            code = _exit_code(self._child)
            self.close()
            if code is not None and code != 0:
                how = f"signal {-code}" if code < 0 else f"exit status {code}"
                raise ValueError(
                    f"the parser process crashed on this file ({how}): it may need more memory"
                    " than the parser may use (GROUNDWIRE_PARSE_MEMORY_BYTES), or be malformed"
                ) from None
            raise RuntimeError(f"the parser process ended: {error}") from None
        except BaseException:  # interrupted (a task's soft time limit): its reply never comes
            self.close()
            raise
        if status == _BUSY:
            busy = json.loads(body)
            raise ProviderBusy(busy["message"], retry_after=busy["retry_after"])
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
            if self.memory_bytes is not None:
                env[_MEMORY_VARIABLE] = str(self.memory_bytes)
            child = subprocess.Popen(
                [sys.executable, "-m", "workers.parse_process"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=env,
            )
            self._child = child
            assert child.stdout is not None
            # Its imports are not the document's time: the limit starts once it says ready.
            try:
                ready = _read(child.stdout, 1, time.monotonic() + STARTUP_LIMIT_S)
            except (ParseTimeout, EOFError, OSError):
                self.close()
                raise RuntimeError("the parser process did not start") from None
            if ready != _READY:
                self.close()
                raise RuntimeError("the parser process did not start")
        return self._child


_MEMORY_VARIABLE = "GROUNDWIRE_PARSER_MEMORY_BYTES"


def _exit_code(child: subprocess.Popen[bytes] | None) -> int | None:
    """The child's exit status once its output has ended (it may take a moment to go)."""
    if child is None:
        return None
    try:
        return child.wait(timeout=2)
    except subprocess.TimeoutExpired:
        return None


def _parsed_to_json(parsed: Parsed) -> dict[str, object]:
    return {
        "extracted": parsed.extracted.to_json(),
        "attachments": [
            [a.filename, base64.b64encode(a.data).decode()] for a in parsed.attachments
        ],
    }


def _parsed_from_json(value: dict[str, object]) -> Parsed:
    attachments = value.get("attachments") or []
    assert isinstance(attachments, list) and isinstance(value["extracted"], dict)
    return Parsed(
        Extracted.from_json(value["extracted"]),
        [Attachment(str(name), base64.b64decode(data)) for name, data in attachments],
    )


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
    """The child: says it is ready, then parses one document per request until its input
    ends."""
    replies.write(_READY)
    replies.flush()
    while True:
        header = _read_message(requests)
        if header is None:
            return
        payload = _read_message(requests) or b""
        try:
            request = json.loads(header)
            if request["kind"] == "html":
                content = payload.decode("utf-8", "surrogatepass")
                reply = parsing.parse(content, parsing.HTML)
            else:
                options = Options(**request["options"])
                parsed = extract(payload, request["content_type"], request["filename"], options)
                reply = json.dumps(_parsed_to_json(parsed))
            status = _OK
        except ProviderBusy as busy:
            status = _BUSY
            reply = json.dumps({"message": str(busy), "retry_after": busy.retry_after})
        except MemoryError:
            status, reply = _ERROR, "parsing the file needed more memory than the parser may use"
        except Exception as error:  # the document's problem: reported, the child lives on
            status, reply = (
                _ERROR,
                str(error)
                if isinstance(error, ValueError)
                else (f"{type(error).__name__}: {error}"),
            )
        del payload
        body = reply.encode("utf-8", "surrogatepass")
        replies.write(_REPLY.pack(status, len(body)))
        replies.write(body)
        replies.flush()


def _read_message(stream: IO[bytes]) -> bytes | None:
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        return None
    (length,) = _LENGTH.unpack(head)
    return stream.read(length)


def _limit_memory() -> None:
    limit = os.environ.get(_MEMORY_VARIABLE)
    if limit:
        resource.setrlimit(resource.RLIMIT_AS, (int(limit), int(limit)))


if __name__ == "__main__":
    _limit_memory()
    _serve(sys.stdin.buffer, sys.stdout.buffer)
