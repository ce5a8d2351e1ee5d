"""Files of every format through real workers: uploaded, parsed by content, chunked, embedded
and found again, with titles from the files and citations that point at pages."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.test_files import upload
from tests.support import files
from tests.support.api import document, query, wait_finished, wait_status

pytestmark = pytest.mark.usefixtures("worker")

# filename, bytes, the title parsing finds, a sentence in it, the page it is on (or None)
CASES = [
    ("handbook.txt", files.pdf(), "Harbour Handbook", files.PAGES[2], {"page": 3}),
    (
        "scan.pdf",
        files.scanned_pdf([["Nothing here but tide tables"], ["Moorings are free in winter"]]),
        "Nothing here but tide tables",  # no title in its metadata: its first line
        "Moorings are free in winter",
        {"page": 2},
    ),
    ("receipt.png", files.image(["Invoice 4471 was paid in full"]), "receipt.png",
     "Invoice 4471 was paid in full", {"page": 1}),
    ("notes.docx", files.docx_file(), "Ferry Timetable Notes",
     "The winter ferry leaves the harbour twice a day.", None),
    ("deck.pptx", files.pptx_file(), "Quarterly results",
     "Forty copper lanterns were restored this year.", {"page": 2}),
    ("stock.xlsx", files.xlsx_file(), "Harbour inventory",
     "Item: granite slab; Quantity: 12; Location: quarry yard", None),
    ("log.odt", files.odt_file(), "Lighthouse log",
     "The keeper trimmed the wick at midnight.", None),
    ("inspection.eml", files.eml_file(), "Pier inspection results",
     "The inspection found cracks in the eastern granite pier.", None),
    ("cafe.txt", "Caf\xe9 cr\xe8me au port, ferm\xe9 le dimanche.".encode("latin-1"), "cafe.txt",
     "Caf\xe9 cr\xe8me au port, ferm\xe9 le dimanche.", None),
    ("times.html", b"<title>Ferry times</title><h1>Times</h1><p>Boats leave hourly.</p>",
     "Ferry times", "Boats leave hourly.", None),
    ("rows.csv", b"vessel,berth\nAurora,North quay\n", "rows.csv",
     "vessel: Aurora; berth: North quay", None),
]  # fmt: skip


def test_every_format_is_parsed_found_and_cited(api: Any, make_collection: Any) -> None:
    name = make_collection()
    answer = upload(api, name, *[(filename, data) for filename, data, *_ in CASES])
    assert answer.status_code == 202, answer.text
    wait_finished(api, answer.json()["batch_id"], timeout=180)
    for filename, _, title, sentence, location in CASES:
        stored = document(api, name, filename)
        assert stored["status"] == "done", stored
        assert stored["title"] == title, filename
        results = query(api, name, sentence, mode="keyword", k=3)["results"]
        assert results, filename
        best = results[0]
        assert best["document_id"] == filename and sentence in best["text"], (filename, best)
        assert best["location"] == location and best["chunk"]["location"] == location
    assert document(api, name, "handbook.txt")["metadata"]["pages"] == 3
    assert document(api, name, "deck.pptx")["metadata"]["pages"] == 3
    mail = document(api, name, "inspection.eml")["metadata"]
    assert mail["from"] == "Harbour Master <master@harbour.example>"
    assert mail["date"] == "2026-12-01T09:30:00+00:00"

    context = api.post(
        f"/v1/collections/{name}/context", json={"query": "copper lanterns restored"}
    ).json()
    cited = {c["document_id"]: c for c in context["citations"]}
    assert cited["deck.pptx"]["location"] == {"page": 2}
    assert cited["deck.pptx"]["chunk"]["location"] == {"page": 2}


def test_a_byte_identical_upload_keeps_what_parsing_found(api: Any, make_collection: Any) -> None:
    name = make_collection()
    data = files.pdf()
    first = upload(api, name, ("guide.pdf", data), metadata={"team": "ops"})
    wait_finished(api, first.json()["batch_id"])
    again = upload(api, name, ("guide.pdf", data), metadata={"team": "port"})
    assert again.json()["documents"][0]["status"] == "unchanged"
    stored = document(api, name, "guide.pdf")
    assert stored["title"] == "Harbour Handbook" and stored["version"] == 1
    assert stored["metadata"]["pages"] == 3 and stored["metadata"]["team"] == "port"


@pytest.mark.parametrize(
    ("filename", "data", "reason"),
    [
        ("locked.pdf", files.pdf(encrypt="secret"), "encrypted"),
        ("cut.pdf", files.pdf()[:500], "cannot be opened"),
        ("bomb.docx", files.zip_bomb_docx(), "decompression bomb"),
        ("blank.pdf", files.blank_pdf(50), "no visible text"),
        ("broken.png", files.image(["x"])[:80], "cannot be read"),
    ],
)
def test_hostile_files_fail_alone_with_a_reason(
    api: Any, make_collection: Any, filename: str, data: bytes, reason: str
) -> None:
    name = make_collection()
    answer = upload(api, name, (filename, data), ("fine.txt", b"An ordinary harbour note."))
    batch = wait_finished(api, answer.json()["batch_id"], allow_failed=True)
    assert batch["failed"] == 1 and batch["done"] == 1, batch
    failed = document(api, name, filename)
    assert failed["status"] == "failed" and failed["error_class"] == "parse", failed
    assert reason in failed["error"], failed["error"]


def test_attachments_become_documents_of_their_own(api: Any, make_collection: Any) -> None:
    name = make_collection()
    report = files.pdf(["The attached survey counts forty moorings."], title="Mooring survey")
    message = files.eml_file(("survey.pdf", report))
    answer = upload(api, name, ("inspection.eml", message), access=["group:harbour"])
    wait_finished(api, answer.json()["batch_id"])
    attachment_id = "inspection.eml/attachments/1-survey.pdf"
    stored = wait_status(api, name, attachment_id, "done")
    assert stored["title"] == "Mooring survey" and stored["access"] == ["group:harbour"]
    assert stored["metadata"]["attached_to"] == "inspection.eml"
    original = api.get(f"/v1/collections/{name}/documents/{attachment_id}/original")
    assert original.content == report and original.headers["content-type"] == "application/pdf"
    parent = document(api, name, "inspection.eml")
    assert parent["metadata"]["attachments"] == ["1-survey.pdf"]
    hits = query(
        api, name, "survey counts forty moorings", mode="keyword", principals=["group:harbour"]
    )["results"]
    assert hits[0]["document_id"] == attachment_id and hits[0]["location"] == {"page": 1}


def test_recordings_are_transcribed_by_the_provider_with_timestamps(
    api: Any, make_collection: Any, fake_openai: Any
) -> None:
    fake_openai.reset()
    name = make_collection()
    recording = files.wav(5.2)
    answer = upload(api, name, ("briefing.wav", recording), ("noise.mp3", b"ID3" + bytes(400)))
    batch = wait_finished(api, answer.json()["batch_id"], allow_failed=True)
    assert batch["done"] == 1 and batch["failed"] == 1, batch
    sent = [t for t in fake_openai.transcriptions if t["file"] == len(recording)]
    assert sent and sent[0]["model"] == "whisper-1" and sent[0]["response_format"] == "verbose_json"
    stored = document(api, name, "briefing.wav")
    assert stored["content_type"] == "audio/wav" and stored["metadata"]["duration_seconds"] == 5.1
    hits = query(api, name, "ferries leave every hour", mode="keyword")["results"]
    assert hits[0]["document_id"] == "briefing.wav"
    assert hits[0]["location"] == {"start_seconds": 0.0, "end_seconds": 5.1}
    refused = document(api, name, "noise.mp3")
    assert refused["error_class"] == "parse" and "refused the recording" in refused["error"]


def test_attachments_follow_their_message(api: Any, make_collection: Any) -> None:
    name = make_collection()
    message = files.eml_file(("survey.pdf", files.pdf(["Forty moorings were counted."])))
    answer = upload(api, name, ("inspection.eml", message), access=["group:harbour"])
    wait_finished(api, answer.json()["batch_id"])
    attachment_id = "inspection.eml/attachments/1-survey.pdf"
    wait_status(api, name, attachment_id, "done")
    narrowed = upload(api, name, ("inspection.eml", message), access=["group:board"])
    assert narrowed.json()["documents"][0]["status"] == "unchanged"
    assert document(api, name, attachment_id)["access"] == ["group:board"]
    seen_by = {
        group: query(api, name, "forty moorings counted", mode="keyword", principals=[group])
        for group in ("group:harbour", "group:board")
    }
    assert seen_by["group:harbour"]["results"] == []
    assert seen_by["group:board"]["results"][0]["document_id"] == attachment_id
    assert api.delete(f"/v1/collections/{name}/documents/inspection.eml").status_code == 204
    assert api.get(f"/v1/collections/{name}/documents/{attachment_id}").status_code == 404


def test_a_busy_transcription_model_is_tried_again(
    api: Any, make_collection: Any, fake_openai: Any
) -> None:
    fake_openai.reset(transcription_rate_limit_next=5)  # past the client's own 2 retries
    name = make_collection()
    answer = upload(api, name, ("later.wav", files.wav(2.0)))
    batch = wait_finished(api, answer.json()["batch_id"], timeout=120)
    assert batch["done"] == 1, batch
    assert len(fake_openai.transcriptions) == 6  # five 429s, then the transcript
