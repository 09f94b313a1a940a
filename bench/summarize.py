"""summarize_urls over 10 pages that each take 300 ms to serve, against one fetch plus the generations.

streamhost: ``summarize_urls`` over 10 fresh URLs (new paths every run, so nothing comes from the
document cache): ``call_tool`` start -> result, on a warmed server (streamhost-fetch + streamhost-openai).
Baseline, measured on the same server in the same run: one ``fetch_url`` of a fresh 300 ms page plus
10 sequential ``generate`` calls on the same scripted model (the critical path when every fetch but the
first is hidden behind the summaries). Also shown: the same call with ``[summarize] concurrency = 1``
(no fetch ahead of the one being summarized, on a second server) and the naive sum 10 x (fetch + generation).
The test LLM server streams each answer at a fixed rate (40 tokens at 100 tokens/s, about 0.4 s).
Runs are interleaved. Goal: summarize_urls / (one fetch + generations) <= 1.1.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from typing import Any

import anyio
import common

from streamhost.testing import Script

PAGES = 10
DELAY_S = 0.3
MODEL = "bench-summary"
TOKENS = common.words(40)
RATE = 100
SITE = common.BENCH.parent / "plugins" / "fetch" / "tests" / "site.py"


def web_site() -> Any:
    """The fetch plugin's loopback test site (pages added from code, each with its own delay)."""
    spec = importlib.util.spec_from_file_location("fetch_test_site", SITE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.WebSite()


def article(n: int) -> str:
    paragraphs = "".join(f"<p>Paragraph {i} of article {n}: a sentence with some facts in it, {i * n} of them.</p>"
                         for i in range(12))
    return f"<html><head><title>Article {n}</title></head><body><article><h1>Article {n}</h1>{paragraphs}" \
           "</article></body></html>"


def env(home: common.Home, llm_url: str, name: str, extra: str = "") -> dict[str, str]:
    config = f'[fetch]\nallow_hosts = ["127.0.0.1"]\n{extra}'
    return {**home.env(config, base_url=llm_url, name=name),
            "STREAMHOST_LOAD_PLUGINS": "streamhost-openai,streamhost-fetch"}


async def summarize(client: common.Client, site: Any, tag: str) -> dict[str, float | bool]:
    urls = [site.add(f"/{tag}/{i}", article(i), delay_s=DELAY_S) for i in range(PAGES)]
    client.reset()
    t0 = time.monotonic()
    result = await client.call("summarize_urls", {"urls": urls, "model": f"openai/{MODEL}"})
    total = time.monotonic() - t0
    text = result.content[0].text
    deltas = "".join(p.meta[common.DELTA] for _, p in client.texts())
    ok = not result.is_error and deltas == text and text.count("".join(TOKENS)) == PAGES
    return {"total": total, "ok": ok}


async def baseline(client: common.Client, site: Any, tag: str) -> dict[str, float | bool]:
    url = site.add(f"/{tag}/one", article(99), delay_s=DELAY_S)
    t0 = time.monotonic()
    fetched = await client.call("fetch_url", {"url": url})
    fetch = time.monotonic() - t0
    generations = []
    for _ in range(PAGES):
        t1 = time.monotonic()
        result = await client.call("generate", {"prompt": "summarize", "model": f"openai/{MODEL}"})
        generations.append(time.monotonic() - t1)
    ok = not fetched.is_error and not result.is_error
    return {"fetch": fetch, "generations": sum(generations), "total": fetch + sum(generations), "ok": ok}


async def main() -> None:
    args = common.parse_args(__doc__, runs=5)
    home = common.Home()
    out: dict[str, list[dict[str, float | bool]]] = {"summarize": [], "baseline": [], "sequential": []}
    with common.llm_server() as llm, web_site() as site:
        llm.script(MODEL, Script(tokens=TOKENS, rate=RATE))
        try:
            async with common.spawn(common.streamhost_cmd(), env(home, llm.url, "main")) as client, \
                    common.spawn(common.streamhost_cmd(), env(home, llm.url, "one", "[summarize]\nconcurrency = 1\n")) \
                    as one_at_a_time:
                for warm, name in ((client, "w"), (one_at_a_time, "w1")):  # imports, TLS, robots.txt: untimed
                    await summarize(warm, site, name)
                    await baseline(warm, site, name)
                for run in range(args.runs):
                    order = ["baseline", "summarize"] if common.baseline_first(run) else ["summarize", "baseline"]
                    for side in order:
                        job = baseline(client, site, f"b{run}") if side == "baseline" else \
                            summarize(client, site, f"s{run}")
                        out[side].append(await job)
                    out["sequential"].append(await summarize(one_at_a_time, site, f"q{run}"))
        finally:
            home.cleanup()

    def m(side: str, key: str = "total") -> float:
        return common.med([float(r[key]) for r in out[side]])

    fetch, generations = m("baseline", "fetch"), m("baseline", "generations")
    naive = PAGES * fetch + generations
    rows = [
        ["one fetch_url + 10 generate (baseline)", f"{m('baseline'):.3f} s", "1.000",
         f"fetch {common.ms(fetch)} ms + gen {generations:.3f} s"],
        ["summarize_urls, concurrency 4 (default)", f"{m('summarize'):.3f} s", f"{m('summarize') / m('baseline'):.3f}",
         "OK" if all(r["ok"] for r in out["summarize"]) else "FAIL"],
        ["summarize_urls, concurrency 1", f"{m('sequential'):.3f} s", f"{m('sequential') / m('baseline'):.3f}",
         "OK" if all(r["ok"] for r in out["sequential"]) else "FAIL"],
        ["naive sum 10 x (fetch + generation)", f"{naive:.3f} s", f"{naive / m('baseline'):.3f}", "computed"],
    ]
    print(f"# summarize.py — {common.machine()}, {args.runs} runs per side, medians")
    print(common.table(["path", "total", "ratio", "notes"], rows))
    ratio = m("summarize") / m("baseline")
    print(f"\ngoal summarize / (one fetch + generations) <= 1.10: {'met' if ratio <= 1.10 else 'MISSED'} ({ratio:.3f})")


if __name__ == "__main__":
    anyio.run(main)
