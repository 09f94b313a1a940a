"""A plugin that registers a fetcher for a made-up scheme, the way a third party would."""

from streamhost import Document, Fetcher, Option, Status, hookimpl


class MemoFetcher(Fetcher):
    name = "memo"
    schemes = ("memo",)
    # Declared, so the host can still judge the other [fetch] keys, and checks this one's value.
    declared_options = (Option("memo_heading", str, "memo body of", "What each memo's content starts with",
                               non_empty=True),)

    async def fetch(self, request):
        yield Status(f"reading {request.url}")
        heading = self.options["memo_heading"]
        yield Document(url=request.url, final_url=request.url, content=f"{heading} {request.url}")


@hookimpl
def register_fetchers(register):
    register(MemoFetcher())
