"""Meta-tests: every config key is documented, and the documented configs are ones the host accepts.

The host's keys (``HOST_KEYS``) must be in the README's Configuration section; every option a bundled plugin
declares is in docs/config.md, generated from the declarations; the example configs in the READMEs load
with the bundled plugins without an error or a warning (so they name no key that does not exist).
"""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest

from streamhost.host.config import HOST_KEYS, load_config
from streamhost.host.loading import load_plugins
from streamhost.options import OTHER_KEYS

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CONFIG_DOC = ROOT / "docs" / "config.md"
BUILD = runpy.run_path(str(ROOT / "docs" / "build_config.py"))
EXAMPLES = [README, *sorted((ROOT / "plugins").glob("*/README.md"))]
BUNDLED = "streamhost-openai, streamhost-litellm, streamhost-fetch"


def configuration_section() -> str:
    text = README.read_text(encoding="utf-8")
    return text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]


def written_keys(text: str) -> set[tuple[str, str]]:
    """``(table, key)`` for every key the TOML blocks of ``text`` set or show commented out, and for every table
    they open (as a key of the top level). ``[models."X"]`` counts as ``models."NAME"``."""
    found = set()
    for block in re.findall(r"```toml\n(.*?)```", text, flags=re.DOTALL):
        table = ""
        for line in block.splitlines():
            if header := re.match(r"^\s*\[([^\]]+)\]", line):
                table = re.sub(r'^models\."[^"]+"', 'models."NAME"', header.group(1).replace(" ", ""))
                found.add(("", table.split(".", 1)[0]))
            elif key := re.match(r"^\s*#?\s*([A-Za-z_][\w-]*)\s*=", line):
                found.add((table, key.group(1)))
    return found


def declared_tables() -> list[tuple[str, str, tuple]]:
    return BUILD["tables"]()


def test_the_config_reference_is_up_to_date() -> None:
    current = CONFIG_DOC.read_text(encoding="utf-8")
    assert BUILD["render"](current) == current, "docs/config.md is stale: run python docs/build_config.py"


@pytest.mark.parametrize(("table", "key"), sorted((table, key) for table, keys in HOST_KEYS.items() for key in keys))
def test_every_host_key_is_in_the_readme_configuration_section(table: str, key: str) -> None:
    assert (table, key) in written_keys(configuration_section()), (
        f"{table + '.' if table else ''}{key} is read by the host but not shown in README.md's Configuration section")


@pytest.mark.parametrize(("heading", "name"), [(heading, option.name) for heading, _, options in declared_tables()
                                               for option in options if option.name != OTHER_KEYS])
def test_every_declared_option_of_a_bundled_plugin_is_described_in_the_reference(heading: str, name: str) -> None:
    (option,) = [o for h, _, options in declared_tables() if h == heading for o in options if o.name == name]
    assert option.description or option.refused, f"{heading} {name}: declare it with a description"
    section = CONFIG_DOC.read_text(encoding="utf-8").split(f"## `{heading}`\n", 1)[1].split("\n## ", 1)[0]
    assert f"| `{name}` |" in section


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: str(path.relative_to(ROOT)))
def test_the_example_configs_load_without_an_error_or_a_warning(path: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STREAMHOST_CONFIG", raising=False)
    monkeypatch.setenv("STREAMHOST_LOAD_PLUGINS", BUNDLED)
    text = path.read_text(encoding="utf-8")
    blocks = re.findall(r"```toml\n(.*?)```", text, flags=re.DOTALL)
    for number, block in enumerate(blocks):
        example = tmp_path / f"example-{number}.toml"
        example.write_text(block, encoding="utf-8")
        config = load_config(example)
        registry = load_plugins(config)
        assert config.warnings == [], block
        assert {r.name: r.error for r in registry.plugins if r.error} == {}, block
        # The README's example prefers a distribution that is only an example.
        assert [w for w in registry.warnings if "streamhost-myopenai" not in w] == [], block
