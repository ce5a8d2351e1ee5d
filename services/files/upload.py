"""Reading a `multipart/form-data` upload as it streams in: each file part goes to a temporary
file on disk (hashed and counted on the way), each small form field to memory.

Nothing is held whole: python-multipart (Apache-2.0, the parser Starlette uses) hands over the
body in the pieces the server received, and each piece is written out at once. A file that
passes `max_file_bytes` stops the read there with 413; its temporary file, like every other,
is unlinked from the start, so nothing of a refused or abandoned upload stays on disk.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import IO

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect

from services.api.errors import ApiError
from services.file_types import HEAD_BYTES

MAX_FILES = 100
MAX_FIELD_BYTES = 1024 * 1024
MAX_EPILOGUE_BYTES = 64 * 1024
FIELDS = ("metadata", "access", "id")


@dataclass
class ReceivedFile:
    """One uploaded file: its name, size, SHA-256 and first bytes; the bytes in `spool`."""

    filename: str
    spool: IO[bytes]
    size: int = 0
    head: bytes = b""
    sha256: bytes = b""
    declared_type: str | None = None

    @property
    def name(self) -> str:
        """The file's own name, without any folders the filename carries."""
        return self.filename.replace("\\", "/").rsplit("/", 1)[-1] or self.filename

    def close(self) -> None:
        self.spool.close()


@dataclass
class Upload:
    """The files and form fields of one request."""

    files: list[ReceivedFile] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)

    def close(self) -> None:
        for received in self.files:
            received.close()


def boundary_of(content_type: str) -> bytes:
    """The multipart boundary of a Content-Type, or ApiError 415 when it is not multipart."""
    media, options = parse_options_header(content_type)
    if media != b"multipart/form-data":
        raise ApiError(
            415,
            "unsupported_media_type",
            "upload files as multipart/form-data, one part named 'file' per file",
        )
    boundary = options.get(b"boundary")
    if not boundary:
        raise ApiError(400, "invalid_multipart", "the multipart Content-Type has no boundary")
    return boundary


class _Receiver:
    """python-multipart's callbacks: where each part's headers and data go."""

    def __init__(self, max_file_bytes: int, max_total_bytes: int) -> None:
        self.max_file_bytes = max_file_bytes
        self.max_total_bytes = max_total_bytes
        self.total = 0
        self.upload = Upload()
        self._header_name = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._file: ReceivedFile | None = None
        self._hash = hashlib.sha256()
        self._field: str | None = None
        self._field_data = bytearray()
        self.complete = False

    def on_end(self) -> None:
        self.complete = True

    def on_part_begin(self) -> None:
        self._headers = {}
        self._file = None
        self._field = None
        self._field_data = bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._header_name.strip().lower()] = self._header_value.strip()
        self._header_name = self._header_value = b""

    def on_headers_finished(self) -> None:
        disposition, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        if disposition != b"form-data" or b"name" not in options:
            raise ApiError(400, "invalid_multipart", "a part has no form-data name")
        name = _text(options[b"name"], "a part's name")
        if name == "file":
            filename = options.get(b"filename")
            if not filename:
                raise ApiError(400, "invalid_multipart", "a 'file' part has no filename")
            if len(self.upload.files) >= MAX_FILES:
                raise ApiError(413, "too_many_files", f"at most {MAX_FILES} files per request")
            declared = self._headers.get(b"content-type")
            self._file = ReceivedFile(
                filename=_filename(filename),
                spool=tempfile.TemporaryFile(),  # noqa: SIM115 (closed with the upload)
                declared_type=declared.decode("latin-1") if declared else None,
            )
            self.upload.files.append(self._file)
            self._hash = hashlib.sha256()
        elif name in FIELDS:
            if name in self.upload.fields:
                raise ApiError(400, "invalid_multipart", f"the form field {name!r} appears twice")
            self._field = name
        else:
            raise ApiError(
                400,
                "invalid_multipart",
                f"unknown form field {name!r}: send 'file' parts and optionally"
                " 'metadata', 'access' and 'id'",
            )

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        piece = data[start:end]
        if self._file is not None:
            received = self._file
            received.size += len(piece)
            self.total += len(piece)
            if self.total > self.max_total_bytes:
                raise ApiError(
                    413,
                    "upload_too_large",
                    f"the request's files are over the limit of {self.max_total_bytes} bytes",
                    {"Connection": "close"},
                )
            if received.size > self.max_file_bytes:
                raise ApiError(
                    413,
                    "file_too_large",
                    f"{received.filename!r} is over the limit of {self.max_file_bytes} bytes",
                    {"Connection": "close"},
                )
            if len(received.head) < HEAD_BYTES:
                received.head += piece[: HEAD_BYTES - len(received.head)]
            self._hash.update(piece)
            received.spool.write(piece)
        elif self._field is not None:
            self._field_data += piece
            if len(self._field_data) > MAX_FIELD_BYTES:
                raise ApiError(
                    413, "field_too_large", f"the form field {self._field!r} is over 1 MiB"
                )

    def on_part_end(self) -> None:
        if self._file is not None:
            self._file.sha256 = self._hash.digest()
            self._file.spool.seek(0)
        elif self._field is not None:
            self.upload.fields[self._field] = _text(bytes(self._field_data), self._field)


def _text(value: bytes, what: str) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "invalid_multipart", f"{what} is not UTF-8") from None


def _filename(raw: bytes) -> str:
    """The part's filename as the client sent it (a path, from a client that sends ids)."""
    name = _text(raw, "a filename").strip()
    if not name.replace("/", "").strip(".") or "\x00" in name:
        raise ApiError(400, "invalid_multipart", f"unusable filename {name!r}")
    return name


async def receive_upload(
    content_type: str, stream: AsyncIterator[bytes], max_file_bytes: int, max_total_bytes: int
) -> Upload:
    """Reads a whole multipart body from `stream`; the caller closes the returned upload."""
    receiver = _Receiver(max_file_bytes, max_total_bytes)
    parser = MultipartParser(
        boundary_of(content_type),
        {
            "on_part_begin": receiver.on_part_begin,
            "on_part_data": receiver.on_part_data,
            "on_part_end": receiver.on_part_end,
            "on_header_field": receiver.on_header_field,
            "on_header_value": receiver.on_header_value,
            "on_header_end": receiver.on_header_end,
            "on_headers_finished": receiver.on_headers_finished,
            "on_end": receiver.on_end,
        },
    )
    try:
        after = 0
        async for chunk in stream:
            if receiver.complete:  # past the closing boundary: nothing more is read for long
                after += len(chunk)
                if after > MAX_EPILOGUE_BYTES:
                    raise ApiError(
                        400, "invalid_multipart", "data goes on after the closing boundary"
                    )
            elif chunk:
                parser.write(chunk)
        parser.finalize()
        if not receiver.complete:
            raise ApiError(
                400, "invalid_multipart", "the multipart body ends before its closing boundary"
            )
    except ClientDisconnect:
        receiver.upload.close()
        raise ApiError(400, "incomplete_upload", "the client left before the body ended") from None
    except MultipartParseError as error:
        receiver.upload.close()
        raise ApiError(400, "invalid_multipart", f"malformed multipart body: {error}") from None
    except BaseException:
        receiver.upload.close()
        raise
    if not receiver.upload.files:
        receiver.upload.close()
        raise ApiError(422, "no_files", "the request has no part named 'file'")
    return receiver.upload
