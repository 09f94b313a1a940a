"""A plugin that writes to stdout every way it can: at import, at registration and while streaming."""

import os
import subprocess
import sys

from streamhost import ModelInfo, Provider, TextDelta, Usage, hookimpl

print("noisy: print at import")


class Noisy(Provider):
    name = "noisy"

    def models(self):
        return [ModelInfo(name="echo", description="echoes the prompt, noisily")]

    async def stream(self, request):
        print("noisy: print while streaming")
        sys.stdout.write("noisy: sys.stdout.write\n")
        os.write(1, b"noisy: os.write to fd 1\n")
        subprocess.run(["echo", "noisy: a child process writing to its stdout"], check=False)
        for word in request.prompt.split():
            yield TextDelta(word + " ")
        yield Usage(input_tokens=len(request.prompt.split()), output_tokens=len(request.prompt.split()))


@hookimpl
def register_providers(register):
    print("noisy: print at registration")
    register(Noisy())
