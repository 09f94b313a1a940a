"""``subscriptions/listen`` for tasks (2026-07-28): a client names the task ids it follows and is sent
``notifications/tasks`` on the request's own stream when one starts or ends, each carrying the task as
``tasks/get`` would answer then (its result inline once done).

Only ``taskIds`` is served here; ``toolsListChanged`` is acknowledged and never fires (the tools of a running
server do not change). The ack comes first; the stream lasts until the client cancels the request.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import anyio
import mcp_types as types
from mcp.shared.exceptions import MCPError

from ..host.callers import owner
from .tasks import Tasks, TaskState
from .tasks_shapes import EXTENSION, MISSING_CLIENT_CAPABILITY, declares_tasks, detailed_task

log = logging.getLogger("streamhost.tasks")

SUBSCRIPTION_ID = "io.modelcontextprotocol/subscriptionId"
MAX_STREAMS = 256
BACKLOG = 256


class _TasksNotification(types.Notification[dict[str, Any], Literal["notifications/tasks"]]):
    method: Literal["notifications/tasks"] = "notifications/tasks"
    params: dict[str, Any]


class TaskListen:
    """The ``subscriptions/listen`` handler: one request, one stream of task notifications."""

    def __init__(self, tasks: Tasks) -> None:
        self.tasks = tasks
        # Each stream: the task ids it follows, and the token that listens (None: a local caller).
        self._streams: dict[anyio.abc.ObjectSendStream[TaskState], tuple[frozenset[str], str | None]] = {}
        tasks.watch(self._deliver)

    async def __call__(self, ctx: Any, params: types.SubscriptionsListenRequestParams) -> dict[str, Any]:
        requested = params.notifications
        task_ids = (requested.model_extra or {}).get("taskIds") or []
        if not isinstance(task_ids, list) or not all(isinstance(task_id, str) for task_id in task_ids):
            raise MCPError(code=types.INVALID_PARAMS, message="notifications.taskIds must be a list of task ids")
        if task_ids and not declares_tasks(ctx):
            raise MCPError(code=MISSING_CLIENT_CAPABILITY, message="Missing required client capability",
                           data={"requiredCapabilities": {"extensions": {EXTENSION: {}}}})
        if len(self._streams) >= MAX_STREAMS:
            raise MCPError(code=types.INTERNAL_ERROR, message="too many subscriptions/listen streams are open")
        meta = {SUBSCRIPTION_ID: ctx.request_id}
        honored: dict[str, Any] = {"taskIds": task_ids} if task_ids else {}
        if requested.tools_list_changed:
            honored["toolsListChanged"] = True
        send, receive = anyio.create_memory_object_stream[TaskState](BACKLOG)
        # Following before the ack: a task that ends while the ack is written is not missed.
        self._streams[send] = (frozenset(task_ids), owner())
        try:
            await ctx.session.send_notification(
                types.SubscriptionsAcknowledgedNotification(params=types.SubscriptionsAcknowledgedNotificationParams(
                    notifications=types.SubscriptionFilter.model_validate(honored), _meta=meta)),
                related_request_id=ctx.request_id)
            # A task that ended before the client listened is told at once: its end is not missed either.
            for task_id in task_ids:
                state = await self.tasks.state(task_id)
                if state is not None and state.done:
                    await self._send(ctx, state, meta)
            async for state in receive:
                await self._send(ctx, state, meta)
        finally:
            self._streams.pop(send, None)
            send.close()
            receive.close()
        return {"_meta": meta}

    @staticmethod
    async def _send(ctx: Any, state: TaskState, meta: dict[str, Any]) -> None:
        await ctx.session.send_notification(_TasksNotification(params={**detailed_task(state), "_meta": meta}),
                                            related_request_id=ctx.request_id)

    def _deliver(self, state: TaskState) -> None:
        for send, (task_ids, listener) in list(self._streams.items()):
            # Another token's task is never told, even to a listener that names its id.
            if state.id in task_ids and (listener is None or listener == state.owner):
                try:
                    send.send_nowait(state)
                except (anyio.WouldBlock, anyio.ClosedResourceError):
                    log.warning("a subscriptions/listen stream fell behind; it is ended (the client listens again)")
                    self._streams.pop(send, None)
                    send.close()
