"""``streamhost plugin new``: rendering the template, refusing what it must refuse, through the real CLI."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import streamhost
from streamhost.cli.scaffold import KINDS, PluginNames, ci_source, host_source, render, template_root
from streamhost.errors import InvalidArgumentError
from streamhost.host.config import tomllib

HERE = Path(__file__).parent
STREAMHOST = str(Path(sys.executable).with_name("streamhost"))
TOKEN = re.compile(r"__(NAME|DIST|PACKAGE|CLASS|ENV|AUTHOR|HOST_SOURCE)__")
ROOT = HERE.parent


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([STREAMHOST, *args], capture_output=True, text=True, cwd=cwd, timeout=60)


@pytest.mark.parametrize("kind", KINDS)
def test_render_fills_every_token_in_paths_and_contents(tmp_path, kind):
    names = PluginNames.parse("my-llm")
    written = render(names, kind, tmp_path / "out", author="Ada Lovelace")

    relative = sorted(str(p.relative_to(tmp_path / "out")) for p in written)
    assert relative == sorted([
        ".github/workflows/test.yml", ".gitignore", "README.md", "pyproject.toml",
        "streamhost_my_llm/__init__.py", f"streamhost_my_llm/{kind}.py", "streamhost_my_llm/py.typed",
        "tests/conftest.py", f"tests/test_{kind}.py",
    ])
    for path in written:
        text = path.read_text(encoding="utf-8")
        assert not TOKEN.search(text), f"{path} still has a template token: {TOKEN.search(text)}"
    project = tomllib.loads((tmp_path / "out" / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["name"] == "streamhost-my-llm"
    assert project["authors"] == [{"name": "Ada Lovelace"}]
    assert project["entry-points"]["streamhost"] == {"my-llm": "streamhost_my_llm"}
    module = (tmp_path / "out" / "streamhost_my_llm" / f"{kind}.py").read_text(encoding="utf-8")
    assert f"class MyLlm{kind.capitalize()}(" in module
    assert 'name = "my-llm"' in module


def test_the_template_pins_the_host_series_this_host_belongs_to(tmp_path):
    major, minor = (int(part) for part in streamhost.__version__.split(".")[:2])
    upper = f"{major}.{minor + 1}" if major == 0 else f"{major + 1}"
    for kind in KINDS:
        project = tomllib.loads((template_root() / kind / "pyproject.toml").read_text(encoding="utf-8"))["project"]
        assert f"streamhost>={major}.{minor},<{upper}" in project["dependencies"], (
            f"plugin_template/{kind}/pyproject.toml must require this host's series ({streamhost.__version__})"
        )


@pytest.mark.parametrize("raw", ["", "Acme", "my_llm", "9lives", "a--b", "a-", "acme!", "streamhost-"])
def test_a_bad_name_is_refused_saying_what_is_allowed(raw):
    with pytest.raises(InvalidArgumentError, match="lowercase letters, digits and single hyphens"):
        PluginNames.parse(raw)


def test_the_streamhost_prefix_is_optional():
    assert PluginNames.parse("streamhost-acme") == PluginNames.parse("acme")
    assert PluginNames.parse("acme").package == "streamhost_acme"


def test_cli_renders_into_the_default_dir_and_prints_next_steps(tmp_path):
    done = run_cli("plugin", "new", "acme", "--kind", "fetcher", "--author", "Ann", cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    assert (tmp_path / "streamhost-acme" / "streamhost_acme" / "fetcher.py").is_file()
    assert "Next steps:" in done.stdout
    assert 'streamhost install -e ".[test]"' in done.stdout
    assert f"{Path(STREAMHOST).with_name('python')} -m pytest" in done.stdout  # the host's interpreter
    # streamhost is not on the index: its own venv gets it from this checkout (the editable install's source)
    assert f".venv/bin/python -m pip install {ROOT}   # streamhost" in done.stdout
    assert "fails at its first step until you set the repository variable STREAMHOST_SOURCE" in done.stdout
    assert "streamhost fetch acme://notes/hello" in done.stdout
    assert done.stderr == ""


def test_cli_warns_when_the_name_is_an_installed_plugin(tmp_path):
    done = run_cli("plugin", "new", "openai", cwd=tmp_path)  # streamhost-openai is installed with the host's tests

    assert done.returncode == 0, done.stderr
    assert "warning: streamhost-openai 0.1.0 is already installed" in done.stderr
    assert "replaces it" in done.stderr


def test_an_author_name_cannot_break_the_pyproject(tmp_path):
    render(PluginNames.parse("acme"), "provider", tmp_path / "out", author='Ann "A\\B" \x07Lee')

    project = tomllib.loads((tmp_path / "out" / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["authors"] == [{"name": "Ann 'AB' Lee"}]


def test_cli_refuses_an_existing_dir_and_leaves_it_alone(tmp_path):
    target = tmp_path / "mine"
    target.mkdir()
    (target / "keep.txt").write_text("mine", encoding="utf-8")

    done = run_cli("plugin", "new", "acme", "--dir", str(target), cwd=tmp_path)

    assert done.returncode == 2
    assert f"{target} already exists" in done.stderr
    assert [p.name for p in target.iterdir()] == ["keep.txt"]


def test_cli_refuses_a_bad_name_without_writing_anything(tmp_path):
    done = run_cli("plugin", "new", "Bad_Name", cwd=tmp_path)

    assert done.returncode == 2
    assert "plugin name 'Bad_Name' is not valid" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_cli_refuses_an_unknown_kind(tmp_path):
    done = run_cli("plugin", "new", "acme", "--kind", "database", cwd=tmp_path)

    assert done.returncode == 2
    assert "invalid choice: 'database'" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_bundled_plugins_have_the_template_shape():
    """Each bundled plugin has what a rendered one has: pyproject, package dir, py.typed, tests, README parts."""
    for root in sorted(p for p in (HERE.parent / "plugins").iterdir() if (p / "pyproject.toml").exists()):
        project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
        package = project["project"]["name"].replace("-", "_")
        assert set(project["project"]["entry-points"]) == {"streamhost"}, root
        assert "test" in project["project"]["optional-dependencies"], root
        assert any(d.startswith("streamhost") and not d.startswith("streamhost-") for d in
                   project["project"]["dependencies"]), root
        for part in ("README.md", f"{package}/__init__.py", f"{package}/py.typed", "tests/conftest.py"):
            assert (root / part).is_file(), f"{root.name} lacks {part}"
        headings = re.findall(r"^## (.+)$", (root / "README.md").read_text(encoding="utf-8"), re.MULTILINE)
        assert {"Install", "Configure", "Test"} <= set(headings), f"{root.name}/README.md: {headings}"


def _distribution(root: Path, direct_url: dict[str, object] | None) -> Path:
    """A ``streamhost`` install record under ``root`` (first on sys.path, it is what metadata finds)."""
    info = root / "streamhost-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: streamhost\nVersion: 0.1.0\n", encoding="utf-8")
    if direct_url is not None:
        (info / "direct_url.json").write_text(json.dumps(direct_url), encoding="utf-8")
    return root


def test_host_source_is_where_this_streamhost_was_installed_from():
    assert host_source() == str(ROOT), "this environment has streamhost installed (editable) from the checkout"


@pytest.mark.parametrize(("record", "expected"), [
    ({"url": "https://github.com/acme/streamhost", "vcs_info": {"vcs": "git", "commit_id": "0f1e2d"}},
     "streamhost @ git+https://github.com/acme/streamhost@0f1e2d"),
    ({"url": "https://example.org/streamhost-0.1.0-py3-none-any.whl", "archive_info": {}},
     "streamhost @ https://example.org/streamhost-0.1.0-py3-none-any.whl"),
    ({"url": "file:///nowhere/streamhost-0.1.0-py3-none-any.whl", "archive_info": {}}, None),
    (None, None),
], ids=["git", "wheel URL", "deleted wheel", "from an index"])
def test_host_source_reads_the_install_record(tmp_path, monkeypatch, record, expected):
    monkeypatch.syspath_prepend(str(_distribution(tmp_path, record)))
    assert host_source() == expected


def _workflow(project: Path) -> dict[str, Any]:
    return yaml.safe_load((project / ".github" / "workflows" / "test.yml").read_text(encoding="utf-8"))


def _run_step(script: str, tmp_path: Path, source: str | None) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run a workflow step's script with bash -e, as Actions does, with a ``python`` that only logs its
    arguments (pip and the network stay out of it); returns the run and what ``python`` was asked."""
    bin_dir, log = tmp_path / "bin", tmp_path / "python-args"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "python").write_text(f"#!/bin/sh\nprintf '%s|' \"$@\" >> {log}\necho >> {log}\n", encoding="utf-8")
    (bin_dir / "python").chmod(0o755)
    env = {"PATH": str(bin_dir), **({"STREAMHOST_SOURCE": source} if source is not None else {})}
    done = subprocess.run([shutil.which("bash") or "/bin/bash", "-e", "-c", script], env=env,
                          capture_output=True, text=True, timeout=60)
    return done, log.read_text(encoding="utf-8") if log.exists() else ""


