"""The HTTP transport under the SDK (aiohttp when installed, else httpx2): what the network can do to a call.

Refused, unresolvable and unanswered connections, an untrusted certificate, TLS to a custom endpoint, a proxy
from the environment, a gzip body, and the same plugin without aiohttp. Everything is real and on loopback: the
test server, a TLS front for it, a forward proxy and a gzip server live in this file.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import json
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

import streamhost
from streamhost import GenerationRequest, Usage
from streamhost.testing import Script
from streamhost_openai.transport import transport_name

pytestmark = pytest.mark.anyio

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy",
                   "no_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR")


@pytest.fixture(autouse=True)
def no_proxy_or_ca_from_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Calls go direct and trust the system CAs unless a test says otherwise."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def ask(model: str = "gpt-4.1-mini") -> GenerationRequest:
    return GenerationRequest(model=model, prompt="hi")


# ---------------------------------------------------------------------------- loopback helpers


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def listening(handler: Handler, **kwargs: object) -> AsyncIterator[int]:
    """An asyncio server on 127.0.0.1 for this test's loop; yields its port."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0, **kwargs)  # type: ignore[arg-type]
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 5)


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy bytes one way until the reader ends, then close the writer."""
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


async def splice(client: tuple[asyncio.StreamReader, asyncio.StreamWriter], port: int, first: bytes = b"") -> None:
    """Connect to 127.0.0.1:``port``, send ``first``, then copy both ways until either side ends."""
    up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
    up_writer.write(first)
    await asyncio.gather(pipe(client[0], up_writer), pipe(up_reader, client[1]))


def certificate(tmp: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA): (cert.pem, key.pem)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "streamhost test endpoint")])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    paths = tmp / "cert.pem", tmp / "key.pem"
    paths[0].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


@contextlib.asynccontextmanager
async def tls_front(tmp: Path, upstream_port: int) -> AsyncIterator[tuple[str, Path]]:
    """HTTPS on 127.0.0.1 in front of the plain test server: (its base URL, the certificate to trust)."""
    import ssl

    cert, key = certificate(tmp)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await splice((reader, writer), upstream_port)

    async with listening(handle, ssl=context) as port:
        yield f"https://127.0.0.1:{port}/v1", cert


# ---------------------------------------------------------------------------- which transport


async def test_calls_go_through_aiohttp_when_it_is_installed(server, provider, collect, api_key):
    pytest.importorskip("aiohttp")
    server.script("gpt-4.1-mini", Script(tokens=["a", "b"], usage=(2, 2)))

    out = await collect(provider, ask())

    assert out.error is None and out.text == "ab"
    assert transport_name(await provider._client(api_key)) == "aiohttp"


FALLBACK = """
import asyncio, json, sys
sys.modules["aiohttp"] = None  # as if it were not installed
from streamhost import GenerationRequest
from streamhost.testing import collect_outcome
from streamhost_openai import OpenAIProvider
from streamhost_openai.transport import transport_name

async def run(base_url, model, **options):
    provider = OpenAIProvider()
    provider.configure({"base_url": base_url, **options})
    try:
        out = await collect_outcome(provider.stream(GenerationRequest(model=model, prompt="hi")))
        return {"text": out.text, "error": type(out.error).__name__ if out.error else None,
                "transport": transport_name(await provider._client("%(key)s"))}
    finally:
        await provider.aclose()

async def main():
    url, refused = sys.argv[1:]
    print(json.dumps([await run(url, "gpt-4.1-mini"), await run(refused, "gpt-4.1-mini"),
                      await run(url, "stalls", timeout_s=0.3), "aiohttp" in sys.modules and sys.modules["aiohttp"]
                      is not None]))

