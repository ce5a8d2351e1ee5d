"""Files found inside others (a message's attachments) become documents of their own: kept as
originals, ids derived from the parent's (`<parent id>/attachments/<n>-<filename>`), readable by
whoever may read the parent (its access list follows the parent's, services/documents.py), and
queued like an upload; they go when the parent is deleted or a new version of it no longer
holds them. Only a parse that still holds the parent's lease adds them, and only one level
deep: an attached message's own attachments stay inside it. Formats Groundwire does not read
are left out and named in the parent's metadata."""

from __future__ import annotations

import hashlib
import io
import re
import uuid

from sqlalchemy import delete, text
from sqlalchemy.orm import Session

from services import originals
from services.documents import Accepted, Incoming, accept
from services.file_types import HEAD_BYTES, SUPPORTED, sniff
from services.models import Document
from workers.claims import Claimed
from workers.formats.mail import Attachment

MAX_NAME_CHARS = 200
MAX_ID_CHARS = 512
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]")


def attachment_id(parent: str, filename: str) -> str | None:
    """The id of an attachment of document `parent`, within the id limit (None: no room)."""
    name = _UNSAFE.sub("_", filename).strip() or "attachment"
    if name in (".", ".."):
        name = f"_{name}"
    prefix = f"{parent}/attachments/"
    room = min(MAX_NAME_CHARS, MAX_ID_CHARS - len(prefix))
    if room < 8:
        return None
    document_id = prefix + name[:room]
    if document_id.rsplit("/", 1)[-1] == "original":
        document_id += "_"
    return document_id


_OWNED = text(
    "SELECT 1 FROM documents WHERE id = :id AND version = :version AND lease_owner = :owner"
    " FOR UPDATE"
)
_STALE = text(
    "SELECT id FROM documents WHERE collection_id = :collection"
    " AND metadata ? 'attached_to' AND metadata ->> 'attached_to' = :parent"
    " AND NOT (external_id = ANY(:kept))"
)


def accept_attachments(
    session: Session, parent: Claimed, owner: uuid.UUID, attachments: list[Attachment]
) -> tuple[Accepted | None, list[str]]:
    """Accepts the attachments Groundwire can read; returns the outcome and what was left out
    (with why). Nothing happens unless `owner` still holds the parent's version."""
    if (
        session.execute(
            _OWNED, {"id": parent.id, "version": parent.version, "owner": owner}
        ).first()
        is None
    ):
        return None, []
    if parent.attached:
        return None, [f"{a.filename} (inside an attachment)" for a in attachments]
    incoming: list[Incoming] = []
    skipped: list[str] = []
    for attachment in attachments:
        data = attachment.data
        document_id = attachment_id(parent.external_id, attachment.filename)
        kind = sniff(data[:HEAD_BYTES], attachment.filename, io.BytesIO(data))
        if document_id is None or kind not in SUPPORTED:
            why = "not a format Groundwire reads" if document_id else "the id would be too long"
            skipped.append(f"{attachment.filename} ({why})")
            continue
        sha256 = hashlib.sha256(data).digest()
        original_id = originals.keep(
            session, parent.workspace_id, sha256, len(data), io.BytesIO(data)
        )
        incoming.append(
            Incoming.file(
                document_id,
                attachment.filename,
                kind,
                len(data),
                sha256,
                original_id,
                parent.access,
                {"attached_to": parent.external_id},
            )
        )
    stale = session.execute(
        _STALE,
        {
            "collection": parent.collection_id,
            "parent": parent.external_id,
            "kept": [i.external_id for i in incoming],
        },
    ).scalars()
    for document_id in list(stale):  # attachments an earlier version of the message had
        session.execute(delete(Document).where(Document.id == document_id))
    if not incoming:
        return None, skipped
    return accept(session, parent.collection_id, incoming), skipped
