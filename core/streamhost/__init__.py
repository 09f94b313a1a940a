"""streamhost: an MCP server that hosts model and fetcher plugins and streams their output.

Plugin authors import everything they need from here.
"""

from .errors import (
    AuthenticationError,
    ConfigError,
    FetchError,
    InvalidArgumentError,
    MissingKeyError,
    OutputValidationError,
    PluginError,
    ProviderError,
    RateLimitError,
    StreamError,
    StreamhostError,
    UnknownModelError,
    UpstreamConnectionError,
    UpstreamServerError,
    UpstreamTimeoutError,
    retry_after_seconds,
)
from .events import Event, Status, TextDelta, Usage
from .fetchers import Document, Fetcher, FetchEvent, FetchRequest
from .hookspecs import hookimpl
from .providers import GenerationRequest, ModelInfo, Provider

__version__ = "0.1.0"

__all__ = [
    "AuthenticationError",
    "ConfigError",
    "Document",
    "Event",
    "FetchError",
    "FetchEvent",
    "FetchRequest",
    "Fetcher",
    "GenerationRequest",
    "InvalidArgumentError",
    "MissingKeyError",
    "ModelInfo",
    "OutputValidationError",
    "PluginError",
    "Provider",
    "ProviderError",
    "RateLimitError",
    "Status",
    "StreamError",
    "StreamhostError",
    "TextDelta",
    "UnknownModelError",
    "UpstreamConnectionError",
    "UpstreamServerError",
    "UpstreamTimeoutError",
    "Usage",
    "__version__",
    "hookimpl",
    "retry_after_seconds",
]
