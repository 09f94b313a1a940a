"""streamhost: an MCP server that hosts model, fetcher and tool plugins and streams their output.

Plugin authors import everything they need from here.
"""

from .errors import (
    AuthenticationError,
    BudgetExceededError,
    CallFailed,
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
    error_for_status,
    retry_after_seconds,
)
from .events import Checkpoint, Event, Sink, Status, TextDelta, Update, Usage, close_stream
from .fetchers import FORMATS, Document, Fetcher, FetchEvent, FetchRequest
from .hookspecs import hookimpl
from .options import CheckedOptions, Option, check_options
from .providers import GenerationRequest, Message, ModelInfo, Pricing, Provider
from .services import (
    MAX_MODEL_CHARS,
    MAX_SCHEMA_DEPTH,
    MAX_SCHEMA_NODES,
    MAX_URLS,
    Generation,
    ModelEntry,
    PageSummary,
    Services,
    Streamed,
    Summaries,
)
from .sse import EventTooLarge, SSEDecoder
from .tools import Tool, ToolAnnotations, ToolResult
from .upstreams import upstream_socket

__version__ = "0.1.0"

__all__ = [
    "FORMATS",
    "MAX_MODEL_CHARS",
    "MAX_SCHEMA_DEPTH",
    "MAX_SCHEMA_NODES",
    "MAX_URLS",
    "AuthenticationError",
    "BudgetExceededError",
    "CallFailed",
    "CheckedOptions",
    "Checkpoint",
    "ConfigError",
    "Document",
    "Event",
    "EventTooLarge",
    "FetchError",
    "FetchEvent",
    "FetchRequest",
    "Fetcher",
    "Generation",
    "GenerationRequest",
    "InvalidArgumentError",
    "Message",
    "MissingKeyError",
    "ModelEntry",
    "ModelInfo",
    "Option",
    "OutputValidationError",
    "PageSummary",
    "PluginError",
    "Pricing",
    "Provider",
    "ProviderError",
    "RateLimitError",
    "SSEDecoder",
    "Services",
    "Sink",
    "Status",
    "StreamError",
    "Streamed",
    "StreamhostError",
    "Summaries",
    "TextDelta",
    "Tool",
    "ToolAnnotations",
    "ToolResult",
    "UnknownModelError",
    "Update",
    "UpstreamConnectionError",
    "UpstreamServerError",
    "UpstreamTimeoutError",
    "Usage",
    "__version__",
    "check_options",
    "close_stream",
    "error_for_status",
    "hookimpl",
    "retry_after_seconds",
    "upstream_socket",
]
