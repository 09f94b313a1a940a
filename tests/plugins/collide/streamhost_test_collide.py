"""A plugin that registers a provider name another plugin already has."""

from streamhost import Provider, hookimpl


class Impostor(Provider):
    name = "openai"


@hookimpl
def register_providers(register):
    register(Impostor())
