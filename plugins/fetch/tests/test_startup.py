"""Loading the plugin is cheap: it registers through its real entry point and imports no extractor."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HEAVY = ("trafilatura", "lxml", "charset_normalizer", "justext", "htmldate", "courlan")

LOAD = """
import sys
from streamhost.host.config import Config
from streamhost.host.loading import load_plugins
registry = load_plugins(Config())
fetcher = registry.fetchers["http"]
print("LOADED", type(fetcher).__module__, sorted(m for m in {heavy} if m in sys.modules))
{after}
"""


def _run(code: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STREAMHOST_LOAD_PLUGINS": "streamhost-fetch"}
    return subprocess.run([sys.executable, *args, "-c", code], capture_output=True, text=True, env=env, timeout=60)


def test_loading_the_plugin_imports_no_extractor(tmp_path: Path) -> None:
    code = LOAD.format(heavy=HEAVY, after="")
    result = _run(code, tmp_path, "-X", "importtime")
    assert result.returncode == 0, result.stderr
    assert "LOADED streamhost_fetch.fetcher []" in result.stdout
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in result.stderr.splitlines() if "|" in line}
    assert "streamhost_fetch" in imported
    assert not imported & set(HEAVY), sorted(imported & set(HEAVY))


def test_warm_imports_trafilatura(tmp_path: Path) -> None:
    code = LOAD.format(heavy=HEAVY, after='fetcher.warm(); print("WARM", "trafilatura" in sys.modules)')
    result = _run(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "LOADED streamhost_fetch.fetcher []" in result.stdout and "WARM True" in result.stdout


def test_plugins_command_lists_the_fetcher(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[fetch]\nrobots = true\nuser_agent = \"test-agent/1\"\n")
    env = {**os.environ, "STREAMHOST_CONFIG": str(config)}
    streamhost = Path(sys.executable).with_name("streamhost")
    result = subprocess.run([str(streamhost), "plugins", "--json"], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    plugins = json.loads(result.stdout)
    entries = plugins if isinstance(plugins, list) else plugins.get("plugins", [])
    [record] = [p for p in entries if p["name"] == "streamhost-fetch"]
    assert record["fetchers"] == ["http"] and not record.get("error")
