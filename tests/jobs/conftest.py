"""Fixtures of the worker tests: each broker (real Redis and RabbitMQ), a cluster on the
real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.jobs.helper import BROKERS, Cluster, cluster


@pytest.fixture(params=sorted(BROKERS))
def broker_url(request: pytest.FixtureRequest) -> str:
    return BROKERS[request.param]


@pytest.fixture
def pg_cluster(tmp_path: Path, pg_url: str, broker_url: str) -> Iterator[Cluster]:
    """A center on PostgreSQL with queues of its own on one broker; workers are stopped
    and the queues dropped afterwards."""
    with cluster(tmp_path, pg_url, broker_url) as c:
        yield c


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "long: the long worker tests (the kill test: "
                            "CLEANCENTER_TEST_KILL_SAMPLES samples, 300 by default)")
