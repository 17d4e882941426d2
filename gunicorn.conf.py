"""gunicorn's settings for the web process set (admin, API, webhook), from the environment.

    gunicorn -c gunicorn.conf.py statemanager.wsgi

(gunicorn also reads this file by itself when started from this directory.) Threaded
workers: a request spends much of its time waiting for the database, which the other
threads of its process use; one process per CPU, since Python runs one thread at a time.

- `WEB_BIND`: address and port, default `127.0.0.1:8000` (`0.0.0.0:8000` behind a proxy
  on another machine);
- `WEB_CONCURRENCY`: worker processes, default the number of CPUs;
- `WEB_THREADS`: threads per worker, the requests it serves at once, default 4;
- `WEB_TIMEOUT`: seconds a request may take before its worker is restarted, default 30;
- `WEB_ACCESS_LOG`: where to write the access log (`-`: standard output), default none.

Each thread keeps a database connection when `DATABASE_CONN_MAX_AGE` is set, so
PostgreSQL's `max_connections` must cover workers × threads for every web machine.
"""

import os


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


bind = os.environ.get("WEB_BIND", "127.0.0.1:8000").split(",")
workers = _int("WEB_CONCURRENCY", os.cpu_count() or 1)
worker_class = "gthread"
threads = _int("WEB_THREADS", 4)
timeout = _int("WEB_TIMEOUT", 30)
graceful_timeout = timeout
# Longer than proxies keep idle upstream connections (nginx: 60 s): the proxy closes one
# first, never sending a request on a connection the server is closing.
keepalive = 75
# Waiting connections beyond the threads; a burst past this is refused, not queued forever.
backlog = 2048
# The workers' heartbeat files in memory: a slow disk never gets a worker killed.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
accesslog = os.environ.get("WEB_ACCESS_LOG") or None
# gunicorn 24+ opens a control socket at one path per user; two servers would share it.
control_socket_disable = True
