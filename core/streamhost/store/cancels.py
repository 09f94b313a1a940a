"""Cancel requests across processes: the queries behind ``Store.request_cancel`` and ``Store.cancel_requests``.

A ``wait(cancel=true)`` (or ``tasks/cancel``) that reaches a process which does not run the run stores the
request in the run's row (``runs.cancel_requested_at``); the process running it polls for requests among its
own live runs and cancels them as a local cancel does. The run's status becoming ``cancelled`` settles the
request; the column keeps when it was asked.
"""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from streamhost.store import schema


async def request(conn: AsyncConnection, run_id: str, now: float) -> bool:
    """Ask the running run to stop; False when it is not running (it ended meanwhile, or there is no such run).

    Conditional on the status, so a run that ended between the caller's read and this write is left as it ended;
    a second request keeps the first one's time.
    """
    r = schema.runs
    asked = await conn.execute(update(r).where(r.c.id == run_id, r.c.status == "running").values(
        cancel_requested_at=func.coalesce(r.c.cancel_requested_at, now)))
    return asked.rowcount == 1


async def requested(conn: AsyncConnection, run_ids: list[str]) -> list[str]:
    """Which of these runs are still running and have been asked to stop."""
    r = schema.runs
    query = select(r.c.id).where(r.c.id.in_(run_ids), r.c.status == "running", r.c.cancel_requested_at.is_not(None))
    return [row.id for row in await conn.execute(query)]