def test_ci_installs_streamhost_from_STREAMHOST_SOURCE_first_and_fails_saying_so_without_it(tmp_path):
    project = tmp_path / "out"
    render(PluginNames.parse("acme"), "provider", project, author="Ann")  # no CI-usable source known
    workflow = _workflow(project)
    assert workflow["env"]["STREAMHOST_SOURCE"] == "${{ vars.STREAMHOST_SOURCE }}"
    steps = [step for step in workflow["jobs"]["test"]["steps"] if "run" in step]
    assert [step["name"] for step in steps] == ["Install streamhost", "Install the plugin", "Lint", "Test"]
    install = steps[0]["run"]

    failed, asked = _run_step(install, tmp_path, None)
    assert failed.returncode == 1 and asked == ""
    assert "::error::STREAMHOST_SOURCE is not set" in failed.stdout and "README.md, Test" in failed.stdout

    done, asked = _run_step(install, tmp_path, "streamhost @ git+https://example.org/me/streamhost@v0.1.0")
    assert done.returncode == 0, done.stderr
    assert asked.splitlines() == ["-m|pip|install|--upgrade|pip|",
                                  "-m|pip|install|streamhost @ git+https://example.org/me/streamhost@v0.1.0|"]
    readme = (project / "README.md").read_text(encoding="utf-8")
    assert "STREAMHOST_SOURCE" in readme and "pip install /path/to/streamhost" in readme


def test_a_git_source_becomes_the_ci_default_and_a_local_path_never_does(tmp_path):
    git = "streamhost @ git+https://example.org/me/streamhost@0f1e2d"
    render(PluginNames.parse("acme"), "fetcher", tmp_path / "git", author="Ann", source=git)
    steps = {step.get("name"): step for step in _workflow(tmp_path / "git")["jobs"]["test"]["steps"]}
    done, asked = _run_step(steps["Install streamhost"]["run"], tmp_path, None)
    assert done.returncode == 0 and asked.splitlines()[-1] == f"-m|pip|install|{git}|"

    assert ci_source(str(ROOT)) == "" and ci_source(None) == ""
    assert ci_source('streamhost @ https://x/$(rm -rf ~)"') == "", "nothing that could break out of the shell word"
