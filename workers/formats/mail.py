"""E-mail messages (`.eml`, RFC 5322 with MIME) with the standard library's parser: the subject
is the title; subject, from, to, cc, date and message id go into the metadata; the body is the
plain text part, else the HTML one as text. Attachments are returned as files of their own,
which ingestion makes into documents (ids derived from the message's)."""

from __future__ import annotations

from dataclasses import dataclass
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from typing import Any

from workers.formats.extracted import Extracted, TextBuilder
from workers.parsing import html_to_text

MAX_ATTACHMENTS = 100


@dataclass(frozen=True)
class Attachment:
    """A file attached to a message."""

    filename: str
    data: bytes


def _header(message: EmailMessage, name: str) -> str | None:
    try:
        value = message.get(name)
    except (ValueError, IndexError):  # a header the parser cannot decode
        return None
    text = " ".join(str(value).split()) if value is not None else ""
    return text or None


def parse_mail(data: bytes) -> tuple[Extracted, list[Attachment]]:
    """The message's text and metadata, and its attachments."""
    message = BytesParser(policy=policy.default).parsebytes(data)
    assert isinstance(message, EmailMessage)
    if not message.keys():
        raise ValueError("the message has no headers")
    metadata: dict[str, Any] = {}
    for name in ("subject", "from", "to", "cc", "message-id"):
        value = _header(message, name)
        if value is not None:
            metadata[name.replace("-", "_")] = value
    date = _header(message, "date")
    if date is not None:
        try:
            metadata["date"] = parsedate_to_datetime(date).isoformat()
        except (TypeError, ValueError):
            metadata["date"] = date
    builder = TextBuilder()
    heading = [
        f"{key.title()}: {metadata[key]}" for key in ("from", "to", "date") if key in metadata
    ]
    builder.add("\n".join(heading))
    body = message.get_body(preferencelist=("plain", "html"))
    if body is not None:
        content = body.get_content()
        text = content if isinstance(content, str) else ""
        if body.get_content_subtype() == "html":
            text = html_to_text(text)
        builder.add(text.replace("\r\n", "\n"))
    attachments: list[Attachment] = []
    for number, part in enumerate(message.iter_attachments(), start=1):
        if number > MAX_ATTACHMENTS:
            break
        if part.get_content_type() == "message/rfc822":  # a forwarded message: an .eml
            inner = part.get_payload()
            message_part = inner[0] if isinstance(inner, list) and inner else None
            payload: object = message_part.as_bytes() if isinstance(message_part, Message) else None
            default = f"message-{number}.eml"
        else:
            payload = part.get_payload(decode=True)
            default = f"attachment-{number}"
        if not isinstance(payload, bytes) or not payload:
            continue
        filename = (part.get_filename() or default).replace("/", "_")
        attachments.append(Attachment(f"{number}-{filename}", payload))
    if attachments:
        metadata["attachments"] = [a.filename for a in attachments]
    return builder.build(metadata.get("subject"), **metadata), attachments
