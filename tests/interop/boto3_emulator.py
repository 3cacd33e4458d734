"""boto3 (the real AWS SDK for Python, unchanged) against the emulator.

Usage: boto3_emulator.py URL [scenario|throttle|cut]

- scenario: a whole session through every tool, plus get/list/stop and errors.
  Leaves one session running on a custom interpreter id, for the caller to
  check that shutdown stops it.
- throttle: the emulator runs with --fault executeCode:throttle:2; a client
  with standard retries (4 attempts) gets through.
- cut: the emulator runs with --fault executeCode:cut:1; the client sees an
  error, and the code still ran exactly once.

Prints a PASS line; exits non-zero with a message on any failure.
"""

import os
import sys
import time
import datetime

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

IDENT = "aws.codeinterpreter.v1"


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def client(url, **config):
    return boto3.client(
        "bedrock-agentcore",
        region_name="us-west-2",
        endpoint_url=url,
        aws_access_key_id="x",
        aws_secret_access_key="y",
        config=Config(**config) if config else None,
    )


class Session:
    def __init__(self, c, ident=IDENT, **start_args):
        self.c = c
        self.ident = ident
        r = c.start_code_interpreter_session(codeInterpreterIdentifier=ident, **start_args)
        self.id = r["sessionId"]
        self.created = r["createdAt"]

    def invoke(self, name, **arguments):
        """All events of one call, as a list."""
        r = self.c.invoke_code_interpreter(
            codeInterpreterIdentifier=self.ident,
            sessionId=self.id,
            name=name,
            arguments=arguments,
        )
        check(r.get("sessionId") == self.id, f"{name}: response sessionId {r.get('sessionId')!r}")
        return list(r["stream"])

    def result(self, name, **arguments):
        """The one result event of a call that must not be an error."""
        events = self.invoke(name, **arguments)
        check(len(events) == 1 and "result" in events[0], f"{name}: events {events!r}")
        res = events[0]["result"]
        check(not res.get("isError"), f"{name} {arguments!r} failed: {res!r}")
        return res


def error_code(exc):
    """The AWS error code of a ClientError or an event-stream error."""
    if isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Code", "")
    return ""


def expect_error(code, fn, what):
    try:
        fn()
    except ClientError as e:
        got = error_code(e)
        # Stream exceptions carry the union member name (resourceNotFoundException).
        check(got.lower() == code.lower(), f"{what}: expected {code}, got {got}: {e}")
        return e
    fail(f"{what}: expected {code}, but the call succeeded")


