"""What :class:`~streamhost.testing.llm_server.LLMTestServer` answers: the scripts queued per model, the models
list, and the reply to each request (errors, chat completions and Responses, streamed or not, background
responses), written as each script schedules it. Standard library only.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

from . import http_wire
from . import openai_wire as wire
from .background import BackgroundResponses
from .scripts import RequestRecord, Script, play

__all__ = ["Replies"]

SetFields = Callable[..., None]
"""Updates a request record's fields under the server's lock: ``set_fields(rec, name=value, ...)``."""


class Replies:
    """The replies of one test server: scripts per model, the models list, background responses."""

    def __init__(self, require_key: str | None, set_fields: SetFields) -> None:
        """``require_key``: answer 401 to requests without it; ``set_fields`` updates request records."""
        self._require_key = require_key
        self._set = set_fields
        self._lock = threading.Lock()
        self._scripts: dict[str, list[Script]] = {}
        self._models: list[str] | None = None
        self._models_delay_s = 0.0
        self._counter = 0
        self._background = BackgroundResponses(set_fields)  # only touched on the server's loop

    def script(self, model: str, scripts: tuple[Script, ...]) -> None:
        """Queue ``scripts`` for ``model`` (the last repeats), replacing its queue; none: the default reply."""
        with self._lock:
            if scripts:
                self._scripts[model] = list(scripts)
            else:
                self._scripts.pop(model, None)

    def set_models(self, ids: list[str], delay_s: float) -> None:
        """What ``GET /v1/models`` lists, answered after ``delay_s`` seconds."""
        with self._lock:
            self._models, self._models_delay_s = list(ids), delay_s

    def _next_script(self, model: str | None) -> Script:
        with self._lock:
            queue = self._scripts.get(model or "")
            if not queue:
                return Script()
            return queue.pop(0) if len(queue) > 1 else queue[0]

    async def respond(self, req: http_wire.HttpRequest, rec: RequestRecord, w: asyncio.StreamWriter) -> bool | None:
        """Write the reply; False when it closed the connection (a scripted ``drop_connection``)."""
        # Records are updated just before each write, so a client that has read something
        # always sees it reflected in the records (StreamWriter.write hands bytes to the socket).
        async def send_json(status: int, obj: Any, headers: tuple[str, ...] = (), tokens: int = 0) -> None:
            data = http_wire.json_response(status, obj, req.keep_alive, headers)
            now = time.monotonic()
            self._set(rec, ended=now, **({"tokens_sent": tokens, "first_token": now} if tokens else {}))
            w.write(data)
            await w.drain()

        if self._require_key is not None and not rec.authorized:
            return await send_json(401, wire.error_body(401, "Incorrect API key provided"))
        if rec.api == "models" and req.method == "GET":
            with self._lock:
                ids = list(self._models) if self._models is not None else sorted(self._scripts)
                delay_s = self._models_delay_s
            if req.path == "/v1/models":
                await asyncio.sleep(delay_s)
                return await send_json(200, wire.models_list(ids))
            mid = req.path[len("/v1/models/") :]
            if mid in ids:
                return await send_json(200, wire.model_object(mid))
            return await send_json(404, wire.error_body(404, f"The model '{mid}' does not exist"))
        if rec.action in ("retrieve", "cancel"):
            return await self._background.follow(req, rec, w, send_json)
        if rec.api not in ("chat", "responses") or req.method != "POST":
            return await send_json(404, wire.error_body(404, f"Unknown request URL: {req.method} {req.path}"))
        if rec.body is None:
            return await send_json(400, wire.error_body(400, "Request body must be a JSON object"))

        t0 = asyncio.get_running_loop().time()
        script = self._next_script(rec.model)
        body, model, created = rec.body, rec.model or "test-model", int(time.time())
        if script.status != 200:
            await asyncio.sleep(script.first_delay_s)
            extra = () if script.retry_after is None else (f"Retry-After: {_num(script.retry_after)}",)
            return await send_json(script.status, wire.error_body(script.status, script.error_message), extra)
        tokens = list(script.tokens) if script.tokens is not None else wire.default_tokens(body)
        if script.headers_delay:
            await asyncio.sleep(script.first_delay_s)
        if rec.api == "responses" and body.get("background") is True:
            usage = lambda completion: self._usage(script, body, completion)  # noqa: E731
            return await self._background.create(req, rec, w, script, tokens, t0, usage, send_json)
        pieces: list[str] = []

        if not rec.stream:

            async def collect(token: Any) -> None:
                pieces.append(token)

            outcome = await play(script, tokens, t0, collect)
            if outcome == "stall":
                await asyncio.Event().wait()  # until the client leaves or the server stops
            usage = self._usage(script, body, len(pieces))
            failure = script.error_kind if outcome == "error" else None
            text = "".join(map(wire.token_text, pieces))
            status, obj = wire.final_reply(
                rec.api, body, model, created, text, usage, script.finish_reason, failure, script.error_message
            )
            return await send_json(status, obj, tokens=len(pieces) if status == 200 else 0)

        self._counter += 1
        fmt: wire.ChatStream | wire.ResponsesStream
        if rec.api == "chat":
            fmt = wire.ChatStream(body, model, created, script.finish_reason)
        else:
            fmt = wire.ResponsesStream(body, model, created, script.finish_reason, searches=script.searches)
        w.write(http_wire.stream_head(req.keep_alive, f"req_test_{self._counter}"))
        if head := fmt.start():
            w.write(http_wire.chunk(head))
        await w.drain()

        async def send(token: Any) -> None:
            data = http_wire.chunk(fmt.token(token))
            pieces.append(token)
            if rec.first_token is None:
                self._set(rec, first_token=time.monotonic(), tokens_sent=1)
            else:
                self._set(rec, tokens_sent=len(pieces))
            w.write(data)
            await w.drain()

        outcome = await play(script, tokens, t0, send)
        if outcome == "stall":
            await asyncio.Event().wait()  # until the client leaves or the server stops
        text, usage = "".join(map(wire.token_text, pieces)), self._usage(script, body, len(pieces))
        if outcome == "end":
            tail = fmt.cut(script.end_with, text)
            self._set(rec, ended=time.monotonic())
            if script.drop_connection:
                w.write(http_wire.chunk(tail) if tail else b"")
                w.close()  # flushes what is buffered, then FIN: the chunked body never ends
                return False
            w.write(http_wire.chunk(tail, last=True) if tail else b"0\r\n\r\n")
            await w.drain()
            return None
        if outcome == "error":
            tail = fmt.failure(script.error_kind, script.error_message, text, usage)
        else:
            tail = fmt.success(text, usage)
        data = http_wire.chunk(tail, last=True)
        self._set(rec, ended=time.monotonic())
        w.write(data)
        await w.drain()
        return None

    @staticmethod
    def _usage(script: Script, body: dict[str, Any], completion: int) -> tuple[int, int]:
        return script.usage if script.usage is not None else (wire.count_prompt_words(body), completion)


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
