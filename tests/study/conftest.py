"""The study tests' own fixtures: a real one-node Slurm cluster for the session."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.conftest import REQUIRE_SERVERS_ENV
from tests.slurm import SlurmCluster, missing_parts


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[SlurmCluster]:
    """munged, slurmctld and slurmd on 127.0.0.1 for the whole session (tests/slurm.py),
    stopped at its end."""
    missing = missing_parts()
    if os.geteuid() != 0:
        missing.append("root (slurmd and slurmctld run as root here)")
    if missing:
        message = ("SLURM TESTS NOT RUN: this machine lacks " + ", ".join(missing) + "; run "
                   "scripts/system_packages.sh as root (Debian's slurm-wlm and munge)")
        if os.environ.get(REQUIRE_SERVERS_ENV):
            pytest.fail(message)
        pytest.skip(message)
    cluster = SlurmCluster().start()
    yield cluster
    cluster.stop()


@pytest.fixture
def on_slurm(slurm_cluster: SlurmCluster, monkeypatch: pytest.MonkeyPatch) -> SlurmCluster:
    """The session's cluster, with this test's Slurm commands (and the jobs they submit)
    pointed at it."""
    monkeypatch.setenv("SLURM_CONF", str(slurm_cluster.conf))
    # A fresh SQLite connection for every MLflow session in this process: pooled ones were
    # seen to keep reading an old snapshot of a store that the jobs write to.
    monkeypatch.setenv("MLFLOW_SQLALCHEMYSTORE_POOLCLASS", "NullPool")
    return slurm_cluster
