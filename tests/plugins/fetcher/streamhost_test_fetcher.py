"""A plugin that registers a fetcher for a made-up scheme, the way a third party would."""

from streamhost import Document, Fetcher, Status, hookimpl


class MemoFetcher(Fetcher):
    name = "memo"
    schemes = ("memo",)
    config_keys = frozenset()  # reads nothing from [fetch], so the host can still check that table

    async def fetch(self, request):
        yield Status(f"reading {request.url}")
        yield Document(url=request.url, final_url=request.url, content=f"memo body of {request.url}")


@hookimpl
def register_fetchers(register):
    register(MemoFetcher())
