#!/usr/bin/env python3
"""Checks the local backend's language drivers (src/backend/local/drivers/)
by launching them exactly the way the server does and speaking their protocol.

Usage: python3 tests/drivers/driver_check.py [--python PATH] [--node PATH]

--python defaults to the interpreter running this script; the matplotlib
checks run only if that Python can import matplotlib. --node defaults to
`node` on PATH; the TypeScript checks need a Node with
module.stripTypeScriptTypes (>= 22.13), otherwise the "TypeScript
unavailable" answer is checked instead. Exits non-zero if any check fails.
Stdlib only.
"""
import argparse
import base64
import fcntl
import json
import os
import random
import secrets
import selectors
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DRIVERS = Path(__file__).resolve().parents[2] / 'src' / 'backend' / 'local' / 'drivers'
PNG_MAGIC = b'\x89PNG\r\n\x1a\n'


class CheckFailed(Exception):
    pass


def expect(condition, message):
    if not condition:
        raise CheckFailed(message)


def expect_eq(actual, expected, what):
    if actual != expected:
        raise CheckFailed('%s: expected %r, got %r' % (what, expected, actual))


class Reply:
    def __init__(self, response, stdout, stderr):
        self.response = response
        self.stdout = stdout
        self.stderr = stderr

    @property
    def result(self):
        return self.response.get('result')

    @property
    def error(self):
        return self.response.get('error') or {}

    def expect_ok(self, result):
        expect(self.response.get('ok') is True, 'call failed: %r' % (self.response.get('error'),))
        expect_eq(self.result, result, 'result')

    def expect_error(self, name):
        expect(self.response.get('ok') is False, 'expected an error, got %r' % (self.response,))
        expect_eq(self.error.get('name'), name, 'error name')

    def __repr__(self):
        return 'Reply(%r, stdout=%r, stderr=%r)' % (self.response, self.stdout[-500:], self.stderr[-500:])


class Driver:
    """A driver process, launched and spoken to the way the server does it."""

    def __init__(self, argv, cwd):
        self.token = secrets.token_hex(16)
        env = {
            'PATH': os.environ.get('PATH', '/usr/bin:/bin'),
            'HOME': cwd,
            'LANG': 'C.UTF-8',
            'MPLBACKEND': 'Agg',
            'PYTHONUNBUFFERED': '1',
            'CI_DRIVER_SENTINEL': self.token,
        }
        request_read, self.request_fd = os.pipe()
        self.response_fd, response_write = os.pipe()

        def place_protocol_pipes():
            # In the child, between fork and exec: the driver expects the
            # request pipe at fd 3 and the response pipe at fd 4. Go through
            # close-on-exec copies above 10 so that a pipe end already sitting
            # at 3 or 4 isn't clobbered; dup2 makes 3 and 4 inheritable.
            request_copy = fcntl.fcntl(request_read, fcntl.F_DUPFD_CLOEXEC, 10)
            response_copy = fcntl.fcntl(response_write, fcntl.F_DUPFD_CLOEXEC, 10)
            os.dup2(request_copy, 3)
            os.dup2(response_copy, 4)

        started = time.monotonic()
        # close_fds=False: every other fd of this process is close-on-exec
        # (PEP 446), and closing "all fds but pass_fds" would close 3 and 4.
        self.proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, close_fds=False, start_new_session=True,
            preexec_fn=place_protocol_pipes)
        os.close(request_read)
        os.close(response_write)
        self.buffers = {'stdout': b'', 'stderr': b'', 'response': b''}
        self.selector = selectors.DefaultSelector()
        for name, fd in (('stdout', self.proc.stdout.fileno()), ('stderr', self.proc.stderr.fileno()),
                         ('response', self.response_fd)):
            self.selector.register(fd, selectors.EVENT_READ, name)
        self.ready = self._read_response_line(time.monotonic() + 10)
        self.startup_ms = (time.monotonic() - started) * 1000
        self.next_id = 1

    def _pump(self, deadline, done):
        """Read whatever the driver writes until done() or the deadline."""
        while not done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CheckFailed('timed out; received so far: %r' % (self.buffers,))
            if not self.selector.get_map():
                raise CheckFailed('driver closed its pipes (exit code %r); received: %r'
                                  % (self.proc.poll(), self.buffers))
            for key, _ in self.selector.select(remaining):
                data = os.read(key.fd, 65536)
                if data:
                    self.buffers[key.data] += data
                else:
                    self.selector.unregister(key.fd)

    def _read_response_line(self, deadline):
        self._pump(deadline, lambda: b'\n' in self.buffers['response'])
        line, self.buffers['response'] = self.buffers['response'].split(b'\n', 1)
        return json.loads(line)

    def _take_until(self, stream, marker):
        before, self.buffers[stream] = self.buffers[stream].split(marker, 1)
        return before.decode('utf-8', 'replace')

    def send(self, code, language, clear_context=False):
        """Send a request; return its id."""
        request_id = self.next_id
        self.next_id += 1
        self.send_line(json.dumps({'id': request_id, 'code': code, 'language': language,
                                   'clear_context': clear_context}))
        return request_id

    def send_line(self, line):
        os.write(self.request_fd, line.encode('utf-8') + b'\n')

    def receive(self, request_id, timeout=10):
        """Wait for a call's output on stdout and stderr (up to the sentinel) and its response."""
        deadline = time.monotonic() + timeout
        stdout = stderr = ''
        if request_id is not None:
            marker = ('\x1e%s:%d\x1e' % (self.token, request_id)).encode()
            self._pump(deadline, lambda: marker in self.buffers['stdout'] and marker in self.buffers['stderr'])
            stdout = self._take_until('stdout', marker)
            stderr = self._take_until('stderr', marker)
        response = self._read_response_line(deadline)
        expect_eq(response.get('id'), request_id, 'response id')
        return Reply(response, stdout, stderr)

    def call(self, code, language, clear_context=False, timeout=10):
        return self.receive(self.send(code, language, clear_context), timeout)

    def interrupt(self):
        os.killpg(self.proc.pid, signal.SIGINT)

    def close(self, timeout=5):
        """Close the request pipe; return the exit code (None if it didn't exit)."""
        os.close(self.request_fd)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.selector.close()
        self.proc.stdout.close()
        self.proc.stderr.close()
        os.close(self.response_fd)


