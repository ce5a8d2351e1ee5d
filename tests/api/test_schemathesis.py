"""Schemathesis over the API's own OpenAPI spec, in process: no request gets a 5xx, every
response matches the schema its operation declares for that status, and every status code is
one the operation documents.

A bounded run: MAX_EXAMPLES fuzzed cases per operation (23 operations, a few hundred cases in
all), sent through a TestClient of the suite's settings, so the app's lifespan and runtime are
built the suite's way. Everything it creates lives in a workspace of its own (the server
admin key acts in the workspace `X-Groundwire-Workspace` names), so keys, collections and
documents that fuzzing makes never show up in another test's listings. Path parameters are
drawn half of the time from real objects (a collection with documents, one of them failed,
and their batch), so cases get past the 404s into the handlers.

Uses the dev dependency `schemathesis` (4.x, MIT; it brings hypothesis, MPL-2.0). The spec
is built at import from the routes (`app.openapi()` needs no lifespan and no database), and
loaded with `from_dict`: `schemathesis.pytest.from_fixture` fails under pytest 9.2
(`'Function' object has no attribute '_nodeid'`, schemathesis 4.32.5).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from fastapi.testclient import TestClient

from services.app import create_app
from services.config import Settings
from services.db import Database
from services.statuses import DocumentStatus
from tests.support.environment import harness
from tests.support.webhooks import drop_outside_webhooks

pytestmark = pytest.mark.slow  # about 30 s

# Per operation: 15 in the suite; GROUNDWIRE_SCHEMATHESIS_EXAMPLES=900 is the full run (20,700).
MAX_EXAMPLES = harness().schemathesis_examples
WORKSPACE_HEADER = "X-Groundwire-Workspace"
# The names of the real objects; the workspace is new each run, so fixed names are free.
COLLECTION = "conformance"
DOOMED = ["doomed-1", "doomed-2", "doomed-3"]  # for DELETE /v1/collections/{name} to find
DOCUMENTS = ["doc1", "doc2", "doc3", "failed1"]
# A batch id exists only once the documents are posted: the dictionary holds this stand-in,
# which the test replaces with the real one.
BATCH_STAND_IN = "00000000-0000-4000-8000-00000000b001"


def _config() -> Any:
    dictionaries = {
        "collections": [COLLECTION],
        "doomed": DOOMED,
        "documents": DOCUMENTS,
        "batches": [BATCH_STAND_IN],
    }
    drawn = {
        "path.name": "collections",
        "path.document_id": "documents",
        "path.batch_id": "batches",
    }

    def binding(key: str) -> dict[str, Any]:
        return {"dictionary": key, "probability": 0.5}

    return schemathesis.Config.from_dict(
        {
            "seed": 20_000,
            "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
            "phases": {
                "examples": {"enabled": False},
                "coverage": {"enabled": False},
                "fuzzing": {"enabled": True},
                "stateful": {"enabled": False},
            },
            "checks": {
                "enabled": False,
                "not_a_server_error": {"enabled": True},
                "status_code_conformance": {"enabled": True},
                "response_schema_conformance": {"enabled": True},
            },
            "dictionaries": {key: {"values": values} for key, values in dictionaries.items()},
            "parameters": {location: binding(key) for location, key in drawn.items()},
            # Deleting the collection every other operation reads would make the rest 404s.
            "operations": [
                {
                    "include-path": "/v1/collections/{name}",
                    "include-method": "DELETE",
                    "parameters": {"path.name": binding("doomed")},
                }
            ],
        }
    )


SPEC = create_app(Settings.from_env({})).openapi()
# The event streams are left out: a stream of a collection runs until its client leaves, so a
# generated request would never end (tests/workers/test_events.py drives them).
schema = schemathesis.openapi.from_dict(SPEC, config=_config()).exclude(path_regex=r"/events$")
SETTINGS = hypothesis.settings(
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(hypothesis.HealthCheck),
)


@pytest.fixture(scope="module")
def conformance(
    settings: Settings, admin_headers: dict[str, str], db: Database
) -> Iterator[tuple[TestClient, str]]:
    """The API with the server admin key in a workspace of its own, holding the real objects;
    yields the client and the documents' batch id."""
    workspace = f"st-{uuid.uuid4().hex[:10]}"
    with TestClient(create_app(settings), headers=admin_headers) as api:
        response = api.post("/v1/workspaces", json={"name": workspace})
        assert response.status_code == 201, response.text
        api.headers[WORKSPACE_HEADER] = workspace
        for name in (COLLECTION, *DOOMED):
            response = api.post("/v1/collections", json={"name": name, "embedder": "hash"})
            assert response.status_code == 201, response.text
        documents = [
            {"id": "doc1", "title": "Leave", "source": "hr/leave.md",
             "metadata": {"team": "hr", "year": 2024},
             "text": "Employees accrue 25 days of paid leave per year."},
            {"id": "doc2", "text": "The office opens at 9am.", "access": ["group:ops"]},
            {"id": "doc3", "content_type": "text/markdown", "text": "# Keys\n\nRotate them."},
            {"id": "failed1", "text": "This one is marked failed below."},
        ]  # fmt: skip
        response = api.post(
            f"/v1/collections/{COLLECTION}/documents", json={"documents": documents}
        )
        assert response.status_code == 202, response.text
        with db.engine.begin() as conn:  # no worker here: the others stay queued
            conn.exec_driver_sql(
                "UPDATE documents SET status = %s, error = 'parse: made to fail',"
                " error_class = 'parse', finished_at = now() WHERE external_id = 'failed1'"
                " AND collection_id = (SELECT c.id FROM collections c JOIN workspaces w"
                " ON w.id = c.workspace_id WHERE w.name = %s AND c.name = %s)",
                (DocumentStatus.FAILED.value, workspace, COLLECTION),
            )
        yield api, response.json()["batch_id"]
    drop_outside_webhooks(db, workspace)  # the ones its cases made


def transport_kwargs(case: Any, client: TestClient) -> dict[str, Any]:
    """The request schemathesis built for `case`, as TestClient (httpx) arguments."""
    kwargs = case.as_transport_kwargs(base_url=str(client.base_url))
    request: dict[str, Any] = {
        "method": kwargs["method"],
        "url": kwargs["url"],
        "headers": kwargs.get("headers") or {},
        "params": kwargs.get("params") or None,
    }
    if "json" in kwargs:
        request["json"] = kwargs["json"]
    elif kwargs.get("data") is not None:
        data = kwargs["data"]
        request["content"] = data.encode("utf-8") if isinstance(data, str) else data
    if kwargs.get("cookies"):
        request["headers"]["Cookie"] = "; ".join(f"{k}={v}" for k, v in kwargs["cookies"].items())
    return request


@schema.parametrize()
@SETTINGS
def test_operation_conforms_to_the_spec(case: Any, conformance: tuple[TestClient, str]) -> None:
    api, batch_id = conformance
    if case.path_parameters and case.path_parameters.get("batch_id") == BATCH_STAND_IN:
        case.path_parameters["batch_id"] = batch_id
    response = api.request(**transport_kwargs(case, api))
    case.validate_response(response)
