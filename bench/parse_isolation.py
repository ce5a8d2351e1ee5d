"""What parsing HTML in a time-limited child process costs, against parsing in the worker's own
process, on the same documents side by side; and the nesting cap's own cost.

    bash ../shared/data/load-corpus/build.sh /tmp/load-corpus
    .venv/bin/python -m bench.parse_isolation [--corpus /tmp/load-corpus] [--repeats 5]

Prints, per repeat, seconds to parse every HTML file of the corpus both ways, then the
medians and their ratio; then the document that used to stall a worker, capped and uncapped
(the uncapped parse is given a limit, and reported as at least that when it reaches it).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from workers.parse_process import ParseProcess
from workers.parsing import HTML, NESTING_CHECK_TAGS, cap_nesting, parse

STALLING = "<dl><dd>x " * 64_000


def timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=Path("/tmp/load-corpus"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--uncapped-limit-s", type=float, default=60.0)
    args = parser.parse_args()
    files = sorted(p for p in args.corpus.rglob("*.htm*") if p.is_file())
    if not files:
        raise SystemExit(f"no HTML under {args.corpus}: build the load corpus first")
    docs = [p.read_text(encoding="utf-8", errors="replace") for p in files]
    size = sum(len(d.encode()) for d in docs) / 1e6
    checked = [d for d in docs if d.count("<") > NESTING_CHECK_TAGS]
    print(f"{len(docs)} HTML documents, {size:.1f} MB; {len(checked)} above the nesting check")

    child = ParseProcess(time_limit_s=60)
    child.parse("<p>warm</p>", HTML)
    local, isolated = [], []
    for repeat in range(args.repeats):
        local.append(timed(lambda: [parse(d, HTML) for d in docs]))
        isolated.append(timed(lambda: [child.parse(d, HTML) for d in docs]))
        print(f"repeat {repeat + 1}: in process {local[-1]:.3f} s, child {isolated[-1]:.3f} s")
    check = statistics.median(timed(lambda: [cap_nesting(d) for d in checked]) for _ in range(3))
    a, b = statistics.median(local), statistics.median(isolated)
    print(f"median: in process {a:.3f} s, child {b:.3f} s, ratio {b / a:.3f}")
    print(f"nesting check of the {len(checked)} large documents: {check:.3f} s ({check / a:.1%})")

    capped = timed(lambda: child.parse(STALLING, HTML))
    child.close()
    uncapped = uncapped_parse_s(args.uncapped_limit_s)
    shown = f"{uncapped:.2f} s" if uncapped is not None else f"over {args.uncapped_limit_s:g} s"
    print(f"stalling document: capped {capped:.2f} s, uncapped {shown}")


def uncapped_parse_s(limit_s: float) -> float | None:
    """Seconds lexbor alone takes on the stalling document, in a child; None past `limit_s`."""
    code = (
        "import time; from selectolax.lexbor import LexborHTMLParser as P;"
        f"d = {STALLING[:10]!r} * 64_000; t = time.perf_counter(); P(d);"
        "print(time.perf_counter() - t)"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=limit_s
        )
    except subprocess.TimeoutExpired:
        return None
    return float(done.stdout)


if __name__ == "__main__":
    main()
