"""The TOML config file: where it is, reading it (``load_config``), and showing it with its secrets masked.

What it holds is ``settings.py`` (re-exported here: ``host.config`` is where the host and tests import config
names from); checking its values is ``config_reader.py``.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .config_reader import ConfigReader
from .settings import (
    HOST_KEYS,
    HTTP_PORT,
    MESSAGE_MODES,
    MODEL_KEYS,
    STORE_ENV,
    TOP_KEYS,
    Config,
    ContextSettings,
    HttpSettings,
    Limits,
    StoreSettings,
    StreamingSettings,
    SummarizeSettings,
    did_you_mean,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "CONFIG_ENV",
    "HOST_KEYS",
    "HTTP_PORT",
    "MESSAGE_MODES",
    "MODEL_KEYS",
    "SECRET_KEY",
    "STORE_ENV",
    "TOP_KEYS",
    "URL_CREDENTIALS",
    "Config",
    "ConfigReader",
    "ContextSettings",
    "HttpSettings",
    "Limits",
    "StoreSettings",
    "StreamingSettings",
    "SummarizeSettings",
    "config_path",
    "did_you_mean",
    "load_config",
    "masked",
    "tomllib",
]

CONFIG_ENV = "STREAMHOST_CONFIG"
SECRET_KEY = re.compile(r"(^|[_-])(api[_-]?key|apikey|key|token|secret|password|authorization)$")
URL_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")


def config_path() -> Path:
    """``$STREAMHOST_CONFIG``, else the platform's user config dir + ``config.toml``."""
    explicit = os.environ.get(CONFIG_ENV)
    if explicit:
        return Path(explicit).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir("streamhost")) / "config.toml"


def load_config(path: Path | None = None) -> Config:
    """Read and check the config file; raise ConfigError naming the file, line and key."""
    path = path or config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if os.environ.get(CONFIG_ENV) and path == config_path():
            raise ConfigError(f"{path}: config file not found (named by {CONFIG_ENV})") from None
        return Config(path=path)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        where = "" if "line" in str(exc) else f" (line {max(len(text.splitlines()), 1)})"
        raise ConfigError(f"{path}: invalid TOML: {exc}{where}") from None
    return ConfigReader(path, text).build(data)


def masked(data: Any, key: str = "") -> Any:
    """A copy of the raw config with secret-looking values replaced, for ``config show``.

    Values of keys named like a secret become ``****``, and so do the credentials in a URL
    (``http://user:password@proxy:3128`` shows as ``http://****@proxy:3128``).
    """
    if isinstance(data, dict):
        return {k: masked(v, k) for k, v in data.items()}
    if isinstance(data, list):
        return [masked(item, key) for item in data]
    if SECRET_KEY.search(key.lower()):
        return "****"
    return URL_CREDENTIALS.sub("****@", data) if isinstance(data, str) else data
