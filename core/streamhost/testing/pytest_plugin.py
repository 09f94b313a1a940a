"""Fixtures for plugin tests, loaded by pytest through the ``pytest11`` entry point of ``streamhost``.

Every pytest run in an environment with streamhost installed imports this module, so it imports
nothing but pytest at module level and changes nothing until a test asks for a fixture. Every
fixture name starts with ``streamhost_`` so it cannot shadow a project's own fixtures.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from streamhost.host.sinks import CollectingSink
    from streamhost.testing.llm_server import LLMTestServer

STREAMHOST_TEST_KEY = "sk-streamhost-test-0123456789"
"""The API key ``streamhost_llm`` accepts (and the only one)."""

_VARIABLES = ("STREAMHOST_LOAD_PLUGINS", "STREAMHOST_DISABLE_PLUGINS", "STREAMHOST_STRICT_PLUGINS")


@pytest.fixture
def streamhost_api_key() -> str:
    """The API key the ``streamhost_llm`` server accepts."""
    return STREAMHOST_TEST_KEY


@pytest.fixture
def streamhost_llm(streamhost_api_key: str) -> Iterator[LLMTestServer]:
    """A started :class:`~streamhost.testing.LLMTestServer` on loopback that requires ``streamhost_api_key``.

    Point your provider at ``streamhost_llm.url``; script replies with ``streamhost_llm.script(...)``.
    """
    from streamhost.testing.llm_server import LLMTestServer

    with LLMTestServer(require_key=streamhost_api_key) as server:
        yield server


@pytest.fixture
def streamhost_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated user for the test: an empty config file named by ``STREAMHOST_CONFIG``.

    XDG config/state/cache dirs point into ``tmp_path`` and the plugin selection variables are
    unset. Returns the config file's path: write TOML to it to configure the host.
    """
    config = tmp_path / "streamhost-config.toml"
    config.write_text("", encoding="utf-8")
    monkeypatch.setenv("STREAMHOST_CONFIG", str(config))
    for kind in ("CONFIG", "STATE", "CACHE"):
        monkeypatch.setenv(f"XDG_{kind}_HOME", str(tmp_path / kind.lower()))
    for name in _VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return config


@pytest.fixture
def streamhost_host(monkeypatch: pytest.MonkeyPatch) -> Any:
    """:func:`streamhost.testing.run_host`: ``async with streamhost_host(plugin, config={...}) as host:``.

    The plugin selection variables of the shell (``STREAMHOST_LOAD_PLUGINS``, …) are unset for the test.
    """
    from streamhost.testing.host import run_host

    for name in _VARIABLES:
        monkeypatch.delenv(name, raising=False)

    return run_host


@pytest.fixture
def streamhost_sink() -> CollectingSink:
    """A fresh :class:`~streamhost.testing.CollectingSink`, to pass where the host takes a sink."""
    from streamhost.host.sinks import CollectingSink

    return CollectingSink()
