#!/usr/bin/env python3
"""Drives code-interpreter-mcp with the official Python MCP SDK (`pip install mcp`),
an independent client: it negotiates the way new clients do (a `server/discover`
probe before `initialize`), validates every structuredContent against the tool's
outputSchema, and calls every tool. Exit 0 and "all tools ok" on success.

Usage: py_sdk_check.py /path/to/code-interpreter-mcp [server args...]
The server's environment: CODE_INTERPRETER_* variables of this process are passed on.
"""
import asyncio
import base64
import hashlib
import os
import sys
import time

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def check(cond, what):
    if not cond:
        raise AssertionError(what)


class Result:
    """A tool result with the same field names on SDK 1.x (camelCase) and 2.x (snake_case)."""

    def __init__(self, r):
        self.structuredContent = getattr(r, "structured_content", None) or getattr(r, "structuredContent", None)
        self.isError = getattr(r, "is_error", None) if hasattr(r, "is_error") else getattr(r, "isError", None)
        self.content = r.content

    def __repr__(self):
        return f"Result(isError={self.isError}, structured={self.structuredContent}, content={self.content})"


def output_schema(tool):
    return getattr(tool, "output_schema", None) or getattr(tool, "outputSchema", None)


async def call(s, name, args):
    return Result(await s.call_tool(name, args))  # the SDK validates structuredContent here


async def main(argv):
    env = {k: v for k, v in os.environ.items() if k.startswith("CODE_INTERPRETER_") or k in ("PATH", "HOME")}
    params = StdioServerParameters(command=argv[0], args=argv[1:], env=env)
    t0 = time.monotonic()
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as s:
            try:
                from mcp.client._probe import negotiate_auto  # mcp >= 2: discover probe, then initialize
                await negotiate_auto(s)
                mode = "auto (server/discover probe, then initialize)"
            except ImportError:
                await s.initialize()
                mode = "initialize"
            print("negotiated:", mode, f"in {time.monotonic() - t0:.3f}s")

            tools = {t.name: t for t in (await s.list_tools()).tools}
            print("tools:", sorted(tools))
            for name in ["start_session", "stop_session", "execute_code", "execute_command",
                         "write_files", "read_files", "list_files"]:
                check(name in tools, f"missing tool {name}")
                check(output_schema(tools[name]) is not None, f"{name} has no outputSchema")

            r = await call(s, "start_session", {})
            sid = r.structuredContent["session_id"]
            check(r.isError is not True and sid, "start_session")

            r = await call(s, "execute_code", {"session_id": sid, "code": "x = 6 * 7"})
            check(r.structuredContent["success"] is True, f"execute_code: {r}")
            r = await call(s, "execute_code", {"session_id": sid, "code": "print('x is', x); x"})
            check(r.structuredContent["stdout"] == "x is 42\n", f"state kept: {r.structuredContent}")
            check(r.structuredContent["result"] == "42", f"result: {r.structuredContent}")
            r = await call(s, "execute_code", {"session_id": sid, "code": "raise ValueError('boom')"})
            check(r.isError is not True, "a user exception is not a tool error")
            check(r.structuredContent["error"]["name"] == "ValueError", f"{r.structuredContent}")

            r = await call(s, "execute_command", {"session_id": sid, "command": "echo hi; exit 4"})
            check(r.structuredContent["exit_code"] == 4 and r.structuredContent["stdout"] == "hi\n",
                  f"execute_command: {r.structuredContent}")

            blob = os.urandom(4096)
            r = await call(s, "write_files", {"session_id": sid, "files": [
                {"path": "data/t.txt", "text": "héllo"},
                {"path": "data/b.bin", "base64": base64.b64encode(blob).decode()},
            ]})
            check([f["bytes"] for f in r.structuredContent["files"]] == [6, 4096], f"write_files: {r.structuredContent}")

            r = await call(s, "read_files", {"session_id": sid, "paths": ["data/t.txt", "data/b.bin", "../etc/passwd"]})
            files = r.structuredContent["files"]
            check(files[0]["text"] == "héllo", f"text: {files[0]}")
            check(base64.b64decode(files[1]["base64"]) == blob, "binary round trip")
            check(files[1]["sha256"] == hashlib.sha256(blob).hexdigest(), "sha256")
            check("error" in files[2], f"escape refused: {files[2]}")

            r = await call(s, "list_files", {"session_id": sid, "path": "data"})
            check([e["path"] for e in r.structuredContent["entries"]] == ["data/b.bin", "data/t.txt"],
                  f"list_files: {r.structuredContent}")

            r = await call(s, "execute_code", {"session_id": "no-such-session", "code": "1"})
            check(r.isError is True and "Unknown session" in r.content[0].text, f"unknown session: {r}")

            r = await call(s, "stop_session", {"session_id": sid})
            check(r.structuredContent["stopped"] is True, "stop_session")

            # The default session needs no start_session.
            r = await call(s, "execute_code", {"code": "1 + 1"})
            check(r.structuredContent["result"] == "2", f"default session: {r.structuredContent}")
    print(f"all tools ok in {time.monotonic() - t0:.2f}s")


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1:]))
    except AssertionError as e:
        print("FAILED:", e)
        sys.exit(1)
