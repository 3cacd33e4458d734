#!/usr/bin/env python3
"""Transcript of a two-minute job under the default 45 s foreground budget,
followed to the end with get_task, through the official Python MCP SDK.

Usage: long_job.py /path/to/code-interpreter-mcp [--background] [server args...]
With --background the command is started with background: true (on the
agentcore backend that is startCommandExecution, then getTask).
"""
import asyncio
import json
import os
import sys
import time

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

JOB = "for i in $(seq 1 12); do echo \"step $i of 12\"; sleep 10; done; echo done"


def sc(r):
    return getattr(r, "structured_content", None) or getattr(r, "structuredContent", None)


async def main(binary, background, extra):
    # The SDK passes only a safe subset of the environment unless told.
    params = StdioServerParameters(command=binary, args=extra, env=dict(os.environ))
    t0 = time.monotonic()

    def say(msg):
        print(f"[{time.monotonic() - t0:6.1f} s] {msg}", flush=True)

    async with stdio_client(params) as (r, w):
        async with ClientSession(r, w) as s:
            await s.initialize()
            args = {"command": JOB}
            if background:
                args["background"] = True
            say(f"execute_command {json.dumps(args)}")
            res = await s.call_tool("execute_command", args)
            out = sc(res)
            say(f"-> status={out.get('status')} task_id={out.get('task_id')} stdout={out.get('stdout')!r}")
            say(f"   note: {out['notes'][0]}")
            task, cursor = out["task_id"], 0
            while True:
                await asyncio.sleep(15)
                res = await s.call_tool("get_task", {"task_id": task, "cursor": cursor})
                g = sc(res)
                say(f"get_task cursor={cursor} -> status={g['status']} elapsed_ms={g['elapsed_ms']} output={g['output']!r}")
                cursor = g["cursor"]
                if g["status"] == "done" and not g["more"]:
                    rr = g["result"]
                    say(f"result: success={rr['success']} exit_code={rr.get('exit_code')} duration_ms={rr['duration_ms']}")
                    return


if __name__ == "__main__":
    argv = sys.argv[1:]
    bg = "--background" in argv
    argv = [a for a in argv if a != "--background"]
    asyncio.run(main(argv[0], bg, argv[1:]))
