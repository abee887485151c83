"""TCP proxies for fault injection: one in front of the broker that a test can cut and restore
(a broker outage), one in front of an HTTP provider that holds requests up (a slow or lost call).

Stopping the broker's closes every connection through it and refuses new ones, as a broker that
went down would; starting it again on the same port is the broker coming back.
"""

import contextlib
import queue
import selectors
import socket
import threading
import time
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


class HoldingProxy:
    """A TCP proxy in front of an HTTP server (localstripe) that holds requests up on their way:
    each request whose request line contains ``only`` (every request when empty) reaches the
    server ``delay`` seconds late. A request its client gave up on meanwhile (a timeout) still
    reaches the server, which acts on it; its reply is lost. Each connection keeps its order."""

    METHODS = (b"GET ", b"POST ", b"DELETE ", b"PUT ", b"PATCH ")
    LINGER = 10.0  # how long a reply nobody waits for is read and thrown away

    def __init__(self, target_url: str, *, delay: float = 0.0, only: str = "") -> None:
        parts = urlsplit(target_url)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.delay = delay
        self.only = only.encode()
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._stop = threading.Event()

    def start(self) -> None:
        self._listener.listen(64)
        self._listener.settimeout(0.1)
        threading.Thread(target=self._accept, daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._connection, args=(client,), daemon=True).start()

    def _connection(self, client: socket.socket) -> None:
        client.settimeout(None)
        try:
            upstream = socket.create_connection(self.target)
        except OSError:
            client.close()
            return
        outgoing: queue.Queue[tuple[float, bytes | None]] = queue.Queue()
        client_gone = threading.Event()
        threading.Thread(target=self._send_up, args=(outgoing, upstream), daemon=True).start()
        threading.Thread(target=self._send_down, args=(upstream, client, client_gone), daemon=True).start()
        delay = 0.0
        while True:
            try:
                data = client.recv(65536)
            except OSError:
                data = b""
            if not data:
                outgoing.put((time.monotonic() + delay, None))
                client_gone.set()
                return
            if data.startswith(self.METHODS):  # a new request: held up or not by its request line
                delay = self.delay if self.only in data.split(b"\r\n", 1)[0] else 0.0
            outgoing.put((time.monotonic() + delay, data))

    @staticmethod
    def _send_up(outgoing: "queue.Queue[tuple[float, bytes | None]]", upstream: socket.socket) -> None:
        while True:
            due, data = outgoing.get()
            time.sleep(max(0.0, due - time.monotonic()))
            if data is None:
                return
            try:
                upstream.sendall(data)
            except OSError:
                return

    def _send_down(self, upstream: socket.socket, client: socket.socket, client_gone: threading.Event) -> None:
        upstream.settimeout(0.5)
        quiet_since = time.monotonic()
        try:
            while not self._stop.is_set():
                try:
                    data = upstream.recv(65536)
                except TimeoutError:
                    if client_gone.is_set() and time.monotonic() - quiet_since > self.delay + self.LINGER:
                        return
                    continue
                except OSError:
                    return
                if not data:
                    return
                quiet_since = time.monotonic()
                with contextlib.suppress(OSError):  # the client gave up: its reply is lost
                    client.sendall(data)
        finally:
            for sock in (upstream, client):
                with contextlib.suppress(OSError):
                    sock.close()
