"""Declared plugin options: the ``Option`` contract, the host checking the bundled plugins' tables when it loads
them (file, line, close match, every problem at once), and ``streamhost config show`` listing them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from streamhost import ConfigError, Option, Provider, check_options, hookimpl
from streamhost.host import plugin_options
from streamhost.host.config import load_config
from streamhost.host.loading import load_plugins

STREAMHOST = str(Path(sys.executable).with_name("streamhost"))


# ---------------------------------------------------------------- the contract: Option and check_options


@pytest.mark.parametrize(("option", "value", "problem"), [
    (Option("t", float, above=0), 0, "must be a number > 0, got 0"),
    (Option("t", float, above=0), True, "must be a number > 0, got True"),  # TOML's true is no number
    (Option("t", float, above=0), float("nan"), "must be a number > 0, got nan"),
    (Option("n", int, minimum=1), 1.5, "must be a whole number ≥ 1, got 1.5"),
    (Option("b", bool), "yes", "must be true or false, got 'yes'"),
    (Option("s", str, non_empty=True), "  ", "must be a non-empty string, got '  '"),
    (Option("l", list[str], non_empty=True), "a", "must be a list of non-empty strings, got 'a'"),
    (Option("l", list[str]), ["a", 3], "must be a list of strings, got ['a', 3]"),
    (Option("d", dict), [1], "must be a table, got [1]"),
    (Option("c", str, choices=("auto", "chat")), "x", "must be one of auto, chat, got 'x'"),
    (Option("k", str, secret=True), 12345, "must be a string, got a value of type int"),  # a secret is never echoed
    (Option("r", object, refused="the host sets it"), 1, "cannot be set: the host sets it"),
])
def test_a_value_that_breaks_its_declaration_says_what_is_wrong(option: Option, value: Any, problem: str) -> None:
    with pytest.raises(ValueError) as info:
        option.parse(value)
    assert str(info.value) == problem


def test_parse_gives_the_declared_type_and_runs_the_further_check() -> None:
    assert Option("t", float, above=0).parse(30) == 30.0 and isinstance(Option("t", float).parse(30), float)
    hosts = Option("h", list[str], check=lambda value: tuple(v.lower() for v in value))
    assert hosts.parse(["A.example", "b"]) == ("a.example", "b")

    def http_url(value: str) -> str:
        if not value.startswith("http://"):
            raise ValueError(f"must start with http://, got {value!r}")
        return value

    with pytest.raises(ValueError, match="must start with http://, got 'ftp://x'"):
        Option("u", str, check=http_url).parse("ftp://x")


def test_type_names_and_limits_in_words() -> None:
    assert (Option("t", float, above=0).type_name, Option("t", float, above=0).allowed) == ("number", "> 0")
    assert Option("m", list[str], non_empty=True).type_name == "list of strings"
    assert Option("p", dict, each=()).type_name == "table of tables"
    assert Option("a", str, choices=("auto", "chat")).allowed == "one of auto, chat"
    assert Option("n", int, minimum=1).allowed == "≥ 1"


def test_check_options_fills_defaults_collects_every_problem_and_accepts_other_keys_only_when_declared() -> None:
    inner = (Option("key_env", str, non_empty=True), Option("stream", object, refused="always on"), Option("*", object))
    declared = (Option("timeout_s", float, 600, above=0), Option("models", list[str], []),
                Option("params", dict, {}, each=inner))
    checked = check_options(declared, {"timeout_s": 0, "colour": 1, "params": {
        "m/1": {"stream": False, "top_p": 0.5}, "m/2": 3}}, "providers.x")
    assert checked.errors == [
        ("providers.x.timeout_s", "must be a number > 0, got 0"),
        ('providers.x.params."m/1".stream', "cannot be set: always on"),
        ('providers.x.params."m/2"', 'must be a table ([providers.x.params."m/2"]), got 3'),
    ]
    assert checked.unknown == [("providers.x", "colour", ("models", "params", "timeout_s"))]
    assert checked.values["models"] == [] and checked.values["timeout_s"] == 600  # a bad value keeps the default
    assert checked.values["params"]["m/1"] == {"key_env": None, "top_p": 0.5}  # "*" passes other keys on
    with pytest.raises(ConfigError) as info:
        checked.raise_errors()
    assert len(info.value.message.splitlines()) == 4
    assert "unknown key providers.x.colour; known: models, params, timeout_s" in info.value.message
    checked.values["models"].append("x")
    assert check_options(declared, {}, "providers.x").values["models"] == [], "a default is never shared"


def test_checked_values_check_again_unchanged() -> None:
    declared = (Option("timeout_s", float, 600, above=0), Option("base_url", str, None, non_empty=True))
    values = check_options(declared, {"timeout_s": 5}, "providers.x").values
    again = check_options(declared, values, "providers.x")  # None counts as unset: TOML has none
    assert again.values == values == {"timeout_s": 5.0, "base_url": None} and not again.errors


# ---------------------------------------------------------------- the host checks the bundled plugins' tables


@pytest.fixture
def write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Write a config file and load it with the bundled plugins only."""
    monkeypatch.delenv("STREAMHOST_CONFIG", raising=False)
    monkeypatch.setenv("STREAMHOST_LOAD_PLUGINS", "streamhost-openai, streamhost-litellm, streamhost-fetch")
    monkeypatch.delenv("STREAMHOST_DISABLE_PLUGINS", raising=False)
    monkeypatch.delenv("STREAMHOST_STRICT_PLUGINS", raising=False)

    def write(text: str) -> tuple[Path, Any]:
        path = tmp_path / "config.toml"
        path.write_text(text, encoding="utf-8")
        return path, load_plugins(load_config(path))

    return write


