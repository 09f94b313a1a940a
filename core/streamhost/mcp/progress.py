"""The MCP progress sink: turns relay updates into ``notifications/progress`` for one request."""

from __future__ import annotations

import math
from typing import Any

import mcp_types as types

from ..events import Update
from ..host.sinks import beside
from .http_stream import DirectStream

PROGRESS = "notifications/progress"
"""The method of a progress notification (written as is on the HTTP path of ``http_stream.py``)."""
DELTA_KEY = "streamhost/delta"
"""The ``_meta`` key of a text notification holding exactly the text generated since the previous one:
the one spelling of it in streamhost (the testing kit reads it from here)."""
OFFSET_KEY = "streamhost/offset"
"""The ``_meta`` key of a text notification holding where its delta starts in the final text."""


class ProgressSink:
    """Sends each update as a progress notification, if the client asked for progress.

    ``progress`` is the update's own ``progress`` when it has one (a tool that knows its ``total``),
    else the count of notifications; either way it strictly increases. Text updates carry the exact
    delta and its offset in ``_meta``. In tail mode an aside (a stall note) is shown after the tail, so
    the caller keeps seeing the latest text.
    """

    def __init__(self, session: Any, request_id: Any, token: str | int | None, mode: str = "tail",
                 total: float | None = None, direct: DirectStream | None = None) -> None:
        self.session = session
        self.direct = direct
        """The request's own HTTP response, when notifications are written to it directly (``http_stream.py``)."""
        self.request_id = request_id
        self.token = token
        self.mode = mode
        self.total = total
        self.count = 0
        self.last = 0.0

    async def send(self, update: Update) -> None:
        """Send one notification (nothing when the request carried no progress token)."""
        if self.token is None:
            return
        self.count += 1
        value = float(self.count) if update.progress is None else float(update.progress)
        # The spec requires progress to increase with every notification, whatever the caller computed.
        self.last = value if value > self.last else math.nextafter(self.last, math.inf)
        meta = None
        if update.kind == "text":
            meta = {DELTA_KEY: update.delta, OFFSET_KEY: update.offset}
            message = update.delta if self.mode == "delta" else update.tail
        elif update.aside and self.mode == "tail":
            message = beside(update.tail, update.status)
        else:
            message = update.status
        if self.direct is not None:
            params = {"progressToken": self.token, "progress": self.last, "total": self.total, "message": message,
                      "_meta": meta}
            await self.direct.notify(PROGRESS, {key: value for key, value in params.items() if value is not None})
            return
        params = types.ProgressNotificationParams(
            progress_token=self.token, progress=self.last, total=self.total, message=message, _meta=meta
        )
        await self.session.send_notification(
            types.ProgressNotification(params=params), related_request_id=self.request_id
        )


def progress_token(meta: Any) -> str | int | None:
    """The request's progress token from its ``_meta`` (a dict or a model), if any."""
    if meta is None:
        return None
    if isinstance(meta, dict):
        return meta.get("progress_token", meta.get("progressToken"))
    return getattr(meta, "progress_token", None)
