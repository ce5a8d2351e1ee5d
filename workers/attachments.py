"""Files found inside others (a message's attachments) become documents of their own: kept as
originals, ids derived from the parent's (`<parent id>/attachments/<n>-<filename>`), readable by
whoever may read the parent, and queued like an upload. Formats Groundwire does not read are
left out and named in the parent's metadata."""

from __future__ import annotations

import hashlib
import io
import re

from sqlalchemy.orm import Session

from services import originals
from services.documents import Accepted, Incoming, accept
from services.file_types import HEAD_BYTES, SUPPORTED, sniff
from workers.claims import Claimed
from workers.formats.mail import Attachment

MAX_NAME_CHARS = 200
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]")


def attachment_id(parent: str, filename: str) -> str:
    """The id of an attachment of document `parent`."""
    name = _UNSAFE.sub("_", filename).strip() or "attachment"
    if name in (".", ".."):
        name = f"_{name}"
    return f"{parent}/attachments/{name[:MAX_NAME_CHARS]}"


def accept_attachments(
    session: Session, parent: Claimed, attachments: list[Attachment]
) -> tuple[Accepted | None, list[str]]:
    """Accepts the attachments Groundwire can read; returns the outcome and the names skipped."""
    incoming: list[Incoming] = []
    skipped: list[str] = []
    for attachment in attachments:
        data = attachment.data
        kind = sniff(data[:HEAD_BYTES], attachment.filename, io.BytesIO(data))
        if kind not in SUPPORTED:
            skipped.append(attachment.filename)
            continue
        sha256 = hashlib.sha256(data).digest()
        original_id = originals.keep(
            session, parent.workspace_id, sha256, len(data), io.BytesIO(data)
        )
        incoming.append(
            Incoming(
                external_id=attachment_id(parent.external_id, attachment.filename),
                title=None,
                source=attachment.filename,
                metadata={
                    "attached_to": parent.external_id,
                    "filename": attachment.filename,
                    "content_type": kind,
                    "bytes": len(data),
                    "sha256": sha256.hex(),
                },
                access=parent.access,
                content="",
                content_type=kind,
                content_hash=f"file:{kind}:{sha256.hex()}",
                original_id=original_id,
                size=len(data),
            )
        )
    if not incoming:
        return None, skipped
    return accept(session, parent.collection_id, incoming), skipped
