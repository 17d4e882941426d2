"""`./run` and `./test` say what they do, pip's steps included, as it happens.

Each runs on a copy of the scripts whose `.venv/bin/python` is a stand-in: the scripts'
one-liners run on the real Python, while pip and manage.py only print what they would,
and the servers are `sleep`s.
"""

import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PIP_BEFORE = """\
Looking in indexes: https://pypi.org/simple
Obtaining file:///somewhere/state-manager
  Installing build dependencies: started
Collecting Django<5.3,>=5.2 (from state-manager==0.1.0)
"""
PIP_AFTER = """\
  Downloading django-5.2.19-py3-none-any.whl (8.3 MB)
Collecting asgiref>=3.8.1 (from Django<5.3,>=5.2->state-manager==0.1.0)
Installing collected packages: asgiref, Django, state-manager
Successfully installed Django-5.2.19 asgiref-3.8.1 state-manager-0.1.0
"""

# pip prints its first lines, then waits for the test to have seen them: were they held
# back until pip ends, it gives up and fails.
FAKE_PYTHON = """#!/usr/bin/env bash
case "$1" in
    -c) case "$2" in *urllib*) exit 0 ;; esac; exec {real} "$@" ;;
    -m)
        printf '%s' "$PIP_BEFORE"
        for _ in $(seq 100); do [ -e seen ] && break; sleep 0.1; done
        [ -e seen ] || exit 1
        printf '%s' "$PIP_AFTER"
        exit "$PIP_STATUS" ;;
    manage.py)
        case "$2" in
            demo_setup) echo "Webhook token (demo-integration): tok-123" ;;
            qcluster|runserver) exec sleep 60 ;;
        esac ;;
    demo/fake_apis.py) exec sleep 60 ;;
esac
"""


@pytest.fixture
def checkout(tmp_path):
    for script in ("run", "test"):
        shutil.copy(ROOT / script, tmp_path / script)
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(FAKE_PYTHON.format(real=sys.executable))
    python.chmod(0o755)
    return tmp_path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Script:
    """A script running in the checkout, its output read line by line as it comes."""

    def __init__(self, checkout: Path, *args: str, pip_status: int = 0):
        env = {
            **os.environ,
            "PIP_BEFORE": PIP_BEFORE,
            "PIP_AFTER": PIP_AFTER,
            "PIP_STATUS": str(pip_status),
            "PORT": str(free_port()),
            "DEMO_API_PORT": str(free_port()),
        }
        for name in (
            "STATE_MANAGER_PUBLIC_URL",
            "STATE_MANAGER_SECRET_DEMO_API_URL",
            "EMAIL_BACKEND",
        ):
            env.pop(name, None)
        self.checkout, self.env = checkout, env
        self.process = subprocess.Popen(
            ["bash", *args],
            cwd=checkout,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def until(self, text: str, timeout: float = 20) -> list[str]:
        """The lines up to the first one containing `text`."""
        deadline = time.monotonic() + timeout
        while True:
            line = self._queue.get(timeout=max(deadline - time.monotonic(), 0.01))
            assert line is not None, f"ended before {text!r}:\n" + "\n".join(self.lines)
            self.lines.append(line)
            if text in line:
                return self.lines

    def finish(self, timeout: float = 20) -> int:
        status = self.process.wait(timeout=timeout)
        self.until_end()
        return status

    def until_end(self):
        while (line := self._queue.get(timeout=5)) is not None:
            self.lines.append(line)

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=20)


def test_run_shows_each_step_of_a_first_start(checkout):
    run = Script(checkout, "run")
    try:
        run.until("collecting (1) Django<5.3,>=5.2")
        (checkout / "seen").touch()
        run.until("Ctrl-C stops everything")
        run.process.send_signal(signal.SIGTERM)
        assert run.finish() == 143
    finally:
        run.stop()

    steps = [
        "Installing the project and its dependencies into .venv",
        "  preparing the project's build ...",
        "  collecting (1) Django<5.3,>=5.2",
        "  collecting (2) asgiref>=3.8.1",
        "  installing 3 package(s) ...",
        "Installed in",
        "Migrating the database ...",
        "Loading the demo (manage.py demo_setup) ...",
        "Starting the fake APIs (http://127.0.0.1:",
        "Waiting for http://127.0.0.1:",
        "State Manager is running:",
        "Stopping ...",
    ]
    shown = [next(i for i, line in enumerate(run.lines) if line.startswith(s)) for s in steps]
    assert shown == sorted(shown), "\n".join(run.lines)
    assert (checkout / ".venv" / "pip-install.log").read_text() == PIP_BEFORE + PIP_AFTER
    port = run.env["PORT"]
    assert f"  .venv/bin/python manage.py demo_orders --url http://127.0.0.1:{port}" in run.lines
    assert any(
        line.startswith("A new order starts") and "printed here." in line for line in run.lines
    )


def test_a_failed_install_shows_pips_last_lines_and_the_log(checkout):
    (checkout / "seen").touch()
    setup = Script(checkout, "test", "--setup-only", pip_status=1)
    try:
        assert setup.finish() == 1
    finally:
        setup.stop()

    assert "Successfully installed Django-5.2.19 asgiref-3.8.1 state-manager-0.1.0" in setup.lines
    assert "pip install failed; the whole log is in .venv/pip-install.log" in setup.lines
    assert not (checkout / ".venv" / ".pyproject.sha256").exists()
