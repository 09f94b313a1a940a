"""A third-party plugin, loaded before the bundled ones, that registers the bundled ``openai`` name and ``twin``.

``twin`` is also registered by streamhost-test-collide (a collision between two third parties).
"""

from streamhost import ModelInfo, Provider, hookimpl


class EarlyOpenAI(Provider):
    name = "openai"

    def models(self):
        return [ModelInfo(name="early-model", description="the early plugin's openai")]


class EarlyTwin(Provider):
    name = "twin"

    def models(self):
        return [ModelInfo(name="early-twin")]


@hookimpl
def register_providers(register):
    register(EarlyOpenAI())
    register(EarlyTwin())
