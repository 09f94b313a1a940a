"""Fixtures for the openai provider tests: a real loopback LLM test server, a provider pointed at it, and a real
``streamhost serve`` for an isolated user (all from streamhost's testing kit)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from streamhost import GenerationRequest
from streamhost.testing import LLMTestServer, Outcome, closed_port_url, collect_outcome, make_home, serve
from streamhost_openai import OpenAIProvider

KEY = "sk-test-5e6f7a8b9c0d"


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


@pytest.fixture
def collect() -> Callable[[OpenAIProvider, GenerationRequest], Awaitable[Outcome]]:
    """``await collect(provider, request)``: run a stream to its end, keeping events and the final error."""

    async def run(provider: OpenAIProvider, request: GenerationRequest) -> Outcome:
        return await collect_outcome(provider.stream(request))

    return run


@pytest.fixture(name="closed_port_url")
def closed_port_url_fixture() -> str:
    """A loopback base URL on which nothing listens (connection refused)."""
    return closed_port_url()


# ---------------------------------------------------------------------------- a real `streamhost serve`


@pytest.fixture
def serve_env(tmp_path: Path, server: LLMTestServer) -> dict[str, str]:
    """The environment of a ``streamhost serve`` child: an isolated user, OPENAI_BASE_URL = the test server,
    only this plugin loaded, an empty config file."""
    return make_home(tmp_path, plugins=["streamhost-openai"],
                     env={"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": server.url}).env


@pytest.fixture
def mcp_serve() -> Callable[..., Any]:
    """``async with mcp_serve(env) as served:`` runs ``streamhost serve`` with a real MCP client session."""
    return serve
