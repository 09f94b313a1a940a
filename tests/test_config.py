"""The TOML config file, read in-process: defaults, values, clear errors, warnings and masking."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from streamhost import ConfigError
from streamhost.host.config import Config, StreamingSettings, config_path, load_config, masked

# The example of CONTRACT.md, written out in full.
CONTRACT_EXAMPLE = """\
default_model = "openai/gpt-4.1-mini"

[aliases]
fast = "openai/gpt-4.1-mini"
deep = "openai/o3-pro"

[streaming]
enabled = true          # global toggle; off = buffer and return at the end (heartbeats still sent)
coalesce_ms = 75        # smart buffering window for progress notifications
chunk_delay_ms = 5      # optional throttling between notifications
heartbeat_s = 2.5       # status notification while waiting for the first token
message = "delta"

[models."openai/o3-pro"]
streaming = false       # per-model override
api = "responses"

[models."openai/gpt-4.1"]
streaming = true

[providers.openai]
base_url = "https://example.invalid/v1"
api_key_env = "MY_OPENAI_KEY"

[providers.litellm]
api_base = "http://localhost:4000"
api_key_env = "LITELLM_KEY"

[fetch]
allow_private = false
allow_hosts = ["127.0.0.1"]
max_bytes = 5_000_000
timeout_s = 30

