"""The fault scenarios' cluster: one per module, on the test session's services."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.cluster import Cluster, fault_env, running_cluster


@pytest.fixture(scope="module")
def cluster(
    service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    with running_cluster(fault_env(service_env), tmp_path_factory.mktemp("cluster")) as running:
        yield running
