"""Plugin loading in-process, from really pip-installed distributions."""

from __future__ import annotations

from typing import ClassVar

import pytest

from streamhost import FetchRequest
from streamhost.errors import PluginError
from streamhost.host.config import Config, load_config
from streamhost.host.loading import load_plugins

pytestmark = pytest.mark.anyio


@pytest.fixture
def installed(test_plugins, monkeypatch):
    monkeypatch.syspath_prepend(str(test_plugins))
    for name in ("STREAMHOST_LOAD_PLUGINS", "STREAMHOST_DISABLE_PLUGINS", "STREAMHOST_STRICT_PLUGINS"):
        monkeypatch.delenv(name, raising=False)
    return test_plugins


def records(registry):
    return {record.name: record for record in registry.plugins}


def test_each_plugin_is_recorded_and_the_good_ones_serve(installed):
    registry = load_plugins(Config())
    found = records(registry)
    assert "RuntimeError: this plugin is broken at import on purpose" == found["streamhost-test-broken-import"].error
    assert "ValueError" in found["streamhost-test-broken-register"].error
    assert found["streamhost-test-broken-register"].providers == []
    assert "half" not in registry.providers, "a failed registration registers nothing"
    assert found["streamhost-test-noisy"].providers == ["noisy"]
    assert found["streamhost-test-collide"].providers == []
    assert found["streamhost-test-collide"].notes == [
        "provider 'openai' not registered: streamhost-openai serves it (bundled plugins win over third-party ones)",
        "provider 'twin' not registered: streamhost-a-test-openai serves it "
        "(loaded first: distribution names in alphabetical order)"]
    assert type(registry.providers["openai"]).__module__.startswith("streamhost_openai")
    assert found["streamhost-openai"].hooks == ["register_providers"]


async def test_register_fetchers_registers_a_fetcher_that_serves_its_scheme(installed):
    registry = load_plugins(Config(fetch={"timeout_s": 5, "memo_heading": "memo:"}))
    fetcher = registry.fetcher_for("memo", "anything")
    assert records(registry)["streamhost-test-fetcher"].fetchers == ["memo"]
    # It gets the [fetch] keys it declares; timeout_s is the http fetcher's.
    assert fetcher is registry.fetchers["memo"] and fetcher.options == {"memo_heading": "memo:"}
    assert registry.fetcher_for("gopher", "x") is None
    events = [event async for event in fetcher.fetch(FetchRequest(url="memo://note/1"))]
    assert events[-1].content == "memo: memo://note/1"


def test_config_tables_reach_their_provider(installed, monkeypatch):
    monkeypatch.setenv("STREAMHOST_DISABLE_PLUGINS", "streamhost-a-test-openai, streamhost-test-collide")
    registry = load_plugins(Config(providers={"openai": {"base_url": "http://127.0.0.1:9/v1"}, "ghost": {}}))
    assert registry.providers["openai"].base_url == "http://127.0.0.1:9/v1"
    assert registry.warnings == ["config has [providers.ghost] but no loaded plugin registers provider 'ghost'"]


def test_a_bad_provider_table_is_that_plugins_error_not_the_hosts(installed, monkeypatch):
    monkeypatch.setenv("STREAMHOST_DISABLE_PLUGINS", "streamhost-test-collide, streamhost-a-test-openai")
    registry = load_plugins(Config(providers={"openai": {"colour": "red"}}))
    assert "unknown key providers.openai.colour" in records(registry)["streamhost-openai"].error
    assert "openai" not in registry.providers and "noisy" in registry.providers


def test_load_and_disable_lists_match_names_loosely(installed, monkeypatch):
    monkeypatch.setenv("STREAMHOST_LOAD_PLUGINS", "Streamhost_Test.Noisy, streamhost-openai")
    monkeypatch.setenv("STREAMHOST_DISABLE_PLUGINS", "streamhost-openai")
    registry = load_plugins(Config())
    assert set(registry.providers) == {"noisy"}
    assert records(registry)["streamhost-openai"].skipped.startswith("disabled")
    assert records(registry)["streamhost-test-collide"].skipped == "not named in STREAMHOST_LOAD_PLUGINS"