asyncio.run(main())
"""


def test_without_aiohttp_the_sdk_default_transport_streams_and_maps_errors(server, closed_port_url, api_key):
    server.script("gpt-4.1-mini", Script(tokens=["plain ", "httpx2"]))
    server.script("stalls", Script(tokens=["a", "b"], stall_after=1))

    result = subprocess.run([sys.executable, "-c", FALLBACK % {"key": api_key}, server.url, closed_port_url],
                            capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stderr
    streamed, refused, stalled, imported = json.loads(result.stdout)
    assert streamed == {"text": "plain httpx2", "error": None, "transport": "httpx2"}
    assert refused["error"] == "UpstreamConnectionError"
    assert stalled == {"text": "a", "error": "UpstreamTimeoutError", "transport": "httpx2"}
    assert imported is False


# ---------------------------------------------------------------------------- failures to connect


async def test_an_unresolvable_host_is_cannot_reach_not_a_timeout(make_provider, collect):
    provider = make_provider(base_url="http://no-such-host.invalid/v1", timeout_s=30)

    out = await collect(provider, ask())

    assert isinstance(out.error, streamhost.UpstreamConnectionError), repr(out.error)
    assert not isinstance(out.error, streamhost.UpstreamTimeoutError)
    assert "cannot reach http://no-such-host.invalid/v1" in out.error.message
    assert "no-such-host.invalid" in out.error.message


async def test_a_server_that_never_accepts_is_a_timeout(make_provider, collect):
    # A listening socket whose accept queue is full: the kernel drops further SYNs, so connecting hangs.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = [socket.socket() for _ in range(4)]
        try:
            for filler in fillers:
                filler.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    filler.connect(("127.0.0.1", port))
            started = time.monotonic()
            out = await collect(make_provider(base_url=f"http://127.0.0.1:{port}/v1", timeout_s=0.5), ask())
        finally:
            for filler in fillers:
                filler.close()

    assert isinstance(out.error, streamhost.UpstreamTimeoutError), repr(out.error)
    assert out.error.message == f"openai/gpt-4.1-mini: timed out talking to http://127.0.0.1:{port}/v1"
    assert time.monotonic() - started < 30  # bounded by the 0.5 s time-out, not by the 600 s default


# ---------------------------------------------------------------------------- TLS


async def test_tls_to_a_custom_endpoint_trusts_ssl_cert_file(server, make_provider, collect, tmp_path, monkeypatch):
    pytest.importorskip("cryptography")
    server.script("gpt-4.1-mini", Script(tokens=["sealed ", "text"], usage=(1, 2)))
    async with tls_front(tmp_path, server.port) as (url, cert):
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        out = await collect(make_provider(base_url=url), ask())

    assert out.error is None, out.error
    assert out.text == "sealed text"
    assert out.usages == [Usage(input_tokens=1, output_tokens=2, total_tokens=3)]
    assert server.requests[0].authorized


async def test_an_untrusted_certificate_is_cannot_reach(server, make_provider, collect, tmp_path):
    pytest.importorskip("cryptography")
    async with tls_front(tmp_path, server.port) as (url, _cert):
        out = await collect(make_provider(base_url=url), ask())

    assert isinstance(out.error, streamhost.UpstreamConnectionError), repr(out.error)
    assert not isinstance(out.error, streamhost.UpstreamTimeoutError)
    assert f"cannot reach {url}" in out.error.message
    assert "certificate" in out.error.message.lower()
    assert server.requests == []  # nothing was sent over the untrusted connection


# ---------------------------------------------------------------------------- proxies from the environment


@contextlib.asynccontextmanager
async def forward_proxy() -> AsyncIterator[tuple[str, list[str]]]:
    """A forward proxy for http:// targets on 127.0.0.1: (its URL, the request lines it was sent)."""
    seen: list[str] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = (await reader.readline()).decode("latin-1")
        seen.append(line.strip())
        method, target, version = line.split()
        authority, _, path = target.removeprefix("http://").partition("/")
        port = int(authority.rpartition(":")[2])
        await splice((reader, writer), port, f"{method} /{path} {version}\r\n".encode("latin-1"))

    async with listening(handle) as port:
        yield f"http://127.0.0.1:{port}", seen


async def test_http_proxy_from_the_environment_carries_the_call(server, make_provider, collect, monkeypatch):
    server.script("gpt-4.1-mini", Script(tokens=["via ", "proxy"]))
    async with forward_proxy() as (proxy_url, seen):
        monkeypatch.setenv("HTTP_PROXY", proxy_url)
        out = await collect(make_provider(), ask())

    assert out.error is None and out.text == "via proxy"
    assert seen == [f"POST {server.url}/chat/completions HTTP/1.1"]


async def test_no_proxy_sends_the_call_direct(server, make_provider, collect, monkeypatch):
    server.script("gpt-4.1-mini", Script(tokens=["direct"]))
    async with forward_proxy() as (proxy_url, seen):
        monkeypatch.setenv("HTTP_PROXY", proxy_url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        out = await collect(make_provider(), ask())

    assert out.error is None and out.text == "direct"
    assert seen == []


# ---------------------------------------------------------------------------- gzip


def chat_chunk(delta: dict, finish: str | None = None) -> bytes:
    chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gz",
             "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


async def test_a_gzip_body_is_decoded(make_provider, collect):
    import zlib

    requests: list[bytes] = []
    events = [chat_chunk({"role": "assistant", "content": "squeezed "}), chat_chunk({"content": "wörds"}),
              chat_chunk({}, finish="stop"), b"data: [DONE]\n\n"]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length"))
        await reader.readexactly(length)
        requests.append(head)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Encoding: gzip\r\n"
                     b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        packer = zlib.compressobj(wbits=31)  # gzip framing, flushed per event as a streaming server does
        for event in events:
            piece = packer.compress(event) + packer.flush(zlib.Z_SYNC_FLUSH)
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
        tail = packer.flush()
        writer.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(tail), tail))
        await writer.drain()
        writer.close()

    async with listening(handle) as port:
        out = await collect(make_provider(base_url=f"http://127.0.0.1:{port}/v1"), ask("gz"))

    assert out.error is None, out.error
    assert out.deltas == ["squeezed ", "wörds"]
    assert b"gzip" in next(h for h in requests[0].lower().split(b"\r\n") if h.startswith(b"accept-encoding"))
