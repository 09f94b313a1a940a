"""Test helpers for streamhost and its plugins (the plugin author's testing kit).

:class:`LLMTestServer` is a real OpenAI-compatible HTTP streaming server on a
loopback port (own thread and event loop), scripted per model with
:class:`Script` objects; each request it serves is kept as a
:class:`RequestRecord`. :class:`LLMTestProvider` serves ``llmtest/MODEL`` from it,
for plugins that need a model but are not providers.

:func:`collect_outcome` runs one provider or fetcher stream and keeps its events
and the error it ended with (:class:`Outcome`); :func:`collect_events`,
:func:`relay` and :func:`fetch_document` run one the way the host does, into a
:class:`CollectingSink` of :class:`Update` objects for :func:`relay`.

:func:`run_host` runs the host in-process with given plugins and yields a
:class:`Host`; :func:`serve` spawns a real ``streamhost serve`` for an isolated
user (:func:`make_home`, :class:`Home`) and yields a :class:`Served`. Both hold a
real MCP client session whose calls return a :class:`ToolCall` with the call's
progress notifications. :func:`cancel_call` and :func:`cancel_stream` cancel a
call or a stream as a client or the host does, and :func:`expect_disconnect`
checks the test server saw the upstream request end.

The pytest fixtures (``streamhost_llm``, ``streamhost_host``, ``streamhost_sink``,
``streamhost_home``, ``streamhost_api_key``) come with streamhost in any
environment where it is installed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streamhost.testing.cancelling import Cancelled, cancel_call, cancel_stream, expect_disconnect
    from streamhost.testing.collecting import (
        CollectingSink,
        Outcome,
        Update,
        collect_events,
        collect_outcome,
        fetch_document,
        relay,
    )
    from streamhost.testing.environment import Home, closed_port_url, make_home, streamhost_executable
    from streamhost.testing.host import Host, run_host
    from streamhost.testing.llm_provider import LLMTestProvider
    from streamhost.testing.llm_server import LLMTestServer
    from streamhost.testing.scripts import RequestRecord, Script
    from streamhost.testing.served import Served, ask_progress, serve
    from streamhost.testing.toolcalls import ToolCall

__all__ = [
    "Cancelled",
    "CollectingSink",
    "Home",
    "Host",
    "LLMTestProvider",
    "LLMTestServer",
    "Outcome",
    "RequestRecord",
    "Script",
    "Served",
    "ToolCall",
    "Update",
    "ask_progress",
    "cancel_call",
    "cancel_stream",
    "closed_port_url",
    "collect_events",
    "collect_outcome",
    "expect_disconnect",
    "fetch_document",
    "make_home",
    "relay",
    "run_host",
    "serve",
    "streamhost_executable",
]

_HOME = {
    "Cancelled": "cancelling", "cancel_call": "cancelling", "cancel_stream": "cancelling",
    "expect_disconnect": "cancelling",
    "CollectingSink": "collecting", "Outcome": "collecting", "Update": "collecting", "collect_events": "collecting",
    "collect_outcome": "collecting", "fetch_document": "collecting", "relay": "collecting",
    "Home": "environment", "closed_port_url": "environment", "make_home": "environment",
    "streamhost_executable": "environment",
    "Host": "host", "run_host": "host",
    "LLMTestProvider": "llm_provider", "LLMTestServer": "llm_server",
    "RequestRecord": "scripts", "Script": "scripts",
    "Served": "served", "ask_progress": "served", "serve": "served",
    "ToolCall": "toolcalls",
}


def __getattr__(name: str) -> Any:
    # Lazy: pytest imports this package (for the fixtures plugin) in every run of every project in the
    # environment, and the in-process host needs mcp (≈1 s). Each name loads its module on first use.
    if name in _HOME:
        return getattr(importlib.import_module(f"streamhost.testing.{_HOME[name]}"), name)
    raise AttributeError(f"module 'streamhost.testing' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
