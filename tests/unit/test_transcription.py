"""Offline transcription with faster-whisper and the bundled tiny.en model: speech made here by
espeak-ng comes back within 10% word error rate, its segments timed inside the recording."""

from __future__ import annotations

import itertools
import re

import pytest

from services import file_types
from tests.support import files
from workers.formats import Options, extract
from workers.formats.extracted import locate

SPOKEN = (
    "The meeting will start at nine in the morning. We will talk about the new budget and the"
    " plan for next year. Please send your questions before Friday."
)
NUMBERS = {"9": "nine", "7": "seven"}


def words(text: str) -> list[str]:
    return [NUMBERS.get(w, w) for w in re.findall(r"[a-z0-9]+", text.lower())]


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word-level edit distance over the reference's length."""
    ref, hyp = words(reference), words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i in range(1, len(ref) + 1):
        diagonal, row[0] = row[0], i
        for j in range(1, len(hyp) + 1):
            cost = min(row[j] + 1, row[j - 1] + 1, diagonal + (ref[i - 1] != hyp[j - 1]))
            diagonal, row[j] = row[j], cost
    return row[len(hyp)] / len(ref)


def test_word_error_rate_counts_edits() -> None:
    assert word_error_rate("a b c d", "a x c") == 0.5
    assert word_error_rate("start at nine", "start at 9") == 0.0


def test_offline_transcription_is_accurate_and_timed() -> None:
    audio = files.speech(SPOKEN)
    assert file_types.sniff(audio[:8192], "talk.bin") == file_types.WAV
    duration = (len(audio) - 44) / (2 * 22_050)  # espeak-ng writes 16-bit mono at 22,050 Hz
    parsed = extract(audio, file_types.WAV, "talk.wav", Options(transcribe_model="local:tiny.en"))
    transcript = parsed.extracted
    assert word_error_rate(SPOKEN, transcript.text) <= 0.10, transcript.text
    spans = [m.location for m in transcript.marks]
    assert len(spans) >= 2
    assert spans[0]["start_seconds"] < 1.0
    for span, following in itertools.pairwise(spans):
        assert span["start_seconds"] < span["end_seconds"] <= following["start_seconds"] + 0.01
    assert spans[-1]["end_seconds"] <= duration + 0.5
    start = transcript.text.lower().index("friday")
    where = locate(transcript.marks, start, start + 6)
    assert where is not None and where["start_seconds"] >= duration / 2
    assert transcript.metadata["duration_seconds"] == spans[-1]["end_seconds"]


@pytest.mark.parametrize("suffix", ["mp3", "m4a", "ogg", "flac"])
def test_every_audio_format_is_told_and_transcribed(suffix: str) -> None:
    spoken = "Welcome to the weekly team call. Today we review the sales numbers."
    audio = files.transcode(files.speech(spoken), suffix)
    content_type = file_types.sniff(audio[:8192], f"call.{suffix}")
    assert (
        content_type
        == {
            "mp3": file_types.MP3,
            "m4a": file_types.M4A,
            "ogg": file_types.OGG,
            "flac": file_types.FLAC,
        }[suffix]
    )
    parsed = extract(audio, content_type, "call", Options(transcribe_model="local:tiny.en"))
    assert word_error_rate(spoken, parsed.extracted.text) <= 0.10, parsed.extracted.text
