"""End to end, in a fresh virtual environment: the host installed from this checkout, plugins rendered
by its own ``streamhost plugin new``, installed with ``streamhost install``, served over stdio to a real
MCP client, and tested with their own suites. One environment per test session (it takes ~30 s)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from streamhost.cli.scaffold import SKIP
from streamhost.testing import LLMTestServer, Script

ROOT = Path(__file__).resolve().parents[1]
KEY = "sk-e2e-5f4e3d2c1b0a"
TOKENS = ["Plug", "ins", " stream", " end", " to", " end."]


@dataclass
class HostEnv:
    """A virtual environment with streamhost installed (not editable) and an isolated config."""

    root: Path
    bin: Path
    env: dict[str, str]

    def run(self, *args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run a program of the environment (``streamhost``, ``python``) with the isolated environment."""
        return subprocess.run([str(self.bin / args[0]), *args[1:]], capture_output=True, text=True,
                              env=self.env, cwd=cwd or self.root, timeout=timeout)

    def plugins(self) -> dict[str, dict[str, Any]]:
        """``streamhost plugins --json`` by plugin name."""
        done = self.run("streamhost", "plugins", "--json")
        assert done.returncode == 0, done.stderr
        return {p["name"]: p for p in json.loads(done.stdout)["plugins"]}


@pytest.fixture(scope="session")
def host_env(tmp_path_factory: pytest.TempPathFactory) -> HostEnv:
    root = tmp_path_factory.mktemp("e2e")
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True)
    python = str(root / "venv" / "bin" / "python")
    quiet = ["--quiet", "--disable-pip-version-check"]
    subprocess.run([python, "-m", "pip", "install", *quiet, "--upgrade", "pip"], check=True, capture_output=True)
    # pytest for the plugins' own suites; the rest of the test extra is the host suite's business
    done = subprocess.run([python, "-m", "pip", "install", *quiet, str(ROOT), "pytest>=8"], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    print(f"\ne2e environment ready in {time.monotonic() - started:.1f} s", file=sys.stderr)
    config = root / "config.toml"
    config.write_text("", encoding="utf-8")
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("STREAMHOST_", "PYTHON", "VIRTUAL_ENV", "OPENAI_"))}
    env.update(STREAMHOST_CONFIG=str(config), XDG_STATE_HOME=str(root / "state"),
               XDG_CONFIG_HOME=str(root / "config"))
    return HostEnv(root=root, bin=root / "venv" / "bin", env=env)


async def call_over_stdio(host_env: HostEnv, tool: str, arguments: dict[str, Any],
                          extra_env: dict[str, str] | None = None) -> tuple[Any, list[Any]]:
    """Spawn the environment's ``streamhost serve``; call ``tool`` with a real MCP client asking for progress."""
    from mcp import Client, StdioServerParameters

    progress: list[Any] = []

    async def on_message(message: Any) -> None:
        if type(message).__name__ == "ProgressNotification":
            progress.append(message.params)

    params = StdioServerParameters(command=str(host_env.bin / "streamhost"), args=["serve"],
                                   env={**host_env.env, **(extra_env or {})})
    async with Client(params, mode="legacy", message_handler=on_message) as client:
        result = await client.session.call_tool(tool, arguments, meta={"progress_token": "e2e"})
    return result, progress


def render(host_env: HostEnv, name: str, kind: str) -> Path:
    target = host_env.root / f"plugin-{name}"
    done = host_env.run("streamhost", "plugin", "new", name, "--kind", kind, "--dir", str(target))
    assert done.returncode == 0, done.stderr
    return target


def run_own_tests(host_env: HostEnv, project: Path) -> None:
    done = host_env.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    assert " passed" in done.stdout and "skipped" not in done.stdout, done.stdout


@pytest.mark.anyio
async def test_a_rendered_provider_installs_lists_streams_and_passes_its_own_tests(host_env):
    project = render(host_env, "e2e-llm", "provider")

    done = host_env.run("streamhost", "install", str(project))
    assert done.returncode == 0, done.stderr
    assert "+ plugin streamhost-e2e-llm 0.1.0: provider e2e-llm" in done.stdout
    assert host_env.plugins()["streamhost-e2e-llm"]["providers"] == ["e2e-llm"]

    with LLMTestServer(require_key=KEY) as llm:
        llm.script("small", Script(tokens=TOKENS, delay_s=0.08))
        result, progress = await call_over_stdio(
            host_env, "generate", {"prompt": "go", "model": "e2e-llm/small"},
            {"E2E_LLM_API_KEY": KEY, "E2E_LLM_BASE_URL": llm.url},
        )
    assert not result.is_error, result.content
    text = result.content[0].text
    deltas = [p.meta["streamhost/delta"] for p in progress if p.meta and "streamhost/delta" in p.meta]
    assert text == "".join(TOKENS) == "".join(deltas)
    assert len(deltas) >= 3, "the answer reached the client in pieces while it was written"

    run_own_tests(host_env, project)