def scenario(url):
    c = client(url)
    s = Session(c, name="boto3Scenario", sessionTimeoutSeconds=900)
    short = Session(c, sessionTimeoutSeconds=2)  # ends on its own, checked below
    check(len(s.id) == 26 and s.id.isalnum() and s.id.upper() == s.id, f"session id {s.id!r}")
    check(isinstance(s.created, datetime.datetime), f"createdAt {s.created!r}")

    # Python state is kept between calls.
    s.result("executeCode", code="x = 41", language="python")
    r = s.result("executeCode", code="print(x + 1)", language="python", clearContext=False)
    check("42" in r["structuredContent"]["stdout"], f"print(x + 1): {r!r}")
    check(r["structuredContent"]["exitCode"] == 0, f"exitCode: {r!r}")
    check(r["content"][0]["type"] == "text" and "42" in r["content"][0]["text"], f"text: {r!r}")
    r = s.result("executeCode", code="x + 1")
    check("42" in r["structuredContent"]["stdout"], f"bare expression: {r!r}")

    # An exception is an isError result with the traceback in stderr.
    [ev] = s.invoke("executeCode", code="1 / 0")
    res = ev["result"]
    check(res.get("isError") is True, f"1/0 isError: {res!r}")
    check("ZeroDivisionError" in res["structuredContent"]["stderr"], f"1/0 stderr: {res!r}")
    check(res["structuredContent"]["exitCode"] == 1, f"1/0 exitCode: {res!r}")

    r = s.result("executeCommand", command="echo from-shell")
    check("from-shell" in r["structuredContent"]["stdout"], f"executeCommand: {r!r}")

    # Files: text and binary, losslessly.
    blob = os.urandom(64 * 1024)
    r = s.result(
        "writeFiles",
        content=[{"path": "notes.txt", "text": "hello\n"}, {"path": "data/random.bin", "blob": blob}],
    )
    check("Successfully wrote all 2 files" in r["content"][0]["text"], f"writeFiles: {r!r}")
    r = s.result("readFiles", paths=["notes.txt", "data/random.bin"])
    by_uri = {b["resource"]["uri"]: b["resource"] for b in r["content"] if b["type"] == "resource"}
    check(by_uri.get("file://notes.txt", {}).get("text") == "hello\n", f"readFiles text: {by_uri!r}")
    got = by_uri.get("file://data/random.bin", {}).get("blob")
    check(isinstance(got, bytes) and got == blob, "readFiles: the 64 KiB blob did not round-trip")

    def listed(directory=""):
        r = s.result("listFiles", directoryPath=directory)
        return {b["name"]: b for b in r["content"] if b["type"] == "resource_link"}

    top = listed()
    check("notes.txt" in top and top["notes.txt"]["description"] == "File", f"listFiles: {top!r}")
    check(top.get("data", {}).get("description") == "Directory", f"listFiles: {top!r}")
    inner = listed("data")
    check(inner.get("random.bin", {}).get("size") == len(blob), f"listFiles data: {inner!r}")

    s.result("removeFiles", paths=["notes.txt"])
    check("notes.txt" not in listed(), "removeFiles: notes.txt is still listed")

    # Background tasks.
    r = s.result("startCommandExecution", command="sleep 1; echo done")
    task = r["structuredContent"]["taskId"]
    check(r["structuredContent"]["taskStatus"] in ("submitted", "working"), f"start task: {r!r}")
    deadline = time.time() + 30
    while True:
        sc = s.result("getTask", taskId=task)["structuredContent"]
        if sc["taskStatus"] not in ("submitted", "working"):
            break
        check(time.time() < deadline, f"task did not finish in 30 s: {sc!r}")
        time.sleep(0.2)
    check(sc["taskStatus"] == "completed", f"task status: {sc!r}")
    check("done" in sc["stdout"], f"task stdout: {sc!r}")
    check(sc.get("exitCode") == 0, f"task exitCode: {sc!r}")

    r = s.result("startCommandExecution", command="sleep 60")
    long_task = r["structuredContent"]["taskId"]
    t0 = time.time()
    s.result("stopTask", taskId=long_task)
    sc = s.result("getTask", taskId=long_task)["structuredContent"]
    check(sc["taskStatus"] == "canceled", f"stopped task: {sc!r}")
    check(time.time() - t0 < 15, "stopTask took too long")
    expect_error("ResourceNotFoundException", lambda: s.invoke("getTask", taskId="no-such-task"), "unknown task")

    # Bad requests are ValidationException.
    expect_error("ValidationException", lambda: s.invoke("noSuchTool"), "unknown tool")
    expect_error("ValidationException", lambda: s.invoke("executeCode", language="python"), "missing code")
    expect_error(
        "ValidationException",
        lambda: c.start_code_interpreter_session(codeInterpreterIdentifier=IDENT, sessionTimeoutSeconds=28801),
        "sessionTimeoutSeconds 28801",
    )

    # Get and list.
    g = c.get_code_interpreter_session(codeInterpreterIdentifier=IDENT, sessionId=s.id)
    check(g["status"] == "READY", f"get: {g!r}")
    check(isinstance(g["createdAt"], datetime.datetime), f"get createdAt: {g!r}")
    check(g.get("name") == "boto3Scenario" and g.get("sessionTimeoutSeconds") == 900, f"get: {g!r}")
    other = Session(c)  # newer, so listed first
    items = c.list_code_interpreter_sessions(codeInterpreterIdentifier=IDENT, maxResults=100)["items"]
    ids = [i["sessionId"] for i in items]
    check(s.id in ids and other.id in ids, f"list: {ids!r}")
    check(ids.index(other.id) < ids.index(s.id), f"list is not newest first: {ids!r}")
    page = c.list_code_interpreter_sessions(codeInterpreterIdentifier=IDENT, maxResults=1)
    check(len(page["items"]) == 1 and page.get("nextToken"), f"list page: {page!r}")
    page2 = c.list_code_interpreter_sessions(codeInterpreterIdentifier=IDENT, maxResults=1, nextToken=page["nextToken"])
    check(page2["items"][0]["sessionId"] != page["items"][0]["sessionId"], f"list page 2: {page2!r}")

    # Stop; the session is then TERMINATED and cannot be used.
    st = c.stop_code_interpreter_session(codeInterpreterIdentifier=IDENT, sessionId=s.id)
    check(st["sessionId"] == s.id and isinstance(st["lastUpdatedAt"], datetime.datetime), f"stop: {st!r}")
    expect_error("ResourceNotFoundException", lambda: s.invoke("executeCode", code="1"), "invoke after stop")
    g = c.get_code_interpreter_session(codeInterpreterIdentifier=IDENT, sessionId=s.id)
    check(g["status"] == "TERMINATED", f"get after stop: {g!r}")
    terminated = c.list_code_interpreter_sessions(codeInterpreterIdentifier=IDENT, status="TERMINATED")["items"]
    check(s.id in [i["sessionId"] for i in terminated], f"list TERMINATED: {terminated!r}")
    check(all(i["status"] == "TERMINATED" for i in terminated), f"list TERMINATED: {terminated!r}")
    expect_error(
        "ResourceNotFoundException",
        lambda: c.stop_code_interpreter_session(codeInterpreterIdentifier=IDENT, sessionId=s.id),
        "second stop",
    )
    expect_error(
        "ResourceNotFoundException",
        lambda: c.get_code_interpreter_session(codeInterpreterIdentifier=IDENT, sessionId="01NOSUCHSESSION0000000000X"),
        "get unknown session",
    )
    c.stop_code_interpreter_session(codeInterpreterIdentifier=IDENT, sessionId=other.id)

    # sessionTimeoutSeconds is enforced.
    deadline = time.time() + 15
    while c.get_code_interpreter_session(codeInterpreterIdentifier=IDENT, sessionId=short.id)["status"] != "TERMINATED":
        check(time.time() < deadline, "a session with sessionTimeoutSeconds=2 is still READY after 15 s")
        time.sleep(0.2)
    expect_error("ResourceNotFoundException", lambda: short.invoke("executeCode", code="1"), "invoke after timeout")

    # Sessions are scoped to their interpreter id; this one stays running so
    # that the caller can check that shutdown stops it.
    custom = Session(c, ident="myInterpreter-a1b2c3d4e5")
    custom.result("executeCode", code="print('custom')")
    expect_error(
        "ResourceNotFoundException",
        lambda: c.get_code_interpreter_session(codeInterpreterIdentifier=IDENT, sessionId=custom.id),
        "session seen through another interpreter id",
    )
    print(f"PASS boto3 scenario ({boto3.__version__}): session {s.id}, every tool, get/list/stop and errors")


