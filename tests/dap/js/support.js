'use strict';
// Shared set-up for the DebugClient scenarios: where the adapter and the trees are, one adapter
// process per test (over stdio, spawned by DebugClient itself), and a transcript of every DAP
// message exchanged, appended to the error of a failing test.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { test } = require('node:test');
const { DebugClient } = require('@vscode/debugadapter-testsupport');

const ROOT = path.resolve(__dirname, '..', '..', '..');
const TREES = path.join(ROOT, 'tests', 'server', 'runtime', 'trees');
const PATROL_YAML = path.join(TREES, 'patrol.yaml');
const FACTORIES_PY = path.join(ROOT, 'tests', 'server', 'runtime', 'factories.py');
const PATROL_FACTORY = 'tests.server.runtime.factories:patrol';

const EVENT_TIMEOUT_MS = 15000; // DebugClient's waitForEvent (its default, 5 s, is tight on CI)
const TEST_TIMEOUT_MS = 45000;
const STOP_TIMEOUT_MS = 5000;

/** The `canopy` console script: $CANOPY_DAP_EXECUTABLE (set by tests/dap/test_debugclient.py to
 * the one next to the Python running pytest), else the repository's .venv. */
function canopyExecutable() {
  if (process.env.CANOPY_DAP_EXECUTABLE) {
    return process.env.CANOPY_DAP_EXECUTABLE;
  }
  return process.platform === 'win32'
    ? path.join(ROOT, '.venv', 'Scripts', 'canopy.exe')
    : path.join(ROOT, '.venv', 'bin', 'canopy');
}

/** 1-based number of the first line of `file` at or after `from` that matches `pattern`. */
function lineOf(file, pattern, from = 1) {
  const lines = fs.readFileSync(file, 'utf8').split(/\r?\n/);
  for (let i = from - 1; i < lines.length; i++) {
    if (typeof pattern === 'string' ? lines[i].includes(pattern) : pattern.test(lines[i])) {
      return i + 1;
    }
  }
  throw new Error(`${path.basename(file)}: no line matches ${pattern} from line ${from}`);
}

/** In a YAML tree, the line of the node named `name`: its mapping starts at its `type:` key, the
 * nearest one above the `name:` line (that is where canopy puts a node, and where line
 * breakpoints land). */
function yamlNodeLine(file, name) {
  const lines = fs.readFileSync(file, 'utf8').split(/\r?\n/);
  // Indented: the top-level `name:` is the tree's, not a node's.
  const nameLine = lines.findIndex((l) => new RegExp(`^\\s+(- )?name:\\s*${name}\\s*$`).test(l));
  assert.ok(nameLine >= 0, `no node named ${name} in ${file}`);
  for (let i = nameLine; i >= 0; i--) {
    if (/^\s*(- )?type:/.test(lines[i])) {
      return i + 1;
    }
  }
  throw new Error(`node ${name} has no type: line`);
}

// Adapters not stopped yet: if the test process ends abruptly (a test timing out with requests
// still pending), their processes and folders go with it.
const live = new Set();
process.on('exit', () => {
  for (const adapter of live) {
    adapter.kill();
  }
});

