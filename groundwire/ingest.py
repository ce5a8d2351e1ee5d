"""`groundwire ingest PATH... --collection C`: upload every file Groundwire reads, safely.

Folders are walked recursively, skipping `.git`, `.venv`, `node_modules` and hidden folders
(and `--exclude` globs; `--include` globs narrow what is taken). A file's id is its path
relative to the folder given, under the folder's own name (`docs/guide/index.html`), or under
`--id-prefix`; a file named on its own is its name under the prefix. Two files that would
share an id stop the run before anything is sent.

Files go to the upload endpoint in groups; a group the API refuses is sent again file by
file, so one bad or oversized file is reported and skipped and the rest go on. The run ends
with a summary (sent, unchanged, failed, skipped, each with reasons) and exits 1 if any file
failed or was refused. `--sync` deletes the collection's documents under each folder's prefix
whose files are gone from it. Ctrl-C stops sending and says what was sent.
"""

from __future__ import annotations

import fnmatch
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from tqdm import tqdm

from groundwire.client import check, error_of
from services.batching import pack
from services.file_types import HEAD_BYTES, SUPPORTED, UNKNOWN, sniff

SKIPPED_FOLDERS = frozenset({".git", ".venv", "node_modules", "__pycache__"})
GROUP_FILES = 32
GROUP_BYTES = 32 * 1024 * 1024
ATTACHMENTS = "/attachments/"


@dataclass(frozen=True)
class LocalFile:
    """A file to send, with its id and size."""

    path: Path
    id: str
    size: int


@dataclass(frozen=True)
class Root:
    """A path given on the command line and the prefix its ids take."""

    path: Path
    prefix: str
    folder: bool


@dataclass
class Plan:
    """What a run will send, and what it leaves out and why."""

    files: list[LocalFile] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    roots: list[Root] = field(default_factory=list)


class DuplicateIds(Exception):
    """Two files map to one id."""


def _matches(relative: str, globs: list[str]) -> bool:
    name = relative.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatch(relative, g) or fnmatch.fnmatch(name, g) for g in globs)


def _walk(folder: Path) -> Iterator[Path]:
    """Files under `folder` in sorted order, not entering skipped or hidden folders."""
    entries = sorted(folder.iterdir(), key=lambda p: p.name)
    for entry in entries:
        if entry.is_symlink() and entry.is_dir():
            continue  # a link to a folder could loop
        if entry.is_dir():
            if entry.name in SKIPPED_FOLDERS or entry.name.startswith("."):
                continue
            yield from _walk(entry)
        elif entry.is_file():
            yield entry


def _hidden(relative: str) -> bool:
    return relative.rsplit("/", 1)[-1].startswith(".")


def kind_of(path: Path) -> str:
    """The format of a local file, told by its content as the server tells it."""
    with path.open("rb") as handle:
        head = handle.read(HEAD_BYTES)
        if head.startswith(b"PK\x03\x04"):
            return sniff(head, path.name, handle)
    return sniff(head, path.name)


def _join(prefix: str, relative: str) -> str:
    return f"{prefix.strip('/')}/{relative}" if prefix.strip("/") else relative


def plan(paths: list[Path], include: list[str], exclude: list[str], id_prefix: str | None) -> Plan:
    """The files to send under `paths`; raises DuplicateIds when two share an id."""
    result = Plan()
    owners: dict[str, Path] = {}
    for path in paths:
        if path.is_dir():
            prefix = id_prefix if id_prefix is not None else path.resolve().name
            result.roots.append(Root(path, prefix, True))
            candidates = [(f, f.relative_to(path).as_posix()) for f in _walk(path)]
        else:
            prefix = id_prefix or ""
            result.roots.append(Root(path, prefix, False))
            candidates = [(path, path.name)]
        for file, relative in candidates:
            if _hidden(relative) and not (include and _matches(relative, include)):
                continue  # .env, .netrc: only when an --include names them
            if include and not _matches(relative, include):
                continue
            if exclude and _matches(relative, exclude):
                continue
            try:
                size = file.stat().st_size
                kind = kind_of(file) if size else UNKNOWN
            except OSError as error:
                result.skipped.append((str(file), f"cannot be read ({error.strerror})"))
                continue
            if size == 0:
                result.skipped.append((str(file), "empty"))
                continue
            if kind not in SUPPORTED:
                result.skipped.append((str(file), "not a format Groundwire reads"))
                continue
            document_id = _join(prefix, relative)
            if document_id in owners:
                raise DuplicateIds(
                    f"{owners[document_id]} and {file} would both be document {document_id!r}:"
                    " pass the folders with --id-prefix, or rename one; nothing was sent"
                )
            owners[document_id] = file
            result.files.append(LocalFile(file, document_id, size))
    return result


