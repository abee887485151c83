"""A TCP proxy in front of the broker that a test can cut and restore: a broker outage.

Stopping it closes every connection through it and refuses new ones, as a broker that went
down would; starting it again on the same port is the broker coming back.
"""

import contextlib
import selectors
import socket
import threading
from urllib.parse import urlsplit, urlunsplit


class BrokerProxy:
    def __init__(self, broker_url: str) -> None:
        parts = urlsplit(broker_url)
        default_port = 5672 if parts.scheme.startswith("amqp") else 6379
        self.target = (parts.hostname or "127.0.0.1", parts.port or default_port)
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        netloc = parts.netloc.rsplit("@", 1)
        auth = f"{netloc[0]}@" if len(netloc) == 2 else ""
        self.url = urlunsplit(parts._replace(netloc=f"{auth}127.0.0.1:{self.port}"))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sockets: list[socket.socket] = []

    @property
    def up(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        self._stop.clear()
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.setblocking(False)
        self._sockets = [listener]
        self._thread = threading.Thread(target=self._serve, args=(listener,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._thread = None
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()
        self._sockets = []

    def _serve(self, listener: socket.socket) -> None:
        selector = selectors.DefaultSelector()
        selector.register(listener, selectors.EVENT_READ)
        peers: dict[socket.socket, socket.socket] = {}
        while not self._stop.is_set():
            for key, _ in selector.select(timeout=0.05):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if sock is listener:
                    try:
                        client, _ = listener.accept()
                        upstream = socket.create_connection(self.target)
                    except OSError:
                        continue
                    for a, b in ((client, upstream), (upstream, client)):
                        a.setblocking(True)
                        peers[a] = b
                        selector.register(a, selectors.EVENT_READ)
                        self._sockets.append(a)
                    continue
                try:
                    data = sock.recv(65536)
                except OSError:
                    data = b""
                other = peers.get(sock)
                if not data or other is None:
                    for s in (sock, other):
                        if s is not None and s in peers:
                            selector.unregister(s)
                            peers.pop(s, None)
                            with contextlib.suppress(OSError):
                                s.close()
                    continue
                with contextlib.suppress(OSError):
                    other.sendall(data)
        for sock in list(peers):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
                sock.close()
        selector.close()
