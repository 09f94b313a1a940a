"""Prices and context windows from litellm's own model cost map (``litellm.model_cost``).

The map is read only once litellm is imported — by a call (the host asks for a price after the call ran) or by
the warm-up — and this module never imports it: pricing must not cost seconds and 150 MB at start-up. Before
that, every model is "not known" (the host then records tokens without a cost, and assumes its default
context window). ``sdk.load`` sets ``LITELLM_LOCAL_MODEL_COST_MAP=True`` before the import, so the map is the
copy bundled with the installed litellm, never one fetched from the network.

The map is read as data rather than through ``litellm.get_model_info``: for some providers (Ollama) that asks
the model's server over HTTP, blocking, and on an unknown model it prints a banner to stdout.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from typing import Any

from streamhost import Pricing

from . import sdk
from .keys import sub_provider

OWN_SERVER_ROUTES = frozenset({"openai", "text-completion-openai"})
"""Sub-providers that, with an ``api_base`` set, mean an OpenAI-compatible server of the user's own (vLLM, LM
Studio, ...): its model is not OpenAI's, even when it has an OpenAI model's name, so it is not priced as one."""


def cost_map() -> Mapping[str, Any] | None:
    """litellm's model cost map if litellm is imported, else None (this never imports it)."""
    module = sdk.loaded() or sys.modules.get("litellm")
    found = getattr(module, "model_cost", None)  # None too while another thread is still importing litellm
    return found if isinstance(found, dict) else None


def entry_for(model: str, costs: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The map's entry for ``SUB/NAME`` (or a bare name): the full name's, else ``NAME``'s when the map says
    that entry belongs to ``SUB`` (the map keys OpenAI and Anthropic models without their prefix)."""
    entry = costs.get(model)
    if entry is None:
        sub = sub_provider(model)
        bare = costs.get(model.partition("/")[2]) if sub else None
        entry = bare if isinstance(bare, Mapping) and bare.get("litellm_provider") == sub else None
    return entry if isinstance(entry, Mapping) else None


def price_for(model: str, api_base: str | None = None) -> Pricing | None:
    """What litellm's map says one model costs, per million tokens; None when litellm is not imported yet, the
    map has no per-token price for it, or it is an ``openai/`` model served from an ``api_base`` of your own.

    Tiered prices (above 200k tokens and the like) and cached-input discounts are not applied: the base price is.
    """
    costs = cost_map()
    if costs is None or (api_base and sub_provider(model) in OWN_SERVER_ROUTES):
        return None
    entry = entry_for(model, costs)
    if entry is None:
        return None
    per_token = entry.get("input_cost_per_token"), entry.get("output_cost_per_token")
    if not all(_amount(value) for value in per_token):
        return None
    # Per token in the map; rounded so 4e-07 reads 0.40 per million, not 0.39999999999999997.
    return Pricing(input=round(per_token[0] * 1_000_000, 9), output=round(per_token[1] * 1_000_000, 9))


def context_window_for(model: str, api_base: str | None = None) -> int | None:
    """How many input tokens litellm's map says a model takes (``max_input_tokens``); None when not known."""
    costs = cost_map()
    if costs is None or (api_base and sub_provider(model) in OWN_SERVER_ROUTES):
        return None
    entry = entry_for(model, costs)
    window = entry.get("max_input_tokens") if entry is not None else None
    return window if isinstance(window, int) and not isinstance(window, bool) and window > 0 else None


def _amount(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