MAX_WAITS = 20
_ESCAPED_IN_FILENAMES = frozenset('"\\\r\n%')  # what a multipart filename cannot carry as is


def _needs_id_field(document_id: str) -> bool:
    """Whether the id must go in the `id` field (httpx escapes these in a part's filename)."""
    return any(c in _ESCAPED_IN_FILENAMES for c in document_id)


def _retry_after(response: httpx.Response) -> float:
    try:
        return min(max(float(response.headers.get("retry-after", "1")), 0.1), 60.0)
    except ValueError:
        return 1.0


@dataclass
class Outcome:
    """What the run did."""

    batches: list[str] = field(default_factory=list)
    sent: int = 0
    unchanged: int = 0
    refused: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    deleted: int = 0
    sent_ids: list[str] = field(default_factory=list)


class Sender:
    """Uploads groups of files, falling back to one at a time when the API refuses a group."""

    def __init__(self, client: httpx.Client, collection: str, metadata: str | None) -> None:
        self.client = client
        self.url = f"/v1/collections/{quote(collection, safe='')}/files"
        self.metadata = metadata
        self.outcome = Outcome()

    def send(self, group: list[LocalFile]) -> None:
        plain = [f for f in group if not _needs_id_field(f.id)]
        for file in group:
            if _needs_id_field(file.id):
                self._send([file])  # alone, its id in the `id` field
        if plain:
            self._send(plain)

    def _send(self, group: list[LocalFile]) -> None:
        for _ in range(MAX_WAITS):
            response = self._post(group)
            if response.status_code not in (429, 503):
                break
            time.sleep(_retry_after(response))  # the API is busy: the same group, later
        if response.status_code == 202:
            self._accepted(response)
            return
        if len(group) == 1 or response.status_code in (401, 403, 404):
            if response.status_code in (401, 403, 404):
                raise SystemExit(f"error {error_of(response)}")
            self.outcome.refused.append((str(group[0].path), error_of(response)))
            return
        for file in group:  # find the one the API refused; the others go on
            self._send([file])

    def _post(self, group: list[LocalFile]) -> httpx.Response:
        """One request with the group's files, each part's filename its id."""
        handles = [file.path.open("rb") for file in group]
        try:
            parts: list[tuple[str, Any]] = [
                ("file", (file.id, handle)) for file, handle in zip(group, handles, strict=True)
            ]
            if len(group) == 1 and _needs_id_field(group[0].id):
                parts = [("file", (group[0].path.name, handles[0])), ("id", (None, group[0].id))]
            if self.metadata is not None:
                parts.append(("metadata", (None, self.metadata)))
            return self.client.post(self.url, files=parts)
        finally:
            for handle in handles:
                handle.close()

    def _accepted(self, response: httpx.Response) -> None:
        body = response.json()
        self.outcome.batches.append(body["batch_id"])
        for document in body["documents"]:
            self.outcome.sent_ids.append(document["id"])
            if document["status"] == "unchanged":
                self.outcome.unchanged += 1
            else:
                self.outcome.sent += 1


def _follow(client: httpx.Client, batches: list[str]) -> dict[str, int]:
    """Waits for the batches to finish, showing their progress; returns the totals."""
    interactive, shown = sys.stdout.isatty(), ""
    keys = ("total", "done", "failed", "unchanged", "queued", "processing")
    while True:
        states = [check(client.get(f"/v1/batches/{b}")) for b in batches]
        totals = {k: sum(int(s[k]) for s in states) for k in keys}
        line = (
            "{total} documents: {done} done, {unchanged} unchanged, {failed} failed, "
            "{queued} queued, {processing} processing".format(**totals)
        )
        finished = all(s["finished"] for s in states)
        if interactive:  # one line, rewritten in place
            print("\r" + line, end="\n" if finished else "", flush=True)
        elif line != shown:  # a log or a pipe: a line per change
            print(line, flush=True)
        shown = line
        if finished:
            return totals
        time.sleep(0.5)


