"""The hooks a streamhost plugin can implement.

Hooks are synchronous and cheap: they run at start-up, before the server answers anything. The
async streaming work lives on the objects they register.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

from .fetchers import Fetcher
from .providers import Provider
from .tools import Tool

hookspec = pluggy.HookspecMarker("streamhost")
hookimpl = pluggy.HookimplMarker("streamhost")
"""Decorate a plugin's hook functions with this."""


# -- start-up: registration ------------------------------------------------------------------------


@hookspec
def register_providers(register: Callable[[Provider], None]) -> None:
    """Register the plugin's model providers.

    :param register: call ``register(provider)`` once per :class:`Provider` instance; its ``name``
        is the model prefix it serves. When plugins register the same name, one serves it (the
        config's ``[plugins] prefer``, else a bundled plugin, else the first loaded) and the
        collision is reported (see ``streamhost plugins``).

    Called once at start-up, for every plugin, before any tool is listed.
    """


@hookspec
def register_fetchers(register: Callable[[Fetcher], None]) -> None:
    """Register the plugin's URL fetchers.

    :param register: call ``register(fetcher)`` once per :class:`Fetcher` instance. For a URL the
        host picks the first fetcher whose ``hosts`` name its host, else the first that serves its
        scheme. A ``name`` registered twice is settled and reported as for providers.

    Called once at start-up, for every plugin, before any tool is listed.
    """


@hookspec
def register_tools(register: Callable[[Tool], None]) -> None:
    """Register the plugin's tools, which MCP clients call (and the host lists in ``tools/list``).

    :param register: call ``register(tool)`` once per :class:`Tool` instance; its ``name`` is the tool's
        name. A name registered twice is settled and reported as for providers: the built-in tools
        (``generate``, ``list_models``, ``fetch_url``, ``summarize_urls``, registered through this hook
        too) keep their names unless ``[plugins] prefer`` gives one to another distribution.

    Called once at start-up, for every plugin, before any tool is listed.
    """
