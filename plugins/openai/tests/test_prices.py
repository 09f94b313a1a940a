"""OpenAI's price table: lookups, dated snapshots, context windows, and no OpenAI price on another endpoint."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from streamhost import Pricing
from streamhost.host.config import load_config
from streamhost.host.pricing import DEFAULT_CONTEXT_WINDOW, context_window_of, price_of
from streamhost_openai import OpenAIProvider
from streamhost_openai.prices import CONTEXT_WINDOWS, PRICES, SNAPSHOT_PRICES, base_name, context_window_for, price_for


def official() -> OpenAIProvider:
    provider = OpenAIProvider()
    provider.configure({})
    return provider


def test_common_models_are_priced_per_million_tokens() -> None:
    assert price_for("gpt-4.1-mini") == Pricing(input=0.40, output=1.60)
    assert price_for("gpt-4.1") == Pricing(input=2.00, output=8.00)
    assert price_for("o3-pro") == Pricing(input=20.00, output=80.00)
    assert price_for("gpt-4.1-mini").cost(1_000_000, 1_000_000) == pytest.approx(2.00)  # type: ignore[union-attr]


def test_a_dated_snapshot_costs_what_its_model_costs() -> None:
    assert base_name("gpt-4.1-mini-2025-04-14") == "gpt-4.1-mini"
    assert price_for("gpt-4.1-mini-2025-04-14") == PRICES["gpt-4.1-mini"]
    assert price_for("o3-2025-04-16") == PRICES["o3"]
    assert price_for("gpt-4o-2024-08-06") == PRICES["gpt-4o"]
    assert context_window_for("gpt-5-mini-2025-08-07") == CONTEXT_WINDOWS["gpt-5-mini"] == 272_000


def test_a_snapshot_with_its_own_price_keeps_it() -> None:
    assert price_for("gpt-4o-2024-05-13") == Pricing(input=5.00, output=15.00) != PRICES["gpt-4o"]


def test_only_a_trailing_date_is_stripped() -> None:
    # Variants of a priced model are other models, with prices of their own: not guessed.
    for name in ("gpt-4o-audio-preview-2024-12-17", "gpt-4o-mini-realtime-preview", "gpt-4.1-mini-fast",
                 "chatgpt-4o-latest", "gpt-4.1-mini-2025-04", "my-gpt-4.1-mini", "llama3.2", ""):
        assert price_for(name) is None, name
        assert context_window_for(name) is None, name


def test_every_priced_model_has_a_context_window() -> None:
    assert set(PRICES) == set(CONTEXT_WINDOWS)
    assert all(base_name(name) in PRICES for name in SNAPSHOT_PRICES)


def test_the_table_agrees_with_the_cost_map_litellm_ships() -> None:
    """A second source for every row: the map bundled with litellm, read as a file (litellm not imported)."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("litellm is not installed")
    bundled = Path(next(iter(spec.submodule_search_locations))) / "model_prices_and_context_window_backup.json"
    if not bundled.exists():
        pytest.skip("this litellm ships no bundled cost map")
    costs = json.loads(bundled.read_text(encoding="utf-8"))
    for name, price in {**PRICES, **SNAPSHOT_PRICES}.items():
        entry = costs[name]
        assert entry["input_cost_per_token"] * 1e6 == pytest.approx(price.input), name
        assert entry["output_cost_per_token"] * 1e6 == pytest.approx(price.output), name
    for name, window in CONTEXT_WINDOWS.items():
        assert costs[name]["max_input_tokens"] == window, name


def test_the_provider_prices_models_on_openais_endpoint() -> None:
    provider = official()
    assert provider.pricing("gpt-4.1-mini-2025-04-14") == PRICES["gpt-4.1-mini"]
    assert provider.context_window("gpt-4.1") == 1_047_576
    assert provider.pricing("some-new-model") is None


def test_a_trailing_slash_is_still_openais_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "https://api.openai.com/v1/")
    assert official().pricing("gpt-4o-mini") == PRICES["gpt-4o-mini"]


@pytest.mark.parametrize("where", ["config", "environment"])
def test_another_endpoint_gets_no_openai_price(where: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A compatible server (vLLM, Ollama, a proxy) may serve a model under an OpenAI name; it is not OpenAI's."""
    provider = OpenAIProvider()
    if where == "config":
        provider.configure({"base_url": "http://127.0.0.1:8000/v1"})
    else:
        monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1")
        provider.configure({})
    assert provider.pricing("gpt-4.1-mini") is None
    assert provider.context_window("gpt-4.1-mini") is None


def test_the_host_uses_the_table_and_the_config_prices_a_compatible_server(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STREAMHOST_CONFIG", raising=False)
    path = tmp_path / "config.toml"
    path.write_text('[models."openai/qwen2.5"]\nprice_in = 0.2\nprice_out = 0.6\ncontext_window = 32768\n',
                    encoding="utf-8")
    config = load_config(path)
    assert price_of(config, official(), "openai/o4-mini", "o4-mini") == Pricing(input=1.10, output=4.40)
    assert context_window_of(config, official(), "openai/o4-mini", "o4-mini") == 200_000
    local = OpenAIProvider()
    local.configure({"base_url": "http://127.0.0.1:8000/v1"})
    assert price_of(config, local, "openai/qwen2.5", "qwen2.5") == Pricing(input=0.2, output=0.6)
    assert context_window_of(config, local, "openai/qwen2.5", "qwen2.5") == 32_768
    assert price_of(config, local, "openai/gpt-4o", "gpt-4o") is None
    assert context_window_of(config, local, "openai/gpt-4o", "gpt-4o") == DEFAULT_CONTEXT_WINDOW