def _documents(client: httpx.Client, collection: str, **params: Any) -> Iterator[dict[str, Any]]:
    """Every document of the collection (as the key may see them), page by page."""
    after: str | None = None
    while True:
        query = {**params, "limit": 1000, **({"after": after} if after else {})}
        page = check(
            client.get(f"/v1/collections/{quote(collection, safe='')}/documents", params=query)
        )
        yield from page["documents"]
        after = page.get("next")
        if not after:
            return


def _failures(client: httpx.Client, collection: str, ids: set[str]) -> list[tuple[str, str]]:
    return [
        (d["id"], d.get("error") or "failed")
        for d in _documents(client, collection, status="failed")
        if d["id"] in ids
    ]


def _sync(client: httpx.Client, collection: str, run: Plan) -> int:
    """Deletes the documents under each folder's prefix whose files are gone from it (not those
    merely left out by --include or --exclude); returns how many."""
    folders = [(root.prefix.strip("/") + "/", root.path) for root in run.roots if root.folder]
    if any(prefix == "/" for prefix, _ in folders):
        raise SystemExit("--sync needs an id prefix for each folder (it deletes under it)")
    gone = []
    for document in _documents(client, collection):
        doc_id = str(document["id"])
        for prefix, folder in folders:
            if not doc_id.startswith(prefix):
                continue
            relative = doc_id[len(prefix) :].split(ATTACHMENTS, 1)[0]  # a message's attachment
            if not (folder / relative).is_file():
                gone.append(doc_id)
            break
    for doc_id in gone:
        response = client.delete(
            f"/v1/collections/{quote(collection, safe='')}/documents/{quote(doc_id, safe='/')}"
        )
        if response.status_code not in (204, 404):
            raise SystemExit(f"error {error_of(response)}")
        print(f"deleted {doc_id} (its file is gone)")
    return len(gone)


def run(
    client: httpx.Client,
    collection: str,
    run_plan: Plan,
    *,
    metadata: str | None,
    sync: bool,
) -> int:
    """Sends the plan's files, follows their batches, prints the summary; the exit status."""
    sender = Sender(client, collection, metadata)
    outcome = sender.outcome
    total_bytes = sum(f.size for f in run_plan.files)
    bar = tqdm(
        total=total_bytes,
        unit="B",
        unit_scale=True,
        desc=f"0/{len(run_plan.files)} files",
        disable=not sys.stderr.isatty(),
        file=sys.__stderr__ or sys.stderr,  # its own output: not filtered as server text is
    )
    done_files = 0
    in_flight = 0
    try:
        for group in pack(run_plan.files, lambda f: f.size, GROUP_FILES, GROUP_BYTES):
            in_flight = len(group)
            sender.send(group)
            in_flight = 0
            done_files += len(group)
            bar.update(sum(f.size for f in group))
            bar.set_description(f"{done_files}/{len(run_plan.files)} files")
    except KeyboardInterrupt:
        bar.close()
        batches = ", ".join(outcome.batches) or "none"
        print(
            f"interrupted: {outcome.sent + outcome.unchanged} of {len(run_plan.files)} files"
            f" were sent ({len(outcome.refused)} refused); their batches: {batches}"
        )
        if in_flight:
            print(
                f"{in_flight} more were on their way: the server may have taken them. Run the"
                " same command again to send the rest (files sent already are not sent twice)."
            )
        return 130
    bar.close()
    totals = _follow(client, outcome.batches) if outcome.batches else {"failed": 0}
    if sync:
        outcome.deleted = _sync(client, collection, run_plan)
    failed = _failures(client, collection, set(outcome.sent_ids)) if totals["failed"] else []
    print(
        f"sent {outcome.sent}, unchanged {outcome.unchanged}, failed {len(failed)},"
        f" refused {len(outcome.refused)}, skipped {len(run_plan.skipped)}"
        + (f", deleted {outcome.deleted}" if sync else "")
    )
    for doc_id, reason in failed:
        print(f"  failed  {doc_id}: {reason}")
    for path, reason in outcome.refused:
        print(f"  refused {path}: {reason}")
    for path, reason in run_plan.skipped:
        print(f"  skipped {path}: {reason}")
    if not run_plan.files:
        print("no files Groundwire reads were found")
        return 1
    return 1 if failed or outcome.refused else 0


def check_metadata(value: str | None) -> str | None:
    """The --metadata value, checked to be a JSON object."""
    if value is None:
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        raise SystemExit('--metadata must be a JSON object, e.g. \'{"team": "ops"}\'') from None
    if not isinstance(parsed, dict):
        raise SystemExit('--metadata must be a JSON object, e.g. \'{"team": "ops"}\'')
    return value
