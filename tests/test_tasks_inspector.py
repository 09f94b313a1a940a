"""Tasks with a client nobody here wrote: the MCP Inspector's CLI (npm ``@modelcontextprotocol/inspector``).

Its CLI declares the tasks extension on every 2026-07-28 request, follows a ``resultType: "task"`` answer with
``tasks/get`` until the result is inline, and prints that result. In the 2025-11-25 era it asks for a task only
for tools whose ``taskSupport`` is ``required`` (ours are ``optional``): it gets the plain result.

Found at ``$STREAMHOST_INSPECTOR`` (the package's ``clients/launcher/build/index.js``) or under ``.ci/node``;
skipped when absent, or when ``node`` is not installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from streamhost.testing import Script
from tests.raw_client import STREAMHOST

LAUNCHER = "node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js"
REPO = Path(__file__).resolve().parent.parent
TOKENS = [f"i{i:03d} " for i in range(30)]


def _inspector() -> str:
    found = os.environ.get("STREAMHOST_INSPECTOR") or str(REPO / ".ci" / "node" / LAUNCHER)
    if shutil.which("node") is None:
        pytest.skip("node is not installed: the MCP Inspector CLI needs it")
    if not Path(found).is_file():
        pytest.skip(f"the MCP Inspector is not installed ({found}): npm install --prefix .ci/node "
                    "@modelcontextprotocol/inspector@2.12.0, or set STREAMHOST_INSPECTOR")
    return found


def _call(inspector: str, home: Any, era: str) -> tuple[dict[str, Any], str]:
    envs = [arg for name, value in home.env.items() for arg in ("-e", f"{name}={value}")]
    command = ["node", inspector, "--cli", *envs, "--protocol-era", era, "--method", "tools/call",
               "--tool-name", "generate", "--tool-arg", "prompt=p", "model=openai/slow", "--format", "json",
               "--connect-timeout", "120000", STREAMHOST, "serve"]
    # Its own settings go under HOME: the test's home, never the user's.
    done = subprocess.run(command, capture_output=True, text=True, timeout=180,
                          env={**home.env, "HOME": str(home.root)})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)["result"], done.stderr


def test_the_inspector_follows_a_task_to_its_result_in_the_2026_era(llm, home):
    inspector = _inspector()
    llm.script("slow", Script(tokens=TOKENS, rate=6))  # 5 s: past the 2 s a call may take to be answered plainly
    result, log = _call(inspector, home, "modern")
    assert result["content"][0]["text"] == "".join(TOKENS) and not result["isError"]
    run = result["_meta"]["streamhost/run"]
    assert f"task {run}: a generate call" in log, "the call was answered with a task, which the Inspector polled"


def test_the_inspector_gets_a_plain_result_in_the_2025_era(llm, home):
    inspector = _inspector()
    llm.script("slow", Script(tokens=TOKENS, rate=30))
    result, log = _call(inspector, home, "legacy")
    assert result["content"][0]["text"] == "".join(TOKENS)
    assert "streamhost.tasks" not in log
