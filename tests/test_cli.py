"""The ``streamhost`` command, run as users run it: the venv's console script in a child process."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from streamhost.testing import Script

STREAMHOST = str(Path(sys.executable).with_name("streamhost"))
TEST_KEY = "sk-test-9f8e7d6c5b4a"  # conftest.TEST_KEY: the key the test server requires
OPENAI = "streamhost-openai"
BROKEN_IMPORT = "streamhost-test-broken-import"
BROKEN_REGISTER = "streamhost-test-broken-register"
COLLIDE = "streamhost-test-collide"
EARLY = "streamhost-a-test-openai"  # sorts before streamhost-openai and registers openai too
NOISY = "streamhost-test-noisy"
HEAVY = {"mcp", "openai", "rich", "jsonschema", "httpx2", "httpx", "httpcore", "pydantic", "anyio",
         "streamhost_openai", "sqlalchemy", "aiosqlite", "alembic", "asyncpg"}


def run(env: dict[str, str], *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``streamhost ARGS`` with exactly ``env``; stdin is ``input`` (or empty), never the test's own."""
    return subprocess.run(
        [STREAMHOST, *args], env={"COLUMNS": "400", **env}, input=input,
        stdin=subprocess.DEVNULL if input is None else None, capture_output=True, text=True, timeout=60,
    )


def changed(env: dict[str, str], *, drop: tuple[str, ...] = (), **values: str) -> dict[str, str]:
    """A copy of ``env`` without ``drop`` and with ``values``."""
    out = {k: v for k, v in env.items() if k not in drop}
    out.update(values)
    return out


def loose_json(stdout: str) -> Any:
    """The JSON document on stdout (which must be nothing else, even with a printing plugin)."""
    return json.loads(stdout)


def by_name(plugins_json: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {record["name"]: record for record in plugins_json["plugins"]}


@pytest.fixture
def env(home: Any) -> dict[str, str]:
    """The isolated user's environment: OPENAI_API_KEY and OPENAI_BASE_URL point at the test server."""
    return dict(home.env)


@pytest.fixture
def official_env(env: dict[str, str]) -> dict[str, str]:
    """As ``env`` but for api.openai.com, whose curated models are listed without a network call."""
    return changed(env, drop=("OPENAI_BASE_URL",))


@pytest.fixture
def plugins_env(env: dict[str, str], test_plugins: Path) -> dict[str, str]:
    """As ``env`` with the test plugins (broken at import/registration, colliding, noisy) installed."""
    return changed(env, PYTHONPATH=str(test_plugins))


def all_output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


# ---------------------------------------------------------------- --help


def test_help_lists_every_command(env: dict[str, str]) -> None:
    result = run(env, "--help")
    assert result.returncode == 0, result.stderr
    for command in ("serve", "plugins", "models", "chat", "config", "doctor"):
        assert command in result.stdout


def test_help_imports_nothing_heavy(env: dict[str, str]) -> None:
    code = "import sys; sys.argv=['streamhost','--help']; from streamhost.cli import main; main()"
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", code], env=env, stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "doctor" in result.stdout
    modules = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()
               if line.startswith("import time:")]
    assert "streamhost.cli" in modules  # the log really is the import log
    heavy = sorted({m for m in modules if m.split(".")[0] in HEAVY})
    assert heavy == [], f"--help imported {heavy}"


# ---------------------------------------------------------------- plugins


