"""Files under the parser's limits, and offline transcription, through workers of their own:
a file that parses for too long or needs too much memory fails alone with a reason, and a
recording transcribed offline is cited by the seconds it was said at."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.api.test_files import upload
from tests.support import files
from tests.support.api import document, query, wait_finished
from tests.workers.test_stalling_documents import Isolated, isolated, new_collection

__all__ = ["isolated"]  # the fixture, shared with the stalling documents' tests


@pytest.mark.parametrize("isolated", [{"GROUNDWIRE_PARSE_TIMEOUT_S": "1.5"}], indirect=True)
def test_a_file_that_parses_too_long_fails_alone(isolated: Isolated) -> None:
    api = isolated.api
    name = new_collection(api)
    pages = [[f"Scanned page {n} of the long survey"] for n in range(1, 41)]  # ~1 s each
    answer = upload(api, name, ("survey.pdf", files.scanned_pdf(pages)), ("ok.txt", b"fine"))
    batch = wait_finished(api, answer.json()["batch_id"], timeout=90, allow_failed=True)
    assert batch["failed"] == 1 and batch["done"] == 1, batch
    slow = document(api, name, "survey.pdf")
    assert slow["error_class"] == "parse" and "longer than 1.5 s" in slow["error"], slow


@pytest.mark.parametrize(
    "isolated", [{"GROUNDWIRE_PARSE_MEMORY_BYTES": str(1024**3)}], indirect=True
)
def test_a_file_that_needs_too_much_memory_fails_alone(isolated: Isolated) -> None:
    api = isolated.api
    name = new_collection(api)
    out = io.BytesIO()
    Image.new("L", (8000, 9000), 255).save(out, "PNG")  # 72 MP: under the pixel cap
    bomb = files.deflate_bomb_pdf(1200)  # 1.2 MB that inflates to 1.2 GiB
    answer = upload(
        api, name, ("poster.png", out.getvalue()), ("bomb.pdf", bomb), ("ok.txt", b"fine")
    )
    batch = wait_finished(api, answer.json()["batch_id"], timeout=90, allow_failed=True)
    assert batch["failed"] == 2 and batch["done"] == 1, batch
    for filename in ("poster.png", "bomb.pdf"):
        big = document(api, name, filename)
        assert big["error_class"] == "parse" and "memory" in big["error"], big


@pytest.mark.parametrize(
    "isolated", [{"GROUNDWIRE_TRANSCRIBE_MODEL": "local:tiny.en"}], indirect=True
)
def test_offline_transcripts_are_cited_by_time(isolated: Isolated) -> None:
    api = isolated.api
    name = new_collection(api)
    spoken = (
        "Welcome to the weekly team call. Today we review the sales numbers. "
        "After that we discuss the hiring plan and the customer support queue."
    )
    answer = upload(api, name, ("call.wav", files.speech(spoken)))
    wait_finished(api, answer.json()["batch_id"], timeout=90)
    stored = document(api, name, "call.wav")
    duration = stored["metadata"]["duration_seconds"]
    assert 5 < duration < 20, stored
    hit = query(api, name, "customer support queue", mode="keyword")["results"][0]
    location = hit["location"]
    assert 0 <= location["start_seconds"] < location["end_seconds"] <= duration + 0.5
    assert "support" in hit["text"].lower()