def errors(registry: Any) -> dict[str, str]:
    return {record.name: record.error for record in registry.plugins if record.error}


def test_every_problem_of_a_provider_is_reported_at_once_in_file_order_with_line_and_close_match(write) -> None:
    path, registry = write(
        '[models."openai/o3"]\n'      # 1
        'api = "completions"\n'       # 2
        "[providers.openai]\n"        # 3
        "timeout_s = 0\n"             # 4
        'bse_url = "http://h/v1"\n'   # 5
        'api = "chat"\n'              # 6: fine
        'models = "gpt-4.1"\n'        # 7
    )
    message = errors(registry)["streamhost-openai"].removeprefix("ConfigError: ")
    lines = message.splitlines()
    assert lines == [
        f'{path}, line 2: models."openai/o3".api must be one of auto, chat, responses, got \'completions\'',
        f"{path}, line 4: providers.openai.timeout_s must be a number > 0, got 0",
        f"{path}, line 5: unknown key providers.openai.bse_url (did you mean providers.openai.base_url?); "
        "known: api, api_key_env, base_url, models, timeout_s",
        f"{path}, line 7: providers.openai.models must be a list of strings, got 'gpt-4.1'",
    ]
    assert "openai" not in registry.providers and "litellm" in registry.providers, "only that plugin stops"


def test_a_nested_table_gets_the_line_of_its_key_and_a_secret_is_never_echoed(write) -> None:
    path, registry = write(
        "[providers.litellm]\n"
        "timeout_s = 30\n"
        '[providers.litellm.params."ollama/llama3.2"]\n'
        'api_base = "http://localhost:11434"\n'
        'api_key = "sk-in-the-file-123"\n'  # 5
    )
    error = errors(registry)["streamhost-litellm"]
    assert error == (f'ConfigError: {path}, line 5: providers.litellm.params."ollama/llama3.2".api_key cannot be '
                     "set: keep keys out of the config file: put the key in a variable and name it with api_key_env")
    assert "sk-in-the-file-123" not in error


def test_fetch_values_are_the_fetch_plugins_and_reach_it_checked_with_defaults_filled(write) -> None:
    path, registry = write('[fetch]\nmax_bytes = 0\nallow_private = "no"\n')
    assert errors(registry)["streamhost-fetch"].removeprefix("ConfigError: ").splitlines() == [
        f"{path}, line 2: fetch.max_bytes must be a whole number ≥ 1, got 0",
        f"{path}, line 3: fetch.allow_private must be true or false, got 'no'",
    ]
    _, registry = write('[fetch]\nallow_hosts = ["LOCALHOST", "[::1]"]\ntimeout_s = 5\n')
    fetcher = registry.fetchers["http"]
    assert fetcher.settings.allow_hosts == ("localhost", "::1") and fetcher.settings.timeout_s == 5.0
    assert fetcher.options["max_bytes"] == 5_000_000 and fetcher.options["proxy"] == ""


def test_provider_options_arrive_with_defaults_and_model_tables_as_written(write) -> None:
    _, registry = write('[providers.openai]\nbase_url = "http://127.0.0.1:9/v1"\n'
                        '[models."openai/o3"]\napi = "chat"\nstreaming = false\n')
    openai = registry.providers["openai"]
    assert openai.options == {"base_url": "http://127.0.0.1:9/v1", "api_key_env": None, "api": "auto",
                              "models": [], "timeout_s": 600}
    assert registry.warnings == []


