"""The API description page, served from a package: nothing is fetched from the internet.

FastAPI's default `/docs` page loads Swagger UI from a CDN in the reader's browser; here the
same files come from the `swagger-ui-bundle` wheel (Apache-2.0) under `/docs/assets`.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from services.api.json_body import add_body_schemas

ASSETS = "/docs/assets"


def install_docs(app: FastAPI) -> None:
    """Serves `/docs` (Swagger UI over `/openapi.json`) with assets from the package; the
    description includes the bodies that routes parse themselves (services/api/json_body.py)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        return add_body_schemas(generate())

    app.openapi = openapi  # type: ignore[method-assign]
    app.mount(ASSETS, StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        """The interactive API description."""
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
        )
