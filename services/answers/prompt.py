"""The messages a chat model answers from: pure functions."""

from __future__ import annotations

DEFAULT_PROMPT = (
    "You answer questions using only the numbered passages you are given. After each"
    " sentence's claim, cite the passages it comes from by number, as [1] or [1][3]. Do not"
    " use anything you know from elsewhere. If the passages do not answer the question, reply"
    " with exactly this sentence and nothing else: {no_context}"
)


def messages(
    question: str, context: str, no_context: str, prompt: str | None = None
) -> list[dict[str, str]]:
    """The system and user messages for answering `question` from the `[n]` context."""
    system = (prompt or DEFAULT_PROMPT).replace("{no_context}", no_context)
    user = f"Passages:\n\n{context}\n\nQuestion: {question}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]
