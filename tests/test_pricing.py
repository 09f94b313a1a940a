"""Prices, context windows, token counts and costs, and the daily budget (host/pricing.py).

The providers here are ordinary Provider subclasses, written the way a third-party plugin would write them;
configs are real files read by load_config. The last tests run it all over MCP: a real ``streamhost serve``,
the loopback LLM test server, the real store, and ``streamhost usage`` reading it back.
"""

from __future__ import annotations

import json
import logging
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from streamhost import BudgetExceededError, ModelInfo, Pricing, Provider, StreamhostError
from streamhost.host import pricing as pricing_module
from streamhost.host.config import Config, load_config
from streamhost.host.pricing import (
    BUDGET_WINDOW_S,
    DEFAULT_CONTEXT_WINDOW,
    check_budget,
    context_window_of,
    estimate_tokens,
    format_usd,
    price_of,
    usage_figures,
)
from streamhost.testing import Script, streamhost_executable

pytestmark = pytest.mark.anyio


class ListedProvider(Provider):
    """Prices its models the simplest way: through the ModelInfo it lists."""

    name = "shop"

    def models(self) -> list[ModelInfo]:
        return [ModelInfo(name="big", pricing=Pricing(input=3.0, output=15.0), context_window=200_000,
                          aliases=("big-latest",)),
                ModelInfo(name="plain")]


class TableProvider(Provider):
    """Prices models it does not list, from a table of its own (the override a price table needs)."""

    name = "table"

    def pricing(self, model: str) -> Pricing | None:
        return {"cheap": Pricing(input=0.1, output=0.4)}.get(model)

    def context_window(self, model: str) -> int | None:
        return 32_768 if model == "cheap" else None


class BrokenProvider(Provider):
    """A plugin whose price lookups fail or answer nonsense."""

    name = "broken"

    def pricing(self, model: str) -> Pricing | None:
        if model == "wrong-type":
            return (1.0, 2.0)  # type: ignore[return-value]
        if model == "negative":
            return Pricing(input=-1.0, output=float("nan"))
        raise KeyError(model)

    def context_window(self, model: str) -> int | None:
        if model == "wrong-type":
            return "lots"  # type: ignore[return-value]
        raise RuntimeError("no table")


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Config]:
    monkeypatch.delenv("STREAMHOST_CONFIG", raising=False)

    def read(text: str) -> Config:
        path = tmp_path / "config.toml"
        path.write_text(text, encoding="utf-8")
        return load_config(path)

    return read


