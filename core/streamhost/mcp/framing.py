"""One line of the MCP stdio wire: parsing what comes in, encoding what goes out, repairing both.

Every request whose id can be read gets a reason when it cannot be served (a JSON-RPC error), and a
string that UTF-8 cannot hold (a lone UTF-16 surrogate) becomes U+FFFD instead of stopping the writer.
The happy paths are the SDK's own single parse and single serialization.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from dataclasses import dataclass
from typing import Any

import mcp_types as types
from mcp.shared.dispatcher import as_request_id
from pydantic import ValidationError
from pydantic_core import PydanticSerializationError

log = logging.getLogger("streamhost.wire")

MAX_DEPTH = 200
"""JSON nesting the SDK's parser accepts (pydantic-core's limit); deeper messages are refused with a reason."""
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\]:]')


@dataclass(frozen=True)
class Refusal:
    """A line that is not a message we can serve: answered with a JSON-RPC error when it has an id."""

    id: types.RequestId | None
    code: int
    message: str
    answer: bool = True
    """False for a malformed notification or response: JSON-RPC allows no answer to those."""

    def error(self) -> types.JSONRPCError:
        """The JSON-RPC error that answers it."""
        error = types.ErrorData(code=self.code, message=self.message)
        return types.JSONRPCError(jsonrpc="2.0", id=self.id, error=error)


def describe(exc: ValidationError, limit: int = 3) -> str:
    """A validation error as ``where: what`` parts, without echoing the input (it may hold secrets)."""
    parts = [f"{'.'.join(map(str, e['loc'])) or 'message'}: {e['msg']}" for e in exc.errors(include_input=False)]
    more = f" (and {len(parts) - limit} more)" if len(parts) > limit else ""
    return "; ".join(parts[:limit]) + more


def without_surrogates(text: str) -> str:
    """``text`` with every lone UTF-16 surrogate replaced by U+FFFD (pairs were joined by the JSON parser)."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def parse(line: bytes) -> types.JSONRPCMessage | Refusal:
    """One line of the wire as a message, or the reason it is not one.

    The happy path is the SDK's own single parse; everything else runs only for a line that failed it.
    """
    try:
        message = types.jsonrpc_message_adapter.validate_json(line, by_name=False)
    except ValidationError as exc:
        return _diagnose(line, exc)
    if isinstance(message, types.JSONRPCNotification) and b'"id"' in line:
        # pydantic reads {"id": true, "method": ...} as a notification; the client expects an answer.
        rid = json.loads(line).get("id")
        if rid is not None:
            return Refusal(None, types.INVALID_REQUEST,
                           f"Invalid request: id must be a string or an integer, got {json.dumps(rid)}")
    return message


def _diagnose(line: bytes, exc: ValidationError) -> types.JSONRPCMessage | Refusal:
    text = line.decode("utf-8", "replace")  # invalid UTF-8 becomes U+FFFD, as the SDK's text reader did
    try:
        data = json.loads(text)
    except RecursionError:
        return _too_deep(_scan_id(text), None)
    except ValueError as err:
        return Refusal(None, types.PARSE_ERROR, f"Parse error: not valid JSON ({err})")
    if not isinstance(data, dict):
        kind = "a batch (array)" if isinstance(data, list) else type(data).__name__
        return Refusal(None, types.INVALID_REQUEST, f"Invalid request: expected one JSON-RPC object, got {kind}")
    rid = as_request_id(data.get("id"))
    is_request = "method" in data and "id" in data
    answer = is_request and rid is not None
    depth = _depth(data)
    if depth > MAX_DEPTH:
        return _too_deep(rid, depth, answer)
    dumped = json.dumps(data, ensure_ascii=False)
    repaired = without_surrogates(dumped)
    if repaired != dumped:
        try:
            message = types.jsonrpc_message_adapter.validate_json(repaired, by_name=False)
        except ValidationError as again:
            exc = again
        else:
            log.warning("request %r: repaired lone UTF-16 surrogates (\\ud800-\\udfff escapes) to U+FFFD", rid)
            return message
    if is_request and rid is None:
        return Refusal(None, types.INVALID_REQUEST,
                       f"Invalid request: id must be a string or an integer, got {json.dumps(data['id'])}")
    method = data.get("method")
    if is_request and not isinstance(method, str):
        return Refusal(rid, types.INVALID_REQUEST, f"Invalid request: method must be a string, got {method!r}",
                       answer)
    if "params" in data and not isinstance(data["params"], dict):
        got = "an array" if isinstance(data["params"], list) else type(data["params"]).__name__
        return Refusal(rid, types.INVALID_PARAMS, f"Invalid params for {method}: params must be an object, got {got}",
                       answer)
    return Refusal(rid, types.INVALID_REQUEST, f"Invalid request: {describe(exc)}", answer)


def _too_deep(rid: types.RequestId | None, depth: int | None, answer: bool = True) -> Refusal:
    levels = f"{depth} levels deep" if depth is not None else "too deeply"
    return Refusal(rid, types.INVALID_PARAMS,
                   f"Invalid params: the message is nested {levels}; at most {MAX_DEPTH} levels are accepted. "
                   "Flatten the arguments (or the output_schema).", answer)


def _depth(data: Any) -> int:
    deepest, stack = 0, [(data, 1)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, dict | list):
            deepest = max(deepest, level)
            stack.extend((v, level + 1) for v in (value.values() if isinstance(value, dict) else value))
    return deepest


def _scan_id(text: str) -> types.RequestId | None:
    """The top-level ``id`` of a JSON object too deep for ``json.loads``: a scan of its strings and brackets."""
    depth, key = 0, None
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token[0] == '"':
            key = token if depth == 1 else None
            continue
        if token == ":" and key == '"id"':
            with contextlib.suppress(ValueError, RecursionError):
                return as_request_id(json.JSONDecoder().raw_decode(text[match.end():].lstrip())[0])
            return None
        depth += 1 if token in "{[" else -1 if token in "}]" else 0
        key = None
    return None


def encode(message: types.JSONRPCMessage) -> bytes:
    """One wire line; a string the SDK cannot encode (a lone surrogate) is repaired, never dropped."""
    try:
        return message.__pydantic_serializer__.to_json(message, by_alias=True, exclude_unset=True) + b"\n"
    except PydanticSerializationError:
        data = message.model_dump(by_alias=True, exclude_unset=True, mode="json")
        text = without_surrogates(json.dumps(data, ensure_ascii=False, separators=(",", ":")))
        log.warning("repaired lone UTF-16 surrogates in an outgoing %s", type(message).__name__)
        return text.encode("utf-8") + b"\n"
