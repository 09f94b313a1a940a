"""Shared fixtures: the test LLM server, an isolated home, pip-installed test plugins, an MCP client."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from streamhost.testing import LLMTestServer

HERE = Path(__file__).parent
STREAMHOST = str(Path(sys.executable).with_name("streamhost"))
TEST_KEY = "sk-test-9f8e7d6c5b4a"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def llm() -> Any:
    with LLMTestServer(require_key=TEST_KEY) as server:
        yield server


@dataclass
class Home:
    """An isolated user: config, state and cache dirs, and the environment for a child process."""

    root: Path
    config: Path
    env: dict[str, str] = field(default_factory=dict)

    def write_config(self, text: str) -> Path:
        self.config.write_text(text, encoding="utf-8")
        return self.config

    @property
    def metrics(self) -> Path:
        return self.root / "state" / "streamhost" / "metrics.jsonl"


@pytest.fixture
def home(tmp_path: Path, llm: LLMTestServer, monkeypatch: pytest.MonkeyPatch) -> Home:
    config = tmp_path / "config.toml"
    config.write_text("", encoding="utf-8")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "STREAMHOST_CONFIG": str(config),
        "OPENAI_API_KEY": TEST_KEY,
        "OPENAI_BASE_URL": llm.url,
    }
    for name in ("STREAMHOST_LOAD_PLUGINS", "STREAMHOST_DISABLE_PLUGINS", "STREAMHOST_STRICT_PLUGINS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        if name not in ("PATH",):
            monkeypatch.setenv(name, value)
    return Home(root=tmp_path, config=config, env=env)


@pytest.fixture(scope="session")
def test_plugins(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The distributions under tests/plugins/, really pip-installed into a target dir."""
    target, sources = tmp_path_factory.mktemp("site"), tmp_path_factory.mktemp("plugin-sources")
    # Built from copies: setuptools writes build/ and *.egg-info beside the sources, and pytest-xdist workers
    # install at the same time.
    projects = [str(shutil.copytree(p, sources / p.name, ignore=shutil.ignore_patterns("build", "*.egg-info")))
                for p in sorted((HERE / "plugins").iterdir()) if (p / "pyproject.toml").exists()]
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--disable-pip-version-check",
         *_build_isolation(), "--target", str(target), *projects],
        capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stderr
    return target


def _build_isolation() -> list[str]:
    """``--no-build-isolation`` when this environment's setuptools can build the test plugins itself."""
    # An isolated build fetches setuptools from the index for each of the projects: minutes on a slow index.
    # The test extra brings setuptools>=77 (which builds wheels without the wheel package).
    try:
        usable = int(metadata.version("setuptools").split(".")[0]) >= 77
    except (metadata.PackageNotFoundError, ValueError):
        usable = False
    return ["--no-build-isolation"] if usable else []


@dataclass
class Served:
    """A running ``streamhost serve`` with an MCP client session on its stdio."""

    session: Any
    progress: list[Any]
    arrivals: list[float]
    stderr: Path

    def text_progress(self) -> list[Any]:
        """The notifications that carry text (``_meta`` with the delta), in arrival order."""
        return [p for p in self.progress if p.meta and "streamhost/delta" in p.meta]

    def statuses(self) -> list[str]:
        """The messages of the notifications that carry no text."""
        return [p.message for p in self.progress if not (p.meta and "streamhost/delta" in p.meta)]

    def stderr_text(self) -> str:
        return self.stderr.read_text(encoding="utf-8", errors="replace")


@asynccontextmanager
async def serve(env: dict[str, str], *args: str, era: str = "handshake") -> AsyncIterator[Served]:
    """Spawn ``streamhost serve`` and open a real MCP client session over its stdio.

    ``era="modern"`` speaks the 2026-07-28 protocol (``server/discover``, no ``initialize``).
    """
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(command=STREAMHOST, args=["serve", *args], env=env)
    progress: list[Any] = []
    arrivals: list[float] = []

    async def on_message(message: Any) -> None:
        # Not awaiting anything keeps arrival order.
        if type(message).__name__ == "ProgressNotification":
            arrivals.append(time.monotonic())
            progress.append(message.params)

    with tempfile.NamedTemporaryFile("w+", suffix=".stderr", delete=False) as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write, message_handler=on_message) as session:
                if era == "modern":
                    await session.discover()
                else:
                    await session.initialize()
                yield Served(session=session, progress=progress, arrivals=arrivals, stderr=Path(errlog.name))


@pytest.fixture
def mcp_serve() -> Any:
    """``async with mcp_serve(env) as served:`` runs ``streamhost serve`` with an MCP client."""
    return serve


async def _ignore_progress(progress: float, total: float | None, message: str | None) -> None:
    """A progress callback, so that the client asks for progress (the notifications are read elsewhere)."""


@pytest.fixture
def want_progress() -> Any:
    """Pass as ``progress_callback=`` so the request carries a progress token."""
    return _ignore_progress
