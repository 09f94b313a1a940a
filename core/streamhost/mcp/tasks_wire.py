"""MCP tasks on the wire, in both protocol eras (the runtime is :mod:`.tasks`).

- 2026-07-28, the extension ``io.modelcontextprotocol/tasks`` (SEP-2663): a client that declares it in a
  request's ``_meta`` client capabilities may get ``resultType: "task"`` for a ``tools/call`` that is still
  running after :data:`QUICK_S`; ``tasks/get`` (the result inline once done), ``tasks/update``,
  ``tasks/cancel``. Advertised in ``server/discover``. No progress inside a task: ``statusMessage`` carries
  the text's tail.
- 2025-11-25, the experimental tasks: ``params.task`` on ``tools/call`` (for tools whose
  ``execution.taskSupport`` is ``optional``), ``tasks/get``, ``tasks/result``, ``tasks/list``,
  ``tasks/cancel``; the ``tasks`` server capability.

``tools/call`` is taken over in a middleware: the SDK checks a handshake-era ``tools/call`` result against
``CallToolResult``, which a task handle is not.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from .tasks import LiveTask, Tasks, TaskState
from .tasks_listen import TaskListen
from .tasks_shapes import (
    EXTENSION,
    MISSING_CLIENT_CAPABILITY,
    declares_tasks,
    detailed_task,
    dump,
    legacy_task,
    modern_task,
)

RELATED_TASK = "io.modelcontextprotocol/related-task"
QUICK_S = 2.0
"""2026-07-28: a call that ends this soon is answered with its result, not a task (the server decides)."""
LEGACY_CAPABILITY = types.ServerTasksCapability(
    list=types.TasksListCapability(), cancel=types.TasksCancelCapability(),
    requests=types.ServerTasksRequestsCapability(tools=types.TasksToolsCapability(call=types.TasksCallCapability())))


class _TaskId(types.RequestParams):
    task_id: str


class _Update(_TaskId):
    input_responses: dict[str, Any] | None = None


def install(server: Server[Any], tasks: Tasks, introduce: Callable[[Any], None]) -> None:
    """Serve tasks on ``server`` (both eras), when the tasks can be offered (the store is on).

    :param introduce: called with a ``tools/call``'s context before a task starts (the client's name, roots).
    """
    if not tasks.enabled:
        return
    server.extensions[EXTENSION] = {}
    server.middleware.append(_TaskCalls(server, tasks, introduce))
    handlers = _Handlers(tasks)
    server.add_request_handler("tasks/get", _TaskId, handlers.get)
    server.add_request_handler("tasks/cancel", _TaskId, handlers.cancel)
    server.add_request_handler("tasks/update", _Update, handlers.update)
    server.add_request_handler("tasks/result", _TaskId, handlers.result)
    server.add_request_handler("tasks/list", types.PaginatedRequestParams, handlers.list)
    server.add_request_handler("subscriptions/listen", types.SubscriptionsListenRequestParams, TaskListen(tasks))
    plain = server.get_capabilities

    def get_capabilities(*args: Any, **kwargs: Any) -> types.ServerCapabilities:
        capabilities = plain(*args, **kwargs)
        if kwargs.get("protocol_version") not in MODERN_PROTOCOL_VERSIONS:
            capabilities.tasks = LEGACY_CAPABILITY
        return capabilities

    server.get_capabilities = get_capabilities  # type: ignore[method-assign]


def modern(ctx: Any) -> bool:
    """Whether the request is of the 2026-07-28 era."""
    return ctx.protocol_version in MODERN_PROTOCOL_VERSIONS


class _TaskCalls:
    """The ``tools/call`` middleware: a call that may be a task starts as one."""

    def __init__(self, server: Server[Any], tasks: Tasks, introduce: Callable[[Any], None]) -> None:
        self.server = server
        self.tasks = tasks
        self.introduce = introduce

    async def __call__(self, ctx: Any, call_next: Callable[[Any], Awaitable[Any]]) -> Any:
        if ctx.method != "tools/call" or not isinstance(ctx.params, Mapping):
            return await call_next(ctx)
        params = ctx.params
        name, arguments = params.get("name"), params.get("arguments")
        if not isinstance(name, str) or not self.tasks.supports(name):
            return await call_next(ctx)
        if arguments is not None and not isinstance(arguments, dict):
            return await call_next(ctx)  # the SDK answers a malformed call
        if modern(ctx):
            if not declares_tasks(ctx):
                return await call_next(ctx)
            self.introduce(ctx)
            started = await self.tasks.start(name, dict(arguments or {}), quick_s=QUICK_S)
            if isinstance(started, LiveTask):
                return self._stamped({"resultType": "task", **modern_task(started.state())})
            return self._stamped({**dump(started), "resultType": "complete"})
        wanted = params.get("task")
        if not isinstance(wanted, dict):
            return await call_next(ctx)
        ttl = wanted.get("ttl")
        self.introduce(ctx)
        started = await self.tasks.start(name, dict(arguments or {}), ttl if isinstance(ttl, int) else None)
        if not isinstance(started, LiveTask):
            started = self.tasks.finished(started, ttl if isinstance(ttl, int) else None)
        return {"task": legacy_task(started.state())}

    def _stamped(self, result: dict[str, Any]) -> dict[str, Any]:
        # The runner stamps serverInfo on the results it shapes; this one bypasses it.
        result["_meta"] = {**(result.get("_meta") or {}), types.SERVER_INFO_META_KEY: self.server.server_info_stamp}
        return result


class _Handlers:
    """``tasks/*`` requests, answered in the shape of the request's era."""

    def __init__(self, tasks: Tasks) -> None:
        self.tasks = tasks

    async def get(self, ctx: Any, params: _TaskId) -> dict[str, Any]:
        state = await self._state(ctx, params.task_id)
        return detailed_task(state) if modern(ctx) else legacy_task(state)

    async def cancel(self, ctx: Any, params: _TaskId) -> dict[str, Any]:
        state = await self._state(ctx, params.task_id)
        if state.done:
            if modern(ctx):
                return {}  # cooperative: the ack alone; the task stays as it ended
            raise MCPError(code=types.INVALID_PARAMS,
                           message=f"task {params.task_id} has already ended ({state.status}): nothing to cancel")
        cancelled = await self.tasks.cancel(params.task_id)
        assert cancelled is not None
        return {} if modern(ctx) else legacy_task(cancelled)

    async def update(self, ctx: Any, params: _Update) -> dict[str, Any]:
        await self._state(ctx, params.task_id)
        return {}  # no task of ours asks for input: every response is for a key not outstanding, so ignored

    async def result(self, ctx: Any, params: _TaskId) -> dict[str, Any]:
        self._legacy_only(ctx, "tasks/result")
        await self._state(ctx, params.task_id)
        state = await self.tasks.outcome(params.task_id)
        assert state is not None and state.result is not None
        result = dump(state.result)
        result["_meta"] = {**(result.get("_meta") or {}), RELATED_TASK: {"taskId": state.id}}
        return result

    async def list(self, ctx: Any, params: types.PaginatedRequestParams) -> dict[str, Any]:
        self._legacy_only(ctx, "tasks/list")
        return {"tasks": [legacy_task(state) for state in self.tasks.listed()]}

    async def _state(self, ctx: Any, task_id: str) -> TaskState:
        if modern(ctx) and not declares_tasks(ctx):
            raise MCPError(code=MISSING_CLIENT_CAPABILITY, message="Missing required client capability",
                           data={"requiredCapabilities": {"extensions": {EXTENSION: {}}}})
        state = await self.tasks.state(task_id)
        if state is None:
            raise MCPError(code=types.INVALID_PARAMS,
                           message=f"unknown task {task_id!r}: give the taskId a tools/call answered with")
        return state

    @staticmethod
    def _legacy_only(ctx: Any, method: str) -> None:
        if modern(ctx):
            raise MCPError(code=types.METHOD_NOT_FOUND, message="Method not found", data=method)
