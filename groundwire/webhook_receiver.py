"""`groundwire webhooks listen`: a receiver to try webhooks with. It verifies each delivery's
Standard Webhooks signature with the webhook's secret, answers 204 and prints the event as
one JSON line (401 and a line on stderr for one that does not verify), and prints each
`webhook-id` once however often it is delivered."""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

MAX_BODY = 1024 * 1024


def listen(host: str, port: int, secret: str) -> int:
    """Serves until interrupted."""
    verifier = Webhook(secret)
    seen: set[str] = set()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            if length > MAX_BODY:
                self._answer(413)
                return
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                event = verifier.verify(body, headers)
            except WebhookVerificationError as error:
                print(f"refused a delivery: {error}", file=sys.stderr, flush=True)
                self._answer(401)
                return
            message_id = headers["webhook-id"]
            if message_id not in seen:  # deliveries are at least once: drop repeats
                seen.add(message_id)
                print(json.dumps({"webhook-id": message_id, **event}), flush=True)
            self._answer(204)

        def _answer(self, status: int) -> None:
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    print(f"listening on http://{host}:{server.server_address[1]}/", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
