# Python driver for the local backend: a long-lived interpreter that runs code
# cells sent by the server and keeps their state between calls.
#
# Launched as `python3 -u -c <this file>` (so it runs as __main__ with the
# filename "<string>") with:
#   fd 0 = /dev/null, fd 1/2 = user output pipes,
#   fd 3 = requests (server -> driver), fd 4 = responses (driver -> server),
#   CI_DRIVER_SENTINEL = token that ends each call's output on fd 1 and fd 2.
# Protocol: newline-delimited JSON. The driver writes a ready line on fd 4,
# then for each request line on fd 3 runs the code, writes the sentinel
# "\x1e<token>:<id>\x1e" to fd 1 and fd 2, and writes one response line on fd 4.
#
# Startup must be fast: only builtin or already-loaded modules are imported
# before the ready line; everything else is imported after it or lazily.
import binascii
import builtins
import io
import os
import signal
import sys
import time

_REQUEST_FD = 3
_RESPONSE_FD = 4
_SENTINEL = os.environ.pop('CI_DRIVER_SENTINEL', '')  # user code doesn't need it
_MAX_RESULT_CHARS = 10000
_MAX_IMAGES = 8
_MAX_IMAGE_PIXELS = 1500000
_CO_COROUTINE = 0x80  # inspect.CO_COROUTINE, without importing inspect
# matplotlib's warning when plt.show() is called on the Agg backend
# (wording before and since matplotlib 3.8).
_SHOW_WARNING = '.*(non-interactive|non-GUI backend)'

_DRIVER_GLOBALS = globals()
_running_user_code = False
_event_loop = None  # asyncio loop for top-level await, created on first use


def _on_sigint(signum, frame):
    # Interrupt only user code. While idle, or while the driver's own frame is
    # executing (just before/after user code), the signal is dropped, so a
    # KeyboardInterrupt can never escape into the driver's request handling.
    if _running_user_code and (frame is None or frame.f_globals is not _DRIVER_GLOBALS):
        raise KeyboardInterrupt


def _interruptibly(fn, *args):
    """Call fn(*args) with SIGINT turned into KeyboardInterrupt (see _on_sigint)."""
    global _running_user_code
    _running_user_code = True
    try:
        return fn(*args)
    finally:
        _running_user_code = False


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _flush(*streams):
    # User code may have replaced or closed sys.stdout/sys.stderr: ignore failures.
    for stream in streams:
        try:
            stream.flush()
        except Exception:
            pass


def _note(message):
    """Tell the user something on stderr, after whatever they already wrote there."""
    _flush(sys.stderr, sys.__stderr__)
    try:
        _write_all(2, ('[python driver] %s\n' % message).encode('utf-8', 'replace'))
    except OSError:
        pass


def _new_namespace():
    # A fresh module installed as __main__, so that pickle and friends find
    # classes and functions defined by user code.
    module = type(sys)('__main__')
    module.__builtins__ = builtins
    sys.modules['__main__'] = module
    return module.__dict__


def _run_coroutine(coro):
    global _event_loop
    import asyncio
    if _event_loop is None:
        _event_loop = asyncio.new_event_loop()
    asyncio.set_event_loop(_event_loop)  # user code may have run asyncio.run(), which unsets it
    task = _event_loop.create_task(coro)
    try:
        return _event_loop.run_until_complete(task)
    except BaseException:
        if not task.done():
            # Interrupted while the loop was waiting: cancel the cell so it
            # doesn't resume in the background during later calls.
            task.cancel()
            try:
                _event_loop.run_until_complete(task)
            except BaseException:
                pass
        elif not task.cancelled():
            task.exception()  # mark it retrieved: no "exception was never retrieved" log
        raise


def _run_code(code, namespace):
    if code.co_flags & _CO_COROUTINE:  # the cell uses top-level await
        return _run_coroutine(eval(code, namespace))
    return eval(code, namespace)


