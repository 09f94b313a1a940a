"""OpenAI's list prices and context windows for the common models, and dated-snapshot matching.

Standard-tier prices in USD per million tokens (no Batch, Flex or Priority discount; cached input is priced as
input, so a call that hits the prompt cache is recorded at a little more than it cost). A model left out is
unpriced, not guessed: the user can price it with ``[models."openai/NAME"] price_in`` / ``price_out``.

Where each figure was checked (Nov 2026): every price and window below also matches the model cost map
litellm 1.83.0 ships (``model_prices_and_context_window_backup.json``), besides the sources named per row.
"""

from __future__ import annotations

import re

from streamhost import Pricing

PRICES: dict[str, Pricing] = {
    # helicone.ai/model/gpt-4.1 ($2.00 / $8.00); deploybase.ai/articles/gpt-4.1-pricing ("Data from OpenAI API
    # pricing (March 2026)": 4.1 $2/$8, mini $0.40/$1.60, nano $0.10/$0.40); github/docs copilot
    # models-and-pricing.yml (GPT-4.1 $2.00 / $8.00).
    "gpt-4.1": Pricing(input=2.00, output=8.00),
    # vercel.com/ai-gateway/models/gpt-4.1-mini ("Input $0.40, Output $1.60, Per 1M tokens"); deploybase (above).
    "gpt-4.1-mini": Pricing(input=0.40, output=1.60),
    "gpt-4.1-nano": Pricing(input=0.10, output=0.40),  # deploybase (above)
    # docs.rs openai-models ("From https://openai.com/api/pricing/": 2.5 / 10.00 and 0.15 / 0.6);
    # vercel.com/ai-gateway/models/gpt-4o-mini ("priced at $0.15 per million input tokens").
    "gpt-4o": Pricing(input=2.50, output=10.00),
    "gpt-4o-mini": Pricing(input=0.15, output=0.60),
    # o3 after OpenAI's June 2025 cut (it launched at $10 / $40): blog.csdn.net/2501_93608822/article/details/
    # 152910541 (o3 input 2.00, output 8.00 per million).
    "o3": Pricing(input=2.00, output=8.00),
    # openrouter.ai/openai/o3-pro ("$20/M input tokens $80/M output tokens"); simonw/llm-openai-plugin#22
    # (platform.openai.com/docs/pricing "says $20/million input, $80/million output").
    "o3-pro": Pricing(input=20.00, output=80.00),
    # vercel.com/ai-gateway/models/o4-mini ("$1.1/1M input tokens, $4.4/1M output tokens").
    "o4-mini": Pricing(input=1.10, output=4.40),
    # developers.openai.com/api/docs/models/gpt-5-codex ("Quick comparison ... GPT-5 $1.25"); docs.rs openai-cost
    # (gpt-5 1.25 / 10.0, "Source: openai.com/api/pricing"); github/docs copilot models-and-pricing.yml (GPT-5
    # mini $0.25 / $2.00); developers.openai.com/api/docs/models/gpt-5-nano ("Input $0.05 ... Output $0.40").
    "gpt-5": Pricing(input=1.25, output=10.00),
    "gpt-5-mini": Pricing(input=0.25, output=2.00),
    "gpt-5-nano": Pricing(input=0.05, output=0.40),
}
"""USD per million tokens, by model name without a snapshot date."""

SNAPSHOT_PRICES: dict[str, Pricing] = {
    # The first GPT-4o snapshot kept its launch price when the alias moved on (litellm's map: $5 / $15).
    "gpt-4o-2024-05-13": Pricing(input=5.00, output=15.00),
}
"""Dated snapshots that do not cost what their model name costs today."""

CONTEXT_WINDOWS: dict[str, int] = {
    # vercel.com/ai-gateway (gpt-4.1-mini-fast, gpt-4.1-nano-fast, gpt-4.1-fast: "Context window: 1,047,576").
    "gpt-4.1": 1_047_576,
    "gpt-4.1-mini": 1_047_576,
    "gpt-4.1-nano": 1_047_576,
    # vercel.com/ai-gateway/models/gpt-4o-mini-fast and docs.venice.ai ("128K"): 128,000.
    "gpt-4o": 128_000,
    "gpt-4o-mini": 128_000,
    # openrouter.ai/openai/o3-pro ("200,000 context"); vercel.com/ai-gateway/models/o4-mini, o3 FAQ ("200K").
    "o3": 200_000,
    "o3-pro": 200_000,
    "o4-mini": 200_000,
    # developers.openai.com/api/docs/models/gpt-5-nano and gpt-5-codex: "400,000 context window, 128,000 max
    # output tokens". What a prompt may hold is the rest, 272,000 (litellm's max_input_tokens): the host sizes
    # history by this number, so a full window must not count the room kept for the answer.
    "gpt-5": 272_000,
    "gpt-5-mini": 272_000,
    "gpt-5-nano": 272_000,
}
"""How many input tokens each model takes, by model name without a snapshot date."""

_DATED = re.compile(r"^(?P<name>.+)-\d{4}-\d{2}-\d{2}$")


def base_name(model: str) -> str:
    """The model name without a trailing snapshot date: ``gpt-4.1-mini-2025-04-14`` → ``gpt-4.1-mini``."""
    match = _DATED.match(model)
    return match.group("name") if match else model


def price_for(model: str) -> Pricing | None:
    """OpenAI's list price of a model or one of its dated snapshots; None when it is not in the table.

    Only a trailing date is stripped: ``gpt-4o-audio-preview-2024-12-17`` is not priced as ``gpt-4o``.
    """
    return SNAPSHOT_PRICES.get(model) or PRICES.get(base_name(model))


def context_window_for(model: str) -> int | None:
    """How many input tokens a model (or one of its dated snapshots) takes; None when it is not in the table."""
    return CONTEXT_WINDOWS.get(base_name(model))
