"""Hostile clients and upstreams against a real ``streamhost serve``: is every request answered, does the host live on?

Speaks raw JSON lines on the child's stdin/stdout (no MCP client library, so it can send what a
library would refuse to). Each case gets a fresh server: ``initialize`` (2025-11-25) +
``notifications/initialized``, then the case, then a ``tools/list`` that must be answered ("alive").

1. Replies (10 s each): ``tools/call`` whose ``params`` is a string / a list / nested 250 deep;
   ``generate`` whose ``arguments`` / ``output_schema`` is nested 250 deep; a lone surrogate escape
   ``\\ud800`` written raw in the JSON text (as JavaScript's JSON.stringify emits it) in the prompt,
   the tool name and the model name.
2. Frozen loop: a ``generate`` call with a 5 MB model name, an ``output_schema`` of 5,000 and of
   20,000 properties, then at once a ``tools/list``: its round trip (from the moment the bad line was
   written) and the time until the bad call's own reply (from the start of its write), waited up to 60 s.
3. Upstream surrogate: ``streamhost.testing.LLMTestServer`` streams ``\\ud800`` / ``\\udfff`` in SSE
   deltas to ``generate`` (model ``openai/garbled``); then the host must still answer.

Every generate call carries ``_meta.progressToken``. Upstream calls go to the loopback test server
(``OPENAI_BASE_URL``, key required). HOME/XDG dirs and an empty ``STREAMHOST_CONFIG`` are fresh per run;
each run's directory (with the servers' ``stderr.log``) is left in the temp dir and named on stderr.

Run with the project's venv (it provides ``streamhost.testing``)::

    .venv/bin/python bench/hostile.py [--runs 3] [--python OTHER/bin/python] [--pythonpath DIR]

``--python`` is the interpreter that runs ``-m streamhost.cli serve`` (default: this one).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from streamhost.testing import LLMTestServer, Script

KEY = "sk-hostile-0123456789abcdef"
TIMEOUT_S = 10.0


def nest(depth: int, leaf: Any = 0) -> Any:
    """A JSON value ``depth`` objects deep."""
    for _ in range(depth):
        leaf = {"a": leaf}
    return leaf


def schema_nest(depth: int) -> dict[str, Any]:
    """A JSON Schema ``depth`` objects deep (one JSON level per schema level)."""
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(depth - 1):
        schema = {"type": "array", "items": schema}
    return schema


def wide_schema(n: int) -> dict[str, Any]:
    return {"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(n)}}


class Server:
    """A ``streamhost serve`` child; a reader thread files every reply by id with its arrival time."""

    def __init__(self, python: str, env: dict[str, str], errlog: Any) -> None:
        self.proc = subprocess.Popen([python, "-m", "streamhost.cli", "serve"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=errlog, env=env)
        self.replies: dict[Any, tuple[float, dict[str, Any]]] = {}
        self.cond = threading.Condition()
        self.next_id, self.eof = 0, False
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            at = time.monotonic()
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if isinstance(message, dict) and "id" in message and "method" not in message:
                with self.cond:
                    self.replies[message["id"]] = (at, message)
                    self.cond.notify_all()
        with self.cond:  # end of output: the server is gone, stop waiting
            self.eof = True
            self.cond.notify_all()

    def send(self, method: str, params: Any = None, raw_params: str | None = None, note: bool = False) -> Any:
        """Write one line (``raw_params``: JSON text used verbatim); returns the request id."""
        self.next_id += 1
        head = f'{{"jsonrpc":"2.0","method":{json.dumps(method)}' + ("" if note else f',"id":{self.next_id}')
        body = raw_params if raw_params is not None else None if params is None else json.dumps(params)
        line = head + ("" if body is None else f',"params":{body}') + "}\n"
        assert self.proc.stdin is not None
        with contextlib.suppress(OSError):  # a dead server: its reply just never comes
            self.proc.stdin.write(line.encode("utf-8"))
            self.proc.stdin.flush()
        return None if note else self.next_id

    def wait(self, rid: Any, timeout: float = TIMEOUT_S) -> tuple[float, dict[str, Any]] | None:
        with self.cond:
            self.cond.wait_for(lambda: rid in self.replies or self.eof, timeout)
            return self.replies.get(rid)

    def alive(self) -> bool:
        return self.wait(self.send("tools/list")) is not None

    def handshake(self) -> None:
        init = {"protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "hostile-bench", "version": "0"}}
        if self.wait(self.send("initialize", init), 60) is None:
            raise RuntimeError("no answer to initialize")
        self.send("notifications/initialized", note=True)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.stdin.close()  # type: ignore[union-attr]
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def call(name: str, arguments: Any) -> dict[str, Any]:
    return {"name": name, "arguments": arguments, "_meta": {"progressToken": "p1"}}


def raw_call(name_json: str, arguments_json: str) -> str:
    return f'{{"name":{name_json},"arguments":{arguments_json},"_meta":{{"progressToken":"p1"}}}}'


SURROGATE = "\\ud800"  # the six characters, written into the JSON text as is
REPLY_CASES: list[tuple[str, dict[str, Any]]] = [
    ("params a string", {"raw": '"generate"'}),
    ("params a list", {"raw": '["generate", {"prompt": "x"}]'}),
    ("params nested 250 deep", {"params": nest(250)}),
    ("arguments nested 250 deep", {"params": call("generate", nest(250))}),
    ("output_schema nested 250 deep",
     {"params": call("generate", {"prompt": "x", "model": "openai/echo", "output_schema": schema_nest(250)})}),
    ("\\ud800 in the prompt", {"raw": raw_call('"generate"', f'{{"prompt":"hi {SURROGATE}","model":"openai/echo"}}')}),
    ("\\ud800 in the tool name", {"raw": raw_call(f'"gen{SURROGATE}"', '{"prompt":"hi"}')}),
    ("\\ud800 in the model name", {"raw": raw_call('"generate"', f'{{"prompt":"hi","model":"openai/e{SURROGATE}"}}')}),
]
FROZEN_CASES: list[tuple[str, dict[str, Any]]] = [
    ("5 MB model name", {"prompt": "x", "model": "openai/" + "m" * 5_000_000}),
    ("output_schema 5,000 properties", {"prompt": "x", "model": "openai/echo", "output_schema": wide_schema(5_000)}),
    ("output_schema 20,000 properties", {"prompt": "x", "model": "openai/echo", "output_schema": wide_schema(20_000)}),
]


class Run:
    """One run: a fresh HOME and config, one test LLM server, a fresh host per case."""

    def __init__(self, args: argparse.Namespace, llm: LLMTestServer) -> None:
        self.args, self.llm = args, llm
        self.tmp = Path(tempfile.mkdtemp(prefix="hostile-"))
        (self.tmp / "config.toml").write_text("", encoding="utf-8")
        self.env = {"PATH": os.environ.get("PATH", ""), "HOME": str(self.tmp),
                    "XDG_CONFIG_HOME": str(self.tmp / "config"), "XDG_STATE_HOME": str(self.tmp / "state"),
                    "XDG_CACHE_HOME": str(self.tmp / "cache"), "XDG_DATA_HOME": str(self.tmp / "data"),
                    "STREAMHOST_CONFIG": str(self.tmp / "config.toml"), "STREAMHOST_LOG_LEVEL": "warning",
                    "OPENAI_BASE_URL": llm.url, "OPENAI_API_KEY": KEY}
        if args.pythonpath:
            self.env["PYTHONPATH"] = os.pathsep.join([args.pythonpath, *filter(None, [os.environ.get("PYTHONPATH")])])
        self.errlog = open(self.tmp / "stderr.log", "ab")  # closed in finish()

    def host(self) -> Server:
        server = Server(self.args.python, self.env, self.errlog)
        server.handshake()
        return server

    def reply_case(self, spec: dict[str, Any]) -> tuple[bool, bool]:
        server = self.host()
        try:
            replied = server.wait(server.send("tools/call", spec.get("params"), spec.get("raw"))) is not None
            return replied, server.alive()
        finally:
            server.close()

    def frozen_case(self, arguments: dict[str, Any]) -> tuple[float | None, float | None, bool]:
        server = self.host()
        try:
            server.alive()
            time.sleep(self.args.settle)  # let the background warm-up finish
            started = time.monotonic()
            bad = server.send("tools/call", call("generate", arguments))
            written = time.monotonic()
            probe = server.send("tools/list")
            listed, answered = server.wait(probe, 60), server.wait(bad, 60)  # latencies: no 10 s cap
            return (None if listed is None else (listed[0] - written) * 1000,
                    None if answered is None else (answered[0] - started) * 1000, server.alive())
        finally:
            server.close()

    def upstream_case(self) -> tuple[bool, bool]:
        self.llm.script("garbled", Script(tokens=["ok \ud800 ", "then \udfff", " fine"]))
        return self.reply_case({"params": call("generate", {"prompt": "x", "model": "openai/garbled"})})

    def finish(self) -> None:
        self.errlog.close()


def median(values: list[float | None]) -> str:
    got = [v for v in values if v is not None]
    text = f"{statistics.median(got):.0f}" if got else "-"
    return text + (f" ({len(values) - len(got)} timed out)" if len(got) < len(values) else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable, help="interpreter running streamhost.cli serve")
    parser.add_argument("--pythonpath", help="directory prepended to the child's PYTHONPATH")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--settle", type=float, default=2.0, help="idle seconds before each frozen-loop case")
    args = parser.parse_args()
    check = subprocess.run([args.python, "-c", "import streamhost.cli, streamhost; print(streamhost.__file__)"],
                           capture_output=True, text=True)
    if check.returncode:
        sys.exit(f"{args.python} cannot import streamhost.cli:\n{check.stderr}")
    print(f"# server: {args.python} -m streamhost.cli serve  ({check.stdout.strip()}), runs: {args.runs}")
    llm = LLMTestServer(require_key=KEY).start()
    replies: dict[str, list[tuple[bool, bool]]] = {}
    frozen: dict[str, list[tuple[float | None, float | None, bool]]] = {}
    try:
        for _ in range(args.runs):
            run = Run(args, llm)
            try:
                for label, spec in REPLY_CASES:
                    replies.setdefault(label, []).append(run.reply_case(spec))
                replies.setdefault("upstream \\ud800/\\udfff in SSE", []).append(run.upstream_case())
                for label, arguments in FROZEN_CASES:
                    frozen.setdefault(label, []).append(run.frozen_case(arguments))
            finally:
                run.finish()
            print(f"# stderr of the servers: {run.tmp / 'stderr.log'}", file=sys.stderr)
    finally:
        llm.stop()
    print("\n| case | answered | host alive after |\n| --- | ---: | ---: |")
    for label, results in replies.items():
        n = len(results)
        print(f"| {label} | {sum(r for r, _ in results)}/{n} | {sum(a for _, a in results)}/{n} |")
    print("\n| bad generate call | tools/list round trip ms | bad call's reply ms | host alive after |")
    print("| --- | ---: | ---: | ---: |")
    for label, results in frozen.items():
        print(f"| {label} | {median([r[0] for r in results])} | {median([r[1] for r in results])} | "
              f"{sum(r[2] for r in results)}/{len(results)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
