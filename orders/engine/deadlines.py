"""An overall deadline for a request: connect, send and read all count.

`requests` times each socket operation, so a receiver that sends a byte every few
seconds (or a dripping TLS handshake, or headers one at a time) never times out. Within
`deadline(seconds)`, every socket the thread's requests open or reuse is registered
with a watch, and a timer shuts the sockets down when the deadline passes: the blocked
read returns at once, and the request fails with a connection error, which the caller
reads as "no answer within the deadline" from `Watch.expired`.

The connections are made by the pools of `GuardedAdapter` (`orders.engine.calls`),
which uses the pool classes below; outside `deadline` they behave as urllib3's own.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_current = threading.local()


class Watch:
    """The sockets of one request, shut down together when its deadline passes."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self.finished = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def add(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            self._sockets.append(sock)
            if not self.expired:
                return
        _shut(sock)  # registered after the deadline: cut off at once

    def finish(self) -> None:
        with self._lock:
            self.finished = True

    def expire(self) -> None:
        with self._lock:
            if self.finished:  # the request ended just in time: its sockets are left alone
                return
            self.expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # already closed, or detached by a TLS wrap (the wrapper is registered)
        pass


@contextmanager
def deadline(seconds: float) -> Iterator[Watch]:
    """Requests made by this thread within the block are cut off `seconds` after it
    starts; the watch says whether that happened."""
    watch = Watch(seconds)
    timer = threading.Timer(seconds, watch.expire)
    timer.daemon = True
    _current.watch = watch
    timer.start()
    try:
        yield watch
    finally:
        timer.cancel()
        watch.finish()
        _current.watch = None


def _register(sock: socket.socket | None) -> None:
    watch = getattr(_current, "watch", None)
    if watch is not None:
        watch.add(sock)


class _Watched:
    """Registers the socket when it is made (before a TLS handshake), once connected
    (the TLS wrapper) and when a kept-alive connection is reused for a request."""

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _register(sock)
        return sock

    def connect(self) -> None:
        super().connect()
        _register(self.sock)

    def request(self, *args, **kwargs) -> None:
        _register(self.sock)
        super().request(*args, **kwargs)


class WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


class WatchedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = WatchedHTTPConnection


class WatchedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = WatchedHTTPSConnection


POOL_CLASSES = {"http": WatchedHTTPConnectionPool, "https": WatchedHTTPSConnectionPool}
