"""Fixtures for the openai provider tests: a real loopback LLM test server and a provider pointed at it."""

from __future__ import annotations

import os
import socket
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from streamhost import Event, GenerationRequest, TextDelta, Usage
from streamhost.testing import LLMTestServer
from streamhost_openai import OpenAIProvider

KEY = "sk-test-5e6f7a8b9c0d"
STREAMHOST = str(Path(sys.executable).with_name("streamhost"))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def api_key() -> str:
    """The key the test server accepts (and that OPENAI_API_KEY holds by default)."""
    return KEY


@pytest.fixture
def cache_home(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, cache_home: Path) -> None:
    """A known key, a private model cache, and nothing inherited that could redirect the provider."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_home))
    for name in ("OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID", "MY_KEY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server() -> Iterator[LLMTestServer]:
    with LLMTestServer(require_key=KEY) as srv:
        yield srv


class ProviderFactory:
    """Builds providers for the test server and closes their SDK clients when the test ends."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.made: list[OpenAIProvider] = []

    def __call__(self, **config: Any) -> OpenAIProvider:
        """A fresh provider configured with ``base_url`` = the test server plus ``config``.

        ``base_url=None`` leaves ``base_url`` out of the config (the official URL or OPENAI_BASE_URL).
        """
        options = {key: value for key, value in {"base_url": self.url, **config}.items() if value is not None}
        provider = OpenAIProvider()
        provider.configure(options)
        return self.adopt(provider)

    def adopt(self, provider: OpenAIProvider) -> OpenAIProvider:
        """Close this provider's clients at teardown too."""
        self.made.append(provider)
        return provider

    async def aclose(self) -> None:
        # Close each provider's client on the loop that opened it, as the host does when it stops.
        for provider in self.made:
            await provider.aclose()


@pytest.fixture
async def make_provider(server: LLMTestServer, anyio_backend: str) -> AsyncIterator[ProviderFactory]:
    """``make_provider(**config)``: a fresh provider configured for the test server (override freely)."""
    factory = ProviderFactory(server.url)
    try:
        yield factory
    finally:
        await factory.aclose()


@pytest.fixture
def provider(make_provider: ProviderFactory) -> OpenAIProvider:
    return make_provider()


@dataclass
class Outcome:
    """What a stream yielded, and the exception it ended with (None when it finished cleanly)."""

    events: list[Event] = field(default_factory=list)
    error: BaseException | None = None

    @property
    def deltas(self) -> list[str]:
        return [e.text for e in self.events if isinstance(e, TextDelta)]

    @property
    def text(self) -> str:
        return "".join(self.deltas)

    @property
    def usages(self) -> list[Usage]:
        return [e for e in self.events if isinstance(e, Usage)]


@pytest.fixture
def collect() -> Callable[[OpenAIProvider, GenerationRequest], Awaitable[Outcome]]:
    """``await collect(provider, request)``: run a stream to its end, keeping events and the final error."""

    async def run(provider: OpenAIProvider, request: GenerationRequest) -> Outcome:
        outcome = Outcome()
        agen = provider.stream(request)
        try:
            async for event in agen:
                outcome.events.append(event)
        except Exception as exc:
            outcome.error = exc
        finally:
            await agen.aclose()
        return outcome

    return run


@pytest.fixture
def closed_port_url() -> str:
    """A loopback base URL on which nothing listens (connection refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


# ---------------------------------------------------------------------------- a real `streamhost serve`


@pytest.fixture
def serve_env(tmp_path: Path, server: LLMTestServer) -> dict[str, str]:
    """The environment of a ``streamhost serve`` child: an isolated user, OPENAI_BASE_URL = the test server,
    only this plugin loaded, an empty config file."""
    config = tmp_path / "config.toml"
    config.write_text("", encoding="utf-8")
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "STREAMHOST_CONFIG": str(config),
        "STREAMHOST_LOAD_PLUGINS": "streamhost-openai",
        "OPENAI_API_KEY": KEY,
        "OPENAI_BASE_URL": server.url,
    }


@asynccontextmanager
async def _serve(env: dict[str, str]) -> AsyncIterator[Any]:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    with tempfile.TemporaryFile("w+") as errlog:
        params = StdioServerParameters(command=STREAMHOST, args=["serve"], env=env)
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield session


@pytest.fixture
def mcp_serve() -> Callable[[dict[str, str]], Any]:
    """``async with mcp_serve(env) as session:`` runs ``streamhost serve`` with a real MCP client session."""
    return _serve
