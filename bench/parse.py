"""Our file parser against Microsoft's markitdown on the same folder of files, side by side.

    .venv/bin/pip install -e '.[bench]'   # markitdown (MIT), the `bench` extra
    .venv/bin/python -m bench.parse FOLDER [--repeat 3] [--limit N]

Each file under FOLDER (sorted; the first --limit) is sniffed as the API sniffs uploads; those
of a format both engines read (PDF, DOCX, PPTX, XLSX, HTML, CSV, plain text, Markdown) are
converted by each engine --repeat times, each time in a fresh spawned child process that
imports its engine (and builds markitdown's converter) before the clock starts and times only
the call, on bytes already in memory. Our parser runs with OCR off: markitdown reads only the
text layer. Nothing is downloaded. Linux only (/proc).

Peak memory is the child's VmHWM (/proc/self/status), reset with /proc/self/clear_refs just
before the call: the process's highest resident set during the conversion, its loaded
libraries included; "rise" is that peak less the RSS just before the call.

Prints a line per file, then per format: files, pages (our metadata["pages"], the same for
both engines), pages/s and files/s of each (over the sum of per-file median seconds), the
speed ratio ours/markitdown and the median peak RSS and rise. Then text quality: each text is
NFKC-normalised and lowercased, punctuation and symbols become spaces, and its words are
counted as a multiset. Against pdftotext's text (poppler-utils, when on PATH; PDFs only):
recall (reference words found, with multiplicity), precision (engine words found in the
reference), broken (share of the engine's words absent from the reference's vocabulary:
joined words, split hyphenation, garbled glyphs) and weak pages (recall under 90% on a page;
"-" when the engine's text cannot be split by page); and the engines against each other.
"""

from __future__ import annotations

import argparse
import io
import re
import shutil
import statistics
import subprocess
import sys
import time
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from importlib.util import find_spec
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from services import file_types
from services.file_types import HEAD_BYTES, sniff

KINDS = {file_types.PDF: "pdf", file_types.DOCX: "docx", file_types.PPTX: "pptx",
         file_types.XLSX: "xlsx", file_types.HTML: "html", file_types.CSV: "csv",
         file_types.PLAIN: "text", file_types.MARKDOWN: "text"}  # fmt: skip
ENGINES = ("ours", "markitdown")
WORD = re.compile(r"[^\W_]+")
WEAK = 0.9  # a page is weak when under this share of its reference words is found
MIN_WORDS = 20  # pages with fewer reference words are not judged
MIB = 1024 * 1024


@dataclass
class Run:
    """One conversion in a child: seconds, peak and rise of RSS in bytes, text per page, and
    our metadata's page count (None from markitdown, or for formats without pages)."""

    seconds: float
    peak: int
    rise: int
    pages: list[str]
    count: int | None


@dataclass
class Measured:
    """One file: its pages and, per engine, the median run and the first run's text."""

    path: Path
    kind: str
    pages: int | None
    seconds: dict[str, float] = field(default_factory=dict)
    peak: dict[str, float] = field(default_factory=dict)
    rise: dict[str, float] = field(default_factory=dict)
    text: dict[str, list[str]] = field(default_factory=dict)


