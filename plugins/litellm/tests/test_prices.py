"""Prices and context windows from litellm's own cost map, as installed: read once litellm is imported, never
importing it, never asking the network, and no OpenAI price for a server of your own."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from streamhost import Pricing
from streamhost_litellm import LiteLLMProvider, sdk
from streamhost_litellm.prices import context_window_for, entry_for, price_for


@pytest.fixture(scope="module")
def litellm() -> Any:
    """litellm, imported the way a call imports it (bundled cost map, no network)."""
    return sdk.load()


def provider(**options: Any) -> LiteLLMProvider:
    made = LiteLLMProvider()
    made.configure(options)
    return made


def test_prices_are_the_maps_per_token_costs_per_million(litellm: Any) -> None:
    entry = litellm.model_cost["claude-sonnet-4-5"]
    assert price_for("anthropic/claude-sonnet-4-5") == Pricing(input=entry["input_cost_per_token"] * 1e6,
                                                               output=entry["output_cost_per_token"] * 1e6)
    # Rounded: 4e-07 per token is 0.40 per million, not 0.39999999999999997.
    assert price_for("openai/gpt-4.1-mini") == Pricing(input=0.40, output=1.60)
    assert price_for("gpt-4.1-mini") == Pricing(input=0.40, output=1.60)  # a bare name litellm routes itself


def test_a_model_keyed_with_its_prefix_is_found_by_its_full_name(litellm: Any) -> None:
    entry = litellm.model_cost["gemini/gemini-2.5-flash"]
    assert price_for("gemini/gemini-2.5-flash") == Pricing(input=round(entry["input_cost_per_token"] * 1e6, 9),
                                                           output=round(entry["output_cost_per_token"] * 1e6, 9))
    assert context_window_for("gemini/gemini-2.5-flash") == entry["max_input_tokens"]


def test_a_bare_entry_of_another_provider_is_not_borrowed(litellm: Any) -> None:
    # "claude-sonnet-4-5" is Anthropic's entry: Bedrock or an unknown route with that tail is not priced by it.
    assert entry_for("madeup/claude-sonnet-4-5", litellm.model_cost) is None
    assert price_for("madeup/claude-sonnet-4-5") is None


def test_unknown_models_are_not_priced(litellm: Any) -> None:
    for name in ("anthropic/claude-that-does-not-exist", "ollama/llama3.2", "openai/my-finetune", "nothing"):
        assert price_for(name) is None, name
        assert context_window_for(name) is None, name


def test_context_window_is_max_input_tokens(litellm: Any) -> None:
    assert context_window_for("anthropic/claude-sonnet-4-5") == litellm.model_cost["claude-sonnet-4-5"][
        "max_input_tokens"]
    assert context_window_for("openai/gpt-4.1") == 1_047_576


def test_the_provider_prices_through_the_map(litellm: Any) -> None:
    plain = provider()
    assert plain.pricing("openai/gpt-4o-mini") == Pricing(input=0.15, output=0.60)
    assert plain.context_window("openai/gpt-4o-mini") == 128_000


def test_an_openai_route_to_your_own_server_gets_no_openai_price(litellm: Any) -> None:
    everywhere = provider(api_base="http://127.0.0.1:8000/v1")
    assert everywhere.pricing("openai/gpt-4o-mini") is None
    assert everywhere.context_window("openai/gpt-4o-mini") is None
    # Another sub-provider through an api_base (a LiteLLM proxy in front of Anthropic) is still that provider's.
    assert everywhere.pricing("anthropic/claude-sonnet-4-5") == price_for("anthropic/claude-sonnet-4-5")
    one_model = provider(params={"openai/gpt-4o": {"api_base": "http://127.0.0.1:8000/v1"}})
    assert one_model.pricing("openai/gpt-4o") is None
    assert one_model.pricing("openai/gpt-4o-mini") == Pricing(input=0.15, output=0.60)


PROBE = """
import json, socket, sys
attempts = []
def refuse(*args, **kwargs):
    attempts.append(repr(args[:1]))
    raise OSError("no network in this test")
socket.getaddrinfo = refuse
socket.socket.connect = refuse
from streamhost_litellm import LiteLLMProvider, sdk
provider = LiteLLMProvider()
provider.configure({})
before = [provider.pricing("anthropic/claude-sonnet-4-5"), provider.context_window("anthropic/claude-sonnet-4-5")]
imported_by_pricing = "litellm" in sys.modules
sdk.load()  # what the first call does
price = provider.pricing("anthropic/claude-sonnet-4-5")
window = provider.context_window("anthropic/claude-sonnet-4-5")
print(json.dumps({"before": before, "imported_by_pricing": imported_by_pricing, "attempts": attempts,
                  "after": [price.input, price.output], "window": window,
                  "ollama": provider.pricing("ollama/llama3.2")}))
"""


def test_pricing_never_imports_litellm_nor_asks_the_network(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["before"] == [None, None]  # not known before a call imported litellm: the host's defaults apply
    assert seen["imported_by_pricing"] is False
    assert seen["after"][0] > 0 and seen["after"][1] > seen["after"][0]
    assert seen["window"] >= 100_000
    assert seen["ollama"] is None  # litellm.get_model_info would have asked an Ollama server over HTTP
    assert seen["attempts"] == []
