"""__DIST__: registers the ``__NAME__`` fetcher with streamhost."""

from collections.abc import Callable

from streamhost import Fetcher, hookimpl

from .fetcher import __CLASS__Fetcher

__all__ = ["__CLASS__Fetcher", "register_fetchers"]


@hookimpl
def register_fetchers(register: Callable[[Fetcher], None]) -> None:
    """Register the fetcher for ``__NAME__://`` URLs."""
    register(__CLASS__Fetcher())