class Runner:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, name):
        """Decorator: run the check right away and record the outcome."""
        def run(fn):
            try:
                fn()
            except Exception as exc:  # CheckFailed, or the check itself broke
                self.failed += 1
                print('FAIL %s: %s: %s' % (name, type(exc).__name__, exc), flush=True)
            else:
                self.passed += 1
                print('PASS %s' % name, flush=True)
        return run

    @staticmethod
    def skip(name, reason):
        print('SKIP %s: %s' % (name, reason), flush=True)


def start(argv, cwd, runner, label):
    try:
        return Driver(argv, cwd)
    except Exception as exc:
        runner.failed += 1
        print('FAIL %s: driver did not start: %s' % (label, exc), flush=True)
        return None


def median_startup_ms(argv, cwd, runs=5):
    times = []
    for _ in range(runs):
        driver = Driver(argv, cwd)
        times.append(driver.startup_ms)
        driver.close()
        driver.kill()
    return statistics.median(times), times


def probe(driver, code, language):
    """The result of a call, or None if it failed."""
    try:
        return driver.call(code, language).result
    except CheckFailed:
        return None


def png_size(data):
    """(width, height) from a PNG's IHDR chunk."""
    return struct.unpack('>II', data[16:24])


def check_python(runner, python, cwd):
    argv = [python, '-u', '-c', (DRIVERS / 'python_driver.py').read_text()]
    d = start(argv, cwd, runner, 'python')
    if d is None:
        return
    py = 'python'

    @runner.check('python: ready line')
    def _():
        expect_eq(d.ready.get('ready'), True, 'ready')
        expect_eq(d.ready.get('pid'), d.proc.pid, 'pid')
        expect(isinstance(d.ready.get('version'), str) and d.ready['version'][:1].isdigit(),
               'version: %r' % (d.ready.get('version'),))

    @runner.check('python: nothing heavy imported at startup')
    def _():
        d.call('import sys\nsorted(m for m in ("asyncio", "inspect", "matplotlib") if m in sys.modules)',
               py).expect_ok('[]')

    @runner.check('python: startup time')
    def _():
        median, times = median_startup_ms(argv, cwd)
        print('     python driver startup (spawn to ready line): median %.1f ms, runs %s'
              % (median, ', '.join('%.1f' % t for t in times)), flush=True)
        expect(median < 150, 'median startup %.1f ms >= 150 ms' % median)

    @runner.check('python: state persists between calls')
    def _():
        d.call('x = 41', py).expect_ok(None)
        d.call('x + 1', py).expect_ok('42')

    @runner.check('python: stdout and stderr before the sentinel')
    def _():
        reply = d.call('import sys\nprint("hello-out")\nprint("hello-err", file=sys.stderr)', py)
        reply.expect_ok(None)
        expect_eq(reply.stdout, 'hello-out\n', 'stdout')
        expect_eq(reply.stderr, 'hello-err\n', 'stderr')

    @runner.check('python: 1 MiB of output all arrives before the sentinel')
    def _():
        reply = d.call('print("y" * (1 << 20))', py)
        reply.expect_ok(None)
        expect_eq(len(reply.stdout), (1 << 20) + 1, 'stdout length')

    @runner.check('python: last expression result')
    def _():
        d.call('"a" * 3', py).expect_ok("'aaa'")
        d.call('y = 1', py).expect_ok(None)
        d.call('None', py).expect_ok(None)
        d.call('print("p")', py).expect_ok(None)
        text = d.call('"x" * 20000', py).result
        expect(text.endswith('... [truncated]') and len(text) == 10000 + len('... [truncated]'),
               'truncated result: %r...' % text[:40])

    @runner.check('python: exception with a traceback of user frames only')
    def _():
        reply = d.call('def f():\n    return 1 / 0\n\nf()', py)
        reply.expect_error('ZeroDivisionError')
        expect_eq(reply.error.get('message'), 'division by zero', 'message')
        tb = reply.error.get('traceback', '')
        expect(tb.startswith('Traceback (most recent call last):'), 'traceback: %r' % tb)
        expect('return 1 / 0' in tb and '<cell-' in tb, 'user line missing: %r' % tb)
        expect('<string>' not in tb and 'python_driver' not in tb, 'driver frames shown: %r' % tb)

    @runner.check('python: SyntaxError shows the offending line')
    def _():
        reply = d.call('y = 1\nz = (1 +', py)
        reply.expect_error('SyntaxError')
        expect('z = (1 +' in reply.error.get('traceback', ''), 'traceback: %r' % reply.error)

    @runner.check('python: SystemExit does not end the driver')
    def _():
        reply = d.call('import sys\nsys.exit(3)', py)
        reply.expect_error('SystemExit')
        expect_eq(reply.error.get('message'), '3', 'message')
        d.call('x', py).expect_ok('41')

    @runner.check('python: SIGINT interrupts a busy loop, state is kept')
    def _():
        request_id = d.send('while True:\n    pass', py)
        time.sleep(0.3)
        d.interrupt()
        reply = d.receive(request_id, timeout=5)
        reply.expect_error('KeyboardInterrupt')
        tb = reply.error.get('traceback', '')
        expect('<cell-' in tb and '<string>' not in tb, 'traceback: %r' % tb)
        d.call('x + 1', py).expect_ok('42')

    @runner.check('python: SIGINTs at random moments never kill the driver')
    def _():
        rng = random.Random(1)
        for _ in range(300):
            request_id = d.send('sum(range(%d))' % rng.choice([1, 1000, 100000]), py)
            time.sleep(rng.random() * 0.002)
            d.interrupt()
            reply = d.receive(request_id, timeout=5)
            expect(reply.response.get('ok') or reply.error.get('name') == 'KeyboardInterrupt',
                   'reply: %r' % reply)
        d.call('x', py).expect_ok('41')

    @runner.check('python: SIGINT while idle is ignored')
    def _():
        d.interrupt()
        time.sleep(0.2)
        expect(d.proc.poll() is None, 'driver exited with %r' % d.proc.poll())
        d.call('x', py).expect_ok('41')

    @runner.check('python: subprocess output arrives before the sentinel')
    def _():
        reply = d.call('import os\nos.system("echo from-child")', py)
        reply.expect_ok('0')
        expect_eq(reply.stdout, 'from-child\n', 'stdout')

    @runner.check('python: subprocesses do not inherit fds 3 and 4')
    def _():
        reply = d.call('import os\nos.system("for f in 3 4; do [ -e /proc/$$/fd/$f ] && echo leaked-$f; done; '
                       'echo checked")', py)
        expect_eq(reply.stdout, 'checked\n', 'stdout')

    @runner.check('python: top-level await')
    def _():
        d.call('import asyncio\nawait asyncio.sleep(0.01)\n5', py).expect_ok('5')

    @runner.check('python: SIGINT during await cancels the cell')
    def _():
        request_id = d.send('import asyncio\nasync def ticker():\n    while True:\n'
                            '        await asyncio.sleep(0.01)\n        print("tick", flush=True)\n'
                            'await ticker()', py)
        time.sleep(0.3)
        d.interrupt()
        d.receive(request_id, timeout=5).expect_error('KeyboardInterrupt')
        reply = d.call('await asyncio.sleep(0.1)', py)
        reply.expect_ok(None)
        expect_eq(reply.stdout, '', 'stdout of the next call (the interrupted cell must not resume)')

    @runner.check('python: input() fails fast')
    def _():
        d.call('input()', py, timeout=5).expect_error('EOFError')

    @runner.check('python: replacing sys.stdout does not break the protocol')
    def _():
        reply = d.call('import io, sys\nsys.stdout = io.StringIO()\nprint("hidden")', py)
        reply.expect_ok(None)
        expect_eq(reply.stdout, '', 'stdout')
        reply = d.call('sys.stdout = sys.__stdout__\nprint("visible")', py)
        expect_eq(reply.stdout, 'visible\n', 'stdout')

    @runner.check('python: user classes pickle (user namespace is __main__)')
    def _():
        d.call('import pickle\nclass P:\n    pass\ntype(pickle.loads(pickle.dumps(P()))).__name__',
               py).expect_ok("'P'")

    @runner.check('python: clear_context resets the namespace, without driver names')
    def _():
        d.call('"x" in globals()', py).expect_ok('True')
        d.call('"x" in globals()', py, clear_context=True).expect_ok('False')
        d.call('sorted(k for k in globals() if not k.startswith("__"))', py).expect_ok('[]')
        d.call('__name__', py).expect_ok("'__main__'")

    @runner.check('python: bad requests get a DriverError and the driver keeps going')
    def _():
        d.call('1', 'ruby').expect_error('DriverError')
        d.send_line('this is not json')
        d.receive(None).expect_error('DriverError')
        d.send_line(json.dumps({'id': 999, 'language': 'python'}))
        d.receive(999).expect_error('DriverError')
        d.call('1 + 1', py).expect_ok('2')

    if probe(d, 'import importlib.util\nimportlib.util.find_spec("matplotlib") is not None', py) != 'True':
        runner.skip('python: matplotlib', 'matplotlib is not importable by %s' % python)
    else:
        @runner.check('python: matplotlib figure becomes one PNG, plt.show() is silent')
        def _():
            reply = d.call('import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [4, 1, 9])\nplt.show()',
                           py, timeout=120)  # the first import may build the font cache
            reply.expect_ok(None)
            images = reply.response.get('images')
            expect_eq(len(images), 1, 'number of images')
            expect_eq(images[0].get('mime_type'), 'image/png', 'mime type')
            expect(base64.b64decode(images[0]['data']).startswith(PNG_MAGIC), 'not a PNG')
            expect('Warning' not in reply.stderr, 'stderr: %r' % reply.stderr)

        @runner.check('python: matplotlib figures are closed after being sent')
        def _():
            reply = d.call('len(plt.get_fignums())', py)
            reply.expect_ok('0')
            expect_eq(reply.response.get('images'), [], 'images')

        @runner.check('python: at most 8 images, the rest reported on stderr')
        def _():
            reply = d.call('for i in range(10):\n    plt.figure()\n    plt.plot([i, 0])', py, timeout=60)
            expect_eq(len(reply.response.get('images')), 8, 'number of images')
            expect('2 more figure' in reply.stderr, 'stderr: %r' % reply.stderr)

        @runner.check('python: large figures are rendered at <= 1.5 megapixels')
        def _():
            reply = d.call('plt.figure(figsize=(40, 30))\nplt.plot([1, 2])', py, timeout=60)
            width, height = png_size(base64.b64decode(reply.response['images'][0]['data']))
            expect(width * height <= 1500000, 'image is %dx%d' % (width, height))

    @runner.check('python: EOF on the request pipe exits with 0')
    def _():
        expect_eq(d.close(), 0, 'exit code')

    d.kill()


