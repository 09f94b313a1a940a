"""litellm's import, in a fresh interpreter each time (it happens once per process): no network, no .env from
the working directory, no banners, no telemetry, and a value the user set wins."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from streamhost_litellm import sdk

PROBE = """
import json, os, socket, sys
attempts = []
def refuse(*args, **kwargs):
    attempts.append(repr(args[:1]))
    raise OSError("no network in this test")
socket.getaddrinfo = refuse
socket.socket.connect = refuse
from streamhost_litellm import sdk
litellm = sdk.load()
sdk.warm()
print(json.dumps({
    "attempts": attempts,
    "dotenv": os.environ.get("STREAMHOST_DOTENV_PROBE"),
    "cost_map": os.environ.get("LITELLM_LOCAL_MODEL_COST_MAP"),
    "suppress_debug_info": litellm.suppress_debug_info,
    "telemetry": litellm.telemetry,
    "hf_download": litellm.disable_hf_tokenizer_download,
    "warmed": sorted(name for name in sdk.WARM_MODULES if name in sys.modules),
}))
"""


def probe(tmp_path: Path, **env: str) -> dict[str, Any]:
    (tmp_path / ".env").write_text("STREAMHOST_DOTENV_PROBE=loaded\n", encoding="utf-8")
    base = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=tmp_path, env={**base, **env}, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_import_is_offline_quiet_and_ignores_the_working_directorys_env_file(tmp_path):
    seen = probe(tmp_path)

    assert seen["attempts"] == [], "importing litellm must not touch the network"
    assert seen["cost_map"] == "True"
    assert seen["dotenv"] is None, "a .env in the MCP client's working directory must not be loaded"
    assert seen["suppress_debug_info"] is True and seen["telemetry"] is False
    assert seen["hf_download"] is True, "no tokenizer download from the hub at call time"
    assert seen["warmed"] == sorted(sdk.WARM_MODULES)


def test_values_the_user_set_win(tmp_path):
    seen = probe(tmp_path, LITELLM_MODE="DEV", LITELLM_LOCAL_MODEL_COST_MAP="False")

    assert seen["dotenv"] == "loaded"
    assert seen["cost_map"] == "False"
    assert seen["attempts"], "with the user's False, litellm fetches the cost map (refused here) as it normally would"


LOGGING_PROBE = """
import logging, sys
handler = logging.StreamHandler(sys.stderr)
handler.setFormatter(logging.Formatter("host %(name)s: %(message)s"))
logging.getLogger().handlers[:] = [handler]
from streamhost_litellm import sdk
sdk.load()
logging.getLogger("LiteLLM").warning("upstream said no, api_key=sk-probe-0123456789abcdef")
"""


def test_litellm_logs_once_through_the_hosts_handler_with_secrets_redacted(tmp_path):
    done = subprocess.run([sys.executable, "-c", LOGGING_PROBE], cwd=tmp_path, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}, timeout=120)

    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if "upstream said no" in line]
    assert len(lines) == 1, f"logged once, not also by litellm's own handler: {lines}"
    assert lines[0].startswith("host LiteLLM: "), "in the host's format"
    assert "0123456789abcdef" not in done.stderr, "litellm's secret filter still applies"
