"""One oversized request must not hold up the others: arguments and output_schema are bounded, refusals
say which argument, what the limit is and what to do, and a model's odd JSON cannot break the answer."""

from __future__ import annotations

import json
import time
from typing import Any

import anyio
import pytest

from streamhost.errors import InvalidArgumentError
from streamhost.host.output_schema import (
    MAX_SCHEMA_CHARS,
    MAX_SCHEMA_DEPTH,
    MAX_SCHEMA_NODES,
    bound_schema,
    checked_schema,
    parse_output,
)
from streamhost.testing import Script

pytestmark = pytest.mark.anyio
WORDS = [f"word{i} " for i in range(48)]


def wide_schema(fields: int) -> dict[str, Any]:
    return {"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(fields)}}


def deep_schema(levels: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


async def wait_until(condition: Any, what: str, deadline_s: float = 30) -> None:
    with anyio.fail_after(deadline_s):
        while not condition():
            await anyio.sleep(0.01)


async def test_huge_requests_are_refused_while_a_normal_call_streams_on(llm, home, mcp_serve, want_progress):
    # Before the bounds, these took 1 s (a close-match search over the 5 MB name), 3 s and 10 s (checking
    # 5,000 and 20,000 properties against the meta-schema) with the event loop frozen: no notification of the
    # 12-second call could go out meanwhile, and the refusals came long after it ended.
    llm.script("warm", Script(tokens=["ok"]))
    # 12 s, against about 2.5 s for all the refusals here on a quiet machine (and twice that with both cores busy)
    llm.script("long", Script(tokens=WORDS, rate=4))
    huge = {
        "model": ({"prompt": "x", "model": "x" * 5_000_000}, "generate: model is 5,000,000 characters long; "
                  "the limit is 200. Give a model name like openai/gpt-4.1-mini"),
        "prompt": ({"prompt": "x" * 3_000_000, "model": "openai/never"},
                   "generate: prompt is 3,000,000 characters long; the limit is 2,000,000. Send less text"),
        "wide": ({"prompt": "x", "model": "openai/never", "output_schema": wide_schema(5_000)},
                 f"output_schema has more than {MAX_SCHEMA_NODES:,} objects and arrays (the limit): describe fewer"),
        "wider": ({"prompt": "x", "model": "openai/never", "output_schema": wide_schema(20_000)},
                  f"output_schema is over {MAX_SCHEMA_CHARS:,} characters as JSON (the limit): describe fewer"),
        "deep": ({"prompt": "x", "model": "openai/never", "output_schema": deep_schema(60)},
                 f"output_schema is nested more than {MAX_SCHEMA_DEPTH} objects/arrays deep: flatten it"),
    }
    refused: dict[str, tuple[Any, float]] = {}
    normal: list[Any] = []
    async with mcp_serve(home.env) as served:
        await served.session.call_tool("generate", {"prompt": "x", "model": "openai/warm"})  # the SDK's import

        async def long_call() -> None:
            normal.append(await served.session.call_tool("generate", {"prompt": "x", "model": "openai/long"},
                                                         progress_callback=want_progress))

        async with anyio.create_task_group() as group:
            group.start_soon(long_call)
            await wait_until(served.text_progress, "the long call's first text")
            for name, (arguments, _) in huge.items():
                result = await served.session.call_tool("generate", arguments)
                refused[name] = (result, time.monotonic())
    record = next(r for r in llm.requests if r.model == "long")
    assert normal[0].content[0].text == "".join(WORDS) and not normal[0].is_error
    for name, (_, message) in huge.items():
        result, at = refused[name]
        assert at < record.ended, f"{name}: refused only after the 12-second call had ended"
        assert result.is_error and message in result.content[0].text, (name, result.content[0].text[:300])
        assert result.meta["streamhost/error_type"] == "InvalidArgumentError"
    assert not [r for r in llm.requests if r.model == "never"], "nothing oversized reaches the upstream"


async def test_summarize_and_fetch_arguments_are_bounded_too(home, mcp_serve):
    long_url = "https://example.com/?" + "x" * 10_000
    async with mcp_serve(home.env) as served:  # the bundled http fetcher: refused before any fetch
        url = await served.session.call_tool("fetch_url", {"url": long_url})
        urls = await served.session.call_tool("summarize_urls", {"urls": ["https://example.com/", long_url]})
        query = await served.session.call_tool("summarize_urls", {"urls": ["https://example.com/"],
                                                                  "query": "q" * 20_000})
    too_long = f"is {len(long_url):,} characters long; the limit is 8,192. Give the page's address"
    assert url.is_error and f"fetch_url: url {too_long}" in url.content[0].text
    assert urls.is_error and f"summarize_urls: urls[1] {too_long}" in urls.content[0].text
    assert query.is_error and "query is 20,000 characters long; the limit is 10,000. Ask a shorter question" in (
        query.content[0].text)


async def test_the_limits_are_published_in_the_input_schemas(home, mcp_serve):
    async with mcp_serve(home.env) as served:
        tools = {t.name: t for t in (await served.session.list_tools()).tools}
    generate = tools["generate"].input_schema["properties"]
    assert generate["model"]["maxLength"] == 200 and generate["prompt"]["maxLength"] == 2_000_000
    assert f"{MAX_SCHEMA_NODES:,} objects and arrays" in generate["output_schema"]["description"]
    assert tools["fetch_url"].input_schema["properties"]["url"]["maxLength"] == 8_192
    assert tools["summarize_urls"].input_schema["properties"]["urls"]["items"]["maxLength"] == 8_192
    assert all(t.output_schema is None for t in tools.values()), "no outputSchema that results would not match"


@pytest.mark.parametrize(("schema", "message"), [
    (wide_schema(MAX_SCHEMA_NODES), f"more than {MAX_SCHEMA_NODES:,} objects and arrays"),
    (deep_schema(MAX_SCHEMA_DEPTH), f"nested more than {MAX_SCHEMA_DEPTH} objects/arrays deep"),
    (deep_schema(5_000), f"nested more than {MAX_SCHEMA_DEPTH} objects/arrays deep"),
    ({"type": "string", "enum": list(range(1_000_000))}, f"over {MAX_SCHEMA_CHARS:,} characters as JSON"),
    ({"type": "string", "description": "d" * MAX_SCHEMA_CHARS}, f"over {MAX_SCHEMA_CHARS:,} characters"),
    (["not", "an", "object"], "output_schema must be a JSON Schema object, got list"),
])
def test_schemas_past_a_limit_are_refused_with_the_limit(schema, message):
    with pytest.raises(InvalidArgumentError, match="output_schema") as refused:
        bound_schema(schema)
    assert message in refused.value.message


def test_schemas_within_the_limits_pass():
    for schema in (wide_schema(MAX_SCHEMA_NODES // 2 - 2), deep_schema(MAX_SCHEMA_DEPTH // 2 - 1)):
        assert bound_schema(schema) is schema


async def test_a_valid_bounded_schema_is_checked_against_its_meta_schema():
    assert await checked_schema(None) is None
    assert await checked_schema(deep_schema(MAX_SCHEMA_DEPTH // 2 - 1)) is not None
    with pytest.raises(InvalidArgumentError, match="output_schema is not a valid JSON Schema"):
        await checked_schema({"type": "nonsense"})


def test_a_lone_surrogate_escape_in_the_models_json_becomes_a_replacement_character():
    value = parse_output('{"a": "\\ud800", "\\udc00key": ["x\\udfff", "\\ud83d\\ude00"]}',
                         {"type": "object", "properties": {"a": {"type": "string"}}})
    assert value == {"a": "\ufffd", "\ufffdkey": ["x\ufffd", "😀"]}
    json.dumps(value, ensure_ascii=False).encode("utf-8")  # encodable: no lone surrogate is left


@pytest.mark.parametrize(("schema", "message"), [
    ({"$ref": "#"}, "refers to itself without end"),
    ({"$ref": "https://example.com/schema.json"}, "has a $ref that cannot be resolved"),
])
def test_a_schema_that_cannot_check_any_output_says_so(schema, message):
    from streamhost.errors import OutputValidationError

    with pytest.raises(OutputValidationError, match="output_schema") as failed:
        parse_output('{"a": 1}', schema)
    assert message in failed.value.message and failed.value.raw_text == '{"a": 1}'


async def test_a_lone_surrogate_in_structured_output_reaches_the_client_repaired(llm, home, mcp_serve):
    llm.script("odd", Script(tokens=['{"city": "Os', 'lo\\ud800", "population": 1}']))
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "population": {"type": "integer"}}}
    async with mcp_serve(home.env) as served:
        result = await served.session.call_tool("generate", {"prompt": "x", "model": "openai/odd",
                                                             "output_schema": schema})
        after = await served.session.call_tool("list_models", {})
    assert not result.is_error, result.content[0].text
    assert result.structured_content == {"city": "Oslo\ufffd", "population": 1}
    assert json.loads(result.content[0].text) == result.structured_content
    assert not after.is_error, "the host still answers"
