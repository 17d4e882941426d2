"""Fixtures of the orders tests: secrets in the environment, a partner's OAuth2 endpoint."""

import subprocess
import sys

import pytest
from django.conf import settings
from django.db import connection as database

from tests.orders.connections import CLIENT_ID, CLIENT_SECRET, TokenServer, connection
from tests.orders.fleet import CONCURRENCY, WORKERS_PER_CLUSTER, kill
from tests.orders.test_batch import ROOT, worker_env


@pytest.fixture
def secrets(monkeypatch):
    def put(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(f"STATE_MANAGER_SECRET_{name}", value)

    return put


@pytest.fixture
def oauth(server, secrets):
    secrets(PAY_CLIENT_ID=CLIENT_ID, PAY_CLIENT_SECRET=CLIENT_SECRET, PAY_URL=server.url)
    connection(
        "pay",
        "oauth2_client_credentials",
        token_url="{{ secrets.PAY_URL }}/oauth/token",
        client_id="{{ secrets.PAY_CLIENT_ID }}",
        client_secret="{{ secrets.PAY_CLIENT_SECRET }}",
        client_auth="basic",
    )
    return TokenServer(server)


@pytest.fixture
def fleet(tmp_path):
    """Start qcluster processes on the test database; SIGKILL whatever is left at the end."""
    if database.vendor != "postgresql" or not settings.REDIS_URL:
        pytest.skip(
            "runs qclusters on PostgreSQL with the Redis broker (set DATABASE_URL, REDIS_URL)"
        )
    clusters: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        env = worker_env(
            REDIS_URL=settings.REDIS_URL,
            Q_WORKERS=WORKERS_PER_CLUSTER,
            STATE_MANAGER_INTERVAL_SECONDS=1,
            STATE_MANAGER_LEASE_SECONDS=3,
            STATE_MANAGER_BATCH_SIZE=10,
            STATE_MANAGER_CONCURRENCY=CONCURRENCY,
        )
        log = open(tmp_path / f"qcluster-{len(clusters)}.log", "w")  # noqa: SIM115
        cluster = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the sentinel and its workers
        )
        clusters.append(cluster)
        return cluster

    yield start
    for cluster in clusters:
        kill(cluster)
