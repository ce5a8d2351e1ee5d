"""What every fault scenario does: post documents, wait for them to settle, check and report."""

from __future__ import annotations

from typing import Any

from tests.support.cluster import Cluster, report, wait_settled
from tests.support.invariants import counts


def paragraphs(tag: str, n: int) -> str:
    return "\n\n".join(
        f"{tag} paragraph {i}: the keeper logged the tide, the wind and the ships at anchor."
        for i in range(n)
    )


def post(cluster: Cluster, name: str, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    accepted = []
    with cluster.client() as client:
        for start in range(0, len(docs), 100):
            response = client.post(
                f"/v1/collections/{name}/documents", json={"documents": docs[start : start + 100]}
            )
            assert response.status_code == 202, response.text
            accepted.extend(response.json()["documents"])
    return accepted


def finish(
    cluster: Cluster,
    scenario: str,
    collection_id: int,
    provider: Any = None,
    **extra: Any,
) -> dict[str, Any]:
    """Waits for the collection to settle, reports the scenario and checks the four counts."""
    recovery = wait_settled(cluster.env["DATABASE_URL"], collection_id)
    found = counts(cluster.env["DATABASE_URL"], collection_id)
    seen = provider.requests if provider is not None else []
    provider_calls = len(seen) if provider is not None else None
    if provider is not None:
        extra["rate_limited"] = sum(r.status == 429 for r in seen)
    row = {
        "scenario": scenario,
        "documents": found.documents,
        "failed": found.failed,
        "lost": found.lost,
        "duplicates": found.duplicates,
        "mixed": found.mixed,
        "orphans": found.orphans,
        "recovery_s": round(recovery, 1),
        "provider_calls_per_document": (
            round(provider_calls / found.documents, 2) if provider_calls is not None else None
        ),
        **extra,
    }
    report(row)
    assert found.violations() == {}, row
    return row
