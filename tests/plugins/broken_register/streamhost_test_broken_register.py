"""A plugin whose registration hook fails after registering one provider."""

from streamhost import Provider, hookimpl


class Half(Provider):
    name = "half"


@hookimpl
def register_providers(register):
    register(Half())
    raise ValueError("this plugin is broken at registration on purpose")