def check_node(runner, node, cwd):
    argv = [node, '-e', (DRIVERS / 'node_driver.js').read_text()]
    d = start(argv, cwd, runner, 'node')
    if d is None:
        return
    js = 'javascript'

    @runner.check('node: ready line')
    def _():
        expect_eq(d.ready.get('ready'), True, 'ready')
        expect_eq(d.ready.get('pid'), d.proc.pid, 'pid')
        expect(str(d.ready.get('version')).startswith('v'), 'version: %r' % (d.ready.get('version'),))

    @runner.check('node: startup time')
    def _():
        median, times = median_startup_ms(argv, cwd)
        print('     node %s driver startup (spawn to ready line): median %.1f ms, runs %s'
              % (d.ready.get('version'), median, ', '.join('%.1f' % t for t in times)), flush=True)
        expect(median < 1000, 'median startup %.1f ms >= 1000 ms' % median)

    @runner.check('node: state persists between calls (let, function)')
    def _():
        d.call('let x = 41', js).expect_ok(None)
        d.call('x + 1', js).expect_ok('42')
        d.call('function twice(n) { return 2 * n; }', js).expect_ok(None)
        d.call('twice(x)', js).expect_ok('82')

    @runner.check('node: stdout and stderr before the sentinel')
    def _():
        reply = d.call('console.log("hello-out"); console.error("hello-err")', js)
        reply.expect_ok(None)
        expect_eq(reply.stdout, 'hello-out\n', 'stdout')
        expect_eq(reply.stderr, 'hello-err\n', 'stderr')

    @runner.check('node: 1 MiB of output all arrives before the sentinel')
    def _():
        reply = d.call('console.log("y".repeat(1 << 20))', js)
        expect_eq(len(reply.stdout), (1 << 20) + 1, 'stdout length')

    @runner.check('node: last expression result')
    def _():
        d.call('"a".repeat(3)', js).expect_ok("'aaa'")
        d.call('({ a: [1, 2] })', js).expect_ok('{ a: [ 1, 2 ] }')
        d.call('undefined', js).expect_ok(None)
        text = d.call('"x".repeat(20000)', js).result
        expect(text.endswith('... [truncated]') and len(text) == 10000 + len('... [truncated]'),
               'truncated result: %r...' % text[:40])

    @runner.check('node: exception with a traceback of user frames only')
    def _():
        reply = d.call('function f() {\n  return null.boom;\n}\nf()', js)
        reply.expect_error('TypeError')
        expect('boom' in reply.error.get('message', ''), 'message: %r' % reply.error)
        tb = reply.error.get('traceback', '')
        expect('return null.boom' in tb and 'cell-' in tb, 'user line missing: %r' % tb)
        expect('[eval]' not in tb and 'node:vm' not in tb, 'driver frames shown: %r' % tb)

    @runner.check('node: SyntaxError')
    def _():
        reply = d.call('let y = (1 +', js)
        reply.expect_error('SyntaxError')
        expect('cell-' in reply.error.get('traceback', ''), 'traceback: %r' % reply.error)

    @runner.check('node: redeclaring a let is an ordinary error')
    def _():
        d.call('let x = 1', js).expect_error('SyntaxError')
        d.call('x', js).expect_ok('41')

    @runner.check('node: SIGINT interrupts a busy loop, state is kept')
    def _():
        request_id = d.send('while (true) {}', js)
        time.sleep(0.3)
        d.interrupt()
        reply = d.receive(request_id, timeout=5)
        expect(reply.response.get('ok') is False and 'interrupted' in reply.error.get('message', ''),
               'reply: %r' % reply)
        d.call('x', js).expect_ok('41')

    @runner.check('node: SIGINT while idle is ignored')
    def _():
        d.interrupt()
        time.sleep(0.2)
        expect(d.proc.poll() is None, 'driver exited with %r' % d.proc.poll())
        d.call('x', js).expect_ok('41')

    @runner.check('node: SIGINT while awaiting abandons the cell')
    def _():
        request_id = d.send('await new Promise(() => {})', js)
        time.sleep(0.3)
        d.interrupt()
        reply = d.receive(request_id, timeout=5)
        expect(reply.response.get('ok') is False and 'interrupted' in reply.error.get('message', ''),
               'reply: %r' % reply)
        d.call('x', js).expect_ok('41')

    @runner.check('node: subprocess output arrives before the sentinel')
    def _():
        reply = d.call('require("child_process").execSync("echo from-child", { stdio: "inherit" }); 0', js)
        reply.expect_ok('0')
        expect_eq(reply.stdout, 'from-child\n', 'stdout')

    @runner.check('node: top-level await')
    def _():
        d.call('await new Promise((r) => setTimeout(r, 10)); 7', js).expect_ok('7')
        d.call('const r = await Promise.resolve(3);\nr * 2;', js).expect_ok('6')
        d.call('const a = await 1\na\n  + 1', js).expect_ok('2')  # the last statement spans two lines

    @runner.check('node: a promise result is awaited')
    def _():
        d.call('Promise.resolve(9)', js).expect_ok('9')
        d.call('Promise.reject(new RangeError("nope"))', js).expect_error('RangeError')

    @runner.check('node: errors in async callbacks do not kill the driver')
    def _():
        first = d.call('setTimeout(() => { throw new Error("boom-async"); }, 0);\n'
                       'Promise.reject(new Error("rejected-async"));\n1', js)
        first.expect_ok('1')
        second = d.call('await new Promise((r) => setTimeout(r, 50)); "alive"', js)
        second.expect_ok("'alive'")
        stderr = first.stderr + second.stderr
        expect('boom-async' in stderr and 'rejected-async' in stderr, 'stderr: %r' % stderr)

    @runner.check('node: require and __dirname are available')
    def _():
        d.call('require("fs").existsSync(__dirname) && __dirname === process.cwd()', js).expect_ok('true')

    @runner.check('node: bad requests get a DriverError and the driver keeps going')
    def _():
        d.call('1', 'python').expect_error('DriverError')
        d.send_line('this is not json')
        d.receive(None).expect_error('DriverError')
        d.call('1 + 1', js).expect_ok('2')

    if probe(d, 'typeof require("node:module").stripTypeScriptTypes === "function"', js) == 'true':
        @runner.check('node: TypeScript')
        def _():
            d.call('const n: number = 5; n * 2', 'typescript').expect_ok('10')
            d.call('interface P { a: number }\nconst shared: P = { a: 1 };', 'typescript').expect_ok(None)
            d.call('shared.a', js).expect_ok('1')
    else:
        runner.skip('node: TypeScript', 'node %s lacks module.stripTypeScriptTypes' % d.ready.get('version'))

        @runner.check('node: TypeScript unavailable is reported')
        def _():
            reply = d.call('const n: number = 5', 'typescript')
            reply.expect_error('TypeScriptUnavailable')
            expect('--node' in reply.error.get('message', ''), 'message: %r' % reply.error)

    @runner.check('node: EOF on the request pipe exits with 0')
    def _():
        expect_eq(d.close(), 0, 'exit code')

    d.kill()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--python', default=sys.executable, help='Python to run the driver with')
    parser.add_argument('--node', default=shutil.which('node'), help='Node.js to run the driver with')
    args = parser.parse_args()
    runner = Runner()
    with tempfile.TemporaryDirectory(prefix='driver-check-') as cwd:
        check_python(runner, args.python, cwd)
        if args.node:
            check_node(runner, args.node, cwd)
        else:
            runner.skip('node', 'no node on PATH and no --node given')
    print('%d passed, %d failed' % (runner.passed, runner.failed))
    return 1 if runner.failed else 0


if __name__ == '__main__':
    sys.exit(main())