def _status(name: str) -> int:
    found = re.search(rf"^{name}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    return int(found.group(1)) * 1024 if found else 0


def _engine(engine: str, content_type: str, path: Path) -> Callable[[bytes], Any]:
    if engine == "ours":
        from workers.formats import Options, extract

        options = Options(ocr=False)
        return lambda data: extract(data, content_type, path.name, options)
    from markitdown import MarkItDown, StreamInfo

    converter = MarkItDown(enable_plugins=False)
    info = StreamInfo(mimetype=content_type, extension=path.suffix, filename=path.name)
    return lambda data: converter.convert_stream(io.BytesIO(data), stream_info=info).markdown


def convert(engine: str, path: Path, content_type: str) -> Run:
    """Runs in the child: loads `engine`, then times one conversion of the file's bytes."""
    data = path.read_bytes()
    call = _engine(engine, content_type, path)
    before = _status("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    start = time.perf_counter()
    result = call(data)
    seconds = time.perf_counter() - start
    peak = _status("VmHWM")
    count = None if isinstance(result, str) else result.extracted.metadata.get("pages")
    return Run(seconds, peak, peak - before, _pages(result), count)


def _pages(result: Any) -> list[str]:
    """Text per page: ours from its page marks, markitdown's (pdfminer's) by form feeds."""
    if isinstance(result, str):
        return _by_form_feed(result)
    extracted = result.extracted
    count = extracted.metadata.get("pages")
    marks = [m for m in extracted.marks if "page" in m.location]
    if not count or not marks:
        return [extracted.text]
    pages = [""] * count
    ends = [m.start for m in marks[1:]] + [len(extracted.text)]
    for mark, end in zip(marks, ends, strict=True):
        pages[mark.location["page"] - 1] = extracted.text[mark.start : end]
    return pages


def _by_form_feed(text: str) -> list[str]:
    pages = text.split("\f")
    return pages[:-1] if len(pages) > 1 and not pages[-1].strip() else pages


def measure(engine: str, path: Path, content_type: str, repeat: int) -> list[Run]:
    """`repeat` conversions, each in a fresh spawned process."""
    runs = []
    for _ in range(repeat):
        with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
            runs.append(pool.submit(convert, engine, path, content_type).result())
    return runs


def words(text: str) -> Counter[str]:
    return Counter(WORD.findall(unicodedata.normalize("NFKC", text).lower()))


def reference(path: Path) -> list[str] | None:
    """pdftotext's text per page, or None without pdftotext."""
    if shutil.which("pdftotext") is None:
        return None
    done = subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True)
    return _by_form_feed(done.stdout.decode("utf-8", "replace")) if done.returncode == 0 else None


def overlap(a: Counter[str], b: Counter[str]) -> int:
    return sum((a & b).values())


def weak_pages(engine: list[str], ref: list[str]) -> int | None:
    """Pages (of MIN_WORDS or more) where the engine finds under WEAK of the reference's words;
    None when the engine's text is not split into the same pages."""
    if len(engine) != len(ref):
        return None
    bags = zip(map(words, engine), map(words, ref), strict=True)
    return sum(1 for e, r in bags if r.total() >= MIN_WORDS and overlap(e, r) < WEAK * r.total())


def measure_file(path: Path, content_type: str, repeat: int) -> Measured:
    ours = measure("ours", path, content_type, repeat)
    item = Measured(path, KINDS[content_type], ours[0].count)
    for engine in ENGINES:
        runs = ours if engine == "ours" else measure(engine, path, content_type, repeat)
        item.seconds[engine] = statistics.median(r.seconds for r in runs)
        item.peak[engine] = statistics.median(r.peak for r in runs) / MIB
        item.rise[engine] = statistics.median(r.rise for r in runs) / MIB
        item.text[engine] = runs[0].pages
    return item


def print_speed(kind: str, items: list[Measured]) -> None:
    ours, theirs = (sum(i.seconds[e] for i in items) for e in ENGINES)
    pages = sum(i.pages or 0 for i in items)
    rate = f"{pages / ours:8.1f} {pages / theirs:8.1f}" if pages else f"{'-':>8} {'-':>8}"
    peak = "  ".join(f"{statistics.median(i.peak[e] for i in items):6.0f}" for e in ENGINES)
    rise = "  ".join(f"{statistics.median(i.rise[e] for i in items):6.0f}" for e in ENGINES)
    print(f"{kind:<5} {len(items):5} {pages or '-':>6} {rate} {len(items) / ours:8.2f} "
          f"{len(items) / theirs:8.2f} {theirs / ours:7.1f}x  {peak}  {rise}")  # fmt: skip


def print_quality(kind: str, items: list[Measured]) -> None:
    bags = {e: [words(" ".join(i.text[e])) for i in items] for e in ENGINES}
    shared = sum(overlap(a, b) for a, b in zip(*bags.values(), strict=True))
    counts = {e: sum(b.total() for b in bags[e]) for e in ENGINES}
    print(f"{kind:<5} ours {counts['ours']} words, markitdown {counts['markitdown']}; shared "
          f"{shared} ({shared / max(counts['ours'], 1):.1%} of ours, "
          f"{shared / max(counts['markitdown'], 1):.1%} of markitdown's)")  # fmt: skip
    refs = [reference(i.path) if kind == "pdf" else None for i in items]
    if not any(refs):
        print("      no reference text (pdftotext reads PDFs only, and must be on PATH)")
        return
    pairs = [(i, r, words(" ".join(r))) for i, r in zip(items, refs, strict=True) if r is not None]
    total = sum(b.total() for _, _, b in pairs)
    for engine in ENGINES:
        found = kept = broken = 0
        weak: list[int | None] = []
        for item, ref, ref_bag in pairs:
            bag = words(" ".join(item.text[engine]))
            found += overlap(bag, ref_bag)
            kept += bag.total()
            broken += sum(n for word, n in bag.items() if word not in ref_bag)
            weak.append(weak_pages(item.text[engine], ref))
        weak_text = "-" if None in weak else str(sum(w or 0 for w in weak))
        print(f"      {engine:<10} vs pdftotext ({total} words): recall {found / total:.2%}, "
              f"precision {found / max(kept, 1):.2%}, broken {broken / max(kept, 1):.2%}, "
              f"weak pages {weak_text}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    if find_spec("markitdown") is None or find_spec("pdfminer") is None:
        print("markitdown is not installed: .venv/bin/pip install "
              "'markitdown[pdf,docx,pptx,xlsx]'", file=sys.stderr)  # fmt: skip
        raise SystemExit(2)
    files = sorted(p for p in args.folder.rglob("*") if p.is_file())[: args.limit]
    print(f"{len(files)} files in {args.folder}, {args.repeat} runs per file and engine; OCR off")
    by_kind: dict[str, list[Measured]] = defaultdict(list)
    for path in files:
        with path.open("rb") as handle:
            content_type = sniff(handle.read(HEAD_BYTES), path.name, handle)
        if content_type not in KINDS:
            print(f"{path.name}: {content_type}, skipped (not read by both engines)")
            continue
        try:
            item = measure_file(path, content_type, args.repeat)
        except Exception as error:  # one engine's failure: the file is left out of the totals
            print(f"{path.name}: failed ({type(error).__name__}: {error})")
            continue
        by_kind[item.kind].append(item)
        s = item.seconds
        print(f"{path.name}: {item.kind}, {item.pages or '-'} pages, ours {s['ours']:.2f} s, "
              f"markitdown {s['markitdown']:.2f} s ({s['markitdown'] / s['ours']:.1f}x); peak "
              f"{item.peak['ours']:.0f} / {item.peak['markitdown']:.0f} MiB")  # fmt: skip
    print("\nformat files  pages  ours p/s   md p/s  ours f/s   md f/s   ratio  "
          "peak MiB ours/md  rise MiB ours/md")  # fmt: skip
    for kind, items in sorted(by_kind.items()):
        print_speed(kind, items)
    print("\ntext quality (lowercased, punctuation dropped, word multisets)")
    for kind, items in sorted(by_kind.items()):
        print_quality(kind, items)


if __name__ == "__main__":
    main()
