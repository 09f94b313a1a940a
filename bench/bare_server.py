"""The baseline for bench/startup.py: a bare ``MCPServer`` with one tool, on stdio, nothing else."""

from mcp.server.mcpserver import MCPServer

server = MCPServer("bare")


@server.tool()
async def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


if __name__ == "__main__":
    server.run()
