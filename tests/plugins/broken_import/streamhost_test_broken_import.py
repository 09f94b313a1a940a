"""A plugin whose import fails: the host must record it and serve the others."""

raise RuntimeError("this plugin is broken at import on purpose")
