"""A small MCP server written with the official Python SDK (which speaks the 2026-07-28
revision), for the `wrap` tests: `python notes_server.py stdio` or
`python notes_server.py http PORT`."""

import sys

from mcp.server.mcpserver import MCPServer

server = MCPServer("notes")
NOTES = {}


@server.tool(description="Store a note under a key.")
def put_note(key: str, text: str) -> str:
    NOTES[key] = text
    return f"stored {key}"


@server.tool(description="Read the note stored under a key.")
def get_note(key: str) -> str:
    return NOTES.get(key, "")


if __name__ == "__main__":
    if sys.argv[1:2] == ["http"]:
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run("stdio")
