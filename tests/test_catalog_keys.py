"""Per-model key variables in listings: ``Provider.key_variable_for`` / ``key_configured_for``.

A provider whose key depends on the model (litellm: one variable per sub-provider) overrides them; every
other provider keeps its provider-wide answer, including one that overrides ``key_configured`` itself.
"""

from __future__ import annotations

import os

import pytest

from streamhost import ModelInfo, Provider
from streamhost.host.catalog import Catalog
from streamhost.host.config import Config
from streamhost.host.loading import Registry


class PerModel(Provider):
    """Each model names its own variable: ``vendor/x`` needs ``VENDOR_KEY``; ``local/x`` needs none."""

    name = "per"

    def models(self) -> list[ModelInfo]:
        return [ModelInfo(name="vendor/x"), ModelInfo(name="local/x")]

    def key_variable_for(self, model: str) -> str | None:
        return "VENDOR_KEY" if model.startswith("vendor/") else None

    def key_configured_for(self, model: str) -> bool:
        variable = self.key_variable_for(model)
        return variable is None or bool(os.environ.get(variable))


class Classic(Provider):
    """A provider written before the per-model methods existed: one variable for all its models."""

    name = "classic"
    key_env_var = "CLASSIC_KEY"

    def models(self) -> list[ModelInfo]:
        return [ModelInfo(name="a")]


class CredentialFile(Provider):
    """Overrides key_configured (a credentials file, say) and nothing per model."""

    name = "credfile"
    key_env_var = "CREDFILE_KEY"

    def models(self) -> list[ModelInfo]:
        return [ModelInfo(name="b")]

    def key_configured(self) -> bool:
        return True


def entries(*providers: Provider) -> dict[str, tuple[str | None, bool]]:
    registry = Registry()
    registry.providers.update({p.name: p for p in providers})
    return {e.id: (e.key_variable, e.key_configured) for e in Catalog(registry, Config()).entries()}


@pytest.fixture(autouse=True)
def no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("VENDOR_KEY", "CLASSIC_KEY", "CREDFILE_KEY", "MY_CLASSIC_KEY"):
        monkeypatch.delenv(name, raising=False)


def test_listing_asks_the_provider_per_model(monkeypatch: pytest.MonkeyPatch) -> None:
    assert entries(PerModel()) == {"per/vendor/x": ("VENDOR_KEY", False), "per/local/x": (None, True)}
    monkeypatch.setenv("VENDOR_KEY", "set")
    assert entries(PerModel())["per/vendor/x"] == ("VENDOR_KEY", True)


def test_providers_without_the_per_model_methods_list_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    classic = Classic()
    assert entries(classic, CredentialFile()) == {"classic/a": ("CLASSIC_KEY", False),
                                                  "credfile/b": ("CREDFILE_KEY", True)}
    classic.configure({"api_key_env": "MY_CLASSIC_KEY"})
    monkeypatch.setenv("MY_CLASSIC_KEY", "set")
    assert entries(classic)["classic/a"] == ("MY_CLASSIC_KEY", True)