@pytest.fixture(autouse=True)
def fresh_log_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with nothing logged yet (the module logs each problem once per process)."""
    monkeypatch.setattr(pricing_module, "_logged", set())


# -- the price ------------------------------------------------------------------------------------------


def test_cost_is_per_million_tokens() -> None:
    price = Pricing(input=2.0, output=8.0)
    assert price.cost(1_000_000, 500_000) == pytest.approx(6.0)
    assert price.cost(1234, 567) == pytest.approx((1234 * 2.0 + 567 * 8.0) / 1e6)
    assert price.cost(0, 0) == 0


def test_provider_prices_through_its_model_infos(config: Callable[[str], Config]) -> None:
    cfg, shop = config(""), ListedProvider()
    assert price_of(cfg, shop, "shop/big", "big") == Pricing(input=3.0, output=15.0)
    assert price_of(cfg, shop, "shop/big-latest", "big-latest") == Pricing(input=3.0, output=15.0)
    assert price_of(cfg, shop, "shop/plain", "plain") is None  # listed without a price
    assert price_of(cfg, shop, "shop/other", "other") is None  # not listed at all


def test_config_price_wins_over_the_provider(config: Callable[[str], Config]) -> None:
    cfg = config('[models."shop/big"]\nprice_in = 1.5\nprice_out = 6\n')
    assert price_of(cfg, ListedProvider(), "shop/big", "big") == Pricing(input=1.5, output=6.0)
    # A model its provider cannot price at all is priced by the config alone.
    cfg = config('[models."table/local"]\nprice_in = 0\nprice_out = 0\n')
    assert price_of(cfg, TableProvider(), "table/local", "local") == Pricing(input=0.0, output=0.0)


def test_one_config_price_overrides_that_half_only(config: Callable[[str], Config]) -> None:
    cfg = config('[models."shop/big"]\nprice_in = 1\n')
    assert price_of(cfg, ListedProvider(), "shop/big", "big") == Pricing(input=1.0, output=15.0)
    cfg = config('[models."table/cheap"]\nprice_out = 2\n')
    assert price_of(cfg, TableProvider(), "table/cheap", "cheap") == Pricing(input=0.1, output=2.0)


def test_one_config_price_without_a_provider_price_warns_once(config: Callable[[str], Config],
                                                                caplog: pytest.LogCaptureFixture) -> None:
    cfg = config('[models."table/local"]\nprice_in = 0.5\n')
    with caplog.at_level(logging.WARNING, logger="streamhost.pricing"):
        assert price_of(cfg, TableProvider(), "table/local", "local") is None
        assert price_of(cfg, TableProvider(), "table/local", "local") is None
    warnings = [r.getMessage() for r in caplog.records if r.name == "streamhost.pricing"]
    assert len(warnings) == 1
    assert "price_out" in warnings[0] and "table/local" in warnings[0] and "config.toml" in warnings[0]


def test_a_provider_that_fails_to_price_is_unknown_and_logged_once(config: Callable[[str], Config],
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    cfg, broken = config(""), BrokenProvider()
    with caplog.at_level(logging.WARNING, logger="streamhost.pricing"):
        for _ in range(3):
            assert price_of(cfg, broken, "broken/x", "x") is None
            assert price_of(cfg, broken, "broken/wrong-type", "wrong-type") is None
            assert price_of(cfg, broken, "broken/negative", "negative") is None
    warnings = [r.getMessage() for r in caplog.records if r.name == "streamhost.pricing"]
    assert len(warnings) == 3
    assert any("KeyError" in w and "broken/x" in w for w in warnings)
    assert any("not a Pricing" in w and "broken/wrong-type" in w for w in warnings)
    # The config still prices what the provider cannot, without asking it.
    cfg = config('[models."broken/x"]\nprice_in = 1\nprice_out = 2\n')
    assert price_of(cfg, broken, "broken/x", "x") == Pricing(input=1.0, output=2.0)


# -- the context window ---------------------------------------------------------------------------------


def test_context_window_config_then_provider_then_default(config: Callable[[str], Config]) -> None:
    plain = config("")
    assert context_window_of(plain, ListedProvider(), "shop/big", "big") == 200_000
    assert context_window_of(plain, TableProvider(), "table/cheap", "cheap") == 32_768
    assert context_window_of(plain, TableProvider(), "table/other", "other") == DEFAULT_CONTEXT_WINDOW == 128_000
    set_in_config = config('[models."shop/big"]\ncontext_window = 50000\n')
    assert context_window_of(set_in_config, ListedProvider(), "shop/big", "big") == 50_000


def test_context_window_of_a_failing_provider_is_the_default(config: Callable[[str], Config],
                                                             caplog: pytest.LogCaptureFixture) -> None:
    cfg, broken = config(""), BrokenProvider()
    with caplog.at_level(logging.WARNING, logger="streamhost.pricing"):
        assert context_window_of(cfg, broken, "broken/x", "x") == DEFAULT_CONTEXT_WINDOW
        assert context_window_of(cfg, broken, "broken/wrong-type", "wrong-type") == DEFAULT_CONTEXT_WINDOW
        assert context_window_of(cfg, broken, "broken/x", "x") == DEFAULT_CONTEXT_WINDOW
    assert len([r for r in caplog.records if r.name == "streamhost.pricing"]) == 2


# -- token counts and cost ------------------------------------------------------------------------------


def test_estimate_is_characters_over_four_rounded_up() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("abcd") == 1
    assert estimate_tokens("abcde") == 2
    assert estimate_tokens("x" * 4000) == 1000


def test_reported_usage_is_used_as_is_and_priced() -> None:
    figures = usage_figures({"input_tokens": 1200, "output_tokens": 300, "total_tokens": 1500}, 99_999, "short",
                            Pricing(input=2.0, output=8.0))
    assert (figures.input_tokens, figures.output_tokens, figures.estimated) == (1200, 300, False)
    assert figures.cost_usd == pytest.approx((1200 * 2.0 + 300 * 8.0) / 1e6)
    assert figures.as_dict() == {"input_tokens": 1200, "output_tokens": 300, "estimated": False,
                                 "cost_usd": figures.cost_usd}


def test_no_reported_usage_is_estimated_and_marked() -> None:
    for reported in (None, {}):
        figures = usage_figures(reported, 4001, "y" * 403, Pricing(input=1.0, output=1.0))
        assert (figures.input_tokens, figures.output_tokens, figures.estimated) == (1001, 101, True)
        assert figures.cost_usd == pytest.approx(1102 / 1e6)


def test_a_missing_count_is_derived_from_the_total_exactly() -> None:
    figures = usage_figures({"input_tokens": 70, "total_tokens": 100}, 0, "z" * 4000, None)
    assert (figures.input_tokens, figures.output_tokens, figures.estimated) == (70, 30, False)
    figures = usage_figures({"output_tokens": 30, "total_tokens": 100}, 4000, "", None)
    assert (figures.input_tokens, figures.output_tokens, figures.estimated) == (70, 30, False)


def test_a_missing_count_without_a_total_is_estimated() -> None:
    figures = usage_figures({"input_tokens": 70}, 0, "z" * 40, None)
    assert (figures.input_tokens, figures.output_tokens, figures.estimated) == (70, 10, True)


def test_nonsense_counts_are_not_trusted() -> None:
    figures = usage_figures({"input_tokens": -5, "output_tokens": "lots", "total_tokens": True}, 8, "abcd", None)
    assert (figures.input_tokens, figures.output_tokens, figures.estimated) == (2, 1, True)


def test_no_price_means_no_cost_but_the_tokens_are_kept() -> None:
    figures = usage_figures({"input_tokens": 10, "output_tokens": 20}, 0, "", None)
    assert (figures.input_tokens, figures.output_tokens, figures.cost_usd) == (10, 20, None)


# -- the daily budget -----------------------------------------------------------------------------------


class Ledger:
    """What the store's cost_since answers, and what it was asked."""

    def __init__(self, spent: float) -> None:
        self.spent = spent
        self.asked: list[float] = []

    async def cost_since(self, since: float) -> float:
        self.asked.append(since)
        return self.spent


