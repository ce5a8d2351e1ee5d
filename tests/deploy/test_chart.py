"""The Helm chart (deploy/helm/groundwire) and the compose file, checked as a cluster would
read them: the chart rendered by a real `helm` and every object validated against the
Kubernetes API's own schemas (`kubernetes-validate`, strict: an unknown field fails) and KEDA's
(`cloudcoil-models-keda`), the compose file against the compose-spec schema
(`check-jsonschema`). The docs' KEDA example is the chart's own output."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pydantic
import pytest
import yaml
from cloudcoil.models.keda import v1alpha1 as keda

from tests.support.helm import helm_path

ROOT = Path(__file__).parents[2]
CHART = ROOT / "deploy" / "helm" / "groundwire"
KUBERNETES = "1.31.0"
SECRETS = {"secret": {"databaseUrl": "postgresql://g:p@db:5432/g", "redisUrl": "redis://r:6379/0",
                      "adminKey": "gw_admin-example"}}  # fmt: skip
KEDA_MODELS = {
    "ScaledObject": keda.ScaledObject,
    "TriggerAuthentication": keda.TriggerAuthentication,
}


@pytest.fixture(scope="module")
def helm() -> str:
    return helm_path()


def render(
    helm: str, tmp_path: Path, values: dict[str, Any], name: str = "groundwire"
) -> list[Any]:
    given = tmp_path / "values.yaml"
    given.write_text(yaml.safe_dump(values))
    done = subprocess.run(
        [helm, "template", name, str(CHART), "-f", str(given), "--kube-version", KUBERNETES],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def strict(schema: Any) -> Any:
    """The model's JSON schema with unknown fields refused, as the API server would."""
    if isinstance(schema, dict):
        if schema.get("type") == "object" and "properties" in schema:
            schema.setdefault("additionalProperties", False)
        for value in schema.values():
            strict(value)
    elif isinstance(schema, list):
        for value in schema:
            strict(value)
    return schema


def validate(doc: dict[str, Any]) -> None:
    """Raises unless the object is valid for the cluster: a built-in kind against the
    Kubernetes schemas, a KEDA kind against KEDA's; any other kind is refused."""
    if doc["apiVersion"] == "keda.sh/v1alpha1":
        model = KEDA_MODELS[doc["kind"]]
        model.model_validate(doc)
        jsonschema.validate(doc, strict(model.model_json_schema(by_alias=True)))
        return
    kubernetes_validate.validate(doc, KUBERNETES, strict=True)


