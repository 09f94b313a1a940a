"""Meta-tests: docs/plugins.md is current, documents every hook and public name, and every hook is exercised."""

from __future__ import annotations

import ast
import importlib.util
import inspect
import re
import runpy
from pathlib import Path

import pytest

import streamhost
import streamhost.testing
from streamhost import hookspecs
from streamhost.host.config import Config, tomllib
from streamhost.host.loading import load_plugins
from streamhost.testing import pytest_plugin

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "plugins.md"
HOOKS = sorted(name for name, f in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(f, "streamhost_spec"))
DOC_TESTS = Path(__file__).name
FIXTURES = sorted(name for name in vars(pytest_plugin) if name.startswith("streamhost_"))


def documented() -> set[str]:
    """The names that have a ``### `NAME``` heading in docs/plugins.md."""
    return set(re.findall(r"^### `([^`]+)`$", DOC.read_text(encoding="utf-8"), flags=re.MULTILINE))


def test_the_reference_part_is_up_to_date():
    build = runpy.run_path(str(ROOT / "docs" / "build_reference.py"))
    current = DOC.read_text(encoding="utf-8")
    assert build["render"](current) == current, "docs/plugins.md is stale: run python docs/build_reference.py"


def test_the_hooks_are_found():
    assert {"register_fetchers", "register_providers"} <= set(HOOKS)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented(hook):
    assert hook in documented()
    assert inspect.getdoc(getattr(hookspecs, hook)), f"hookspec {hook} has no docstring"


@pytest.mark.parametrize("name", sorted(streamhost.__all__))
def test_every_public_name_is_documented(name):
    assert name in documented(), f"streamhost.{name} is missing from docs/plugins.md"


@pytest.mark.parametrize("name", sorted(streamhost.testing.__all__) + FIXTURES)
def test_every_testing_kit_name_and_fixture_is_documented(name):
    assert name in documented(), f"{name} (testing kit) is missing from docs/plugins.md"


def implementations(hook: str) -> list[Path]:
    """The test plugins under tests/plugins/ that implement ``hook`` with ``@hookimpl``."""
    found = []
    for path in sorted((ROOT / "tests" / "plugins").glob("*/*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.FunctionDef) and node.name == hook
                    and any("hookimpl" in ast.unparse(d) for d in node.decorator_list)):
                found.append(path)
    return found


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_exercised_by_a_test_plugin_that_loads(hook, capsys):
    kind = hook.removeprefix("register_")
    loaded = []
    for path in implementations(hook):
        spec = importlib.util.spec_from_file_location(f"docs_check_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception:  # the broken_* plugins are meant to fail; they are tested in test_loading
            continue
        registry = load_plugins(Config(), extra=[(path.stem, module)], entry_points=[])
        (record,) = [r for r in registry.plugins if r.name == path.stem]  # the host's built-in plugin loads too
        if record.error is None and hook in record.hooks and record.registered[kind]:
            project = tomllib.loads((path.parent / "pyproject.toml").read_text(encoding="utf-8"))["project"]
            loaded.append(project["name"])
    assert loaded, f"no plugin under tests/plugins/ implements {hook} and loads: add one, and a test using it"
    tests = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "tests").glob("test_*.py")) if p.name != DOC_TESTS]
    used = [name for name in loaded if any(name in text for text in tests)]
    assert used, f"no test under tests/ loads a plugin implementing {hook} (by distribution name): {loaded}"
