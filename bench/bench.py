#!/usr/bin/env python3
"""Measures code-interpreter-mcp against the project's targets with one client,
the official Python MCP SDK over stdio:

  cold start to initialized, new session + first trivial execute_code,
  warm trivial execute_code round trip, resident memory of the server plus one
  Python session (the whole process tree: RSS and PSS sums), and the size of
  the whole tools/list result.

Usage: bench.py /path/to/code-interpreter-mcp [--runs N] [--warm N]
Sessions use CODE_INTERPRETER_PYTHON (default python3). Prints a table.
"""
import argparse
import asyncio
import json
import os
import statistics
import subprocess
import tempfile
import time

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def mem_kib(pid, field):
    """`Rss` or `Pss` of a process, from smaps_rollup. RSS counts the pages a
    process shares (this binary, re-executed by the sandbox helpers, and
    libc) in full in each process; PSS divides them among the sharers."""
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def descendants(pid):
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(d))
        except (OSError, IndexError, ValueError):
            pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def server_pid(root_name):
    """Our server: the child of this process running our binary (another
    instance elsewhere on the machine must not be measured instead)."""
    me = os.getpid()
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                exe = os.readlink(f"/proc/{d}/exe")
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == me and os.path.basename(exe) == root_name:
                return int(d)
    return None


def params(binary, root):
    env = {"PATH": os.environ["PATH"], "CODE_INTERPRETER_WORKDIR_ROOT": root, "RUST_LOG": "warn"}
    for k in ("CODE_INTERPRETER_PYTHON", "HOME"):
        if k in os.environ:
            env[k] = os.environ[k]
    return StdioServerParameters(command=binary, args=[], env=env)


DEVNULL = open(os.devnull, "w")


def structured(r):
    return getattr(r, "structured_content", None) or getattr(r, "structuredContent", None)


async def cold_start(binary, root):
    t0 = time.perf_counter()
    async with stdio_client(params(binary, root), errlog=DEVNULL) as (r, w):
        async with ClientSession(r, w) as s:
            await s.initialize()
            return (time.perf_counter() - t0) * 1000


def wire_tools_list(binary, root):
    """Bytes of the tools/list result exactly as the server writes it (the
    SDK's model_dump adds default fields, so re-serialising it overcounts)."""
    msgs = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "bench", "version": "1"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
    ]
    p = subprocess.Popen([binary], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, env=params(binary, root).env)
    p.stdin.write("".join(json.dumps(m) + "\n" for m in msgs).encode())
    p.stdin.flush()
    for line in p.stdout:
        reply = json.loads(line)
        if reply.get("id") == 2:
            break
    p.stdin.close()
    p.wait(timeout=10)
    result = json.dumps(reply["result"], separators=(",", ":"), ensure_ascii=False)
    return len(result.encode()), len(line.rstrip(b"\n"))


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warm", type=int, default=1000)
    a = ap.parse_args()
    root = tempfile.mkdtemp(prefix="cimcp-bench-")
    results = {}

    cold = [await cold_start(a.binary, root) for _ in range(a.runs)]
    results["cold start to initialized (ms)"] = cold

    async with stdio_client(params(a.binary, root), errlog=DEVNULL) as (r, w):
        async with ClientSession(r, w) as s:
            await s.initialize()
            result_bytes, line_bytes = wire_tools_list(a.binary, root)
            results["tools/list result on the wire (bytes)"] = [result_bytes]
            results["tools/list JSON-RPC line (bytes)"] = [line_bytes]

            first, start_only = [], []
            for _ in range(a.runs):
                t0 = time.perf_counter()
                st = await s.call_tool("start_session", {})
                start_only.append((time.perf_counter() - t0) * 1000)
                sid = structured(st)["session_id"]
                r1 = await s.call_tool("execute_code", {"session_id": sid, "code": "1"})
                first.append((time.perf_counter() - t0) * 1000)
                assert structured(r1)["result"] == "1", r1
                await s.call_tool("stop_session", {"session_id": sid})
            results["start_session alone (ms)"] = start_only
            results["start_session + first execute_code (ms)"] = first

            st = await s.call_tool("start_session", {})
            sid = structured(st)["session_id"]
            await s.call_tool("execute_code", {"session_id": sid, "code": "1"})
            warm = []
            for _ in range(a.warm):
                t0 = time.perf_counter()
                await s.call_tool("execute_code", {"session_id": sid, "code": "1"})
                warm.append((time.perf_counter() - t0) * 1000)
            results["warm execute_code round trip (ms)"] = warm

            pid = server_pid(os.path.basename(a.binary))
            if pid is None:
                raise SystemExit("the server process was not found among this process's children")
            pids = descendants(pid)
            for field in ("Rss", "Pss"):
                total = sum(mem_kib(p, field) for p in pids)
                results[f"server + one Python session, {field} sum (MiB)"] = [total / 1024]
            results[f"  of which processes (server, sandbox helpers, python)"] = [len(pids)]
            results["server alone RSS (MiB)"] = [mem_kib(pid, "Rss") / 1024]

    print(f"{'measure':45} {'p50':>9} {'p90':>9} {'min':>9} {'n':>6}")
    for k, xs in results.items():
        print(f"{k:45} {statistics.median(xs):9.3f} {pct(xs, 90):9.3f} {min(xs):9.3f} {len(xs):6d}")


if __name__ == "__main__":
    asyncio.run(main())