[plugins]
disable = ["streamhost-litellm", "streamhost-fetch"]
"""


@pytest.fixture
def no_config_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STREAMHOST_CONFIG", raising=False)


@pytest.fixture
def write(tmp_path: Path, no_config_env: None):
    """Write a config file and return its path (STREAMHOST_CONFIG unset: the path is passed explicitly)."""

    def write(text: str, name: str = "config.toml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


# ---------------------------------------------------------------- where the file is, and a missing file


def test_missing_file_gives_defaults(tmp_path: Path, no_config_env: None) -> None:
    path = tmp_path / "absent.toml"
    config = load_config(path)
    assert config.path == path
    assert config.default_model is None
    assert config.aliases == {}
    assert config.streaming == StreamingSettings()
    assert config.streaming == StreamingSettings(enabled=True, coalesce_ms=50, chunk_delay_ms=0, heartbeat_s=10,
                                                 message="tail")
    assert config.providers == {} and config.models == {} and config.fetch == {}
    assert config.plugins_disable == []
    assert config.warnings == []
    assert config.streaming_for("openai/anything") is True


def test_default_location_follows_xdg_and_missing_is_fine(
    tmp_path: Path, no_config_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    expected = tmp_path / "xdg" / "streamhost" / "config.toml"
    assert config_path() == expected
    config = load_config()
    assert config.path == expected
    assert config.streaming == StreamingSettings()


def test_streamhost_config_naming_a_missing_file_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nowhere" / "streamhost.toml"
    monkeypatch.setenv("STREAMHOST_CONFIG", str(missing))
    assert config_path() == missing
    with pytest.raises(ConfigError) as info:
        load_config()
    assert str(missing) in info.value.message
    assert "STREAMHOST_CONFIG" in info.value.message


def test_empty_file_gives_defaults(write) -> None:
    config = load_config(write(""))
    assert config.streaming == StreamingSettings()
    assert config.warnings == []


# ---------------------------------------------------------------- a full valid config


def test_contract_example_parses_into_the_right_values(write) -> None:
    path = write(CONTRACT_EXAMPLE)
    config = load_config(path)
    assert isinstance(config, Config)
    assert config.path == path
    assert config.warnings == []
    assert config.default_model == "openai/gpt-4.1-mini"
    assert config.aliases == {"fast": "openai/gpt-4.1-mini", "deep": "openai/o3-pro"}
    assert config.streaming == StreamingSettings(enabled=True, coalesce_ms=75, chunk_delay_ms=5, heartbeat_s=2.5,
                                                 message="delta")
    # Per-model override: off for o3-pro, explicitly on for gpt-4.1, the global toggle for the rest.
    assert config.streaming_for("openai/o3-pro") is False
    assert config.streaming_for("openai/gpt-4.1") is True
    assert config.streaming_for("openai/gpt-4.1-mini") is True
    # The provider gets the per-model settings the host does not use itself.
    assert config.model_options("openai/o3-pro") == {"api": "responses"}
    assert config.model_options("openai/unlisted") == {}
    assert config.providers == {
        "openai": {"base_url": "https://example.invalid/v1", "api_key_env": "MY_OPENAI_KEY"},
        "litellm": {"api_base": "http://localhost:4000", "api_key_env": "LITELLM_KEY"},
    }
    assert config.fetch == {"allow_private": False, "allow_hosts": ["127.0.0.1"], "max_bytes": 5_000_000,
                            "timeout_s": 30}
    assert config.plugins_disable == ["streamhost-litellm", "streamhost-fetch"]
    assert config.raw["aliases"]["fast"] == "openai/gpt-4.1-mini"


def test_global_streaming_off_is_overridden_per_model(write) -> None:
    config = load_config(write('[streaming]\nenabled = false\n\n[models."openai/gpt-4.1-mini"]\nstreaming = true\n'))
    assert config.streaming.enabled is False
    assert config.streaming_for("openai/gpt-4.1-mini") is True
    assert config.streaming_for("openai/o3") is False


def test_host_only_sections_limits_metrics_plugins(write) -> None:
    config = load_config(write(
        "[limits]\ndeadline_s = 120\nmax_retries = 0\nretry_max_wait_s = 5\n"
        '[metrics]\nenabled = false\npath = "~/m.jsonl"\n'
        "[plugins]\nwarmup = false\n"
    ))
    assert (config.limits.deadline_s, config.limits.max_retries, config.limits.retry_max_wait_s) == (120, 0, 5)
    assert config.metrics_enabled is False
    assert config.metrics_path == "~/m.jsonl"
    assert config.warmup is False
    assert config.warnings == []


# ---------------------------------------------------------------- broken TOML


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ('default_model = "openai/gpt-4.1-mini"\nfast = \n', 2),  # no value
        ("[aliases]\nfast = 'x'\n[streaming\ncoalesce_ms = 1\n", 3),  # unclosed table header
        ('[streaming]\nmessage = "tail\nenabled = true\n', 2),  # unterminated string
        ("[aliases]\nfast = 'a'\nfast = 'b'\n", 3),  # duplicate key
    ],
    ids=["no-value", "unclosed-header", "unterminated-string", "duplicate-key"],
)
def test_broken_toml_names_the_file_and_the_line(write, text: str, line: int) -> None:
    path = write(text, name="broken.toml")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = info.value.message
    assert str(path) in message
    assert f"line {line}" in message


# ---------------------------------------------------------------- wrong types and values


@pytest.mark.parametrize(
    ("text", "line", "key"),
    [
        ('default_model = "openai/x"\n\n[streaming]\nenabled = true\ncoalesce_ms = "fast"\n', 5,
         "streaming.coalesce_ms"),
        ("[streaming]\nheartbeat_s = -1\n", 2, "streaming.heartbeat_s"),
        ("[streaming]\nchunk_delay_ms = true\n", 2, "streaming.chunk_delay_ms"),
        # The same key name in an earlier section must not be the line reported.
        ('[metrics]\nenabled = true\n\n[streaming]\nenabled = "yes"\n', 5, "streaming.enabled"),
        ('[aliases]\nfast = "openai/x"\nslow = 3\n', 3, "aliases.slow"),
        ('[models."openai/o3-pro"]\nstreaming = "no"\n', 2, 'models."openai/o3-pro".streaming'),
        ("default_model = 5\n", 1, "default_model"),
        ('[plugins]\ndisable = "streamhost-openai"\n', 2, "plugins.disable"),
        ("[limits]\ndeadline_s = 0\n", 2, "limits.deadline_s"),
        ('\nstreaming = "on"\n', 2, "streaming"),
        ('[providers]\nopenai = "sk-whatever"\n', 2, "providers.openai"),
    ],
)
def test_wrong_type_names_file_line_and_key(write, text: str, line: int, key: str) -> None:
    path = write(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = info.value.message
    assert str(path) in message
    assert f"line {line}" in message
    assert key in message


def test_bad_message_mode_lists_the_choices(write) -> None:
    path = write('[streaming]\ncoalesce_ms = 10\nmessage = "full"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = info.value.message
    assert str(path) in message
    assert "line 3" in message
    assert "streaming.message" in message
    assert "'full'" in message
    assert "tail" in message and "delta" in message


def test_not_a_number_is_rejected(write) -> None:
    with pytest.raises(ConfigError, match=r"streaming\.heartbeat_s"):
        load_config(write("[streaming]\nheartbeat_s = nan\n"))


# ---------------------------------------------------------------- unknown keys: warnings, not errors


def test_unknown_keys_are_warnings_with_key_and_line(write) -> None:
    path = write(
        'colour = "blue"\n'  # line 1
        'default_model = "openai/gpt-4.1-mini"\n'
        "\n"
        "[streaming]\n"
        "coalesce_ms = 20\n"
        "speed = 3\n"  # line 6
        "\n"
        "[limits]\n"
        "patience = 1\n"  # line 9
        "[tools]\n"  # line 10: an unknown table
        "x = 1\n"
    )
    config = load_config(path)
    # Everything known still applies.
    assert config.default_model == "openai/gpt-4.1-mini"
    assert config.streaming.coalesce_ms == 20
    warnings = config.warnings
    assert len(warnings) == 4, warnings

    def one(key: str) -> str:
        found = [w for w in warnings if f"unknown key {key}" in w]
        assert len(found) == 1, (key, warnings)
        return found[0]

    assert "line 1" in one("colour") and str(path) in one("colour")
    assert "line 6" in one("streaming.speed")
    assert "line 9" in one("limits.patience")
    assert "line 10" in one("tools")
    # The warning helps: it lists the known keys of that table.
    assert "coalesce_ms" in one("streaming.speed") and "heartbeat_s" in one("streaming.speed")


def test_every_unknown_key_of_every_host_table_gets_line_and_close_match(write) -> None:
    path = write(
        'default_modle = "openai/x"\n'  # 1
        "[streaming]\n"
        "coalesce_sm = 20\n"  # 3
        "[limits]\n"
        "max_retry = 1\n"  # 5
        "[summarize]\n"
        "concurency = 2\n"  # 7
        "[plugins]\n"
        "disabel = []\n"  # 9
        "[metrics]\n"
        "enable = false\n"  # 11
        '[models."openai/o3"]\n'
        "streming = false\n"  # 13
        'api = "responses"\n'  # a provider's key: passed on, not a typo of the host's
    )
    warnings = load_config(path).warnings
    expected = [
        (1, "default_modle", "default_model"),
        (3, "streaming.coalesce_sm", "streaming.coalesce_ms"),
        (5, "limits.max_retry", "limits.max_retries"),
        (7, "summarize.concurency", "summarize.concurrency"),
        (9, "plugins.disabel", "plugins.disable"),
        (11, "metrics.enable", "metrics.enabled"),
        (13, 'models."openai/o3".streming', 'models."openai/o3".streaming'),
    ]
    assert len(warnings) == len(expected), warnings
    for line, key, meant in expected:
        wanted = f"{path}, line {line}: unknown key {key} (did you mean {meant}?)"
        assert any(warning.startswith(wanted) for warning in warnings), (wanted, warnings)


def test_every_wrong_value_of_a_file_is_reported_at_once_in_file_order(write) -> None:
    path = write(
        '[summarize]\nconcurrency = 0\n'  # 2
        '[streaming]\nmessage = "full"\ncoalesce_ms = "fast"\n'  # 4, 5
        '[plugins]\nprefer = { openai = 3 }\n'  # 7
        "[aliases]\nfast = 1\n"  # 9
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    lines = info.value.message.splitlines()
    assert [line.split(": ", 1)[0] for line in lines] == [f"{path}, line {n}" for n in (2, 4, 5, 7, 9)]
    for line, key in zip(lines, ("summarize.concurrency", "streaming.message", "streaming.coalesce_ms",
                                 "plugins.prefer.openai", "aliases.fast"), strict=True):
        assert f": {key} " in line, line


def test_plugins_prefer_maps_names_to_distributions(write) -> None:
    config = load_config(write('[plugins]\nprefer = { openai = "streamhost-myopenai" }\n'))
    assert config.plugins_prefer == {"openai": "streamhost-myopenai"}
    assert config.warnings == []


# ---------------------------------------------------------------- masking secrets for `config show`


def test_masked_hides_secret_values_but_not_key_variable_names() -> None:
    raw = {
        "default_model": "openai/gpt-4.1-mini",
        "providers": {
            "openai": {"api_key": "sk-secret-123", "api_key_env": "OPENAI_API_KEY", "base_url": "https://x/v1"},
            "other": {"token": "tok-1", "auth_token": "tok-2", "client_secret": "s-3", "password": "pw-4",
                      "key": "k-5", "API_KEY": "k-6", "keys_file": "/not/secret"},
        },
        "fetch": {"allow_hosts": ["127.0.0.1"]},
        "list_of_tables": [{"token": "tok-7", "name": "visible"}],
    }
    original = copy.deepcopy(raw)
    shown = masked(raw)
    assert raw == original  # a copy: the config itself is untouched
    flat = repr(shown)
    for secret in ("sk-secret-123", "tok-1", "tok-2", "s-3", "pw-4", "k-5", "k-6", "tok-7"):
        assert secret not in flat
    openai = shown["providers"]["openai"]
    assert openai["api_key"] != "sk-secret-123" and openai["api_key"]  # masked, but visibly present
    assert openai["api_key_env"] == "OPENAI_API_KEY"
    assert openai["base_url"] == "https://x/v1"
    assert shown["providers"]["other"]["keys_file"] == "/not/secret"
    assert shown["default_model"] == "openai/gpt-4.1-mini"
    assert shown["fetch"] == {"allow_hosts": ["127.0.0.1"]}
    assert shown["list_of_tables"][0]["name"] == "visible"


def test_masked_hides_header_style_and_non_string_secrets() -> None:
    raw = {"providers": {"x": {"headers": {"x-api-key": "sk-h1", "Authorization": "Bearer sk-h2"},
                               "apiKey": "sk-h3", "password": 987654}}}
    flat = repr(masked(raw))
    for secret in ("sk-h1", "sk-h2", "sk-h3", "987654"):
        assert secret not in flat


def test_masked_hides_the_credentials_in_a_url_but_not_the_rest() -> None:
    shown = masked({"fetch": {"proxy": "http://me:pw-1@proxy.example:3128"},
                    "providers": {"x": {"base_url": "https://tok-2@gw.example/v1", "plain": "https://gw.example/v1"}}})
    assert shown["fetch"]["proxy"] == "http://****@proxy.example:3128"
    assert shown["providers"]["x"] == {"base_url": "https://****@gw.example/v1", "plain": "https://gw.example/v1"}
