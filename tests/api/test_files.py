"""Uploading files: the multipart contract, originals kept content-addressed and deleted with
their last document, and every mistake a 4xx that keeps nothing."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import psycopg
import pytest

from services.config import Settings
from tests.support import files


def upload(api: Any, name: str, *parts: tuple[str, bytes], **fields: Any) -> Any:
    """Posts the files and form fields as one multipart/form-data body."""
    form = [(k, (None, v if isinstance(v, str) else json.dumps(v))) for k, v in fields.items()]
    return api.post(
        f"/v1/collections/{name}/files",
        files=[("file", (filename, content)) for filename, content in parts] + form,
    )


def originals(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM originals").fetchone()
        assert row is not None
        return int(row[0])


def test_upload_answers_like_ingestion_and_keeps_the_original(
    api: Any, make_collection: Any
) -> None:
    name = make_collection()
    pdf, docx = files.pdf(), files.docx_file()
    answer = upload(
        api, name, ("handbook.pdf", pdf), ("notes.docx", docx), metadata={"team": "ops"}
    )
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert set(body) == {"batch_id", "documents"}
    assert [(d["id"], d["status"], d["version"]) for d in body["documents"]] == [
        ("handbook.pdf", "queued", 1),
        ("notes.docx", "queued", 1),
    ]
    document = api.get(f"/v1/collections/{name}/documents/handbook.pdf").json()
    assert document["content_type"] == "application/pdf"
    metadata = {k: v for k, v in document["metadata"].items() if k != "pages"}  # a worker's
    assert metadata == {
        "team": "ops",
        "filename": "handbook.pdf",
        "content_type": "application/pdf",
        "bytes": len(pdf),
        "sha256": hashlib.sha256(pdf).hexdigest(),
    }
    original = api.get(f"/v1/collections/{name}/documents/handbook.pdf/original")
    assert original.status_code == 200 and original.content == pdf
    assert original.headers["content-type"] == "application/pdf"
    assert original.headers["content-disposition"] == "attachment; filename*=UTF-8''handbook.pdf"

    again = upload(api, name, ("handbook.pdf", pdf))  # byte-identical: unchanged
    assert [(d["status"], d["version"]) for d in again.json()["documents"]] == [("unchanged", 1)]
    changed = upload(api, name, ("handbook.pdf", files.pdf(["A new first page."])))
    assert [(d["status"], d["version"]) for d in changed.json()["documents"]] == [("queued", 2)]


def test_identical_bytes_are_stored_once_and_go_with_their_last_document(
    api: Any, make_collection: Any, database_url: str
) -> None:
    name = make_collection()
    before = originals(database_url)
    data = files.pdf(["Stored once, whatever the number of documents."], title="Once")
    assert upload(api, name, ("a.pdf", data)).status_code == 202
    assert upload(api, name, ("b.pdf", data), id="copies/b").status_code == 202
    assert originals(database_url) == before + 1
    assert api.delete(f"/v1/collections/{name}/documents/a.pdf").status_code == 204
    assert originals(database_url) == before + 1
    assert api.get(f"/v1/collections/{name}/documents/copies/b/original").content == data
    # replaced by text through the documents API: the file's bytes go
    replaced = api.post(
        f"/v1/collections/{name}/documents", json={"documents": [{"id": "copies/b", "text": "t"}]}
    )
    assert replaced.status_code == 202
    assert originals(database_url) == before
    missing = api.get(f"/v1/collections/{name}/documents/copies/b/original")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "no_original"

    other = make_collection()
    assert upload(api, other, ("c.pdf", data)).status_code == 202
    assert originals(database_url) == before + 1
    assert api.delete(f"/v1/collections/{other}").status_code == 204
    assert originals(database_url) == before  # with its collection, too


@pytest.mark.parametrize(
    ("parts", "fields", "status", "code"),
    [
        ([("a.pdf", b"")], {}, 422, "empty_file"),
        ([("tool.exe", b"MZ\x90\x00" + bytes(500))], {}, 415, "unsupported_file"),
        ([("a.txt", b"x"), ("b.txt", b"y")], {"id": "both"}, 422, "invalid_id"),
        ([("a.txt", b"x")], {"id": "a/../b"}, 422, "invalid_id"),
        ([("a.txt", b"x")], {"metadata": "[1, 2]"}, 422, "invalid_metadata"),
        ([("a.txt", b"x")], {"metadata": "{not json"}, 400, "invalid_json"),
        ([("a.txt", b"x")], {"access": '{"group": "hr"}'}, 422, "invalid_access"),
        ([("a.txt", b"x")], {"colour": "red"}, 400, "invalid_multipart"),
        ([("a.txt", b"x"), ("a.txt", b"y")], {}, 422, "duplicate_id"),
        ([], {"metadata": "{}"}, 422, "no_files"),
    ],
)
def test_mistakes_are_4xx_and_keep_nothing(
    api: Any,
    make_collection: Any,
    database_url: str,
    parts: Any,
    fields: Any,
    status: int,
    code: str,
) -> None:
    name = make_collection()
    before = originals(database_url)
    answer = upload(api, name, *parts, **fields)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["code"] == code
    assert api.get(f"/v1/collections/{name}").json()["documents"]["queued"] == 0
    assert originals(database_url) == before


def test_not_multipart_is_415(api: Any, make_collection: Any) -> None:
    name = make_collection()
    answer = api.post(f"/v1/collections/{name}/files", json={"file": "x"})
    assert answer.status_code == 415 and answer.json()["error"]["code"] == "unsupported_media_type"


def test_a_file_over_the_limit_is_413_and_nothing_is_kept(
    settings: Settings, admin_headers: dict[str, str], database_url: str
) -> None:
    from fastapi.testclient import TestClient

    from services.app import create_app

    small = settings.model_copy(update={"max_file_bytes": 50_000})
    with TestClient(create_app(small), headers=admin_headers) as client:
        name = f"limit-{hashlib.sha1(str(id(client)).encode()).hexdigest()[:8]}"
        assert (
            client.post("/v1/collections", json={"name": name, "embedder": "hash"}).status_code
            == 201
        )
        before = originals(database_url)
        answer = upload(client, name, ("big.txt", b"word " * 20_000), ("ok.txt", b"fine"))
        assert answer.status_code == 413 and answer.json()["error"]["code"] == "file_too_large"
        assert answer.headers["connection"] == "close"
        assert originals(database_url) == before
        assert client.get(f"/v1/collections/{name}").json()["documents"]["queued"] == 0


def test_a_body_cut_short_is_400_and_keeps_nothing(
    api: Any, make_collection: Any, database_url: str
) -> None:
    name = make_collection()
    before = originals(database_url)
    cut = b'--XX\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\nhello wor'
    answer = api.post(
        f"/v1/collections/{name}/files",
        content=cut,
        headers={"content-type": "multipart/form-data; boundary=XX"},
    )
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid_multipart"
    assert "closing boundary" in answer.json()["error"]["message"]
    assert originals(database_url) == before


def test_ids_that_no_url_could_name_are_refused(api: Any, make_collection: Any) -> None:
    name = make_collection()
    for id_ in ("reports/original", "a/../b"):
        answer = upload(api, name, ("a.txt", b"x"), id=id_)
        assert answer.status_code == 422 and answer.json()["error"]["code"] == "invalid_id", id_
        posted = api.post(
            f"/v1/collections/{name}/documents", json={"documents": [{"id": id_, "text": "x"}]}
        )
        assert posted.status_code == 422 and posted.json()["error"]["code"] == "invalid_id"
    assert upload(api, name, ("original", b"a file named original")).status_code == 202


def test_json_nested_past_any_stack_is_a_4xx(api: Any, make_collection: Any) -> None:
    name = make_collection()
    deep = "[" * 100_000 + "]" * 100_000
    answer = upload(api, name, ("a.txt", b"x"), metadata=deep)
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid_json"
    body = '{"documents": [{"text": "\\ud800", "metadata": {"k": ' + deep + "}}]}"
    posted = api.post(
        f"/v1/collections/{name}/documents",
        content=body.encode(),
        headers={"content-type": "application/json"},
    )
    assert 400 <= posted.status_code < 500, posted.text