async def test_no_budget_asks_nothing() -> None:
    ledger = Ledger(1e9)
    await check_budget(None, ledger.cost_since)
    assert ledger.asked == []


async def test_under_budget_passes_and_asks_for_the_last_24_hours() -> None:
    ledger = Ledger(4.99)
    await check_budget(5.0, ledger.cost_since, now=1_000_000.0)
    assert ledger.asked == [1_000_000.0 - BUDGET_WINDOW_S] == [1_000_000.0 - 86_400]


async def test_budget_reached_refuses_with_a_clear_message() -> None:
    with pytest.raises(BudgetExceededError) as caught:
        await check_budget(5.0, Ledger(5.12).cost_since, where="/home/u/.config/streamhost/config.toml")
    message = caught.value.message
    assert message == ("daily budget of $5.00 reached: $5.12 spent in the last 24 hours — raise [limits] daily_usd "
                       "in /home/u/.config/streamhost/config.toml, or wait until earlier calls are more than 24 "
                       "hours old")
    assert isinstance(caught.value, StreamhostError) and not caught.value.retryable
    with pytest.raises(BudgetExceededError):  # exactly at the limit is reached too
        await check_budget(5.0, Ledger(5.0).cost_since)


async def test_a_zero_budget_refuses_every_call() -> None:
    with pytest.raises(BudgetExceededError, match=r"budget of \$0\.00 reached: \$0\.00 spent"):
        await check_budget(0, Ledger(0.0).cost_since)


def test_budget_is_read_from_the_config(config: Callable[[str], Config]) -> None:
    assert config("").limits.daily_usd is None
    assert config("[limits]\ndaily_usd = 2.5\n").limits.daily_usd == 2.5


def test_dollars_read_as_people_read_them() -> None:
    assert format_usd(5) == "$5.00"
    assert format_usd(1234.5) == "$1,234.50"
    assert format_usd(0) == "$0.00"
    assert format_usd(0.0042) == "$0.0042"
    assert format_usd(0.01) == "$0.01"


# -- over MCP, with the store ---------------------------------------------------------------------------

DEADLINE_S = 60


def _usage_by_model(home: Any) -> dict[str, dict[str, Any]]:
    done = subprocess.run([streamhost_executable(), "usage", "--by", "model", "--json"], env=home.env,
                          capture_output=True, text=True, timeout=DEADLINE_S)
    assert done.returncode == 0, done.stderr
    return {row["key"]: row for row in json.loads(done.stdout)["rows"]}


async def test_usage_and_cost_add_up(llm, home, mcp_serve) -> None:
    # The test server is a compatible endpoint (OPENAI_BASE_URL): no OpenAI list price applies, the config prices.
    home.write_config('[models."openai/priced"]\nprice_in = 2\nprice_out = 8\n')
    llm.script("priced", Script(tokens=["a ", "b"], usage=(1000, 500)))
    llm.script("unpriced", Script(tokens=["c"], usage=(10, 1)))
    async with mcp_serve(home.env) as served:
        for model in ("openai/priced", "openai/priced", "openai/unpriced"):
            result = await served.session.call_tool("generate", {"prompt": "x", "model": model})
            assert not result.is_error, result.content[0].text
    rows = _usage_by_model(home)
    priced, unpriced = rows["openai/priced"], rows["openai/unpriced"]
    assert (priced["runs"], priced["input_tokens"], priced["output_tokens"]) == (2, 2000, 1000)
    assert priced["cost_usd"] == pytest.approx(2 * (1000 * 2 + 500 * 8) / 1e6)
    assert (priced["unpriced"], priced["estimated"]) == (0, False)
    assert (unpriced["runs"], unpriced["input_tokens"], unpriced["output_tokens"]) == (1, 10, 1)
    assert (unpriced["unpriced"], unpriced["cost_usd"]) == (1, 0)


async def test_the_daily_budget_refuses_new_calls_once_spent(llm, home, mcp_serve) -> None:
    home.write_config('[limits]\ndaily_usd = 0.01\n\n[models."openai/priced"]\nprice_in = 2\nprice_out = 8\n')
    llm.script("priced", Script(tokens=["a"], usage=(1000, 2000)))  # $0.018 a call
    async with mcp_serve(home.env) as served:
        first = await served.session.call_tool("generate", {"prompt": "x", "model": "openai/priced"})
        assert not first.is_error, first.content[0].text
        second = await served.session.call_tool("generate", {"prompt": "y", "model": "openai/priced"})
    assert second.is_error
    message = second.content[0].text
    assert "daily budget of $0.01 reached: $0.02 spent in the last 24 hours" in message
    assert "[limits] daily_usd" in message and "config.toml" in message
    assert len([r for r in llm.requests if r.api == "chat"]) == 1  # the refused call never went upstream
