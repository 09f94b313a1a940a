"""The floors for ``token_cpu.py``: one stream at a time, read in this process, its CPU measured around it.

Run by ``token_cpu.py`` as ``python token_floors.py URL`` (the test server's base URL). Each line on stdin,
``{"side", "api", "model"}``, reads one whole stream with ``side`` =
- ``raw``: ``httpx2`` + stdlib ``json``, the bytes off the socket split into SSE lines (the practical floor);
- ``raw-aiohttp``: the same through the SDK's optional aiohttp transport (``openai.DefaultAioHttpClient``);
- ``sdk``: the openai SDK's own stream (``create(stream=True)``, a pydantic object per chunk);
- ``plugin`` / ``litellm``: the openai / litellm provider plugin's ``stream()``, without the host;
and answers ``{"cpu", "text"}``: ``time.process_time()`` spent on it (this whole process: one thread, one
loop) and the text read, for the caller to check.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import sys
import time
from typing import Any

import anyio
import common
from anyio.streams.buffered import BufferedByteReceiveStream

HAS_LITELLM = importlib.util.find_spec("streamhost_litellm") is not None
HAS_AIOHTTP = importlib.util.find_spec("aiohttp") is not None


async def _raw(http: Any, url: str, api: str, model: str) -> str:
    """The practical floor: the bytes off the socket, split into SSE lines, each ``data:`` line json.loads'ed."""
    body: dict[str, Any] = ({"model": model, "messages": [{"role": "user", "content": "go"}], "stream": True,
                             "stream_options": {"include_usage": True}} if api == "chat"
                            else {"model": model, "input": "go", "stream": True})
    parts: list[str] = []
    rest = b""
    path = "chat/completions" if api == "chat" else "responses"
    async with http.stream("POST", f"{url}/{path}", json=body,
                           headers={"Authorization": f"Bearer {common.KEY}"}) as response:
        async for chunk in response.aiter_bytes():
            *lines, rest = (rest + chunk).split(b"\n")
            for line in lines:
                if not line.startswith(b"data: ") or line.startswith(b"data: [DONE]"):
                    continue
                data = json.loads(line[6:])
                if api == "chat":
                    for choice in data.get("choices") or ():
                        if text := (choice.get("delta") or {}).get("content"):
                            parts.append(text)
                elif data.get("type") == "response.output_text.delta":
                    parts.append(data["delta"])
    return "".join(parts)


async def _sdk(sdk: Any, api: str, model: str) -> str:
    parts: list[str] = []
    if api == "chat":
        stream = await sdk.chat.completions.create(model=model, messages=[{"role": "user", "content": "go"}],
                                                   stream=True, stream_options={"include_usage": True})
        async with stream:
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    parts.append(chunk.choices[0].delta.content)
    else:
        stream = await sdk.responses.create(model=model, input="go", stream=True)
        async with stream:
            async for event in stream:
                if event.type == "response.output_text.delta":
                    parts.append(event.delta)
    return "".join(parts)


async def _plugin(provider: Any, model: str) -> str:
    from streamhost import GenerationRequest, TextDelta

    parts = []
    async for event in provider.stream(GenerationRequest(model=model, prompt="go")):
        if isinstance(event, TextDelta):
            parts.append(event.text)
    return "".join(parts)


def main(url: str) -> None:
    """Answer ``{"side", "api", "model"}`` lines on stdin with ``{"cpu", "text"}`` lines: one stream each."""
    import httpx2
    import openai

    from streamhost_openai import OpenAIProvider

    # The answers go to a copy of stdout; whatever a library prints lands on stderr instead.
    channel = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    loop = asyncio.new_event_loop()
    http = httpx2.AsyncClient(timeout=60)
    aio = openai.DefaultAioHttpClient(timeout=60) if HAS_AIOHTTP else None
    sdk = common.sdk_client(url)
    openai_provider = OpenAIProvider()
    openai_provider.configure({"base_url": url})
    litellm_provider = None
    if HAS_LITELLM:
        from streamhost_litellm import LiteLLMProvider

        litellm_provider = LiteLLMProvider()
        litellm_provider.configure({"api_base": url, "api_key_env": "OPENAI_API_KEY"})
    for line in sys.stdin:
        order = json.loads(line)
        side, api, model = order["side"], order["api"], order["model"]
        if side.startswith("raw"):
            job = _raw(aio if side == "raw-aiohttp" else http, url, api, model)
        elif side == "sdk":
            job = _sdk(sdk, api, model)
        else:
            job = _plugin(openai_provider, model) if side == "plugin" else _plugin(litellm_provider, f"openai/{model}")
        cpu0 = time.process_time()
        text = loop.run_until_complete(job)
        cpu = time.process_time() - cpu0
        channel.write(json.dumps({"cpu": cpu, "text": text}) + "\n")
    for client in (http, aio, sdk):
        if client is not None:
            loop.run_until_complete(client.close() if client is sdk else client.aclose())
    for provider in (openai_provider, litellm_provider):
        if provider is not None:
            loop.run_until_complete(provider.aclose())  # the plugin's aiohttp session warns when left open


class Floors:
    """The floor process: one stream per ``run()``, its CPU measured inside it."""

    def __init__(self, process: Any) -> None:
        self.process = process
        self.lines = BufferedByteReceiveStream(process.stdout)

    async def run(self, side: str, api: str, model: str) -> dict[str, Any]:
        await self.process.stdin.send((json.dumps({"side": side, "api": api, "model": model}) + "\n").encode())
        with anyio.fail_after(900):  # litellm at ~2 ms of CPU per token on a busy machine takes minutes
            return json.loads(await self.lines.receive_until(b"\n", 64 * 1024 * 1024))


if __name__ == "__main__":
    main(sys.argv[1])
