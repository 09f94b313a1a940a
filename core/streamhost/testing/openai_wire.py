"""OpenAI payloads for :mod:`streamhost.testing.llm_server`, standard library only.

Here: what a request asks (the default reply, the prompt's token count), ``{"error": ...}`` bodies, the models
list and the non-streaming reply of either API. Chat completions are ``chat_wire.py``, the Responses API is
``responses_wire.py``, SSE framing is ``sse.py``; their names are re-exported here.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .chat_wire import CHAT_ID, ChatStream, chat_completion
from .responses_wire import MESSAGE_ID, RESPONSE_ID, ResponsesStream, response_object, web_search_item
from .sse import sse

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

_WORDS = re.compile(r"\s*\S+|\s+")


def token_text(token: Any) -> str:
    """What a scripted token adds to the reply's text (a non-``str`` token: its JSON)."""
    return token if isinstance(token, str) else json.dumps(token)


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
