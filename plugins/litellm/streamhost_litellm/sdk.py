"""Importing litellm once, late, and with safe settings: no network, no banners, no telemetry."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import threading
from typing import Any

SAFE_ENVIRONMENT = {
    # At import litellm downloads a model cost map (blocking, 5 s timeout, retried): use the bundled copy.
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    # In its default "DEV" mode litellm loads a .env file from the working directory into os.environ; an
    # MCP server's working directory is whatever the client chose, so that file could be anyone's.
    "LITELLM_MODE": "PRODUCTION",
}

WARM_MODULES = (
    # What litellm (and the openai SDK under it) imports lazily during its first call, found by profiling
    # that call: cost tracking's token counter (tiktoken's bundled encoding), the service logger, the
    # OpenAI-compatible route and its SDK resources, the HTTP handler of the native routes. Importing them
    # in the warm-up roughly halves the first call (bench/litellm_ttft.py); a name a later litellm drops is
    # skipped.
    "litellm.main",
    "litellm.litellm_core_utils.token_counter",
    "litellm._service_logger",
    "litellm.llms.openai.openai",
    "openai.resources.chat.chat",
    "litellm.llms.custom_httpx.http_handler",
)

LITELLM_LOGGERS = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy")

_lock = threading.Lock()
_module: Any = None
_debug = False


def set_debug(enabled: bool) -> None:
    """Let litellm print its help banners and verbose output (they go to stderr under ``streamhost serve``)."""
    global _debug
    _debug = enabled
    if _module is not None:
        _apply(_module)


def load() -> Any:
    """The litellm module, imported and configured on first use (blocking: seconds the first time).

    Safe to call from several threads: the warm-up thread and a first call wait for one import.
    """
    global _module
    if _module is None:
        with _lock:
            if _module is None:
                for name, value in SAFE_ENVIRONMENT.items():
                    os.environ.setdefault(name, value)  # a value the user set wins
                module = importlib.import_module("litellm")
                _apply(module)
                _module = module
    return _module


def warm() -> None:
    """:func:`load`, then the modules litellm would otherwise import during the first call."""
    load()
    for name in WARM_MODULES:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


def loaded() -> Any:
    """The litellm module if it was imported already, else None (never imports)."""
    return _module


async def load_async() -> Any:
    """:func:`load` without blocking the event loop: the first import runs in a worker thread."""
    if _module is not None:
        return _module
    return await asyncio.to_thread(load)


def _apply(litellm: Any) -> None:
    litellm.telemetry = False
    # Token counting for llama-3 / command-r names would fetch a tokenizer from the Hugging Face hub, at call
    # time and blocking; tiktoken's bundled encoding gives the estimate offline (usage comes from upstream).
    litellm.disable_hf_tokenizer_download = True
    litellm.suppress_debug_info = not _debug
    litellm.set_verbose = _debug
    _log_through_the_host()


def _log_through_the_host() -> None:
    """litellm gives its loggers their own stderr handler (ANSI colours) and lets records propagate to the root
    logger too, where the host's handler writes them again: every litellm warning, traceback included, was
    logged twice. Keep litellm's secret-redacting filters, on the loggers, and let the host's handler write."""
    for name in LITELLM_LOGGERS:
        logger = logging.getLogger(name)
        if not logger.propagate:  # litellm's JSON_LOGS mode owns its output: leave it alone
            continue
        for handler in list(logger.handlers):
            for log_filter in handler.filters:
                logger.addFilter(log_filter)
            logger.removeHandler(handler)
