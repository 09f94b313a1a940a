"""Which environment variable holds the key of each litellm sub-provider, known without importing litellm.

``streamhost models`` and ``list_models`` run at start-up, where importing litellm (seconds) is not
allowed, so the names litellm reads are kept here (checked against litellm 1.83.0's own lookups).
"""

from __future__ import annotations

import os

KEY_VARIABLES: dict[str, tuple[str, ...]] = {
    "openai": ("OPENAI_API_KEY",),
    "text-completion-openai": ("OPENAI_API_KEY",),
    "anthropic": ("ANTHROPIC_API_KEY",),
    "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    "mistral": ("MISTRAL_API_KEY",),
    "codestral": ("CODESTRAL_API_KEY",),
    "groq": ("GROQ_API_KEY",),
    "xai": ("XAI_API_KEY",),
    "deepseek": ("DEEPSEEK_API_KEY",),
    "cohere": ("COHERE_API_KEY", "CO_API_KEY"),
    "cohere_chat": ("COHERE_API_KEY", "CO_API_KEY"),
    "openrouter": ("OPENROUTER_API_KEY", "OR_API_KEY"),
    "together_ai": ("TOGETHERAI_API_KEY", "TOGETHER_API_KEY", "TOGETHER_AI_TOKEN"),
    "fireworks_ai": ("FIREWORKS_API_KEY", "FIREWORKS_AI_API_KEY", "FIREWORKSAI_API_KEY", "FIREWORKS_AI_TOKEN"),
    "perplexity": ("PERPLEXITYAI_API_KEY", "PERPLEXITY_API_KEY"),
    "cerebras": ("CEREBRAS_API_KEY",),
    "sambanova": ("SAMBANOVA_API_KEY",),
    "nvidia_nim": ("NVIDIA_NIM_API_KEY",),
    "deepinfra": ("DEEPINFRA_API_KEY",),
    "huggingface": ("HUGGINGFACE_API_KEY", "HF_TOKEN"),
    "azure": ("AZURE_API_KEY",),
    "litellm_proxy": ("LITELLM_PROXY_API_KEY",),
}
"""Sub-provider (the part of ``litellm/SUB/NAME`` before the slash) → the variables litellm tries, in order."""

NO_KEY = frozenset({"ollama", "ollama_chat", "lm_studio", "hosted_vllm", "vllm", "llamafile"})
"""Local servers that need no key."""


def sub_provider(model: str) -> str:
    """``anthropic`` for ``anthropic/claude-sonnet-4-5``; litellm's own routing decides bare names."""
    head, slash, _ = model.partition("/")
    return head if slash else ""


def known_variables(model: str) -> tuple[str, ...] | None:
    """The key variables of this model's sub-provider: ``()`` when it needs none, None when unknown."""
    sub = sub_provider(model)
    if sub in NO_KEY:
        return ()
    return KEY_VARIABLES.get(sub)


def first_set(variables: tuple[str, ...]) -> str | None:
    """The first of ``variables`` that holds a non-empty value."""
    return next((name for name in variables if os.environ.get(name)), None)
