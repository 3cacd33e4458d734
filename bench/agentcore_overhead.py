#!/usr/bin/env python3
"""Overhead of one execute_code through the MCP server's agentcore backend
(the AWS SDK for Rust) compared with the same executeCode call made by boto3
directly, both against the same emulator, in one run.

  A: boto3 invoke_code_interpreter(executeCode) -> emulator
  B: MCP client (official Python SDK, stdio) -> code-interpreter-mcp
     --backend agentcore -> AWS SDK for Rust -> the same emulator

Usage: agentcore_overhead.py /path/to/code-interpreter-mcp [--calls N]
Needs the mcp and boto3 packages. Sessions use CODE_INTERPRETER_PYTHON.
"""
import argparse
import asyncio
import os
import statistics
import subprocess
import tempfile
import time

import boto3
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

CI = "aws.codeinterpreter.v1"
CODE = "x = 1"


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def boto3_calls(url, n):
    c = boto3.client(
        "bedrock-agentcore",
        region_name="us-west-2",
        endpoint_url=url,
        aws_access_key_id="x",
        aws_secret_access_key="y",
    )
    sid = c.start_code_interpreter_session(codeInterpreterIdentifier=CI)["sessionId"]
    times = []
    for i in range(n + 20):
        t = time.perf_counter()
        r = c.invoke_code_interpreter(
            codeInterpreterIdentifier=CI,
            sessionId=sid,
            name="executeCode",
            arguments={"code": CODE, "language": "python"},
        )
        for ev in r["stream"]:
            assert "result" in ev, ev
        if i >= 20:
            times.append((time.perf_counter() - t) * 1000)
    c.stop_code_interpreter_session(codeInterpreterIdentifier=CI, sessionId=sid)
    return times


async def mcp_calls(binary, url, n):
    env = dict(os.environ)
    env.update(
        CODE_INTERPRETER_BACKEND="agentcore",
        CODE_INTERPRETER_ENDPOINT_URL=url,
        AWS_REGION="us-west-2",
        AWS_ACCESS_KEY_ID="x",
        AWS_SECRET_ACCESS_KEY="y",
        AWS_CONFIG_FILE="/dev/null",
        AWS_SHARED_CREDENTIALS_FILE="/dev/null",
        AWS_EC2_METADATA_DISABLED="true",
        RUST_LOG="warn",
    )
    params = StdioServerParameters(command=binary, args=[], env=env)
    times = []
    async with stdio_client(params) as (r, w):
        async with ClientSession(r, w) as s:
            await s.initialize()
            res = await s.call_tool("start_session", {})
            sid = res.structured_content["session_id"]
            for i in range(n + 20):
                t = time.perf_counter()
                res = await s.call_tool("execute_code", {"code": CODE, "session_id": sid})
                if i >= 20:
                    times.append((time.perf_counter() - t) * 1000)
                assert res.structured_content["success"], res
    return times


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("binary")
    ap.add_argument("--calls", type=int, default=300)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as root:
        env = dict(os.environ, CODE_INTERPRETER_WORKDIR_ROOT=root, RUST_LOG="warn")
        emu = subprocess.Popen(
            [a.binary, "emulator", "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=env,
            text=True,
        )
        try:
            url = emu.stdout.readline().strip()
            direct = boto3_calls(url, a.calls)
            ours = asyncio.run(mcp_calls(a.binary, url, a.calls))
        finally:
            emu.terminate()
            emu.wait(10)
    print(f"executeCode {CODE!r}, {a.calls} calls each after 20 warm-up calls, one emulator")
    print(f"{'path':<48} {'p50 ms':>8} {'p90 ms':>8} {'mean ms':>8}")
    for name, xs in [
        ("boto3 -> emulator", direct),
        ("MCP (Python SDK) -> server -> Rust SDK -> emulator", ours),
    ]:
        print(f"{name:<48} {pct(xs, 50):8.3f} {pct(xs, 90):8.3f} {statistics.mean(xs):8.3f}")
    print(f"overhead of the server path at p50: {pct(ours, 50) - pct(direct, 50):+.3f} ms")


if __name__ == "__main__":
    main()
