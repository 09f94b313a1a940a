"""What the calling model reads: the answer as text, metadata in ``_meta``, structuredContent only when it
is the answer. Some clients (Claude Code) give the model structuredContent instead of the text."""

from __future__ import annotations

import json

import pytest

from streamhost.testing import Script

pytestmark = pytest.mark.anyio


async def test_only_an_object_answer_is_structured_content(llm, home, mcp_serve):
    llm.script("listing", Script(tokens=['["Oslo", ', '"Zürich"]']))
    llm.script("plain", Script(tokens=["just ", "text"]))
    async with mcp_serve(home.env) as served:
        listing = await served.session.call_tool("generate", {
            "prompt": "x", "model": "openai/listing", "output_schema": {"type": "array", "items": {"type": "string"}}})
        plain = await served.session.call_tool("generate", {"prompt": "x", "model": "openai/plain"})
    assert not listing.is_error, listing.content[0].text
    assert listing.structured_content is None, "structuredContent must be an object: an array answer is text only"
    assert listing.content[0].text == json.dumps(["Oslo", "Zürich"], indent=2, ensure_ascii=False)
    assert listing.meta["streamhost/model"] == "openai/listing"
    assert plain.content[0].text == "just text" and plain.structured_content is None
    assert set(plain.meta) == {"streamhost/model", "streamhost/usage", "streamhost/ttft_ms", "streamhost/duration_ms",
                               "streamhost/run"}


async def test_list_models_reads_as_text_and_lists_in_meta(home, mcp_serve):
    home.write_config('default_model = "openai/gpt-4.1"\n[aliases]\nfast = "openai/gpt-4.1-nano"\n'
                      'later = "openai/not-listed"\n')
    env = {k: v for k, v in home.env.items() if k != "OPENAI_BASE_URL"}
    async with mcp_serve(env) as served:
        result = await served.session.call_tool("list_models", {})
    text = result.content[0].text
    assert result.structured_content is None
    assert text.startswith("Default model: openai/gpt-4.1\n- openai/gpt-4.1 (default")
    assert "Aliases: fast = openai/gpt-4.1-nano, later = openai/not-listed" in text
    assert "listed or not: " in text and "openai/NAME" in text
    assert result.meta["streamhost/default"] == "openai/gpt-4.1"
    assert result.meta["streamhost/aliases"] == {"fast": "openai/gpt-4.1-nano", "later": "openai/not-listed"}
    assert "openai" in result.meta["streamhost/providers"]
    assert [m["id"] for m in result.meta["streamhost/models"]][:2] == ["openai/gpt-4.1", "openai/gpt-4.1-nano"]


async def test_a_refused_call_has_its_error_type_in_meta_and_nothing_structured(home, mcp_serve):
    async with mcp_serve(home.env) as served:
        unknown = await served.session.call_tool("generate", {"prompt": "x", "model": "nope/x"})
    assert unknown.is_error and "unknown provider prefix 'nope'" in unknown.content[0].text
    assert unknown.meta == {"streamhost/error_type": "UnknownModelError"}
    assert unknown.structured_content is None