def test_strict_mode_raises_naming_the_plugin(installed, monkeypatch):
    monkeypatch.setenv("STREAMHOST_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="streamhost-test-broken-import failed to load"):
        load_plugins(Config())


# ---------------------------------------------------------------- names several plugins register


EARLY = "streamhost-a-test-openai"  # sorts before streamhost-openai: load order alone would give it openai/
COLLIDE = "streamhost-test-collide"


def test_a_bundled_plugin_keeps_its_name_against_a_third_party_loaded_before_it(installed):
    registry = load_plugins(Config())
    assert type(registry.providers["openai"]).__module__.startswith("streamhost_openai")
    assert records(registry)["streamhost-openai"].providers == ["openai"]
    assert records(registry)[EARLY].providers == ["twin"]
    assert any(note.startswith("provider 'openai' not registered: streamhost-openai serves it")
               for note in records(registry)[EARLY].notes)
    (warning,) = [w for w in registry.warnings if "'openai'" in w]
    assert f"registered by streamhost-openai and {EARLY}, {COLLIDE}" in warning
    assert "bundled plugins win" in warning and f'prefer = {{ openai = "{EARLY}" }}' in warning


def test_between_third_parties_the_first_loaded_serves_and_the_collision_is_reported(installed):
    registry = load_plugins(Config())
    assert [m.name for m in registry.providers["twin"].models()] == ["early-twin"]
    (collision,) = [c for c in registry.collisions if c.name == "twin"]
    assert (collision.kind, collision.serves, collision.refused, collision.preferred) == (
        "provider", EARLY, [COLLIDE], False)
    assert any("'twin'" in w and "alphabetical order" in w for w in registry.warnings)


def test_plugins_prefer_chooses_who_serves_a_name_and_is_not_a_warning(installed, tmp_path, monkeypatch):
    monkeypatch.delenv("STREAMHOST_CONFIG", raising=False)
    path = tmp_path / "config.toml"
    path.write_text(f'[plugins]\nprefer = {{ openai = "{EARLY.upper()}", twin = "{COLLIDE}" }}\n', encoding="utf-8")
    registry = load_plugins(load_config(path))
    assert [m.name for m in registry.providers["openai"].models()] == ["early-model"]
    assert [m.name for m in registry.providers["twin"].models()] == ["late-twin"]
    assert records(registry)["streamhost-openai"].notes == [
        f"provider 'openai' not registered: {EARLY} serves it (chosen by [plugins] prefer)"]
    assert all(c.preferred for c in registry.collisions)
    assert not any("registered by" in w for w in registry.warnings)


def test_a_prefer_that_chooses_nothing_is_a_warning_with_the_line(installed, tmp_path, monkeypatch):
    monkeypatch.delenv("STREAMHOST_CONFIG", raising=False)
    path = tmp_path / "config.toml"
    path.write_text('[plugins]\nwarmup = true\n\n[plugins.prefer]\nopenai = "streamhost-openia"\n'
                    'opneai = "streamhost-openai"\n', encoding="utf-8")
    registry = load_plugins(load_config(path))
    assert type(registry.providers["openai"]).__module__.startswith("streamhost_openai")
    wrong_dist = [w for w in registry.warnings if "streamhost-openia" in w]
    assert wrong_dist == [f"{path}, line 5: [plugins] prefer gives 'openai' to streamhost-openia, which does not "
                          f"register it (registered by {EARLY}, streamhost-openai, {COLLIDE}) "
                          "(did you mean streamhost-openai?)"]
    wrong_name = [w for w in registry.warnings if "'opneai'" in w]
    assert wrong_name == [f"{path}, line 6: [plugins] prefer names 'opneai', which no loaded plugin registers "
                          "(did you mean openai?)"]


# ---------------------------------------------------------------- mistyped keys in the plugins' tables


def test_an_unknown_fetch_key_is_reported_with_file_line_and_close_match(installed, tmp_path, monkeypatch):
    monkeypatch.delenv("STREAMHOST_CONFIG", raising=False)
    monkeypatch.setenv("STREAMHOST_LOAD_PLUGINS", "streamhost-fetch, streamhost-test-fetcher")
    path = tmp_path / "config.toml"
    path.write_text('default_model = "openai/x"\n\n[fetch]\nalow_private = true\ntimeout_s = 5\n', encoding="utf-8")
    registry = load_plugins(load_config(path))
    assert records(registry)["streamhost-fetch"].error is None
    (warning,) = registry.warnings
    assert warning.startswith(f"{path}, line 4: unknown key fetch.alow_private (did you mean fetch.allow_private?)")
    assert "robots_timeout_s" in warning and "memo_heading" in warning  # the keys the loaded fetchers declare


def test_fetch_keys_are_not_judged_when_a_loaded_fetcher_does_not_declare_its_own(installed, monkeypatch):
    # streamhost-test-pages declares no options (declared_options is None): any key may be its.
    monkeypatch.setenv("STREAMHOST_LOAD_PLUGINS", "streamhost-fetch, streamhost-test-pages")
    registry = load_plugins(Config(fetch={"pages_speed": 3}))
    assert set(registry.fetchers) == {"http", "pages"} and registry.warnings == []


def test_a_mistyped_provider_key_gets_file_line_and_close_match(installed, tmp_path, monkeypatch):
    monkeypatch.delenv("STREAMHOST_CONFIG", raising=False)
    monkeypatch.setenv("STREAMHOST_LOAD_PLUGINS", "streamhost-openai")
    path = tmp_path / "config.toml"
    path.write_text('[aliases]\nfast = "openai/x"\n\n[providers.openai]\napi_key_env = "K"\nbse_url = "http://h/v1"\n',
                    encoding="utf-8")
    registry = load_plugins(load_config(path))
    error = records(registry)["streamhost-openai"].error
    assert error.startswith(f"ConfigError: {path}, line 6: unknown key providers.openai.bse_url "
                            "(did you mean providers.openai.base_url?); known: api, api_key_env, base_url")
    assert "openai" not in registry.providers


# ---------------------------------------------------------------- tools, and the host's own default plugin


def test_the_built_in_tools_load_as_a_plugin_whatever_the_environment_lists(installed, monkeypatch):
    monkeypatch.setenv("STREAMHOST_LOAD_PLUGINS", "")
    registry = load_plugins(Config())
    builtin = records(registry)["streamhost"]
    assert builtin.skipped is None and builtin.error is None and builtin.hooks == ["register_tools"]
    assert builtin.tools == list(registry.tools) == ["generate", "list_models", "fetch_url", "summarize_urls", "wait"]
    assert builtin.registrations()[:2] == ["tool generate", "tool list_models"]
    assert all(record.skipped for record in registry.plugins if record is not builtin)


def test_a_tool_named_like_a_built_in_one_loses_to_it_unless_preferred(installed, tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMHOST_LOAD_PLUGINS", "streamhost-test-tools")
    monkeypatch.setenv("STREAMHOST_TEST_TOOLS_COLLIDE", "1")  # it also registers a tool named generate
    registry = load_plugins(Config())
    assert records(registry)["streamhost-test-tools"].tools == ["spell"]
    assert type(registry.tools["generate"]).__module__ == "streamhost.builtin_tools.models"
    (collision,) = registry.collisions
    assert (collision.kind, collision.name, collision.serves, collision.refused) == (
        "tool", "generate", "streamhost", ["streamhost-test-tools"])
    assert registry.warnings == [collision.describe()]
    monkeypatch.delenv("STREAMHOST_CONFIG", raising=False)
    path = tmp_path / "config.toml"
    path.write_text('[plugins]\nprefer = { generate = "streamhost-test-tools" }\n', encoding="utf-8")
    preferred = load_plugins(load_config(path))
    assert type(preferred.tools["generate"]).__name__ == "Impostor" and preferred.warnings == []
    assert records(preferred)["streamhost"].notes == [
        "tool 'generate' not registered: streamhost-test-tools serves it (chosen by [plugins] prefer)"]


def test_a_tool_that_cannot_be_called_is_the_plugins_load_error(installed):
    from streamhost import Tool, hookimpl

    class Spaced(Tool):
        name = "two words"

    class Listless(Tool):
        name = "listless"
        input_schema: ClassVar[dict] = {"type": "array"}

    class One:
        @hookimpl
        def register_tools(self, register):
            register(Spaced())

    class Two:
        @hookimpl
        def register_tools(self, register):
            register(Listless())

    registry = load_plugins(Config(), extra=[("one", One()), ("two", Two())], entry_points=[])
    assert records(registry)["one"].error == ("ValueError: tool name 'two words' is not 1 to 64 letters, digits, "
                                              "'_' or '-'")
    assert records(registry)["two"].error == ('ValueError: tool \'listless\': input_schema must be a JSON Schema with '
                                              '"type": "object"')
    assert set(registry.tools) == {"generate", "list_models", "fetch_url", "summarize_urls", "wait"}
