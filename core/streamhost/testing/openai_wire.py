"""OpenAI payloads for :mod:`streamhost.testing.llm_server`, standard library only.

Chat completion chunks and objects, Responses API events and objects, the models list and
``{"error": ...}`` bodies, in shapes the ``openai`` SDK validates. The per-token frames come from
pre-encoded byte templates.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = [
    "CHAT_ID",
    "MESSAGE_ID",
    "RESPONSE_ID",
    "ChatStream",
    "ResponsesStream",
    "chat_completion",
    "count_prompt_words",
    "default_tokens",
    "error_body",
    "error_type_for_status",
    "final_reply",
    "model_object",
    "models_list",
    "response_object",
    "sse",
    "token_text",
    "web_search_item",
]


# --------------------------------------------------------------------------- OpenAI payloads

CHAT_ID = "chatcmpl-test"
RESPONSE_ID = "resp_test"
MESSAGE_ID = "msg_test"

_WORDS = re.compile(r"\s*\S+|\s+")


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def _json_bytes(obj: Any) -> bytes:
    """Compact JSON as UTF-8; text UTF-8 cannot hold (a lone surrogate) goes out as ``\\uXXXX`` escapes."""
    try:
        return _dumps(obj).encode()
    except UnicodeEncodeError:
        return json.dumps(obj, separators=(",", ":")).encode()


def token_text(token: Any) -> str:
    """What a scripted token adds to the reply's text (a non-``str`` token: its JSON)."""
    return token if isinstance(token, str) else json.dumps(token)


def sse(data: Any, event: str | None = None) -> bytes:
    """Encode one SSE event (``event: NAME`` line optional); ``data`` is JSON-encoded unless ``str``."""
    payload = data.encode() if isinstance(data, str) else _json_bytes(data)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: ".encode() + payload + b"\n\n"


# --------------------------------------------------------------------------- requests


