"""The built-in tools, as a default plugin: ``generate``, ``list_models``, ``fetch_url``, ``summarize_urls``,
``wait``.

The host loads it like any plugin (``streamhost plugins`` lists it as ``streamhost``), and it uses
only the public ``streamhost`` API, through the same ``register_tools`` hook a third party implements.
"""

from __future__ import annotations

from collections.abc import Callable

from streamhost import Tool, hookimpl

from .models import Generate, ListModels
from .pages import FetchUrl, SummarizeUrls
from .waiting import Wait


@hookimpl
def register_tools(register: Callable[[Tool], None]) -> None:
    """The built-in tools, in the order clients list them."""
    for tool in (Generate(), ListModels(), FetchUrl(), SummarizeUrls(), Wait()):
        register(tool)
