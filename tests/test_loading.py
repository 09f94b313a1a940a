"""Plugin loading in-process, from really pip-installed distributions."""

from __future__ import annotations

import pytest

from streamhost import FetchRequest
from streamhost.config import Config
from streamhost.errors import PluginError
from streamhost.loading import load_plugins

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
        "provider 'openai' not registered: streamhost-openai already provides it"]
    assert type(registry.providers["openai"]).__module__.startswith("streamhost_openai")
    assert found["streamhost-openai"].hooks == ["register_providers"]


async def test_register_fetchers_registers_a_fetcher_that_serves_its_scheme(installed):
    registry = load_plugins(Config(fetch={"timeout_s": 5}))
    fetcher = registry.fetcher_for("memo", "anything")
    assert records(registry)["streamhost-test-fetcher"].fetchers == ["memo"]
    assert fetcher is registry.fetchers["memo"] and fetcher.options == {"timeout_s": 5}
    assert registry.fetcher_for("gopher", "x") is None
    events = [event async for event in fetcher.fetch(FetchRequest(url="memo://note/1"))]
    assert events[-1].content == "memo body of memo://note/1"


def test_config_tables_reach_their_provider(installed):
    registry = load_plugins(Config(providers={"openai": {"base_url": "http://127.0.0.1:9/v1"}, "ghost": {}}))
    assert registry.providers["openai"].base_url == "http://127.0.0.1:9/v1"
    assert registry.warnings == ["config has [providers.ghost] but no loaded plugin registers provider 'ghost'"]


def test_a_bad_provider_table_is_that_plugins_error_not_the_hosts(installed, monkeypatch):
    monkeypatch.setenv("STREAMHOST_DISABLE_PLUGINS", "streamhost-test-collide")
    registry = load_plugins(Config(providers={"openai": {"colour": "red"}}))
    assert "providers.openai: unknown key colour" in records(registry)["streamhost-openai"].error
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