def test_plugins_json_lists_the_openai_plugin(env: dict[str, str]) -> None:
    result = run(env, "plugins", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["warnings"] == []
    record = by_name(data)[OPENAI]
    assert record["providers"] == ["openai"]
    assert "register_providers" in record["hooks"]
    assert record["version"]
    assert record["error"] is None and record["skipped"] is None and record["notes"] == []


def test_plugins_reports_broken_and_colliding_plugins_and_goes_on(plugins_env: dict[str, str]) -> None:
    result = run(plugins_env, "plugins", "--json")
    assert result.returncode == 0, result.stderr
    records = by_name(loose_json(result.stdout))
    assert set(records) >= {OPENAI, BROKEN_IMPORT, BROKEN_REGISTER, COLLIDE, NOISY}
    assert "broken at import" in records[BROKEN_IMPORT]["error"]
    assert "RuntimeError" in records[BROKEN_IMPORT]["error"]
    assert "broken at registration" in records[BROKEN_REGISTER]["error"]
    # A plugin that fails half-way registers nothing (its provider "half" is not admitted).
    assert records[BROKEN_REGISTER]["providers"] == []
    # The collision is a note, not an error; the first owner keeps the name.
    collide = records[COLLIDE]
    assert collide["error"] is None and collide["providers"] == []
    assert any("'openai'" in note and "not registered" in note and OPENAI in note for note in collide["notes"])
    assert records[OPENAI]["providers"] == ["openai"] and records[OPENAI]["error"] is None
    assert records[NOISY]["providers"] == ["noisy"]
    # The human table says the same and also exits 0.
    table = run(plugins_env, "plugins")
    assert table.returncode == 0, table.stderr
    assert BROKEN_IMPORT in table.stdout and "broken at import" in table.stdout


def test_plugins_json_stdout_is_pure_json_even_with_a_printing_plugin(plugins_env: dict[str, str]) -> None:
    result = run(plugins_env, "plugins", "--json")
    records = {record["name"] for record in json.loads(result.stdout)["plugins"]}
    assert "streamhost-test-noisy" in records
    assert "noisy: print at import" in result.stderr


def test_plugins_json_reports_who_serves_a_name_several_plugins_register(plugins_env: dict[str, str]) -> None:
    result = run(plugins_env, "plugins", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    collisions = {c["name"]: c for c in data["collisions"]}
    assert collisions["openai"]["serves"] == OPENAI and collisions["openai"]["refused"] == [EARLY, COLLIDE]
    assert collisions["twin"]["serves"] == EARLY and collisions["twin"]["refused"] == [COLLIDE]
    assert by_name(data)[OPENAI]["providers"] == ["openai"]
    assert [c["message"] for c in data["collisions"]] == [w for w in data["warnings"] if "registered by" in w]
    table = run(plugins_env, "plugins")
    assert "provider 'openai' is registered by streamhost-openai and" in " ".join(table.stdout.split())


def test_plugins_prefer_in_the_config_gives_a_name_to_a_third_party(home: Any, plugins_env: dict[str, str]) -> None:
    # Load order alone would give both names to EARLY, and a bundled plugin would keep openai.
    home.write_config(f'[plugins]\nprefer = {{ openai = "{EARLY}", twin = "{COLLIDE}" }}\n')
    result = run(plugins_env, "plugins", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert by_name(data)[EARLY]["providers"] == ["openai"]
    assert by_name(data)[COLLIDE]["providers"] == ["twin"]
    assert by_name(data)[OPENAI]["providers"] == []
    assert not any("registered by" in w for w in data["warnings"])  # chosen, so not a warning
    models = run(plugins_env, "models", "--json")
    assert "openai/early-model" in [m["id"] for m in json.loads(models.stdout)["models"]]


def test_plugins_still_lists_the_plugins_when_the_config_is_broken(home: Any, env: dict[str, str]) -> None:
    home.write_config('[streaming]\ncoalesce_ms = "fast"\n')
    result = run(env, "plugins", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert by_name(data)[OPENAI]["providers"] == ["openai"]
    assert str(home.config) in data["config"]["error"] and "line 2" in data["config"]["error"]
    table = run(env, "plugins")
    assert table.returncode == 0, table.stderr
    assert OPENAI in table.stdout and "config file broken" in table.stdout and "streaming.coalesce_ms" in table.stdout


def test_disable_plugins_env_skips_openai(env: dict[str, str]) -> None:
    # Names compare as packaging does: case and -/_ do not matter.
    result = run(changed(env, STREAMHOST_DISABLE_PLUGINS="Streamhost_OpenAI"), "plugins", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    record = by_name(data)[OPENAI]
    assert record["skipped"] and record["providers"] == [] and record["error"] is None
    assert not any("openai" in r["providers"] for r in data["plugins"])


def test_load_plugins_empty_loads_none(plugins_env: dict[str, str]) -> None:
    result = run(changed(plugins_env, STREAMHOST_LOAD_PLUGINS=""), "plugins", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)  # nothing imported, so not even the noisy plugin could print
    assert {r["name"] for r in data["plugins"]} >= {OPENAI, BROKEN_IMPORT, NOISY}
    # Only installed plugins are chosen by the variable: the host's own built-in tools always load.
    builtin = by_name(data).pop("streamhost")
    assert builtin["skipped"] is None and "generate" in builtin["tools"]
    for record in data["plugins"]:
        if record is not builtin:
            assert record["skipped"] and "STREAMHOST_LOAD_PLUGINS" in record["skipped"]
            assert record["providers"] == [] and record["error"] is None


def test_load_plugins_names_what_to_load_and_warns_of_unknown_names(env: dict[str, str]) -> None:
    result = run(changed(env, STREAMHOST_LOAD_PLUGINS="streamhost-openai, streamhost-nope"), "plugins", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert by_name(data)[OPENAI]["providers"] == ["openai"]
    assert any("streamhost-nope" in warning for warning in data["warnings"])


def test_config_plugins_disable(home: Any, env: dict[str, str]) -> None:
    home.write_config('[plugins]\ndisable = ["streamhost-openai"]\n')
    result = run(env, "plugins", "--json")
    assert result.returncode == 0, result.stderr
    record = by_name(json.loads(result.stdout))[OPENAI]
    assert record["skipped"] and record["providers"] == []


def test_strict_plugins_stops_on_a_broken_plugin(env: dict[str, str], plugins_env: dict[str, str]) -> None:
    ok = run(changed(env, STREAMHOST_STRICT_PLUGINS="1"), "plugins", "--json")
    assert ok.returncode == 0, ok.stderr
    result = run(changed(plugins_env, STREAMHOST_STRICT_PLUGINS="1"), "plugins", "--json")
    assert result.returncode != 0
    assert BROKEN_IMPORT in result.stderr
    assert "STREAMHOST_STRICT_PLUGINS" in result.stderr
    assert "Traceback" not in result.stderr


# ---------------------------------------------------------------- models


def test_models_lists_openai_models_without_showing_the_key(official_env: dict[str, str]) -> None:
    result = run(official_env, "models", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    ids = [m["id"] for m in data["models"]]
    assert "openai/gpt-4.1-mini" in ids and "openai/o3" in ids
    assert data["default"] == "openai/gpt-4.1-mini" and ids[0] == "openai/gpt-4.1-mini"
    for model in data["models"]:
        assert model["provider"] == "openai"
        assert model["key_configured"] is True
        assert model["key_variable"] == "OPENAI_API_KEY"
    assert TEST_KEY not in all_output(result)
    table = run(official_env, "models")
    assert table.returncode == 0 and "openai/gpt-4.1-mini" in table.stdout
    assert TEST_KEY not in all_output(table)


def test_models_default_aliases_and_streaming_from_config(home: Any, official_env: dict[str, str]) -> None:
    home.write_config(
        'default_model = "openai/gpt-4.1"\n'
        "[aliases]\n"
        'fast = "openai/gpt-4.1-nano"\n'
        'quick = "openai/gpt-4.1-nano"\n'
        '[models."openai/o3-pro"]\n'
        "streaming = false\n"
    )
    result = run(official_env, "models", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    models = {m["id"]: m for m in data["models"]}
    assert data["default"] == "openai/gpt-4.1"
    assert data["models"][0]["id"] == "openai/gpt-4.1" and data["models"][0]["default"] is True
    assert [m["id"] for m in data["models"] if m["default"]] == ["openai/gpt-4.1"]
    assert data["models"][1]["id"] == "openai/gpt-4.1-nano"  # models with aliases come next
    assert sorted(models["openai/gpt-4.1-nano"]["aliases"]) == ["fast", "quick"]
    assert models["openai/o3-pro"]["streaming"] is False
    assert models["openai/o3"]["streaming"] is True


def test_models_with_the_key_unset(official_env: dict[str, str]) -> None:
    result = run(changed(official_env, drop=("OPENAI_API_KEY",)), "models", "--json")
    assert result.returncode == 0, result.stderr
    models = json.loads(result.stdout)["models"]
    assert models
    for model in models:
        assert model["key_configured"] is False
        assert model["key_variable"] == "OPENAI_API_KEY"


def test_models_with_a_configured_key_variable(home: Any, official_env: dict[str, str]) -> None:
    home.write_config('[providers.openai]\napi_key_env = "MY_OPENAI_KEY"\n')
    env = changed(official_env, drop=("OPENAI_API_KEY",), MY_OPENAI_KEY="sk-mine-5551234")
    result = run(env, "models", "--json")
    assert result.returncode == 0, result.stderr
    for model in json.loads(result.stdout)["models"]:
        assert model["key_configured"] is True
        assert model["key_variable"] == "MY_OPENAI_KEY"
    assert "sk-mine-5551234" not in all_output(result)


def test_models_refresh_lists_and_caches_the_endpoints_models(llm: Any, home: Any, env: dict[str, str]) -> None:
    llm.set_models(["alpha-1", "beta-2"])
    before = run(env, "models", "--json")
    assert before.returncode == 0, before.stderr
    assert "openai/alpha-1" not in [m["id"] for m in json.loads(before.stdout)["models"]]

    refreshed = run(env, "models", "--refresh", "--json")
    assert refreshed.returncode == 0, refreshed.stderr
    ids = [m["id"] for m in json.loads(refreshed.stdout)["models"]]
    assert "openai/alpha-1" in ids and "openai/beta-2" in ids
    assert TEST_KEY not in all_output(refreshed)
    listed = [r for r in llm.requests if r.method == "GET" and r.path.endswith("/models")]
    assert listed and all(r.authorized for r in listed)

    assert list((home.root / "cache").rglob("*.json")), "the refresh should be cached under XDG_CACHE_HOME"
    after = run(env, "models", "--json")  # no refresh: read from the cache
    ids = [m["id"] for m in json.loads(after.stdout)["models"]]
    assert "openai/alpha-1" in ids and "openai/beta-2" in ids
    assert len([r for r in llm.requests if r.method == "GET"]) == len(listed)


# ---------------------------------------------------------------- chat


def user_messages(llm: Any) -> list[str]:
    return [m["content"] for r in llm.requests if r.body and "messages" in r.body
            for m in r.body["messages"] if m["role"] == "user"]


def test_chat_prints_exactly_the_streamed_text(llm: Any, env: dict[str, str]) -> None:
    tokens = ["Hello", ", ", "wor", "ld", "!\n", "Second ", "line."]
    text = "".join(tokens)
    llm.script("scripted-chat", Script(tokens=tokens, usage=(7, 4)))
    result = run(env, "chat", "-m", "openai/scripted-chat", "Say", "hello")
    assert result.returncode == 0, result.stderr
    assert result.stdout in (text, text + "\n")
    assert "openai/scripted-chat" in result.stderr
    assert "first token" in result.stderr
    assert "tokens in 7 out 4" in result.stderr
    assert TEST_KEY not in all_output(result)
    [request] = [r for r in llm.requests if r.api == "chat"]  # the warm-up also lists the endpoint's models
    assert request.authorized and request.stream and request.model == "scripted-chat"
    assert request.body["messages"] == [{"role": "user", "content": "Say hello"}]


def test_chat_passes_system_temperature_and_max_tokens(llm: Any, env: dict[str, str]) -> None:
    llm.script("scripted-opts", Script(tokens=["ok"]))
    result = run(env, "chat", "-m", "openai/scripted-opts", "-s", "Be brief.", "-t", "0.5", "--max-tokens", "12",
                 "hi")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
    body = llm.requests[-1].body
    assert body["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    assert body["temperature"] == 0.5
    assert body["max_tokens"] == 12


def test_chat_reads_the_prompt_from_stdin(llm: Any, env: dict[str, str]) -> None:
    llm.script("scripted-stdin", Script(tokens=["from ", "stdin"]))
    piped = "a question\nover two lines"
    result = run(env, "chat", "-m", "openai/scripted-stdin", input=piped)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "from stdin"
    dash = run(env, "chat", "-m", "openai/scripted-stdin", "-", input=piped)
    assert dash.returncode == 0, dash.stderr
    both = run(env, "chat", "-m", "openai/scripted-stdin", "Summarize:", input="the body")
    assert both.returncode == 0, both.stderr
    assert user_messages(llm) == [piped, piped, "Summarize:\n\nthe body"]


def test_chat_unknown_model_lists_close_matches(llm: Any, home: Any, env: dict[str, str]) -> None:
    home.write_config('[aliases]\nfast = "openai/gpt-4.1-mini"\n')
    typo = run(env, "chat", "-m", "fats", "hi")
    assert typo.returncode != 0
    assert "fats" in typo.stderr and "close matches: fast" in typo.stderr
    assert "Traceback" not in typo.stderr
    # A mistyped prefix is matched against the provider names, even when the endpoint lists no models
    # (this test server's base URL: nothing is listed without --refresh) and the name is long.
    prefix = run(env, "chat", "-m", "opena/some-long-model-name-v2", "hi")
    assert prefix.returncode != 0
    assert "'opena'" in prefix.stderr and "close matches: openai/some-long-model-name-v2" in prefix.stderr
    assert typo.stdout == prefix.stdout == ""
    assert llm.requests == []


def test_chat_errors_name_the_command_that_lists_models(llm: Any, env: dict[str, str]) -> None:
    unknown = run(env, "chat", "-m", "nope/x", "hi")
    assert unknown.returncode != 0
    assert "`streamhost models`" in unknown.stderr
    none = run(env, "chat", "hi")  # this endpoint lists no model, and the config names no default
    assert none.returncode != 0
    assert "no model given" in none.stderr and "`streamhost models`" in none.stderr
    # Asking the endpoint which models it serves (to find a default) is all that reached it: no call.
    assert [r.api for r in llm.requests] == ["models"]


def test_chat_prints_config_warnings_on_stderr(llm: Any, home: Any, env: dict[str, str]) -> None:
    home.write_config('default_modle = "openai/gpt-4.1-mini"\n')
    result = run(env, "chat", "-m", "openai/any", "hi")
    assert result.returncode == 0, result.stderr
    assert "line 1: unknown key default_modle (did you mean default_model?)" in " ".join(result.stderr.split())
    assert "default_modle" not in result.stdout


def test_the_readme_chat_example_works_on_a_fresh_install(llm: Any, env: dict[str, str]) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    models = re.findall(r"streamhost chat -m ([^\s`]+)", readme)
    examples = [m for m in models if m != "MODEL"]
    assert examples, "the README shows no chat example"
    for model in examples:  # the config is empty, as after a fresh install
        result = run(env, "chat", "-m", model, input="Why is the sky blue?")
        assert result.returncode == 0, (model, result.stderr)


def test_chat_missing_key_names_the_variable(llm: Any, env: dict[str, str]) -> None:
    llm.script("scripted-nokey", Script(tokens=["never"]))
    result = run(changed(env, drop=("OPENAI_API_KEY",)), "chat", "-m", "openai/scripted-nokey", "hi")
    assert result.returncode != 0
    assert "OPENAI_API_KEY" in result.stderr
    assert result.stdout == ""
    assert llm.requests == []


def test_chat_refused_key_is_an_error_that_does_not_echo_the_key(llm: Any, env: dict[str, str]) -> None:
    llm.script("scripted-badkey", Script(tokens=["never"]))
    result = run(changed(env, OPENAI_API_KEY="sk-wrong-000111"), "chat", "-m", "openai/scripted-badkey", "hi")
    assert result.returncode != 0
    assert "OPENAI_API_KEY" in result.stderr
    assert "sk-wrong-000111" not in all_output(result)
    assert [r.authorized for r in llm.requests if r.api == "chat"] == [False]


# ---------------------------------------------------------------- config


def test_config_path(home: Any, env: dict[str, str]) -> None:
    result = run(env, "config", "path")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(home.config)
    default = run(changed(env, drop=("STREAMHOST_CONFIG",)), "config", "path")
    assert default.returncode == 0, default.stderr
    assert default.stdout.strip() == str(Path(env["XDG_CONFIG_HOME"]) / "streamhost" / "config.toml")


def test_config_show_masks_secrets(home: Any, env: dict[str, str]) -> None:
    home.write_config(
        'default_model = "openai/gpt-4.1-mini"\n'
        "colour = 1\n"
        "[providers.openai]\n"
        'api_key = "sk-secret-123"\n'
        'api_key_env = "OPENAI_API_KEY"\n'
        "[providers.other]\n"
        'token = "tok-secret-456"\n'
    )
    result = run(env, "config", "show")
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["default_model"] == "openai/gpt-4.1-mini"
    assert shown["providers"]["openai"]["api_key_env"] == "OPENAI_API_KEY"
    assert shown["providers"]["openai"]["api_key"] not in ("", "sk-secret-123")
    for secret in ("sk-secret-123", "tok-secret-456", TEST_KEY):
        assert secret not in all_output(result)
    assert str(home.config) in result.stderr
    assert "colour" in result.stderr  # the unknown key is warned about


def test_config_show_broken_file_names_it(home: Any, env: dict[str, str]) -> None:
    home.write_config('[streaming]\ncoalesce_ms = "fast"\n')
    result = run(env, "config", "show")
    assert result.returncode != 0
    assert str(home.config) in result.stderr and "line 2" in result.stderr
    assert "streaming.coalesce_ms" in result.stderr


# ---------------------------------------------------------------- doctor


def test_doctor_all_good(env: dict[str, str]) -> None:
    result = run(env, "doctor")
    assert result.returncode == 0, result.stdout + result.stderr
    assert OPENAI in result.stdout
    assert "OPENAI_API_KEY" in result.stdout and "not set" not in result.stdout
    assert TEST_KEY not in all_output(result)


def test_doctor_reports_broken_plugins(plugins_env: dict[str, str]) -> None:
    result = run(plugins_env, "doctor")
    assert result.returncode != 0
    assert BROKEN_IMPORT in result.stdout and BROKEN_REGISTER in result.stdout
    assert TEST_KEY not in all_output(result)


def test_doctor_counts_config_warnings_and_collisions_as_problems(home: Any, env: dict[str, str],
                                                                 plugins_env: dict[str, str]) -> None:
    home.write_config('default_modle = "openai/gpt-4.1-mini"\n')
    typo = run(env, "doctor")
    assert typo.returncode == 1
    assert "did you mean default_model?" in typo.stdout and "1 problem(s)" in typo.stdout
    assert "all good" not in typo.stdout
    home.write_config("")
    collided = run(changed(plugins_env, STREAMHOST_DISABLE_PLUGINS="streamhost-test-broken-import,"
                                                              "streamhost-test-broken-register"), "doctor")
    assert collided.returncode == 1
    assert "provider 'openai' is registered by" in " ".join(collided.stdout.split())


def test_serve_warns_of_collisions_and_config_typos_on_stderr(home: Any, plugins_env: dict[str, str]) -> None:
    home.write_config("[fetch]\ntimeout = 5\n")
    result = run(changed(plugins_env, STREAMHOST_DISABLE_PLUGINS="streamhost-test-pages"), "serve")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    err = " ".join(result.stderr.split())
    assert "provider 'openai' is registered by streamhost-openai and" in err
    assert "line 2: unknown key fetch.timeout (did you mean fetch.timeout_s?)" in err


def test_doctor_reports_the_key_unset(env: dict[str, str]) -> None:
    result = run(changed(env, drop=("OPENAI_API_KEY",)), "doctor")
    assert result.returncode != 0
    assert "OPENAI_API_KEY" in result.stdout and "not set" in result.stdout


def test_doctor_reports_a_broken_config_file(home: Any, env: dict[str, str]) -> None:
    home.write_config("[streaming]\nenabled = true\ncoalesce_ms = [\n")
    result = run(env, "doctor")
    assert result.returncode != 0
    assert str(home.config) in result.stdout
    assert "Traceback" not in all_output(result)


def test_ctrl_c_cancels_chat_and_closes_the_upstream(llm: Any, env: dict[str, str]) -> None:
    import os
    import signal

    llm.script("stalls", Script(tokens=["first ", "second "], stall_after=2))
    # Ctrl-C reaches a command run in the foreground; a suite started as a background job (CI may be) hands
    # its children SIGINT ignored, which the command rightly keeps: give the child the terminal's default.
    proc = subprocess.Popen([STREAMHOST, "chat", "-m", "openai/stalls", "hi"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        first = os.read(proc.stdout.fileno(), 100)  # blocks until the first text is printed
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert first.startswith(b"first ")
    assert proc.returncode == 130 and b"cancelled" in stderr
    assert b"Traceback" not in stderr
    assert llm.wait_for(lambda records: any(r.model == "stalls" and r.disconnected for r in records), 30)
