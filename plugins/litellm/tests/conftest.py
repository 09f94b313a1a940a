"""Fixtures for the litellm provider tests: the real loopback LLM test server, providers pointed at it,
and a real ``streamhost serve`` child process with an MCP client on its stdio (from streamhost's testing kit)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from streamhost import GenerationRequest
from streamhost.testing import (
    Home,
    LLMTestServer,
    Outcome,
    ask_progress,
    closed_port_url,
    collect_outcome,
    make_home,
    serve,
    streamhost_executable,
)
from streamhost_litellm import LiteLLMProvider
from streamhost_litellm.keys import KEY_VARIABLES

KEY = "sk-test-litellm-1a2b3c4d5e"
KEY_VARIABLE = "STREAMHOST_TEST_LITELLM_KEY"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def api_key() -> str:
    """The key the test server accepts."""
    return KEY


@pytest.fixture
def key_variable() -> str:
    """The variable that holds the test key (``api_key_env`` of the providers built here)."""
    return KEY_VARIABLE


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test key in its own variable, and no vendor key or endpoint inherited from the machine."""
    monkeypatch.setenv(KEY_VARIABLE, KEY)
    for names in KEY_VARIABLES.values():
        for name in names:
            monkeypatch.delenv(name, raising=False)
    for name in ("OPENAI_BASE_URL", "OPENAI_API_BASE", "LITELLM_PROXY_API_BASE", "OLLAMA_API_BASE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server() -> Iterator[LLMTestServer]:
    with LLMTestServer(require_key=KEY) as srv:
        yield srv


class ProviderFactory:
    """Builds providers for the test server and closes litellm's cached clients when the test ends."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.made: list[LiteLLMProvider] = []

    def __call__(self, **config: Any) -> LiteLLMProvider:
        """A provider with ``api_base`` = the test server and ``api_key_env`` = the test key's variable,
        overridden by ``config`` (a None value leaves that key out)."""
        options = {"api_base": self.url, "api_key_env": KEY_VARIABLE, **config}
        provider = LiteLLMProvider()
        provider.configure({key: value for key, value in options.items() if value is not None})
        self.made.append(provider)
        return provider


@pytest.fixture
async def make_provider(server: LLMTestServer, anyio_backend: str) -> AsyncIterator[ProviderFactory]:
    factory = ProviderFactory(server.url)
    yield factory
    if factory.made:
        await factory.made[0].aclose()


@pytest.fixture(name="closed_port_url")
def closed_port_url_fixture() -> str:
    """A loopback base URL on which nothing listens (connection refused)."""
    return closed_port_url()


@pytest.fixture
def provider(make_provider: ProviderFactory) -> LiteLLMProvider:
    return make_provider()


@pytest.fixture
def collect() -> Callable[[LiteLLMProvider, GenerationRequest], Awaitable[Outcome]]:
    """``await collect(provider, request)``: run a stream to its end, keeping events and the final error."""

    async def run(provider: LiteLLMProvider, request: GenerationRequest) -> Outcome:
        return await collect_outcome(provider.stream(request))

    return run


# ---------------------------------------------------------------------------- a real `streamhost serve`


@pytest.fixture
def home(tmp_path: Path, server: LLMTestServer) -> Home:
    """A user whose config points ``[providers.litellm]`` at the test server, key in KEY_VARIABLE."""
    return make_home(tmp_path, env={KEY_VARIABLE: KEY}, config=_litellm_config(server.url))


def _litellm_config(url: str, extra: str = "", *, key: bool = True) -> str:
    table = f'[providers.litellm]\napi_base = "{url}"\n'
    return table + (f'api_key_env = "{KEY_VARIABLE}"\n' if key else "") + extra


@pytest.fixture
def litellm_config(server: LLMTestServer) -> Callable[..., str]:
    """``litellm_config(extra="", key=True)``: config text routing litellm to the test server (with the test
    key's variable unless ``key=False``); ``extra`` lines go into ``[providers.litellm]``."""
    return lambda extra="", key=True: _litellm_config(server.url, extra, key=key)


@pytest.fixture
def mcp_serve() -> Callable[..., Any]:
    """``async with mcp_serve(env) as served:`` runs ``streamhost serve`` with an MCP client."""
    return serve


@pytest.fixture
def want_progress() -> Callable[..., Awaitable[None]]:
    """Pass as ``progress_callback=`` so the request carries a progress token."""
    return ask_progress


class RawServe:
    """``streamhost serve`` driven byte by byte, keeping every line it writes to stdout."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([streamhost_executable(), "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env)
        self.lines: list[bytes] = []
        self.stderr = b""

    def request(self, request_id: int | None, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send one JSON-RPC message; for a request (an id) wait for and return its answer."""
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if request_id is not None:
            message["id"] = request_id
        if params is not None:
            message["params"] = params
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write((json.dumps(message) + "\n").encode())
        self.proc.stdin.flush()
        while request_id is not None:
            line = self.proc.stdout.readline()
            assert line, "the server closed stdout before answering"
            self.lines.append(line)
            answer = json.loads(line)
            if answer.get("id") == request_id:
                return answer
        return {}

    def finish(self) -> None:
        """Close stdin (the server must exit cleanly) and collect the rest of both streams."""
        rest, self.stderr = self.proc.communicate(timeout=30)
        self.lines.extend(rest.splitlines(keepends=True))

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


@pytest.fixture
def raw_serve() -> Iterator[Callable[[dict[str, str]], RawServe]]:
    """``raw_serve(env)``: a RawServe, killed at teardown if still running."""
    started: list[RawServe] = []

    def start(env: dict[str, str]) -> RawServe:
        started.append(RawServe(env))
        return started[-1]

    yield start
    for raw in started:
        raw.kill()


@pytest.fixture
def streamhost_command() -> str:
    """The ``streamhost`` console script of this environment."""
    return streamhost_executable()