/** A DebugClient on a fresh `canopy dap` whose event log lives in a temporary folder. */
class Adapter {
  constructor() {
    this.dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'canopy-debugclient-'));
    live.add(this);
    this.transcript = [];
    // DebugClient spawns `runtime executable`: exactly one argument after the program, so the
    // data folder goes through CANOPY_DATABASE_URL (which `canopy dap` prefers to --data-dir).
    this.dc = new DebugClient(canopyExecutable(), 'dap', 'canopy', {
      cwd: ROOT,
      env: {
        ...process.env,
        CANOPY_DATABASE_URL: `sqlite:///${path.join(this.dataDir, 'events.db')}`,
        PYTHONUNBUFFERED: '1',
      },
    });
    this.dc.defaultTimeout = EVENT_TIMEOUT_MS;
    this._record();
  }

  /** Keep every message in order (both directions), for failure reports and ordering checks. */
  _record() {
    const dc = this.dc;
    const send = dc.doSend.bind(dc);
    dc.doSend = (command, args, callback) => {
      this.transcript.push({ dir: '->', message: { type: 'request', command, arguments: args } });
      send(command, args, callback);
    };
    const dispatch = dc.dispatch.bind(dc);
    dc.dispatch = (body) => {
      let message;
      try {
        message = JSON.parse(body);
      } catch {
        message = { unparsable: body };
      }
      this.transcript.push({ dir: '<-', message });
      dispatch(body);
    };
  }

  async start() {
    await this.dc.start();
    this.process = this.dc._adapterProcess;
    this.exited = new Promise((resolve) => {
      if (this.process.exitCode !== null || this.process.signalCode !== null) {
        resolve();
      } else {
        this.process.once('exit', resolve);
      }
    });
    this.process.stderr.on('data', (data) => {
      this.transcript.push({ dir: 'stderr', message: String(data) });
    });
  }

  /** disconnect (bounded), then make sure the process is gone before deleting its folder. */
  async stop() {
    if (this.process) {
      let timer;
      const timeout = new Promise((resolve) => {
        timer = setTimeout(resolve, STOP_TIMEOUT_MS);
      });
      await Promise.race([this.dc.stop(), timeout]);
      clearTimeout(timer);
      this.dc.stopAdapter();
      if (this.process.exitCode === null && this.process.signalCode === null) {
        this.process.kill('SIGKILL');
      }
      await this.exited;
    }
    fs.rmSync(this.dataDir, { recursive: true, force: true });
    live.delete(this);
  }

  /** End the adapter at once (a test that timed out never reaches its `stop`). */
  kill() {
    if (this.process && this.process.exitCode === null && this.process.signalCode === null) {
      this.process.kill('SIGKILL');
    }
    fs.rmSync(this.dataDir, { recursive: true, force: true });
    live.delete(this);
  }

  /** The transcript as text, one message a line. */
  dump() {
    return this.transcript
      .map(({ dir, message }) =>
        dir === 'stderr' ? `   ${message.trimEnd()}` : `${dir} ${JSON.stringify(message)}`,
      )
      .join('\n');
  }

  /** Index in the transcript of the first message matching `predicate`, or -1. */
  indexOf(predicate) {
    return this.transcript.findIndex(({ dir, message }) => dir !== 'stderr' && predicate(message));
  }
}

/** A test with its own adapter, started before and stopped after `body(dc, adapter, t)`; a
 * failure carries the DAP transcript. */
function scenario(name, options, body) {
  if (typeof options === 'function') {
    body = options;
    options = {};
  }
  test(name, { timeout: TEST_TIMEOUT_MS, ...options }, async (t) => {
    const adapter = new Adapter();
    // Aborted when the test times out (and when it ends): nothing may outlive it.
    t.signal.addEventListener('abort', () => adapter.kill(), { once: true });
    try {
      await adapter.start();
      await body(adapter.dc, adapter, t);
    } catch (error) {
      const transcript = `\n--- DAP messages (-> to the adapter, <- from it) ---\n${adapter.dump()}`;
      if (error instanceof Error) {
        // The reporter prints the stack, which already holds the message (assert formats it
        // when the error is made): add the transcript to both.
        const stack = String(error.stack);
        error.message = `${error.message}${transcript}`;
        error.stack = `${stack}${transcript}`;
        throw error;
      }
      throw new Error(`${error}${transcript}`);
    } finally {
      await adapter.stop();
    }
  });
}

// -- small DAP helpers ------------------------------------------------------------------------

/** Start a launch the way VS Code does: launch, and on `initialized` send the configuration
 * (`configure(dc)`: breakpoints, exception filters...) and configurationDone. Resolves with the
 * launch response once both are done. Listens for `initialized` before sending anything. */
async function launchConfigured(dc, launchArgs, configure = async () => {}) {
  const [, launched] = await Promise.all([
    dc.waitForEvent('initialized').then(async () => {
      await configure(dc);
      await dc.configurationDoneRequest();
    }),
    dc.launch(launchArgs),
  ]);
  return launched;
}

/** The top frame's scopes by name. */
async function scopesOf(dc, frameId) {
  const response = await dc.scopesRequest({ frameId });
  return Object.fromEntries(response.body.scopes.map((scope) => [scope.name, scope]));
}

/** Variables of a reference, as {name: value}. */
async function valuesOf(dc, variablesReference) {
  const response = await dc.variablesRequest({ variablesReference });
  return Object.fromEntries(response.body.variables.map((v) => [v.name, v.value]));
}

/** The stack of thread 1 as node names (frame names are "name [Kind] STATUS"). */
function nodeNames(stackTrace) {
  return stackTrace.body.stackFrames.map((frame) => frame.name.split(' ')[0]);
}

/** Send a resume request and check the stop that follows (listening before sending). */
async function stepTo(dc, request, reason, location) {
  const [, stack] = await Promise.all([
    request({ threadId: 1 }),
    dc.assertStoppedLocation(reason, location),
  ]);
  return stack;
}

module.exports = {
  FACTORIES_PY,
  PATROL_FACTORY,
  PATROL_YAML,
  ROOT,
  launchConfigured,
  lineOf,
  nodeNames,
  scenario,
  scopesOf,
  stepTo,
  valuesOf,
  yamlNodeLine,
};
