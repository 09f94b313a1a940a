"""A real forward proxy on loopback for the fetcher tests: CONNECT tunnels for https, absolute-URI
requests for http, an optional Basic ``Proxy-Authorization`` check, and a log of what it was asked.

It resolves names through its own ``hosts`` table (then the system), so a test can give it names that
only the proxy knows, as a corporate proxy with its own DNS would::

    with ForwardProxy(hosts={"site.example": "127.0.0.1"}) as proxy:
        ...  # HTTPS_PROXY=proxy.url
        assert [(r.method, r.target) for r in proxy.requests] == [("CONNECT", "site.example:443")]
"""

from __future__ import annotations

import base64
import select
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit

__all__ = ["ForwardProxy", "ProxyRequest"]


@dataclass(frozen=True)
class ProxyRequest:
    """One request the proxy received: ``CONNECT host:port`` or ``GET http://host:port/path``."""

    method: str
    target: str
    headers: dict[str, str]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the request log is the record."""

    def _admit(self) -> bool:
        """Log the request; answer 407 when credentials are required and missing or wrong."""
        proxy = self.server.proxy
        headers = {key.lower(): value for key, value in self.headers.items()}
        with proxy.lock:
            proxy.log.append(ProxyRequest(self.command, self.path, headers))
        if proxy.credentials is None:
            return True
        expected = "Basic " + base64.b64encode(":".join(proxy.credentials).encode()).decode()
        if headers.get("proxy-authorization") == expected:
            return True
        self.send_response(407)
        self.send_header("Proxy-Authenticate", 'Basic realm="test proxy"')
        self.send_header("Content-Length", "0")
        self.end_headers()
        return False

    def _dial(self, host: str, port: int) -> socket.socket:
        return socket.create_connection((self.server.proxy.hosts.get(host, host), port), timeout=30)

    def do_CONNECT(self) -> None:
        if not self._admit():
            return
        host, _, port = self.path.rpartition(":")
        try:
            upstream = self._dial(host.strip("[]"), int(port))
        except OSError:
            self.send_response(502)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200, "Connection established")
        self.end_headers()
        self.close_connection = True
        with upstream:
            _pipe(self.connection, upstream, self.server.proxy.stopping)

    def do_GET(self) -> None:
        if not self._admit():
            return
        parts = urlsplit(self.path)
        if parts.scheme != "http" or not parts.hostname:
            self.send_error(400, "a forward proxy takes absolute http:// URLs")
            return
        try:
            upstream = self._dial(parts.hostname, parts.port or 80)
        except OSError:
            self.send_error(502)
            return
        path = parts.path or "/"
        if parts.query:
            path += f"?{parts.query}"
        lines = [f"{self.command} {path} HTTP/1.1"]
        lines += [f"{key}: {value}" for key, value in self.headers.items()
                  if not key.lower().startswith("proxy-") and key.lower() != "connection"]
        lines.append("Connection: close")
        self.close_connection = True
        with upstream:
            upstream.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            # The upstream closes after its answer (Connection: close): relay its bytes as they are.
            while chunk := upstream.recv(65536):
                self.connection.sendall(chunk)

    do_HEAD = do_GET


def _pipe(client: socket.socket, upstream: socket.socket, stopping: threading.Event) -> None:
    """Copy bytes both ways until either side closes (or the proxy stops)."""
    sockets = [client, upstream]
    while not stopping.is_set():
        readable, _, _ = select.select(sockets, [], [], 0.1)
        for source in readable:
            data = source.recv(65536)
            if not data:
                return
            (upstream if source is client else client).sendall(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, proxy: ForwardProxy) -> None:
        self.proxy = proxy
        super().__init__(("127.0.0.1", 0), _Handler)


class ForwardProxy:
    """A forward HTTP proxy on 127.0.0.1 in a background thread.

    :param hosts: the proxy's own name table, consulted before the system resolver.
    :param credentials: (user, password) the proxy requires as Basic ``Proxy-Authorization``.
    """

    def __init__(self, hosts: dict[str, str] | None = None, credentials: tuple[str, str] | None = None) -> None:
        self.hosts = dict(hosts or {})
        self.credentials = credentials
        self.log: list[ProxyRequest] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self._server = _Server(self)
        self.port: int = self._server.server_address[1]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[ProxyRequest]:
        """Every request so far, in arrival order (a copy)."""
        with self.lock:
            return list(self.log)

    def __enter__(self) -> ForwardProxy:
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="proxy", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stopping.set()
        self._server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server.server_close()
