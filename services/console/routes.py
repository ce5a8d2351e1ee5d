"""The console at `GET /`: a page and its assets, all served from this package (no CDN, no
outside fonts; it works offline). The page holds no data: its script signs in with an API
key kept in the tab's session storage and sends it as a bearer token to the same API every
client uses, so the console can see exactly what its key may. The strict Content Security
Policy allows scripts, styles and connections to this origin only, and no inline script, so
an injected string in a document's title or text can never run."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"
ASSETS = "/console"
POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:;"
    " connect-src 'self'; font-src 'self'; frame-ancestors 'none'; base-uri 'none';"
    " form-action 'self'"
)
HEADERS = {
    "Content-Security-Policy": POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


@router.get("/")
def console() -> FileResponse:
    """The console's page (it needs no key to load; everything it shows does)."""
    return FileResponse(STATIC / "index.html", media_type="text/html", headers=HEADERS)


def install_console(app: FastAPI) -> None:
    """Serves the page at `/` and its script and styles under `/console/`."""
    app.include_router(router)
    app.mount(ASSETS, StaticFiles(directory=STATIC), name="console-assets")