def test_an_undeclared_key_of_a_model_table_is_a_warning_with_the_close_match(write) -> None:
    path, registry = write('[models."openai/o3"]\napy = "responses"\nstreming = false\n'
                           '[models."litellm/ollama/x"]\nnum_ctx = 8192\n')  # litellm passes other keys on
    assert registry.warnings == [f'{path}, line 2: unknown key models."openai/o3".apy (did you mean '
                                 "models.\"openai/o3\".api?); known: api, background, context_window, price_in, "
                                 "price_out, streaming, tools"]
    config = load_config(path)  # the near miss of the host's own key was flagged when the file was read
    assert [w for w in config.warnings if "streming" in w]


def test_a_plugin_without_declarations_gets_its_table_and_its_own_error_gets_the_tables_line(tmp_path) -> None:
    class Legacy(Provider):
        name = "legacy"

        def configure(self, options):
            super().configure(options)
            if "colour" in options:
                raise ConfigError("providers.legacy.colour is not for this plugin")

    class Plugin:
        @staticmethod
        @hookimpl
        def register_providers(register):
            register(Legacy())

    path = tmp_path / "config.toml"
    path.write_text('default_model = "legacy/x"\n\n[providers.legacy]\nshade = 3\n', encoding="utf-8")
    registry = load_plugins(load_config(path), extra=[("legacy-plugin", Plugin)], entry_points=[])
    assert registry.providers["legacy"].options == {"shade": 3}
    path.write_text('default_model = "legacy/x"\n\n[providers.legacy]\ncolour = 3\n', encoding="utf-8")
    registry = load_plugins(load_config(path), extra=[("legacy-plugin", Plugin)], entry_points=[])
    (record,) = [r for r in registry.plugins if r.name == "legacy-plugin"]
    assert record.error == f"ConfigError: {path}, line 3: providers.legacy.colour is not for this plugin"


# ---------------------------------------------------------------- listing: `streamhost config show`


def test_the_listing_has_every_option_with_the_value_in_effect_and_secrets_masked(write) -> None:
    path, registry = write('[providers.openai]\nbase_url = "https://user:pw-123@gw.example/v1"\n'
                           'api_key_env = "MY_KEY"\n'
                           '[models."openai/o3"]\napi = "responses"\n'
                           '[fetch]\nproxy = "http://me:secret-456@proxy:3128"\n')
    rows = plugin_options.listing(registry.providers, registry.fetchers, load_config(path))
    by_key = {(row["section"], row["name"]): row for row in rows}
    assert by_key["providers.openai", "base_url"]["value"] == "https://****@gw.example/v1"
    assert by_key["providers.openai", "api_key_env"]["value"] == "MY_KEY"  # a variable's name is no secret
    assert by_key["providers.openai", "timeout_s"] | {"description": ""} == {
        "section": "providers.openai", "plugin": "openai", "name": "timeout_s", "type": "number", "default": 600,
        "allowed": "> 0", "description": "", "value": 600, "set": False}
    assert by_key['models."openai/MODEL"', "api"]["value"] == {"openai/o3": "responses"}
    assert by_key["fetch", "proxy"]["value"] == "http://****@proxy:3128" and by_key["fetch", "proxy"]["set"]
    assert ('models."litellm/MODEL"', "api_key") not in by_key, "refused keys are not options to list"
    assert all(row["description"] for row in rows)
    text = "\n".join(plugin_options.describe(rows))
    assert "[providers.openai]  (openai)" in text and 'api = "responses" in models."openai/o3"' in text
    assert "pw-123" not in text and "secret-456" not in text


def test_config_show_lists_the_plugins_options_and_json_has_it_all(home: Any) -> None:
    home.write_config('[fetch]\nallow_hosts = ["127.0.0.1"]\n[providers.openai]\napi_key = "sk-never-shown"\n')
    env = {"COLUMNS": "400", **home.env}
    shown = subprocess.run([STREAMHOST, "config", "show"], env=env, capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["fetch"] == {"allow_hosts": ["127.0.0.1"]}  # stdout: the file, as before
    assert "[fetch]  (http)" in shown.stderr and 'allow_hosts = ["127.0.0.1"]  (set in the file' in shown.stderr
    assert "unknown key providers.openai.api_key" in shown.stderr  # why openai did not load, with the line
    as_json = subprocess.run([STREAMHOST, "config", "show", "--json"], env=env, capture_output=True, text=True,
                             timeout=60)
    assert as_json.returncode == 0, as_json.stderr
    document = json.loads(as_json.stdout)
    assert document["path"] == str(home.config) and document["config"]["providers"]["openai"]["api_key"] == "****"
    assert {"section": "fetch", "name": "allow_hosts", "value": ["127.0.0.1"], "set": True}.items() <= next(
        row for row in document["options"] if row["name"] == "allow_hosts").items()
    assert "streamhost-openai" in document["plugin_errors"]
    assert "sk-never-shown" not in as_json.stdout + as_json.stderr + shown.stdout + shown.stderr