def by_kind(docs: list[Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def test_the_chart_renders_valid_objects_for_every_part(helm: str, tmp_path: Path) -> None:
    docs = render(helm, tmp_path, SECRETS)
    for doc in docs:
        validate(doc)
    objects = by_kind(docs)
    deployments = {n for k, n in objects if k == "Deployment"}
    assert deployments == {
        "groundwire-api", "groundwire-beat", "groundwire-worker-ingest",
        "groundwire-worker-embed", "groundwire-worker-webhooks",
    }  # fmt: skip
    api = objects["Deployment", "groundwire-api"]["spec"]["template"]["spec"]["containers"][0]
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert ("Service", "groundwire-api") in objects
    beat = objects["Deployment", "groundwire-beat"]["spec"]
    assert beat["replicas"] == 1 and beat["strategy"]["type"] == "Recreate"
    job = objects["Job", "groundwire-migrate"]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["groundwire", "migrate"]
    secret = objects["Secret", "groundwire-secrets"]
    assert set(secret["stringData"]) == {"DATABASE_URL", "REDIS_URL", "GROUNDWIRE_ADMIN_KEY"}
    pdbs = {n for k, n in objects if k == "PodDisruptionBudget"}
    assert pdbs == {"groundwire-api"} | {
        f"groundwire-worker-{s}" for s in ("ingest", "embed", "webhooks")
    }
    for (kind, _), doc in objects.items():
        if kind in ("Deployment", "Job"):
            for container in doc["spec"]["template"]["spec"]["containers"]:
                assert container["resources"]["requests"] and container["resources"]["limits"]
                env = {e["name"]: e for e in container["env"]}
                ref = env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]
                assert ref["name"] == "groundwire-secrets"
    scaled = {n: d for (k, n), d in objects.items() if k == "ScaledObject"}
    assert set(scaled) == {"groundwire-worker-ingest", "groundwire-worker-embed"}
    for stage in ("ingest", "embed"):
        spec = scaled[f"groundwire-worker-{stage}"]["spec"]
        assert spec["minReplicaCount"] == 0  # from zero: the queue and the database hold the work
        assert spec["scaleTargetRef"]["name"] == f"groundwire-worker-{stage}"
        assert spec["triggers"][0]["type"] == "redis"
        assert spec["triggers"][0]["metadata"]["listName"] == stage
        # KEDA owns the replica count of a scaled Deployment
        assert "replicas" not in objects["Deployment", f"groundwire-worker-{stage}"]["spec"]
    assert objects["Deployment", "groundwire-worker-webhooks"]["spec"]["replicas"] == 1


def test_the_chart_variants_render_valid_objects(helm: str, tmp_path: Path) -> None:
    prometheus = render(helm, tmp_path, {**SECRETS, "keda": {"trigger": "prometheus"}})
    for doc in prometheus:
        validate(doc)
    (trigger,) = by_kind(prometheus)["ScaledObject", "groundwire-worker-embed"]["spec"]["triggers"]
    assert trigger["type"] == "prometheus"
    assert trigger["metadata"]["query"] == 'sum(groundwire_queue_messages{stage="embed"})'

    own = render(
        helm,
        tmp_path,
        {"existingSecret": "my-secrets", "keda": {"redisPasswordKey": "REDIS_PASSWORD"}},
        name="gw",
    )
    for doc in own:
        validate(doc)
    objects = by_kind(own)
    assert not [k for k, _ in objects if k == "Secret"]
    auth = objects["TriggerAuthentication", "gw-groundwire-redis"]["spec"]["secretTargetRef"]
    assert auth == [{"parameter": "password", "name": "my-secrets", "key": "REDIS_PASSWORD"}]
    worker = objects["Deployment", "gw-groundwire-worker-embed"]["spec"]["template"]["spec"]
    env = {e["name"]: e for e in worker["containers"][0]["env"]}
    assert env["REDIS_URL"]["valueFrom"]["secretKeyRef"]["name"] == "my-secrets"


def test_the_chart_refuses_what_cannot_work(helm: str, tmp_path: Path) -> None:
    given = tmp_path / "values.yaml"
    for values, reason in (
        ({}, "secret.databaseUrl (or existingSecret) is required"),
        ({**SECRETS, "keda": {"trigger": "cpu"}}, "keda.trigger must be redis or prometheus"),
    ):
        given.write_text(yaml.safe_dump(values))
        done = subprocess.run(
            [helm, "template", "groundwire", str(CHART), "-f", str(given)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode != 0 and reason in done.stderr, done.stderr
    required = "secret.databaseUrl=a,secret.redisUrl=b,secret.adminKey=c"
    lint = subprocess.run(
        [helm, "lint", str(CHART), "--set", required],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_the_checks_refuse_a_wrong_object(helm: str, tmp_path: Path) -> None:
    objects = by_kind(render(helm, tmp_path, SECRETS))
    api = objects["Deployment", "groundwire-api"]
    api["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(api)
    service = objects["Service", "groundwire-api"]
    service["spec"]["portz"] = []
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(service)
    scaled = objects["ScaledObject", "groundwire-worker-embed"]
    scaled["spec"]["minReplicaCounts"] = 0
    with pytest.raises(jsonschema.ValidationError):
        validate(scaled)
    del scaled["spec"]["minReplicaCounts"]
    del scaled["spec"]["scaleTargetRef"]
    with pytest.raises(pydantic.ValidationError):
        validate(scaled)


def test_the_docs_keda_example_is_what_the_chart_makes(helm: str, tmp_path: Path) -> None:
    text = (ROOT / "docs" / "scaling.md").read_text()
    section = text[text.index("## Autoscaling with KEDA") :]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block is not None
    shown = yaml.safe_load(block.group(1))
    made = by_kind(render(helm, tmp_path, SECRETS))["ScaledObject", shown["metadata"]["name"]]
    made["metadata"].pop("labels")
    assert shown == made


def test_the_compose_file_matches_the_compose_spec() -> None:
    checker = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    assert checker is not None, "check-jsonschema is in the dev extra"
    done = subprocess.run(
        [checker, "--builtin-schema", "vendor.compose-spec", str(ROOT / "compose.yaml")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
