"""A TCP forwarder on 127.0.0.1 that a test can cut, to play a network or database outage.

`cut()` closes every forwarded connection and stops listening (new connections are
refused) until `restore()` listens again on the same port.
"""

from __future__ import annotations

import select
import socket
import threading


class TcpProxy:
    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.lock = threading.Lock()
        self.connections: dict[threading.Thread, tuple[socket.socket, socket.socket]] = {}
        self.port = 0
        self.listener: socket.socket | None = None
        self.acceptor: threading.Thread | None = None
        self.restore()

    def restore(self) -> None:
        """Listen (again) on the proxy's port."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self.listener = listener
        self.acceptor = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self.acceptor.start()

    def cut(self) -> None:
        """Refuse new connections and close the open ones, on both sides."""
        listener, self.listener = self.listener, None
        if listener is not None:
            listener.shutdown(socket.SHUT_RDWR)  # wakes the acceptor, which closes it
            self.acceptor.join(5)
        with self.lock:
            connections = dict(self.connections)
        for pair in connections.values():
            for sock in pair:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        for thread in connections:
            thread.join(5)

    close = cut

    def _accept(self, listener: socket.socket) -> None:
        try:
            while True:
                try:
                    client, _ = listener.accept()
                except OSError:
                    return
                try:
                    upstream = socket.create_connection(self.target, timeout=5)
                except OSError:
                    client.close()
                    continue
                upstream.settimeout(None)
                thread = threading.Thread(target=self._forward, args=(client, upstream))
                thread.daemon = True
                with self.lock:
                    self.connections[thread] = (client, upstream)
                thread.start()
        finally:
            listener.close()

    def _forward(self, client: socket.socket, upstream: socket.socket) -> None:
        """Copy bytes both ways until either side closes; this thread alone closes both."""
        peers = {client: upstream, upstream: client}
        try:
            while True:
                readable, _, _ = select.select(list(peers), [], [])
                for source in readable:
                    data = source.recv(65536)
                    if not data:
                        return
                    peers[source].sendall(data)
        except OSError:
            pass
        finally:
            with self.lock:
                self.connections.pop(threading.current_thread(), None)
            for sock in peers:
                sock.close()
