"""Shared fixtures. The ``streamhost_*`` fixtures (test LLM server, in-process host, collecting sink,
isolated config) come from streamhost's pytest plugin: installing streamhost is enough to get them."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    """Run ``@pytest.mark.anyio`` tests on asyncio, as ``streamhost serve`` does."""
    return "asyncio"
