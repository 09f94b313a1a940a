"""What calls cost: each model's price and context window, a call's token counts and cost in USD, and the daily
budget those costs are held against (``[limits] daily_usd``).

A price comes from the config first (``[models."P/N"] price_in`` / ``price_out``, USD per million tokens), else
from the provider (``Provider.pricing``: a plugin's price table, litellm's cost map). Token counts come from the
provider's ``Usage`` event, else they are estimated from the text (characters / 4) and marked as estimated, so
a total never passes an estimate off as a count.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import BudgetExceededError
from ..providers import Pricing

if TYPE_CHECKING:
    from ..providers import Provider
    from .config import Config

log = logging.getLogger("streamhost.pricing")

DEFAULT_CONTEXT_WINDOW = 128_000
"""The context window assumed for a model neither the config nor its provider gives one for."""
CHARS_PER_TOKEN = 4
"""How many characters make a token, roughly, in English prose and code: what :func:`estimate_tokens` divides by."""
BUDGET_WINDOW_S = 24 * 60 * 60
"""The daily budget counts what calls cost over this many seconds up to now: a sliding window, not a calendar
day (no burst of spending at midnight, and the same answer in every time zone)."""

# What was already logged, so a model whose provider fails to price it says so once, not on every call.
_logged: set[tuple[str, ...]] = set()


def price_of(config: Config, provider: Provider, model_id: str, name: str) -> Pricing | None:
    """What one model costs: the config's ``price_in`` / ``price_out`` win over the provider's price.

    A config that sets only one of the two overrides that half and takes the other from the provider: someone
    with a negotiated input price writes ``price_in`` alone. When the provider has no price to complete it, the
    model is unpriced (tokens are recorded without a cost) and a warning is logged once, naming the missing key.
    A provider whose ``pricing`` raises or returns something other than a :class:`Pricing` of finite prices ≥ 0
    counts as not knowing, logged once: a plugin's bug must not fail the call it is pricing.

    :param config: the host's config (``config.models[model_id]`` holds the ``[models."P/N"]`` table).
    :param provider: the provider serving the model.
    :param model_id: the full ``PROVIDER/NAME``.
    :param name: the name without the provider prefix, as the provider knows it.
    :returns: the price, or None when it is not known.
    """
    table = config.models.get(model_id, {})
    price_in, price_out = table.get("price_in"), table.get("price_out")
    if price_in is not None and price_out is not None:
        return Pricing(input=float(price_in), output=float(price_out))
    listed = _ask(provider, "pricing", name, model_id)
    if listed is not None and not (isinstance(listed, Pricing) and _amount(listed.input) and _amount(listed.output)):
        _log_once(("pricing-type", model_id), "%s: %s.pricing returned %r, not a Pricing of prices ≥ 0: its cost "
                  "is not recorded", model_id, type(provider).__name__, listed)
        listed = None
    if price_in is None and price_out is None:
        return listed
    if listed is None:
        missing = "price_out" if price_out is None else "price_in"
        where = config.locate(f'models."{model_id}".{missing}')
        _log_once(("half-price", model_id), '%s: models."%s" sets only one of price_in and price_out, and its '
                  "provider has no price for the other: its cost is not recorded — set %s%s",
                  model_id, model_id, missing, f" ({where})" if where else "")
        return None
    return Pricing(input=float(price_in) if price_in is not None else listed.input,
                   output=float(price_out) if price_out is not None else listed.output)


def context_window_of(config: Config, provider: Provider, model_id: str, name: str) -> int:
    """How many tokens one model takes in: ``[models."P/N"] context_window``, else the provider's
    ``context_window``, else :data:`DEFAULT_CONTEXT_WINDOW`. A provider that raises or answers something other
    than a positive whole number counts as not knowing (logged once).
    """
    configured = config.models.get(model_id, {}).get("context_window")
    if configured is not None:
        return int(configured)
    window = _ask(provider, "context_window", name, model_id)
    if window is None:
        return DEFAULT_CONTEXT_WINDOW
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        _log_once(("window-type", model_id), "%s: %s.context_window returned %r, not a positive whole number: "
                  "assuming %d tokens", model_id, type(provider).__name__, window, DEFAULT_CONTEXT_WINDOW)
        return DEFAULT_CONTEXT_WINDOW
    return window


def estimate_tokens_of(chars: int) -> int:
    """:func:`estimate_tokens` for a text of ``chars`` characters."""
    return math.ceil(max(chars, 0) / CHARS_PER_TOKEN)


def estimate_tokens(text: str) -> int:
    """An estimate of how many tokens ``text`` is: its characters / :data:`CHARS_PER_TOKEN`, rounded up.

    Only an estimate (no tokenizer is loaded): close for English prose and code, low for CJK text and for
    reasoning models (their hidden reasoning tokens are billed as output but never seen). Use the provider's
    own counts whenever it reports them.
    """
    return math.ceil(len(text) / CHARS_PER_TOKEN)


@dataclass(frozen=True)
class UsageFigures:
    """One call's token counts and cost, as recorded for the usage ledger."""

    input_tokens: int
    output_tokens: int
    estimated: bool
    """True when either count is an estimate (:func:`estimate_tokens`), not the provider's own number."""
    cost_usd: float | None
    """The cost at the model's price; None when the price is not known."""

    def as_dict(self) -> dict[str, Any]:
        """The figures as plain values, for results and the store."""
        return {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "estimated": self.estimated, "cost_usd": self.cost_usd}


