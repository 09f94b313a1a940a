"""Who is calling, and what a token's holder may do: its models, its daily budget, its rate, and its own threads
and runs only.

Over HTTP every request carries a bearer token; the face that serves it sets :data:`CALLER` to the token's
:class:`Caller` for the duration of the call. On stdio and the command line there is no caller (None): the local
user, held to nothing here, who sees every thread and run. The rules are enforced in the host, where the model is
resolved and the runs are recorded, so every face and every tool that calls ``Services.generate`` is held to them.

Rate limits are token buckets in this process: a check costs no database round trip, and a refused call costs
the upstream nothing. With several replicas behind a load balancer each replica keeps its own buckets, so a
token may make up to ``per_minute`` calls a minute *on each replica*; the daily budget, summed from the store, is
shared by all of them.
"""

from __future__ import annotations

import fnmatch
import math
import threading
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import BudgetExceededError, InvalidArgumentError, StreamhostError
from ..services import ModelEntry
from .pricing import BUDGET_WINDOW_S, format_usd

if TYPE_CHECKING:
    from ..store.database import Store
    from ..store.tokens import TokenRecord

TOKEN_CACHE_S = 5.0
"""How long the HTTP face trusts a token lookup: a revoked token stops working within this many seconds."""
SpentBy = Callable[[str, float], Awaitable[float]]
"""``spent_by(token_name, since)``: the USD the token's runs started since ``since`` cost."""


@dataclass(frozen=True)
class Caller:
    """Whoever holds one bearer token: its name and the limits ``streamhost tokens add`` gave it."""

    name: str
    models: tuple[str, ...] | None = None
    """``fnmatch`` patterns of the model ids (``openai/gpt-4.1*``) it may call; None: every model."""
    daily_usd: float | None = None
    """USD its calls may cost over the last 24 hours; None: no budget of its own."""
    per_minute: int | None = None
    """Model calls (generate, summarize_urls) it may start a minute; None: no rate limit."""

    @classmethod
    def of(cls, record: TokenRecord) -> Caller:
        """The caller holding the stored token ``record``."""
        return cls(name=record.name, models=record.models, daily_usd=record.daily_usd, per_minute=record.per_minute)

    def allows(self, model_id: str) -> bool:
        """Whether the token may call the model ``PROVIDER/NAME``."""
        return self.models is None or any(fnmatch.fnmatchcase(model_id, pattern) for pattern in self.models)


CALLER: ContextVar[Caller | None] = ContextVar("streamhost.caller", default=None)
"""The caller of the call under way; None: a local caller (stdio, the command line), held to nothing."""


def owner() -> str | None:
    """The name of the calling token, which the runs and threads it makes are recorded under (None: local)."""
    caller = CALLER.get()
    return None if caller is None else caller.name


def may_see(owner_token: str | None) -> bool:
    """Whether the caller may read, continue or wait on what ``owner_token`` made: a local caller everything, a
    token only its own."""
    caller = CALLER.get()
    return caller is None or owner_token == caller.name


def may_call(model_id: str) -> bool:
    """Whether the caller may call the model ``PROVIDER/NAME``: a local caller any."""
    caller = CALLER.get()
    return caller is None or caller.allows(model_id)


def callable_models(entries: list[ModelEntry]) -> list[ModelEntry]:
    """The models of ``entries`` the caller may call, in their order: what ``list_models`` shows a token's holder,
    who has no use for the names of models it would be refused."""
    return entries if CALLER.get() is None else [entry for entry in entries if may_call(entry.id)]


async def owns_thread(store: Store, thread_id: str) -> bool:
    """Whether the caller may continue the (existing) thread: no database read for a local caller."""
    caller = CALLER.get()
    return caller is None or await store.owns_thread(thread_id, caller.name)


class RateLimits:
    """Token buckets, one per token name: ``per_minute`` calls at once, refilled evenly over the minute."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}  # name: (calls left, when last counted)
        self._lock = threading.Lock()  # the engine may serve several event loops (tests, workers in threads)

    def take(self, name: str, per_minute: int, now: float | None = None) -> float:
        """Take one call from ``name``'s bucket: 0 when it was there, else the seconds until one will be."""
        now = time.monotonic() if now is None else now
        with self._lock:
            left, then = self._buckets.get(name, (float(per_minute), now))
            left = min(float(per_minute), left + (now - then) * per_minute / 60)
            if left >= 1:
                self._buckets[name] = (left - 1, now)
                return 0.0
            self._buckets[name] = (left, now)
            return (1 - left) * 60 / per_minute if per_minute > 0 else math.inf


RATE_LIMITS = RateLimits()
"""This process's buckets."""


def check_model(caller: Caller, model_id: str) -> None:
    """Refuse a model the token may not call, naming the ones it may."""
    if not caller.allows(model_id):
        allowed = ", ".join(caller.models or ())
        raise InvalidArgumentError(f"model {model_id} is not allowed for token {caller.name} (allowed: {allowed}): "
                                   "call one of those, or ask whoever runs this server to allow it")


async def check_budget(caller: Caller, spent_by: SpentBy, now: float | None = None) -> None:
    """Refuse a call when the token's calls of the last 24 hours cost its ``daily_usd`` or more."""
    if caller.daily_usd is None:
        return
    spent = await spent_by(caller.name, (time.time() if now is None else now) - BUDGET_WINDOW_S)
    if spent >= caller.daily_usd:
        raise BudgetExceededError(
            f"token {caller.name} has used its daily budget of {format_usd(caller.daily_usd)}: {format_usd(spent)} "
            "spent in the last 24 hours — wait until earlier calls are more than 24 hours old, or ask whoever runs "
            "this server to raise it")


def check_rate(caller: Caller, limits: RateLimits = RATE_LIMITS) -> None:
    """Count one call against the token's rate; refuse it, saying when to retry, past ``per_minute``."""
    if caller.per_minute is None:
        return
    wait_s = limits.take(caller.name, caller.per_minute)
    if wait_s > 0:
        retry = "never: its limit is 0 calls a minute" if math.isinf(wait_s) else f"in {math.ceil(wait_s)} s"
        raise StreamhostError(f"token {caller.name} is limited to {caller.per_minute} model calls a minute and has "
                              f"made them: retry {retry}, or ask whoever runs this server to raise the limit")


async def admit(model_id: str, spent_by: SpentBy) -> None:
    """Hold the caller to its token before a model call: the model, then the budget, then the rate (a call refused
    for its model or budget does not use up the rate). Nothing for a local caller."""
    caller = CALLER.get()
    if caller is None:
        return
    check_model(caller, model_id)
    await check_budget(caller, spent_by)
    check_rate(caller)
