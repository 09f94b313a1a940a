"""A real web site on loopback for the fetcher tests: pages added from code, and a log of every request.

The server is the stdlib ``ThreadingHTTPServer`` speaking HTTP/1.1 in a background thread, so each
request is served concurrently and fetchers talk to it exactly as they would to a real host::

    with WebSite() as site:
        site.add("/a", "<html>...</html>", delay_s=0.3)
        site.redirect("/old", "/a")
        url = site.url("/a")
        ...
        [entry] = site.requests_for("/a")    # entry.start / entry.end are time.monotonic() values

Timestamps use ``time.monotonic()``, the same clock the test process reads, so a test can compare
them with its own timings (e.g. "every fetch started before the first summary ended").
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit

__all__ = ["Page", "RequestRecord", "WebSite", "article"]


def article(title: str, paragraphs: int, topic: str) -> str:
    """An HTML article of ``paragraphs`` paragraphs about ``topic``, with navigation and footer boilerplate
    around the main content (``Paragraph N about TOPIC``, a link ``source N`` in each)."""
    body = "".join(
        f"<h2>{topic} part {i}</h2><p>Paragraph {i} about {topic}: the measured value was {i * 7} units, "
        f"as <a href='/source/{i}'>source {i}</a> reports, and nothing else is claimed here. "
        f"It goes on about {topic} for a while so that the paragraph has some length to it.</p>"
        for i in range(1, paragraphs + 1)
    )
    return (f"<html><head><title>{title}</title></head><body><nav><a href='/'>Home</a> | <a href='/x'>More</a></nav>"
            f"<article><h1>{title}</h1>{body}</article><footer>Copyright footer text</footer></body></html>")


@dataclass(frozen=True)
class Page:
    """What the site answers on one path. Build it with :meth:`WebSite.add`."""

    body: bytes
    content_type: str | None = "text/html; charset=utf-8"
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    delay_s: float = 0.0
    """Wait this long before sending the status line (a slow server)."""
    stall_after: int | None = None
    """Send this many body bytes, then wait ``stall_s`` before the rest (a stalled transfer)."""
    stall_s: float = 0.0
    content_length: bool = True
    """False: no Content-Length header; the body ends when the connection closes."""
    chunk_size: int | None = None
    """Send the body in pieces of this many bytes, ``chunk_delay_s`` apart (a dripping server)."""
    chunk_delay_s: float = 0.0


@dataclass
class RequestRecord:
    """One request the site received. ``end`` is None while the response is still being written."""

    method: str
    path: str
    """The path with its query string, as the client sent it."""
    headers: dict[str, str]
    start: float
    end: float | None = None
    status: int | None = None
    client: str = ""

    @property
    def duration(self) -> float | None:
        """Seconds from the request line to the last byte of the response, once finished."""
        return None if self.end is None else self.end - self.start


@dataclass
class _State:
    pages: dict[str, Page] = field(default_factory=dict)
    log: list[RequestRecord] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the request log is the record, stderr stays clean."""

    def do_GET(self) -> None:
        self._serve(send_body=True)

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    def _serve(self, *, send_body: bool) -> None:
        state = self.server.state
        record = RequestRecord(
            method=self.command,
            path=self.path,
            headers={key.lower(): value for key, value in self.headers.items()},
            start=time.monotonic(),
            client=self.client_address[0],
        )
        with state.lock:
            state.log.append(record)
            page = state.pages.get(urlsplit(self.path).path)
        if page is None:
            page = Page(body=b"<html><body><h1>Not found</h1></body></html>", status=404)
        try:
            self._write(page, send_body=send_body, record=record)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (a cap or a deadline): normal in these tests
        finally:
            record.end = time.monotonic()

    def _write(self, page: Page, *, send_body: bool, record: RequestRecord) -> None:
        stopping = self.server.state.stopping
        if page.delay_s and stopping.wait(page.delay_s):
            self.close_connection = True
            return
        record.status = page.status
        self.send_response(page.status)
        if page.content_type is not None:
            self.send_header("Content-Type", page.content_type)
        for key, value in page.headers:
            self.send_header(key, value)
        if page.content_length:
            self.send_header("Content-Length", str(len(page.body)))
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if not send_body:
            return
        body = page.body
        if page.stall_after is not None:
            self.wfile.write(body[: page.stall_after])
            self.wfile.flush()
            if stopping.wait(page.stall_s):
                self.close_connection = True
                return
            body = body[page.stall_after :]
        size = page.chunk_size or len(body) or 1
        for start in range(0, len(body), size):
            if start and page.chunk_delay_s and stopping.wait(page.chunk_delay_s):
                self.close_connection = True
                return
            self.wfile.write(body[start : start + size])
            self.wfile.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, host: str, state: _State) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.state = state
        super().__init__((host, 0), _Handler)