def _run_cell(source, filename, namespace):
    """Run source like a notebook cell; return the value of a trailing expression, else None."""
    tree = ast.parse(source, filename)
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = compile(ast.Expression(tree.body.pop().value), filename, 'eval', ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    body = compile(tree, filename, 'exec', ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    _run_code(body, namespace)
    return None if last is None else _run_code(last, namespace)


def _repr(value):
    text = repr(value)
    if len(text) > _MAX_RESULT_CHARS:
        text = text[:_MAX_RESULT_CHARS] + '... [truncated]'
    return text


def _user_traceback(tb):
    """The traceback without the driver's frames (the caller of the user's code
    and the SIGINT handler), starting at the first cell frame if there is one:
    frames above it are the machinery that ran the cell, e.g. asyncio."""
    entries = []
    while tb is not None:
        if tb.tb_frame.f_globals is not _DRIVER_GLOBALS:
            entries.append(tb)
        tb = tb.tb_next
    for i, entry in enumerate(entries):
        if entry.tb_frame.f_code.co_filename.startswith('<cell-'):
            entries = entries[i:]
            break
    for entry, following in zip(entries, entries[1:] + [None]):
        entry.tb_next = following
    return entries[0] if entries else None


def _describe(exc, filename):
    try:
        message = str(exc.code if isinstance(exc, SystemExit) else exc)
    except Exception:  # a user-defined __str__ failed
        message = '<exception str() failed>'
    if isinstance(exc, SyntaxError) and exc.filename == filename:
        tb = None  # the cell didn't compile: only the offending line is relevant
    else:
        tb = _user_traceback(exc.__traceback__)
    text = ''.join(traceback.format_exception(type(exc), exc, tb))
    return {'name': type(exc).__name__, 'message': message, 'traceback': text}


def _render_png(figure):
    width, height = figure.get_size_inches()
    dpi = figure.dpi
    if width * height > 0:
        dpi = min(dpi, (_MAX_IMAGE_PIXELS / (width * height)) ** 0.5)
    buffer = io.BytesIO()
    figure.savefig(buffer, format='png', dpi=dpi, bbox_inches='tight')
    data = binascii.b2a_base64(buffer.getvalue(), newline=False).decode('ascii')
    return {'mime_type': 'image/png', 'data': data}


def _collect_figures():
    """Render the open matplotlib figures to PNG and close them all."""
    plt = sys.modules.get('matplotlib.pyplot')  # never import it ourselves
    if plt is None:
        return []
    images = []
    try:
        numbers = plt.get_fignums()
        for number in numbers[:_MAX_IMAGES]:
            try:
                images.append(_interruptibly(_render_png, plt.figure(number)))
            except BaseException as exc:
                _note('figure %s could not be rendered: %s: %s' % (number, type(exc).__name__, exc))
        if len(numbers) > _MAX_IMAGES:
            _note('%d more figure(s) not shown: at most %d images per call'
                  % (len(numbers) - _MAX_IMAGES, _MAX_IMAGES))
        plt.close('all')
    except Exception as exc:
        _note('collecting matplotlib figures failed: %s: %s' % (type(exc).__name__, exc))
    return images


def _write_sentinels(request_id):
    _flush(sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)
    marker = ('\x1e%s:%d\x1e' % (_SENTINEL, request_id)).encode('utf-8')
    for fd in (1, 2):
        try:
            # A child process may have left the shared pipe non-blocking.
            os.set_blocking(fd, True)
            _write_all(fd, marker)
        except OSError:
            pass


def _respond(request_id, ok, result, error, images, started):
    line = json.dumps({
        'id': request_id,
        'ok': ok,
        'result': result,
        'error': error,
        'images': images,
        'duration_ms': (time.perf_counter() - started) * 1000.0,
    }, ensure_ascii=False)
    # 'replace' turns lone surrogates (from user strings) into '?': the line must be valid UTF-8.
    _write_all(_RESPONSE_FD, (line + '\n').encode('utf-8', 'replace'))


class _BadRequest(ValueError):
    def __init__(self, message, request_id=None):
        ValueError.__init__(self, message)
        self.request_id = request_id


def _parse_request(line):
    """Return (id, request); raise ValueError when the request is malformed."""
    request = json.loads(line)
    if not isinstance(request, dict):
        raise _BadRequest('request is not a JSON object')
    request_id = request.get('id')
    if not isinstance(request_id, int) or isinstance(request_id, bool):
        raise _BadRequest('request "id" must be an integer')
    if not isinstance(request.get('code'), str):
        raise _BadRequest('request "code" must be a string', request_id)
    if request.get('language') != 'python':
        raise _BadRequest('unsupported language %r: this driver runs python'
                          % (request.get('language'),), request_id)
    return request_id, request


def _handle(line, namespace):
    """Serve one request line; return the (possibly reset) user namespace."""
    started = time.perf_counter()
    try:
        request_id, request = _parse_request(line)
    except ValueError as exc:  # includes JSON and UTF-8 decoding errors
        request_id = getattr(exc, 'request_id', None)
        if request_id is not None:
            _write_sentinels(request_id)
        error = {'name': 'DriverError', 'message': 'bad request: %s' % exc, 'traceback': ''}
        _respond(request_id, False, None, error, [], started)
        return namespace

    if request.get('clear_context'):
        namespace = _new_namespace()
        plt = sys.modules.get('matplotlib.pyplot')
        if plt is not None:
            plt.close('all')
    # plt.show() is a no-op on Agg; figures are sent after the call instead.
    warnings.filterwarnings('ignore', message=_SHOW_WARNING)

    source = request['code']
    filename = '<cell-%d>' % request_id
    # Registered so that tracebacks show the cell's source lines.
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    result = error = None
    try:
        value = _interruptibly(_run_cell, source, filename, namespace)
        if value is not None:
            result = _interruptibly(_repr, value)
    except BaseException as exc:  # SystemExit and KeyboardInterrupt included
        error = _describe(exc, filename)
    images = _collect_figures()
    _write_sentinels(request_id)
    _respond(request_id, error is None, result, error, images, started)
    return namespace


def _serve():
    namespace = _new_namespace()
    for line in os.fdopen(_REQUEST_FD, 'rb'):
        if line.strip():
            namespace = _handle(line, namespace)
    # EOF: the server is done with us. os._exit, so that threads left running
    # by user code can't keep the process alive.
    _flush(sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)
    os._exit(0)


# User subprocesses must not inherit the protocol pipes.
os.set_inheritable(_REQUEST_FD, False)
os.set_inheritable(_RESPONSE_FD, False)
signal.signal(signal.SIGINT, _on_sigint)
_write_all(_RESPONSE_FD, ('{"ready": true, "pid": %d, "version": "%d.%d.%d"}\n'
                          % ((os.getpid(),) + tuple(sys.version_info[:3]))).encode('ascii'))

# Needed by every request; imported after the ready line so that the import
# time overlaps with the server's own work instead of delaying startup.
import ast  # noqa: E402
import json  # noqa: E402
import linecache  # noqa: E402
import traceback  # noqa: E402
import warnings  # noqa: E402

_serve()
