"""Start-up cost of the litellm plugin: ``streamhost serve`` with it loaded against the same server without it.

"without" is the same environment with ``STREAMHOST_DISABLE_PLUGINS=streamhost-litellm`` (the host then
never imports the plugin, as if it were not installed). Per kind, a fresh server each run:
(a) spawn -> ``initialize`` -> ``tools/list`` answered; (b) idle RSS ~3 s after tools/list (psutil);
(c) then one ``generate`` through ``litellm/openai/bench-first`` (test server on loopback): call start ->
first text, and the RSS after it. With warm-up on (the default) litellm is imported in the background
after tools/list, so (b) includes litellm and (c) does not pay for its import; with warm-up off it is
the other way round. Kinds are interleaved, the order rotating round by round, after one untimed round.
"with litellm not set up" has no ``[providers.litellm]`` table: the plugin then does not warm litellm, so its
idle RSS compares with "without litellm, warm-up on". Goal: with warm-up off, and when not set up, (a) and (b)
with litellm / without = 1.00 within noise.
"""

from __future__ import annotations

import time

import anyio
import common
import psutil

from streamhost.testing import Script

IDLE_S = 3.0
WITHOUT = {"STREAMHOST_DISABLE_PLUGINS": "streamhost-litellm"}
NOT_SET_UP = "with litellm not set up, warm-up on"
KINDS = {  # name: (extra environment, extra config)
    "without litellm, warm-up off": (WITHOUT, "[plugins]\nwarmup = false\n"),
    "with litellm, warm-up off": ({}, "[plugins]\nwarmup = false\n"),
    "without litellm, warm-up on": (WITHOUT, ""),
    "with litellm, warm-up on": ({}, ""),
    NOT_SET_UP: ({}, ""),  # installed, no [providers.litellm] table: the plugin does not warm litellm
}


def litellm_config(url: str) -> str:
    return f'[providers.litellm]\napi_base = "{url}"\napi_key_env = "OPENAI_API_KEY"\n'


async def one(home: common.Home, kind: str, url: str) -> tuple[float, float, float, float]:
    """(spawn -> tools/list s, idle RSS bytes, first litellm call's time to text s, RSS after it)."""
    extra_env, extra_config = KINDS[kind]
    set_up = "" if kind == NOT_SET_UP else litellm_config(url)
    env = {**home.env(set_up + extra_config, base_url=url, name=kind.replace(" ", "_")
                      .replace(",", "")), **extra_env}
    first, after = float("nan"), float("nan")
    async with common.spawn(common.streamhost_cmd(), env) as client:
        await client.session.list_tools()
        listed = time.monotonic() - client.started
        await anyio.sleep(IDLE_S)
        server = psutil.Process(client.pid)
        rss = server.memory_info().rss
        if not extra_env and set_up:
            t0 = time.monotonic()
            result = await client.call("generate", {"prompt": "hi", "model": "litellm/openai/bench-first"})
            if result.is_error or not client.texts():
                raise RuntimeError(f"litellm call failed: {result.content[0].text}")
            first = client.texts()[0][0] - t0
            after = server.memory_info().rss
    return listed, rss, first, after


async def main() -> None:
    args = common.parse_args(__doc__, runs=7)
    home = common.Home()
    names = list(KINDS)
    samples: dict[str, list[tuple[float, float, float, float]]] = {k: [] for k in names}
    with common.llm_server() as llm:
        llm.script("bench-first", Script(tokens=common.words(20), rate=2000))
        try:
            for kind in names:  # untimed round: page cache, .pyc files
                await one(home, kind, llm.url)
            for run in range(args.runs):
                shift = run % len(names)
                for kind in names[shift:] + names[:shift]:
                    samples[kind].append(await one(home, kind, llm.url))
        finally:
            home.cleanup()

    def m(kind: str, i: int) -> float:
        return common.med([s[i] for s in samples[kind]])

    rows = []
    for kind in names:
        base = "without litellm, warm-up on" if kind == NOT_SET_UP else kind.replace("with litellm", "without litellm")
        first = "-" if kind in (base, NOT_SET_UP) else f"{m(kind, 2) * 1000:.0f}"
        after = "-" if kind in (base, NOT_SET_UP) else f"{m(kind, 3) / 2**20:.1f}"
        rows.append([kind, common.ms(m(kind, 0)), f"{m(kind, 0) / m(base, 0):.3f}", f"{m(kind, 1) / 2**20:.1f}",
                     f"{m(kind, 1) / m(base, 1):.3f}", first, after])
    print(f"litellm_startup: {common.machine()}; median of {args.runs} runs per kind, interleaved")
    print(common.table(["server", "tools/list ms", "vs without", "idle RSS MiB", "vs without",
                        "1st litellm call: text ms", "RSS after MiB"], rows))


if __name__ == "__main__":
    anyio.run(main)
