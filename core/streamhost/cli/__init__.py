"""The terminal face: ``streamhost`` and its commands."""

from .main import main

__all__ = ["main"]
