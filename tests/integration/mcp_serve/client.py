"""A real MCP client (the Python `mcp` SDK) driving `keel mcp serve`.

Usage: client.py stdio KEEL WORKSPACE SCRIPT_JSON
       client.py http URL TOKEN SCRIPT_JSON

SCRIPT_JSON is a list of [tool, arguments] calls; the client lists the tools, makes each
call in order and prints one JSON object: the tools (name, readOnlyHint) and, per call,
isError, the text and the structured content.
"""
import json
import sys

import anyio
import httpx2
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import Implementation


async def drive(session, calls):
    await session.initialize()
    listed = await session.list_tools()
    tools = [
        {"name": t.name, "read_only": bool(t.annotations and t.annotations.read_only_hint)}
        for t in listed.tools
    ]
    results = []
    for name, args in calls:
        r = await session.call_tool(name, args)
        text = "".join(getattr(c, "text", "") for c in r.content)
        results.append({"tool": name, "is_error": bool(r.is_error), "text": text,
                        "structured": r.structured_content})
    return {"tools": tools, "results": results}


async def main():
    mode, target, extra, script = sys.argv[1:5]
    calls = json.loads(script)
    info = Implementation(name="test-agent", version="1.0")
    if mode == "stdio":
        params = StdioServerParameters(command=target, args=["--workspace", extra, "mcp", "serve"])
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write, client_info=info) as session:
                out = await drive(session, calls)
    else:
        headers = {"Authorization": f"Bearer {extra}"} if extra else {}
        statuses = []

        async def seen(response):
            statuses.append(response.status_code)
            if response.status_code >= 400:
                print(f"HTTP {response.status_code}", file=sys.stderr, flush=True)

        hooks = {"response": [seen]}
        async with httpx2.AsyncClient(headers=headers, timeout=60, event_hooks=hooks) as http:
            async with streamable_http_client(target, http_client=http) as streams:
                read, write = streams[0], streams[1]
                async with ClientSession(read, write, client_info=info) as session:
                    out = await drive(session, calls)
    print(json.dumps(out))


anyio.run(main)
