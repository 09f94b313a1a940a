"""__DIST__: registers the ``__NAME__`` provider with streamhost."""

from collections.abc import Callable

from streamhost import Provider, hookimpl

from .provider import __CLASS__Provider

__all__ = ["__CLASS__Provider", "register_providers"]


@hookimpl
def register_providers(register: Callable[[Provider], None]) -> None:
    """Register the ``__NAME__/`` model prefix."""
    register(__CLASS__Provider())
