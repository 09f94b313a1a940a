"""Test helpers for streamhost and its plugins (the plugin author's testing kit).

:class:`LLMTestServer` is a real OpenAI-compatible HTTP streaming server on a
loopback port (own thread and event loop), scripted per model with
:class:`Script` objects; each request it serves is kept as a
:class:`RequestRecord`. Standard library only.

:func:`run_host` runs the host in-process with given plugins and yields a
:class:`Host` whose real MCP client session calls tools and records their
progress notifications (:class:`ToolCall`). :func:`relay`, :func:`collect_events`
and :func:`fetch_document` run one provider or fetcher stream and keep what it
produced, in a :class:`CollectingSink` of :class:`Update` objects.

The same helpers are pytest fixtures (``streamhost_llm``, ``streamhost_host``,
``streamhost_sink``, ``streamhost_home``, ``streamhost_api_key``) in any
environment where streamhost is installed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streamhost.testing.collecting import CollectingSink, Update, collect_events, fetch_document, relay
    from streamhost.testing.host import Host, ToolCall, run_host
    from streamhost.testing.llm_server import LLMTestServer
    from streamhost.testing.scripts import RequestRecord, Script

__all__ = [
    "CollectingSink",
    "Host",
    "LLMTestServer",
    "RequestRecord",
    "Script",
    "ToolCall",
    "Update",
    "collect_events",
    "fetch_document",
    "relay",
    "run_host",
]

_HOME = {
    "CollectingSink": "collecting", "Update": "collecting", "collect_events": "collecting",
    "fetch_document": "collecting", "relay": "collecting",
    "Host": "host", "ToolCall": "host", "run_host": "host",
    "LLMTestServer": "llm_server", "RequestRecord": "scripts", "Script": "scripts",
}


def __getattr__(name: str) -> Any:
    # Lazy: pytest imports this package (for the fixtures plugin) in every run of every project in the
    # environment, and the in-process host needs mcp (≈1 s). Each name loads its module on first use.
    if name in _HOME:
        return getattr(importlib.import_module(f"streamhost.testing.{_HOME[name]}"), name)
    raise AttributeError(f"module 'streamhost.testing' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
