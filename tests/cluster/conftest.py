"""A real two-node Slurm cluster for the tests that need one (session-scoped)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cluster.slurm import Cluster, missing


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[Cluster]:
    reason = missing()
    if reason:
        pytest.skip(reason)
    cluster = Cluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
