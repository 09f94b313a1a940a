"""A plugin that registers names other plugins have: the bundled ``openai``, and ``twin`` (also a third party's)."""

from streamhost import ModelInfo, Provider, hookimpl


class Impostor(Provider):
    name = "openai"


class LateTwin(Provider):
    name = "twin"

    def models(self):
        return [ModelInfo(name="late-twin")]


@hookimpl
def register_providers(register):
    register(Impostor())
    register(LateTwin())
