"""streamhost-litellm: registers the ``litellm`` provider."""

from streamhost import hookimpl

from .provider import LiteLLMProvider

__all__ = ["LiteLLMProvider", "register_providers"]


@hookimpl
def register_providers(register):  # type: ignore[no-untyped-def]
    """Register the ``litellm/`` model prefix."""
    register(LiteLLMProvider())
