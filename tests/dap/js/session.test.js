'use strict';
// The session's edges: what `initialize` announces, launches that cannot start, and the end of
// a tree that completes.

const assert = require('node:assert/strict');
const { PATROL_YAML, ROOT, launchConfigured, scenario } = require('./support');

scenario('initialize announces the capabilities of the adapter', async (dc) => {
  const response = await dc.initializeRequest();
  const capabilities = response.body;
  for (const name of [
    'supportsConfigurationDoneRequest',
    'supportsFunctionBreakpoints',
    'supportsConditionalBreakpoints',
    'supportsHitConditionalBreakpoints',
    'supportsLogPoints',
    'supportsDataBreakpoints',
    'supportsBreakpointLocationsRequest',
    'supportsSetVariable',
    'supportsStepBack',
    'supportsExceptionInfoRequest',
    'supportsTerminateRequest',
  ]) {
    assert.equal(capabilities[name], true, `capability ${name}`);
  }
  const filters = capabilities.exceptionBreakpointFilters;
  assert.deepEqual(
    filters.map((f) => [f.filter, f.default]),
    [
      ['raised', true],
      ['failed', false],
    ],
  );
  for (const filter of filters) {
    assert.ok(filter.label, `filter ${filter.filter} has a label`);
  }
});

scenario('a launch without a program fails with a readable message', async (dc) => {
  await assert.rejects(dc.launch({ cwd: ROOT }), (error) => {
    assert.match(error.message, /program/);
    assert.match(error.message, /required/);
    return true;
  });
  // The session goes on: later launches on the same connection fail just as readably.
  await assert.rejects(dc.launchRequest({ program: 'tests/no-such-tree.yaml', cwd: ROOT }), (error) => {
    assert.match(error.message, /cannot be loaded/);
    assert.match(error.message, /no-such-tree\.yaml/);
    assert.match(error.message, /not found/);
    return true;
  });
  await assert.rejects(dc.launchRequest({ program: PATROL_YAML, mode: 'sometimes' }), /mode/);
});

scenario('a tree that completes ends with exited and terminated', async (dc) => {
  // The YAML patrol tree succeeds on its second tick (go_to_a takes two steps).
  const exited = dc.waitForEvent('exited');
  const terminated = dc.waitForEvent('terminated');
  await launchConfigured(dc, { program: PATROL_YAML, cwd: ROOT });
  assert.equal((await exited).body.exitCode, 0);
  await terminated;
});