class WebSite:
    """A loopback HTTP site whose pages tests add at runtime, with a request log.

    :param host: the loopback address to listen on (``127.0.0.1`` or ``::1``).
    :param ssl_context: a server-side TLS context: the site then speaks HTTPS.
    """

    def __init__(self, host: str = "127.0.0.1", *, ssl_context: ssl.SSLContext | None = None) -> None:
        self._state = _State()
        self._server = _Server(host, self._state)
        if ssl_context is not None:
            self._server.socket = ssl_context.wrap_socket(self._server.socket, server_side=True)
        self.scheme = "https" if ssl_context is not None else "http"
        self.host = host
        self.port: int = self._server.server_address[1]
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> WebSite:
        """Serve in a background thread. Returns self."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever, args=(0.05,), name="website", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and wake any response that is waiting (slow or stalled pages)."""
        self._state.stopping.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> WebSite:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- addresses ---------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (https with TLS; IPv6 hosts are bracketed)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def url(self, path: str = "/") -> str:
        """The absolute URL of ``path`` on this site."""
        return self.base_url + path

    # -- pages -------------------------------------------------------------------------------------

    def add(
        self,
        path: str,
        body: str | bytes = b"",
        *,
        content_type: str | None = "text/html; charset=utf-8",
        status: int = 200,
        headers: dict[str, str] | None = None,
        delay_s: float = 0.0,
        stall_after: int | None = None,
        stall_s: float = 0.0,
        content_length: bool = True,
        chunk_size: int | None = None,
        chunk_delay_s: float = 0.0,
        encoding: str = "utf-8",
    ) -> str:
        """Serve ``body`` on ``path`` (replacing what was there) and return the page's URL.

        :param body: text (encoded with ``encoding``) or raw bytes, sent as is (e.g. gzip bytes with
            ``headers={"Content-Encoding": "gzip"}``).
        :param content_type: the Content-Type header; None sends none.
        :param delay_s: wait before the status line.
        :param stall_after: send this many body bytes, then wait ``stall_s`` before the rest.
        :param content_length: False sends no Content-Length and closes the connection after the body.
        :param chunk_size: send the body in pieces of this many bytes, ``chunk_delay_s`` apart.
        """
        data = body.encode(encoding) if isinstance(body, str) else bytes(body)
        page = Page(
            body=data,
            content_type=content_type,
            status=status,
            headers=tuple((headers or {}).items()),
            delay_s=delay_s,
            stall_after=stall_after,
            stall_s=stall_s,
            content_length=content_length,
            chunk_size=chunk_size,
            chunk_delay_s=chunk_delay_s,
        )
        with self._state.lock:
            self._state.pages[path] = page
        return self.url(path)

    def redirect(self, path: str, location: str, *, status: int = 302) -> str:
        """Answer ``path`` with a redirect to ``location`` (a path on this site or any absolute URL)."""
        return self.add(path, b"", content_type=None, status=status, headers={"Location": location})

    def remove(self, path: str) -> None:
        """Stop serving ``path`` (it answers 404 again)."""
        with self._state.lock:
            self._state.pages.pop(path, None)

    # -- request log -------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request so far, in arrival order (a copy)."""
        with self._state.lock:
            return list(self._state.log)

    def requests_for(self, path: str) -> list[RequestRecord]:
        """The requests whose path (without query string) is ``path``."""
        return [record for record in self.requests if urlsplit(record.path).path == path]

    def clear_log(self) -> None:
        """Forget the requests so far."""
        with self._state.lock:
            self._state.log.clear()
