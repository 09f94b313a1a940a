"""streamhost-openai: registers the ``openai`` provider."""

from streamhost import hookimpl

from .provider import OpenAIProvider

__all__ = ["OpenAIProvider", "register_providers"]


@hookimpl
def register_providers(register):  # type: ignore[no-untyped-def]
    """Register the ``openai/`` model prefix."""
    register(OpenAIProvider())