def throttle(url):
    c = client(url, retries={"mode": "standard", "max_attempts": 4})
    s = Session(c)
    r = s.c.invoke_code_interpreter(
        codeInterpreterIdentifier=IDENT, sessionId=s.id, name="executeCode", arguments={"code": "print(6 * 7)"}
    )
    attempts = r["ResponseMetadata"]["RetryAttempts"]
    events = list(r["stream"])
    check("42" in events[0]["result"]["structuredContent"]["stdout"], f"events: {events!r}")
    check(attempts == 2, f"expected 2 retries after 2 throttles, got {attempts}")
    print("PASS boto3 throttle: ThrottlingException retried twice, then the call succeeded")


def cut(url):
    c = client(url, retries={"mode": "standard", "max_attempts": 4})
    s = Session(c)
    code = "with open('runs.txt', 'a') as f:\n    f.write('ran\\n')\nprint('appended')"
    try:
        events = s.invoke("executeCode", code=code)
    except Exception as e:  # noqa: BLE001 - any transport error is right
        print(f"cut call failed as expected: {type(e).__name__}: {e}")
    else:
        fail(f"the cut call ended cleanly: {events!r}")
    r = s.result("executeCode", code="print(len(open('runs.txt').read().splitlines()))")
    lines = r["structuredContent"]["stdout"].strip()
    check(lines == "1", f"the cut call should have run exactly once, runs.txt has {lines} lines")
    print("PASS boto3 cut: the client saw an error and the code ran exactly once")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        fail("usage: boto3_emulator.py URL [scenario|throttle|cut]")
    mode = sys.argv[2] if len(sys.argv) > 2 else "scenario"
    {"scenario": scenario, "throttle": throttle, "cut": cut}[mode](sys.argv[1])
