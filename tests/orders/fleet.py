"""qcluster processes on the test database, for the tests of a fleet (PostgreSQL with the
Redis broker, as the product is deployed to scale out)."""

import os
import signal
import subprocess

WORKERS_PER_CLUSTER = 3
# Each cluster keeps one worker free of lanes (orders.lanes.lanes_for).
LANES_PER_CLUSTER = WORKERS_PER_CLUSTER - 1
CONCURRENCY = 4


def kill(cluster: subprocess.Popen) -> None:
    try:
        os.killpg(cluster.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    cluster.wait(timeout=10)


def logs(tmp_path) -> str:
    return "\n".join(path.read_text()[-2000:] for path in sorted(tmp_path.glob("*.log")))
