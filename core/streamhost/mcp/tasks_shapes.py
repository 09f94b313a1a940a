"""Tasks as the wire shows them: the task objects of both protocol eras, and whether a request declares the
2026-07-28 tasks extension."""

from __future__ import annotations

import datetime
from typing import Any

import mcp_types as types

from .tasks import POLL_INTERVAL_MS, TaskState

EXTENSION = "io.modelcontextprotocol/tasks"
MISSING_CLIENT_CAPABILITY = -32021


def declares_tasks(ctx: Any) -> bool:
    """Whether a 2026-07-28 request declares the tasks extension in its client capabilities."""
    meta = ctx.meta if isinstance(ctx.meta, dict) else getattr(ctx.meta, "model_extra", None) or {}
    capabilities = meta.get(types.CLIENT_CAPABILITIES_META_KEY)
    extensions = capabilities.get("extensions") if isinstance(capabilities, dict) else None
    return isinstance(extensions, dict) and EXTENSION in extensions


def legacy_task(state: TaskState) -> dict[str, Any]:
    """A task in the 2025-11-25 shape."""
    return {"taskId": state.id, "status": state.status, "statusMessage": state.message,
            "createdAt": _iso(state.created_at), "lastUpdatedAt": _iso(state.updated_at), "ttl": state.ttl_ms,
            "pollInterval": POLL_INTERVAL_MS}


def modern_task(state: TaskState) -> dict[str, Any]:
    """A task in the 2026-07-28 shape. A call whose result is an error is ``completed`` there (``failed`` is
    for JSON-RPC errors only): its result says ``isError``."""
    status = "completed" if state.status == "failed" and state.result is not None else state.status
    task: dict[str, Any] = {"taskId": state.id, "status": status, "statusMessage": state.message,
                            "createdAt": _iso(state.created_at), "lastUpdatedAt": _iso(state.updated_at),
                            "ttlMs": state.ttl_ms}
    if status == "working":
        task["pollIntervalMs"] = POLL_INTERVAL_MS
    if status == "failed":
        task["error"] = {"code": types.INTERNAL_ERROR, "message": state.message}
    return task


def _iso(at: float) -> str:
    return datetime.datetime.fromtimestamp(at, datetime.timezone.utc).isoformat(timespec="milliseconds")


def dump(result: types.CallToolResult) -> dict[str, Any]:
    """A result as the wire has it."""
    return result.model_dump(by_alias=True, mode="json", exclude_none=True)


def detailed_task(state: TaskState) -> dict[str, Any]:
    """A 2026-07-28 task as ``tasks/get`` and ``notifications/tasks`` carry it: its result inline once done."""
    detailed = modern_task(state)
    if state.done and state.status != "cancelled" and state.result is not None:
        detailed["result"] = dump(state.result)
    return detailed
