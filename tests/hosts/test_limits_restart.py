"""The leases of `max_concurrent` in Redis, across a restart of Redis that forgot them."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import pytest

from hosts.limits import RedisLimits

REDIS_SERVER = shutil.which("redis-server")
HOST = "api.partner.example"
TTL = 2.0

pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed")


class OwnRedis:
    """A redis-server of this test's own, on a free port, keeping nothing on disk."""

    def __init__(self, tmp_path):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.tmp_path = tmp_path
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
            + ["--appendonly", "no", "--dir", str(self.tmp_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.02)

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


@pytest.fixture
def own_redis(tmp_path):
    redis = OwnRedis(tmp_path)
    redis.start()
    yield redis
    redis.kill()


def acquire_all(store: RedisLimits, limit: int, count: int) -> list[str]:
    leases = [store.acquire(HOST, limit, ttl=TTL) for _ in range(count)]
    return [lease for lease in leases if lease]


def acquire_when_free(store: RedisLimits, limit: int) -> str:
    """A lease, asked for until one is given (a fresh server gives none for a lease's
    lifetime after it starts: it cannot tell a first start from a restart)."""
    deadline = time.monotonic() + TTL + 5
    while (lease := store.acquire(HOST, limit, ttl=TTL)) is None:
        assert time.monotonic() < deadline, "no lease given"
        time.sleep(0.05)
    return lease


def reconnected(store: RedisLimits) -> None:
    for _ in range(50):
        try:
            store.client.ping()
            return
        except Exception:
            time.sleep(0.05)


def test_leases_forgotten_by_a_restarted_redis_still_count_until_their_lifetime_passed(
    own_redis,
):
    store = RedisLimits(own_redis.url)
    in_flight = [acquire_when_free(store, 4)]
    in_flight += acquire_all(store, 4, 2)
    granted_at = time.monotonic()
    assert len(in_flight) == 3

    own_redis.kill()
    own_redis.start()  # empty: the three leases are forgotten, their calls still in flight
    restarted_at = time.monotonic()
    reconnected(store)

    assert len(acquire_all(store, 4, 4)) <= 4 - 3
    assert time.monotonic() < granted_at + TTL  # asked while the forgotten leases lived

    # The server knows its start to the second: the wait ends within a second after that.
    time.sleep(max(0.0, restarted_at + TTL + 1.1 - time.monotonic()))
    assert len(acquire_all(store, 4, 5)) == 4  # free again, and the limit holds