@pytest.mark.anyio
async def test_a_rendered_fetcher_installs_editable_fetches_passes_its_tests_and_uninstalls(host_env):
    project = render(host_env, "e2e-notes", "fetcher")

    done = host_env.run("streamhost", "install", "-e", str(project))
    assert done.returncode == 0, done.stderr
    assert "+ plugin streamhost-e2e-notes 0.1.0: fetcher e2e-notes" in done.stdout
    assert host_env.plugins()["streamhost-e2e-notes"]["fetchers"] == ["e2e-notes"]

    result, progress = await call_over_stdio(host_env, "fetch_url", {"url": "e2e-notes://notes/hello"})
    assert not result.is_error, result.content
    assert "The first note." in result.content[0].text
    assert any("reading note 'hello'" in (p.message or "") for p in progress), [p.message for p in progress]

    run_own_tests(host_env, project)

    done = host_env.run("streamhost", "uninstall", "streamhost-e2e-notes")
    assert done.returncode == 0, done.stderr
    assert "- plugin streamhost-e2e-notes removed" in done.stdout
    assert "streamhost-e2e-notes" not in host_env.plugins()


@pytest.mark.parametrize(("dependency", "kept", "message"), [
    ("streamhost>=99", "streamhost", "streamhost-needy 1.0 needs streamhost>=99, this host is 0.1.0"),
    ("platformdirs<4", "platformdirs",
     "streamhost-needy 1.0 needs platformdirs<4, streamhost 0.1.0 needs platformdirs>=4"),
])
def test_a_plugin_that_would_move_the_host_or_its_dependencies_is_refused(host_env, dependency, kept, message):
    version = f"import importlib.metadata as m; print(m.version({kept!r}))"
    before = host_env.run("python", "-c", version).stdout
    project = host_env.root / f"needs-other-{kept}"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=77"]\nbuild-backend = "setuptools.build_meta"\n'
        f'[project]\nname = "streamhost-needy"\nversion = "1.0"\ndependencies = ["{dependency}"]\n'
        "[tool.setuptools]\npy-modules = []\n", encoding="utf-8")

    done = host_env.run("streamhost", "install", str(project))

    assert done.returncode == 2, done.stdout
    assert message in done.stderr
    assert host_env.run("python", "-c", version).stdout == before and before.strip()
    assert "streamhost-needy" not in host_env.run("python", "-m", "pip", "list").stdout


def test_the_installed_host_has_every_module_of_core_and_the_whole_template(host_env):
    """pyproject.toml lists the packages by hand (the template is a mapped dir): nothing may be left out."""
    listing = host_env.run("python", "-c", "import importlib.metadata as m; print(*m.files('streamhost'), sep='\\n')")
    installed = set(listing.stdout.split())
    core = ROOT / "core" / "streamhost"
    wanted = {f"streamhost/{p.relative_to(core)}" for p in core.rglob("*.py")}
    wanted |= {f"streamhost/plugin_template/{p.relative_to(ROOT / 'plugin_template')}"
               for p in (ROOT / "plugin_template").rglob("*")
               if p.is_file() and not SKIP.intersection(p.parts) and p.suffix != ".pyc"}
    assert wanted - installed == set(), "missing from the installed host: add the package to pyproject.toml"


def test_a_rendered_plugin_works_in_an_environment_of_its_own_as_plugin_new_says(host_env):
    """Outside this repository: streamhost is on no package index, so the plugin's own venv must get it from
    this checkout. The commands ``plugin new`` prints (those of the README's Test section, path filled in)
    must set the project up and pass its tests; then the CI workflow's lint and test steps run there."""
    project = host_env.root / "plugin-solo"
    done = host_env.run("streamhost", "plugin", "new", "solo", "--dir", str(project))
    assert done.returncode == 0, done.stderr
    block = done.stdout.split("Or in a virtual environment of the plugin's own")[1].split("\n\n")[0]
    commands = [line.strip() for line in block.splitlines()[1:]]
    assert [c.split("#")[0].strip() for c in commands[1:]] == [
        ".venv/bin/python -m pip install --upgrade pip", f".venv/bin/python -m pip install {ROOT}",
        '.venv/bin/python -m pip install -e ".[test]"', ".venv/bin/python -m pytest"]

    for command in commands:
        ran = subprocess.run(["bash", "-c", command], cwd=project, env=host_env.env, capture_output=True, text=True,
                             timeout=900)
        assert ran.returncode == 0, f"{command}\n{ran.stdout}\n{ran.stderr}"
    assert " passed" in ran.stdout and "skipped" not in ran.stdout, ran.stdout

    workflow = yaml.safe_load((project / ".github" / "workflows" / "test.yml").read_text(encoding="utf-8"))
    steps = {step.get("name"): step for step in workflow["jobs"]["test"]["steps"]}
    assert "${STREAMHOST_SOURCE:-" in steps["Install streamhost"]["run"], "the install step the README documents"
    on_path = {**host_env.env, "PATH": f"{project / '.venv' / 'bin'}{os.pathsep}{host_env.env['PATH']}"}
    for name in ("Lint", "Test"):
        ran = subprocess.run(["bash", "-e", "-c", steps[name]["run"]], cwd=project, env=on_path,
                             capture_output=True, text=True, timeout=300)
        assert ran.returncode == 0, f"{name}: {ran.stdout}\n{ran.stderr}"
