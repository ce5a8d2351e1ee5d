"""Tables as text a model can read: each row on its own line, its cells named by the header.

The first row with two or more filled cells is the header; each following row becomes
`Header: value; Header: value` (empty cells left out), so a chunk cut anywhere in a long
table still says what each value is. Rows are grouped into blocks of `ROWS_PER_BLOCK`, which
the chunker keeps together where it can.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

ROWS_PER_BLOCK = 20
MAX_CELL_CHARS = 2000
MAX_HEADER_CHARS = 80  # a header repeats before every cell of its column: kept short


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = " ".join(str(value).split())
    return text[:MAX_CELL_CHARS]


def rows_to_blocks(rows: Iterable[Sequence[Any]]) -> Iterator[str]:
    """Yields blocks of rows as `Header: value; …` lines."""
    header: list[str] | None = None
    lines: list[str] = []
    body_rows = 0
    for raw in rows:
        cells = [_cell(value) for value in raw]
        if not any(cells):
            continue
        if header is None:
            if sum(1 for c in cells if c) >= 2:
                header = [c[:MAX_HEADER_CHARS] or f"column {i + 1}" for i, c in enumerate(cells)]
                continue
            lines.append(" ".join(c for c in cells if c))  # a caption above the table
            continue
        named = [
            f"{header[i] if i < len(header) else f'column {i + 1}'}: {c}"
            for i, c in enumerate(cells)
            if c
        ]
        lines.append("; ".join(named))
        body_rows += 1
        if len(lines) >= ROWS_PER_BLOCK:
            yield "\n".join(lines)
            lines = []
    if header is not None and not body_rows:
        lines.append(" | ".join(c for c in header))  # a header alone is still its text
    if lines:
        yield "\n".join(lines)