def usage_figures(reported: Mapping[str, Any] | None, prompt_chars: int, answer: str,
                  pricing: Pricing | None) -> UsageFigures:
    """A call's token counts and cost: the provider's counts where it reported them, else estimates.

    A count the provider left out is derived from ``total_tokens`` when that and the other count are known
    (exact), else estimated from the text (and the figures are marked estimated).

    :param reported: the provider's ``Usage`` as ``Usage.as_dict()`` (None or empty: nothing reported).
    :param prompt_chars: the characters sent as input (system, history, prompt, files), for the estimate.
    :param answer: the text generated, for the estimate.
    :param pricing: the model's price (:func:`price_of`), or None.
    """
    reported = reported or {}
    input_tokens, output_tokens = _count(reported, "input_tokens"), _count(reported, "output_tokens")
    total = _count(reported, "total_tokens")
    if total is not None:
        if input_tokens is None and output_tokens is not None and total >= output_tokens:
            input_tokens = total - output_tokens
        elif output_tokens is None and input_tokens is not None and total >= input_tokens:
            output_tokens = total - input_tokens
    estimated = input_tokens is None or output_tokens is None
    if input_tokens is None:
        input_tokens = math.ceil(max(prompt_chars, 0) / CHARS_PER_TOKEN)
    if output_tokens is None:
        output_tokens = estimate_tokens(answer)
    cost = pricing.cost(input_tokens, output_tokens) if pricing is not None else None
    return UsageFigures(input_tokens=input_tokens, output_tokens=output_tokens, estimated=estimated, cost_usd=cost)


async def check_budget(limit_usd: float | None, spent_since: Callable[[float], Awaitable[float]], *,
                       where: str = "", now: float | None = None) -> None:
    """Refuse a new call when the calls of the last 24 hours cost ``limit_usd`` or more.

    Calls whose cost is not known (no price) count as free: their tokens are recorded, but the budget cannot
    hold them against anything. A limit of 0 refuses every call. What ``spent_since`` raises (the store is
    unreachable) propagates: whether to call without a budget check is the caller's decision.

    :param limit_usd: ``config.limits.daily_usd``; None: no budget, nothing is checked.
    :param spent_since: the USD spent since an epoch time, e.g. the store's ``cost_since``.
    :param where: the config file that sets the limit (or ``config.locate("limits.daily_usd")``), named in the
        message.
    :param now: the current epoch time (tests); None: ``time.time()``.
    :raises BudgetExceededError: the budget is used up; the message says the limit, the spending and what to do.
    """
    if limit_usd is None:
        return
    spent = await spent_since((time.time() if now is None else now) - BUDGET_WINDOW_S)
    if spent >= limit_usd:
        in_file = f" in {where}" if where else ""
        raise BudgetExceededError(
            f"daily budget of {format_usd(limit_usd)} reached: {format_usd(spent)} spent in the last 24 hours — "
            f"raise [limits] daily_usd{in_file}, or wait until earlier calls are more than 24 hours old")


def format_usd(amount: float) -> str:
    """Dollars as a person reads them: cents (``$5.12``); amounts under a cent keep their first digits
    (``$0.0042``), so a cheap model's calls do not all read ``$0.00``."""
    if amount == 0 or abs(amount) >= 0.01:
        return f"${amount:,.2f}"
    return f"${amount:.2g}" if abs(amount) >= 0.0001 else f"${amount:.1e}"


def _amount(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


def _count(reported: Mapping[str, Any], key: str) -> int | None:
    value = reported.get(key)
    # An upstream may send a float, a string or garbage: only a whole number ≥ 0 is a count.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        return None
    return int(value)


def _ask(provider: Provider, method: str, name: str, model_id: str) -> Any:
    try:
        return getattr(provider, method)(name)
    except Exception as exc:  # a plugin's bug: the call goes on, unpriced
        _log_once((method, model_id), "%s: %s.%s raised %s: %s — treated as not known",
                  model_id, type(provider).__name__, method, type(exc).__name__, exc)
        return None


def _log_once(key: tuple[str, ...], message: str, *args: Any) -> None:
    if key not in _logged:
        _logged.add(key)
        log.warning(message, *args)
