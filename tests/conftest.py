"""Shared fixtures: the test LLM server, an isolated home, pip-installed test plugins, an MCP client.

The isolated user, the served ``streamhost serve`` and its MCP client come from the public testing kit
(``streamhost.testing``), as the bundled plugins' own suites use them.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from streamhost.testing import Home, LLMTestServer, ask_progress, make_home, serve
from tests.pg_server import pg_server, pg_url  # noqa: F401  (fixtures: a real PostgreSQL for any module)

HERE = Path(__file__).parent
TEST_KEY = "sk-test-9f8e7d6c5b4a"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def llm() -> Iterator[LLMTestServer]:
    with LLMTestServer(require_key=TEST_KEY) as server:
        yield server


@pytest.fixture
def home(tmp_path: Path, llm: LLMTestServer, monkeypatch: pytest.MonkeyPatch) -> Home:
    """An isolated user whose openai plugin talks to ``llm``; this process gets the same environment (but PATH),
    for the tests that run the host in-process."""
    made = make_home(tmp_path, env={"OPENAI_API_KEY": TEST_KEY, "OPENAI_BASE_URL": llm.url})
    for name in ("STREAMHOST_LOAD_PLUGINS", "STREAMHOST_DISABLE_PLUGINS", "STREAMHOST_STRICT_PLUGINS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in made.env.items():
        if name != "PATH":
            monkeypatch.setenv(name, value)
    return made


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


@pytest.fixture
def mcp_serve() -> Any:
    """``async with mcp_serve(env) as served:`` runs ``streamhost serve`` with an MCP client (the kit's ``serve``)."""
    return serve


@pytest.fixture
def want_progress() -> Any:
    """Pass as ``progress_callback=`` so the request carries a progress token."""
    return ask_progress