def _content_text(content: Any) -> str:
    """Text of a message ``content`` that is a string or a list of text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
        return " ".join(texts)
    return ""


def _messages(body: dict[str, Any]) -> list[tuple[str, str]]:
    """``(role, text)`` pairs from a chat ``messages`` list or a Responses ``input``."""
    out: list[tuple[str, str]] = []
    items = body.get("messages")
    if items is None:
        items = body.get("input")
    if isinstance(items, str):
        return [("user", items)]
    if isinstance(items, list):
        for item in items:
            if isinstance(item, dict) and "content" in item:
                out.append((str(item.get("role", "user")), _content_text(item["content"])))
    return out


def default_tokens(body: dict[str, Any] | None) -> list[str]:
    """The default reply: ``"echo: " + last user message`` split into words keeping spaces."""
    user = ""
    for role, text in _messages(body or {}):
        if role == "user":
            user = text
    return _WORDS.findall(f"echo: {user}" if user else "echo:")


def count_prompt_words(body: dict[str, Any] | None) -> int:
    """Default prompt token count: number of words in all messages / input (and instructions)."""
    body = body or {}
    n = sum(len(text.split()) for _, text in _messages(body))
    instructions = body.get("instructions")
    if isinstance(instructions, str):
        n += len(instructions.split())
    return n


# --------------------------------------------------------------------------- errors


def error_type_for_status(status: int) -> tuple[str, str | None]:
    """OpenAI-style ``(type, code)`` for an HTTP error status."""
    if status == 401:
        return "invalid_request_error", "invalid_api_key"
    if status == 403:
        return "permission_error", None
    if status == 404:
        return "invalid_request_error", "not_found"
    if status == 429:
        return "requests", "rate_limit_exceeded"
    if status >= 500:
        return "server_error", None
    return "invalid_request_error", None


def error_body(status: int, message: str) -> dict[str, Any]:
    """``{"error": {...}}`` body for an HTTP error response."""
    etype, code = error_type_for_status(status)
    return {"error": {"message": message, "type": etype, "param": None, "code": code}}


def models_list(ids: list[str]) -> dict[str, Any]:
    """``GET /v1/models`` body."""
    return {"object": "list", "data": [model_object(i) for i in ids]}


def model_object(model_id: str) -> dict[str, Any]:
    """One model object as listed by ``GET /v1/models``."""
    return {"id": model_id, "object": "model", "created": 0, "owned_by": "streamhost-test"}


# --------------------------------------------------------------------------- chat completions


def _chat_usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def chat_completion(model: str, created: int, text: str, finish_reason: str, usage: tuple[int, int]) -> dict[str, Any]:
    """A non-streaming ``chat.completion`` object."""
    return {
        "id": CHAT_ID,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": _chat_usage(*usage),
        "system_fingerprint": None,
    }


class ChatStream:
    """SSE frames of a streamed chat completion (``chat.completion.chunk`` events).

    Same interface as :class:`ResponsesStream`: :meth:`start`, :meth:`token`,
    :meth:`success`, :meth:`cut`, :meth:`failure`.
    """

    def __init__(self, body: dict[str, Any], model: str, created: int, finish_reason: str) -> None:
        """Prepare the byte templates; ``stream_options.include_usage`` is read from ``body``."""
        self._base = {"id": CHAT_ID, "object": "chat.completion.chunk", "created": created, "model": model}
        self._finish_reason = finish_reason
        opts = body.get("stream_options")
        self._include_usage = isinstance(opts, dict) and bool(opts.get("include_usage"))
        head = _dumps(self._base)[:-1]  # drop the closing brace
        self._prefix = f'data: {head},"choices":[{{"index":0,"delta":{{'.encode()
        self._suffix = b'},"finish_reason":null}]}\n\n'
        self._first = True

    def start(self) -> bytes:
        """Frames before the first token (none for chat completions)."""
        return b""

    def token(self, token: Any) -> bytes:
        """Frame for one content token; the first one also carries ``role: assistant``."""
        role = b'"role":"assistant",' if self._first else b""
        self._first = False
        return self._prefix + role + b'"content":' + _json_bytes(token) + self._suffix

    def success(self, text: str, usage: tuple[int, int]) -> bytes:
        """Finish chunk (empty delta), the usage chunk if requested, then ``data: [DONE]``."""
        out = sse({**self._base, "choices": [{"index": 0, "delta": {}, "finish_reason": self._finish_reason}]})
        if self._include_usage:
            out += sse({**self._base, "choices": [], "usage": _chat_usage(*usage)})
        return out + b"data: [DONE]\n\n"

    def cut(self, frames: tuple[str, ...], text: str) -> bytes:
        """The frames of ``frames`` a stream cut short still sends: "finish" (the chunk with
        ``finish_reason``, no usage), "done" (``data: [DONE]``); ``text`` is unused."""
        out = b""
        if "finish" in frames:
            out += sse({**self._base, "choices": [{"index": 0, "delta": {}, "finish_reason": self._finish_reason}]})
        return out + (b"data: [DONE]\n\n" if "done" in frames else b"")

    def failure(self, kind: str, message: str, text: str, usage: tuple[int, int]) -> bytes:
        """Mid-stream error as the API sends it: a data line holding ``{"error": ...}`` (``kind`` ignored)."""
        return sse({"error": {"message": message, "type": "server_error", "param": None, "code": None}})


# --------------------------------------------------------------------------- responses API


def _responses_usage(prompt: int, completion: int) -> dict[str, Any]:
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": prompt + completion,
    }


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _message_item(status: str, text: str | None = None) -> dict[str, Any]:
    content = [] if text is None else [_text_part(text)]
    return {"id": MESSAGE_ID, "type": "message", "role": "assistant", "status": status, "content": content}


def web_search_item(index: int, query: str, status: str = "completed") -> dict[str, Any]:
    """The ``web_search_call`` output item of search number ``index`` (a deep-research step)."""
    return {"id": f"ws_test_{index}", "type": "web_search_call", "status": status,
            "action": {"type": "search", "query": query}}


def response_object(
    body: dict[str, Any],
    model: str,
    created: int,
    status: str,
    text: str | None = None,
    usage: tuple[int, int] | None = None,
    error_message: str | None = None,
    response_id: str = RESPONSE_ID,
    background: bool = False,
    searches: tuple[str, ...] = (),
) -> dict[str, Any]:
    """A Responses API ``response`` object with ``status`` completed | in_progress | queued | failed | incomplete
    | cancelled.

    ``text`` None means no message item yet; ``searches`` are the web searches made before it.
    ``failed`` carries ``error_message``; ``incomplete`` carries ``incomplete_details.reason = "max_output_tokens"``.
    """
    item_status = status if status in ("completed", "in_progress") else "incomplete"
    instructions = body.get("instructions")
    output = [web_search_item(i, query) for i, query in enumerate(searches)]
    return {
        "id": response_id,
        "object": "response",
        "created_at": created,
        "status": status,
        "background": background,
        "error": {"code": "server_error", "message": error_message} if status == "failed" else None,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "instructions": instructions if isinstance(instructions, str) else None,
        "max_output_tokens": body.get("max_output_tokens"),
        "metadata": {},
        "model": model,
        "output": output if text is None else [*output, _message_item(item_status, text)],
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "store": False,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": body.get("tools") if isinstance(body.get("tools"), list) else [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": None if usage is None else _responses_usage(*usage),
        "user": None,
    }


class ResponsesStream:
    """SSE frames (``event:`` + ``data:``) of a streamed Responses API call; ``sequence_number`` from 0.

    A ``background`` response starts ``queued``; each of ``searches`` is a web search (a deep-research step:
    its item and ``response.web_search_call.*`` events) made before the message.
    """

    def __init__(self, body: dict[str, Any], model: str, created: int, finish_reason: str,
                 response_id: str = RESPONSE_ID, background: bool = False, searches: tuple[str, ...] = ()) -> None:
        """Prepare for a response to request ``body`` naming ``model`` (``finish_reason`` unused)."""
        self._body, self._model, self._created = body, model, created
        self._id, self._background, self._searches = response_id, background, tuple(searches)
        self._index = len(self._searches)  # the message's place in ``output``
        self.seq = 0
        self._delta_prefix = (
            b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta",'
            + f'"item_id":"{MESSAGE_ID}","output_index":{self._index},"content_index":0,"delta":'.encode()
        )

    def _event(self, name: str, fields: dict[str, Any]) -> bytes:
        frame = sse({"type": name, **fields, "sequence_number": self.seq}, event=name)
        self.seq += 1
        return frame

    def _response(self, status: str, **kw: Any) -> dict[str, Any]:
        return response_object(self._body, self._model, self._created, status, response_id=self._id,
                               background=self._background, searches=self._searches, **kw)

    def start(self) -> bytes:
        """``response.created`` .. ``response.content_part.added`` frames (web searches in between)."""
        first = "queued" if self._background else "in_progress"
        frames = [self._event("response.created", {"response": self._response(first)})]
        if self._background:
            frames.append(self._event("response.queued", {"response": self._response("queued")}))
        frames.append(self._event("response.in_progress", {"response": self._response("in_progress")}))
        for index, query in enumerate(self._searches):
            frames.append(self._web_search(index, query))
        part = {"item_id": MESSAGE_ID, "output_index": self._index, "content_index": 0}
        item = _message_item("in_progress")
        frames += [
            self._event("response.output_item.added", {"output_index": self._index, "item": item}),
            self._event("response.content_part.added", {**part, "part": _text_part("")}),
        ]
        return b"".join(frames)

    def _web_search(self, index: int, query: str) -> bytes:
        call = {"output_index": index, "item_id": f"ws_test_{index}"}
        added = {"id": f"ws_test_{index}", "type": "web_search_call", "status": "in_progress",
                 "action": {"type": "search"}}
        return b"".join([
            self._event("response.output_item.added", {"output_index": index, "item": added}),
            self._event("response.web_search_call.in_progress", call),
            self._event("response.web_search_call.searching", call),
            self._event("response.web_search_call.completed", call),
            self._event("response.output_item.done", {"output_index": index, "item": web_search_item(index, query)}),
        ])

    def token(self, token: Any) -> bytes:
        """One ``response.output_text.delta`` frame."""
        seq = self.seq
        self.seq += 1
        return self._delta_prefix + _json_bytes(token) + b',"sequence_number":%d,"logprobs":[]}\n\n' % seq

    def _close_item(self, text: str, item_status: str) -> bytes:
        part = {"item_id": MESSAGE_ID, "output_index": self._index, "content_index": 0}
        item = _message_item(item_status, text)
        return b"".join(
            [
                self._event("response.output_text.done", {**part, "text": text, "logprobs": []}),
                self._event("response.content_part.done", {**part, "part": _text_part(text)}),
                self._event("response.output_item.done", {"output_index": self._index, "item": item}),
            ]
        )

    def success(self, text: str, usage: tuple[int, int]) -> bytes:
        """``response.output_text.done`` .. ``response.completed`` frames."""
        resp = self._response("completed", text=text, usage=usage)
        return self._close_item(text, "completed") + self._event("response.completed", {"response": resp})

    def cut(self, frames: tuple[str, ...], text: str) -> bytes:
        """The frames of ``frames`` a stream cut short still sends: "finish" (the events closing the
        message item, never ``response.completed``), "done" (``data: [DONE]``, which this API never sends)."""
        out = self._close_item(text, "completed") if "finish" in frames else b""
        return out + (b"data: [DONE]\n\n" if "done" in frames else b"")

    def failure(self, kind: str, message: str, text: str, usage: tuple[int, int]) -> bytes:
        """Mid-stream failure frames for ``kind`` = ``error`` | ``response.failed`` | ``response.incomplete``."""
        if kind == "response.failed":
            resp = self._response("failed", text=text, usage=usage, error_message=message)
            return self._event("response.failed", {"response": resp})
        if kind == "response.incomplete":
            resp = self._response("incomplete", text=text, usage=usage)
            return self._close_item(text, "incomplete") + self._event("response.incomplete", {"response": resp})
        return self._event("error", {"code": "server_error", "message": message, "param": None})


def final_reply(
    api: str,
    body: dict[str, Any],
    model: str,
    created: int,
    text: str,
    usage: tuple[int, int],
    finish_reason: str,
    failure: str | None = None,
    message: str = "",
) -> tuple[int, dict[str, Any]]:
    """``(status, json)`` of a non-streaming reply for ``api`` = chat | responses.

    ``failure`` is None or an ``error_kind``: chat and ``"error"`` give HTTP 500 with
    an error body; ``response.failed`` / ``response.incomplete`` give a 200 response
    object with status failed / incomplete.
    """
    if failure is not None and (api == "chat" or failure == "error"):
        return 500, error_body(500, message)
    if api == "chat":
        return 200, chat_completion(model, created, text, finish_reason, usage)
    status = {None: "completed", "response.failed": "failed"}.get(failure, "incomplete")
    return 200, response_object(body, model, created, status, text=text, usage=usage, error_message=message)
