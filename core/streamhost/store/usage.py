"""Usage and cost summed over runs: per model, thread or token in SQL, per day in Python (local dates).

Days are the caller's local calendar days, which SQL cannot compute the same way on SQLite and PostgreSQL;
the rows read for them are a few numbers per run, so summing them here stays cheap.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from streamhost.store import schema
from streamhost.store.records import UsageKey, UsageRow

NONE_KEY = "-"
"""The key of runs that have no model, thread or token."""

_COLUMNS = {"model": schema.runs.c.model, "thread": schema.runs.c.thread_id, "token": schema.runs.c.owner_token}


def _since(query: Any, since: float | None) -> Any:
    return query if since is None else query.where(schema.runs.c.started_at >= since)


async def usage(conn: AsyncConnection, since: float | None, by: UsageKey) -> list[UsageRow]:
    """One row per key, the biggest cost first (then the most runs)."""
    r = schema.runs
    if by == "day":
        return await _by_day(conn, since)
    if by not in _COLUMNS:
        raise ValueError(f"usage by {by!r}: expected one of model, day, thread, token")
    key = _COLUMNS[by]
    query = _since(select(
        key.label("key"),
        func.count().label("runs"),
        func.coalesce(func.sum(r.c.input_tokens), 0).label("input_tokens"),
        func.coalesce(func.sum(r.c.output_tokens), 0).label("output_tokens"),
        func.coalesce(func.sum(r.c.cost_usd), 0.0).label("cost_usd"),
        func.max(case((r.c.usage_estimated, 1), else_=0)).label("estimated"),
        func.sum(case((r.c.cost_usd.is_(None), 1), else_=0)).label("unpriced"),
    ), since).group_by(key)
    rows = [UsageRow(key=row.key or NONE_KEY, runs=row.runs, input_tokens=int(row.input_tokens),
                     output_tokens=int(row.output_tokens), cost_usd=float(row.cost_usd),
                     estimated=bool(row.estimated), unpriced=int(row.unpriced)) for row in await conn.execute(query)]
    return sorted(rows, key=lambda row: (-row.cost_usd, -row.runs, row.key))


async def _by_day(conn: AsyncConnection, since: float | None) -> list[UsageRow]:
    r = schema.runs
    query = _since(select(r.c.started_at, r.c.input_tokens, r.c.output_tokens, r.c.cost_usd, r.c.usage_estimated),
                   since)
    days: dict[str, list[Any]] = {}
    for row in await conn.execute(query):
        day = days.setdefault(time.strftime("%Y-%m-%d", time.localtime(row.started_at)), [0, 0, 0, 0.0, False, 0])
        day[0] += 1
        day[1] += row.input_tokens or 0
        day[2] += row.output_tokens or 0
        day[3] += row.cost_usd or 0.0
        day[4] = day[4] or bool(row.usage_estimated)
        day[5] += row.cost_usd is None
    return [UsageRow(key, runs, tokens_in, tokens_out, cost, estimated, unpriced)
            for key, (runs, tokens_in, tokens_out, cost, estimated, unpriced) in sorted(days.items(), reverse=True)]


async def cost_since(conn: AsyncConnection, since: float, owner_token: str | None = None) -> float:
    """USD spent by runs started at or after ``since``; only by the token named ``owner_token`` when given."""
    query = select(func.coalesce(func.sum(schema.runs.c.cost_usd), 0.0)).where(schema.runs.c.started_at >= since)
    if owner_token is not None:
        query = query.where(schema.runs.c.owner_token == owner_token)
    return float((await conn.execute(query)).scalar_one())
