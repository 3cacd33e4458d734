#!/usr/bin/env python3
"""Long-running work through the official Python MCP SDK (`pip install mcp`), an
independent client: progress notifications received by its progress callback,
cancellation by abandoning a call (the SDK then sends notifications/cancelled),
background tasks followed page by page with get_task, stop_task, and a call that
outlives the foreground budget. Exit 0 and "long work ok" on success.

Usage: py_sdk_long_work.py /path/to/code-interpreter-mcp
The server's environment: CODE_INTERPRETER_* variables of this process are passed on.
"""
import asyncio
import os
import sys
import time

import anyio
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def sc(r):
    return getattr(r, "structured_content", None) or getattr(r, "structuredContent", None)


def say(t0, msg):
    print(f"[{time.monotonic() - t0:5.1f}s] {msg}", flush=True)


def host_processes_below(pid):
    """Command lines of every process below `pid`, read from the host's /proc."""
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    out, todo = [], list(children.get(pid, []))
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                out.append(f.read().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            pass
        todo.extend(children.get(p, []))
    return out


def server_pid(binary):
    """The server: the child of this process running `binary`."""
    me, name = os.getpid(), os.path.basename(binary)
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                if ppid == me and os.path.basename(os.readlink(f"/proc/{d}/exe")) == name:
                    return int(d)
            except (OSError, IndexError, ValueError):
                pass
    raise AssertionError("the server process was not found")


async def wait_until_gone(server, marker, seconds=6.0):
    """Waits until no process below the server has `marker` in its command line."""
    deadline = time.monotonic() + seconds
    while True:
        left = [c for c in host_processes_below(server) if marker in c]
        if not left or time.monotonic() > deadline:
            return left
        await asyncio.sleep(0.1)


async def follow(s, task_id):
    """get_task from cursor 0 until done; returns (output, result, pages)."""
    output, cursor, pages = "", 0, 0
    for _ in range(600):
        g = sc(await s.call_tool("get_task", {"task_id": task_id, "cursor": cursor}))
        output += g["output"]
        pages += 1
        check(g["cursor"] == cursor + len(g["output"].encode()), f"cursor moves by the page's bytes: {g}")
        cursor = g["cursor"]
        if g["status"] == "done" and not g["more"]:
            return output, g["result"], pages
        if not g["more"]:
            await asyncio.sleep(0.2)
    raise AssertionError(f"task {task_id} did not finish")


def server(binary, *flags):
    env = {k: v for k, v in os.environ.items() if k.startswith("CODE_INTERPRETER_") or k in ("PATH", "HOME")}
    env.setdefault("RUST_LOG", "warn")
    return StdioServerParameters(command=binary, args=list(flags), env=env)


async def progress_cancel_and_tasks(binary, t0):
    async with stdio_client(server(binary, "--progress-interval", "2")) as (r, w):
        async with ClientSession(r, w) as s:
            await s.initialize()
            pid = server_pid(binary)

            # Progress during a 10 s command, carrying its output.
            seen = []

            async def on_progress(progress, total, message):
                seen.append((progress, message))

            res = await s.call_tool(
                "execute_command",
                {"command": "for i in $(seq 1 10); do echo tick-$i; sleep 1; done"},
                progress_callback=on_progress,
            )
            out = sc(res)
            check(out["exit_code"] == 0 and out["stdout"].endswith("tick-10\n"), f"command result: {out}")
            say(t0, f"progress: {len(seen)} notifications during a 10 s command; last: {seen[-1][1] if seen else None!r}")
            check(len(seen) >= 3, f"progress every 2 s over 10 s: {seen}")
            check(all(b[0] > a[0] for a, b in zip(seen, seen[1:])), f"progress increases: {seen}")
            check(any("tick-" in (m or "") for _, m in seen), f"progress carries the output: {seen}")

            # Cancelling a Python call interrupts it; the session's state survives.
            await s.call_tool("execute_code", {"code": "kept = 42"})
            with anyio.move_on_after(1.5) as scope:
                await s.call_tool("execute_code", {"code": "import time\nwhile True:\n    time.sleep(0.05)"})
            check(scope.cancelled_caught, "the Python call was abandoned by the client")
            started = time.monotonic()
            r2 = sc(await s.call_tool("execute_code", {"code": "kept"}))
            took = time.monotonic() - started
            check(r2["result"] == "42", f"state kept after the cancel: {r2}")
            check(took < 5, f"the next call ran at once ({took:.1f}s)")
            say(t0, f"cancelled python call: next call returned kept=42 in {took:.2f}s")

            # Cancelling a command kills its process tree, background children too.
            with anyio.move_on_after(1.5) as scope:
                await s.call_tool("execute_command", {"command": "sleep 301 & sleep 302; echo never"})
            check(scope.cancelled_caught, "the command was abandoned by the client")
            left = await wait_until_gone(pid, "sleep 30")
            check(not left, f"no process of the cancelled command is left: {left}")
            r3 = sc(await s.call_tool("execute_command", {"command": "echo next"}))
            check(r3["stdout"] == "next\n", f"the session works after the cancel: {r3}")
            say(t0, "cancelled command: its processes are gone and the session works")

            # A background command followed to the end, page by page.
            res = sc(await s.call_tool("execute_command", {
                "command": "for i in $(seq 1 5000); do echo line-$i; done; sleep 1; echo end",
                "background": True,
            }))
            check(res.get("status") == "running" and res.get("task_id"), f"background start: {res}")
            output, result, pages = await follow(s, res["task_id"])
            expected = "".join(f"line-{i}\n" for i in range(1, 5001)) + "end\n"
            check(output == expected, f"every byte of the output, in order ({len(output)} of {len(expected)})")
            check(pages >= 3, f"the output came in pages ({pages})")
            check(result["exit_code"] == 0 and result["success"] is True, f"final result: {result}")
            say(t0, f"background command: {len(output)} bytes read in {pages} get_task pages")

            # stop_task ends a long task and its processes.
            res = sc(await s.call_tool("execute_command", {"command": "echo started; sleep 303", "background": True}))
            started = time.monotonic()
            stopped = sc(await s.call_tool("stop_task", {"task_id": res["task_id"]}))
            check(stopped["status"] == "done", f"stop_task: {stopped}")
            check(time.monotonic() - started < 6, "stop_task returned promptly")
            g = sc(await s.call_tool("get_task", {"task_id": res["task_id"]}))
            check(g["result"]["limit"]["limit"] == "cancelled", f"the task says it was stopped: {g}")
            left = await wait_until_gone(pid, "sleep 303")
            check(not left, f"no process of the stopped task is left: {left}")
            say(t0, "stop_task: the task ended and its processes are gone")


async def foreground_budget(binary, t0):
    async with stdio_client(server(binary, "--foreground-budget", "2")) as (r, w):
        async with ClientSession(r, w) as s:
            await s.initialize()
            await s.call_tool("execute_code", {"code": "state = 'kept'"})
            started = time.monotonic()
            res = sc(await s.call_tool("execute_code", {
                "code": "import time\nprint('working', flush=True)\ntime.sleep(4)\nprint('finished')\nstate",
            }))
            took = time.monotonic() - started
            check(res.get("status") == "running" and res.get("task_id"), f"past the budget: {res}")
            check(took < 3.5, f"the call returned at the 2 s budget ({took:.1f}s)")
            check("get_task" in " ".join(res.get("notes", [])), f"the result says how to go on: {res}")
            output, result, _ = await follow(s, res["task_id"])
            check(output == "working\nfinished\n", f"output: {output!r}")
            check(result["result"] == "'kept'" and result["success"] is True, f"final result: {result}")
            say(t0, f"foreground budget: returned task {res['task_id']} after {took:.1f}s; it completed")


async def main(binary):
    t0 = time.monotonic()
    await progress_cancel_and_tasks(binary, t0)
    await foreground_budget(binary, t0)
    print(f"long work ok in {time.monotonic() - t0:.1f}s")


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1]))
    except AssertionError as e:
        print("FAILED:", e)
        sys.exit(1)
