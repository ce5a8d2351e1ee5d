"""The API server: uvicorn with deadlines, caps and a bounded log, as production runs it.

    python -m services.serve --host 127.0.0.1 --port 8000 [--workers N]

`groundwire api` and `groundwire up` run the API through `serve`. Over uvicorn's defaults:
connections under the deadlines and the cap of services/api/connections.py, no WebSocket
protocol (the API has no WebSocket route), a graceful shutdown bounded in time, the file
descriptor limit raised to what the connection cap needs, and every log handler behind the
rate limit of services/api/lograte.py. The application's own limits (Host check, bodies,
requests in progress) are middleware, in services/app.py.
"""

from __future__ import annotations

import argparse
import copy
import functools
import logging
import resource
import sys
from typing import Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG, STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from services.answers.checkers import load_support_model
from services.api.connections import ConnectionLimits, LimitedConfig, LimitedH11Protocol
from services.app import create_app
from services.config import Settings
from services.rerank.service import build_stage

log = logging.getLogger(__name__)

# Descriptors kept for what is not a client connection: the database pool, Redis, the
# listening socket, logs, model files, the event loop's own.
RESERVED_DESCRIPTORS = 256
# The listen backlog is also how many connections asyncio accepts at one wake-up, and the
# descriptors of up to about three such batches are open before the first of them is counted
# (and can displace another): ACCEPT_BATCHES backlogs of descriptors are kept free besides the
# cap, or a burst meets EMFILE and asyncio stops accepting for a second, health checks too.
MAX_BACKLOG = 2048
ACCEPT_BATCHES = 4
# The largest request head (line and headers) h11 buffers before answering 400: what each
# connection stalled mid-head can hold (h11's own default).
MAX_HEAD_BYTES = 16 * 1024
KEEP_ALIVE_S = 5
SHUTDOWN_GRACE_S = 20
LOG_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"


def raise_descriptor_limit(wanted: int) -> int:
    """Raises this process's soft limit on open files towards `wanted` (at most its hard
    limit) and returns the soft limit now in force; children inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as error:
            log.warning("could not raise the open file limit to %d: %s", target, error)
    return int(soft) if soft != resource.RLIM_INFINITY else wanted


def connection_limits(settings: Settings) -> tuple[ConnectionLimits, int]:
    """The connection limits of `settings` and the listen backlog, within the open file
    limit: connections + ACCEPT_BATCHES backlogs + RESERVED_DESCRIPTORS."""
    wanted = settings.max_connections + ACCEPT_BATCHES * MAX_BACKLOG + RESERVED_DESCRIPTORS
    available = raise_descriptor_limit(wanted)
    backlog = max(64, min(MAX_BACKLOG, available // 8))
    spare = ACCEPT_BATCHES * backlog + RESERVED_DESCRIPTORS
    cap = max(16, min(settings.max_connections, available - spare))
    limits = ConnectionLimits(
        header_timeout_s=settings.header_timeout_s,
        body_timeout_s=settings.body_timeout_s,
        body_min_rate=settings.body_min_rate,
        max_connections=cap,
    )
    return limits, backlog


def log_config(settings: Settings, level: str) -> dict[str, Any]:
    """uvicorn's logging, each handler (and a root one for Groundwire's loggers) behind the
    rate limit."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {
        "rate": {"()": "services.api.lograte.LogRateLimit", "rate": settings.log_rate_per_s}
    }
    config["formatters"]["plain"] = {"format": LOG_FORMAT}
    config["handlers"]["plain"] = {
        "class": "logging.StreamHandler",
        "formatter": "plain",
        "stream": "ext://sys.stderr",
    }
    for handler in config["handlers"].values():
        handler["filters"] = ["rate"]
    config["root"] = {"handlers": ["plain"], "level": level.upper()}
    return config


def serve(settings: Settings, host: str, port: int, workers: int = 1) -> None:
    """Runs the API on `host`:`port` with `workers` processes until it is stopped."""
    _run(settings, host, port, workers, "info")


def _run(settings: Settings, host: str, port: int, workers: int, level: str) -> None:
    try:  # a wrong model (say one whose sha256 does not match) stops here, said plainly
        stage = build_stage(settings)
        support = load_support_model(settings)
    except ValueError as error:
        print(f"cannot start the API: {error}", file=sys.stderr)
        sys.exit(STARTUP_FAILURE)
    if stage is not None:
        stage.reranker.close()
    if support is not None:
        support.close()
    limits, backlog = connection_limits(settings)
    config = LimitedConfig(
        # A picklable factory: worker processes build the app from these same settings.
        functools.partial(create_app, settings, bound_host=host),
        factory=True,
        host=host,
        port=port,
        workers=workers,
        http=LimitedH11Protocol,
        ws="none",
        lifespan="on",
        log_config=log_config(settings, level),
        log_level=level,
        timeout_keep_alive=KEEP_ALIVE_S,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
        h11_max_incomplete_event_size=MAX_HEAD_BYTES,
        backlog=backlog,
        connection_limits=limits,
    )
    cap = limits.max_connections
    if cap < settings.max_connections:  # logged once logging is configured
        log.warning(
            "the open file limit allows %d connections (GROUNDWIRE_MAX_CONNECTIONS is %d)",
            cap,
            settings.max_connections,
        )
    if workers > 1:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
        return
    server = uvicorn.Server(config)
    server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.serve", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 for every interface")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    args = parser.parse_args(argv)
    _run(Settings(), args.host, args.port, args.workers, args.log_level)


if __name__ == "__main__":
    main()
