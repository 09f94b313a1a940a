"""Test helpers for streamhost and its plugins.

:class:`LLMTestServer` is a real OpenAI-compatible HTTP streaming server on a
loopback port (own thread and event loop), scripted per model with
:class:`Script` objects; each request it serves is kept as a
:class:`RequestRecord`. Standard library only.
"""

from streamhost.testing.llm_server import LLMTestServer
from streamhost.testing.scripts import RequestRecord, Script

__all__ = ["LLMTestServer", "RequestRecord", "Script"]
