"""The hooks a streamhost plugin can implement.

Hooks are synchronous and cheap: they run at start-up, before the server answers anything. The
async streaming work lives on the objects they register.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

from .fetchers import Fetcher
from .providers import Provider

hookspec = pluggy.HookspecMarker("streamhost")
hookimpl = pluggy.HookimplMarker("streamhost")
"""Decorate a plugin's hook functions with this."""


# -- start-up: registration ------------------------------------------------------------------------


@hookspec
def register_providers(register: Callable[[Provider], None]) -> None:
    """Register the plugin's model providers.

    :param register: call ``register(provider)`` once per :class:`Provider` instance; its ``name``
        is the model prefix it serves. A name already taken by an earlier plugin is refused and
        reported (see ``streamhost plugins``).

    Called once at start-up, for every plugin, before any tool is listed.
    """


@hookspec
def register_fetchers(register: Callable[[Fetcher], None]) -> None:
    """Register the plugin's URL fetchers.

    :param register: call ``register(fetcher)`` once per :class:`Fetcher` instance. For a URL the
        host picks the first fetcher whose ``hosts`` name its host, else the first that serves its
        scheme. A ``name`` already taken is refused and reported.

    Called once at start-up, for every plugin, before any tool is listed.
    """
