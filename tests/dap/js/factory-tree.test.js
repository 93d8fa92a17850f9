'use strict';
// The Python factory tree tests.server.runtime.factories:patrol: patrol (Repeat) > round
// (Sequence): check_battery, move (RUNNING once), drain (-30). A round takes two ticks, so drain
// runs on ticks 2, 4, 6... From 50 the battery goes to 20, then -10, and check_battery raises on
// tick 5. Nodes of a Python tree are located at the line of their class.

const assert = require('node:assert/strict');
const {
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
} = require('./support');

const classLine = (name) => lineOf(FACTORIES_PY, new RegExp(`^class ${name}\\b`));

/** Blackboard and Tick of the top frame, as {name: value}. */
async function stateOf(dc, stack) {
  const scopes = await scopesOf(dc, stack.body.stackFrames[0].id);
  return {
    board: await valuesOf(dc, scopes.Blackboard.variablesReference),
    tick: await valuesOf(dc, scopes.Tick.variablesReference),
    scopes,
  };
}

scenario('the raised exception filter stops where a behaviour raises', async (dc) => {
  // The top frame is the line of the behaviour's code that raised, above the node frames.
  const raising = lineOf(FACTORIES_PY, 'raise ValueError(', classLine('CheckBattery'));
  const stopped = dc.assertStoppedLocation('exception', { path: FACTORIES_PY, line: raising });
  await launchConfigured(
    dc,
    { program: PATROL_FACTORY, mode: 'auto', blackboard: { battery: 50 }, cwd: ROOT },
    async () => {
      const filters = await dc.setExceptionBreakpointsRequest({ filters: ['raised'] });
      assert.equal(filters.success, true);
    },
  );
  const stack = await stopped;
  assert.deepEqual(nodeNames(stack), ['CheckBattery.update', 'check_battery', 'round', 'patrol']);
  const { board, tick, scopes } = await stateOf(dc, stack);
  assert.deepEqual(board, { battery: '-10' });
  assert.equal(tick.tick, '5');
  assert.equal((await valuesOf(dc, scopes.Locals.variablesReference)).level, '-10');

  const info = await dc.exceptionInfoRequest({ threadId: 1 });
  assert.match(info.body.exceptionId, /ValueError/);
  assert.equal(info.body.description, 'battery level -10 is negative');
  // The user's own line first, not Canopy's engine.
  const [first] = info.body.details.stackTrace.split('\n');
  assert.equal(first, `  File "${FACTORIES_PY}", line ${raising}, in CheckBattery.update`);

  // The behaviour failed, so the tree fails and the execution ends.
  const terminated = dc.waitForEvent('terminated');
  await dc.continueRequest({ threadId: 1 });
  await terminated;
});

scenario('the failed exception filter stops on a node that returns FAILURE', async (dc) => {
  // In the YAML patrol tree battery_low fails on the first tick (0.8 is not below 0.3).
  const batteryLow = yamlNodeLine(PATROL_YAML, 'battery_low');
  const stopped = dc.assertStoppedLocation('exception', { path: PATROL_YAML, line: batteryLow });
  await launchConfigured(dc, { program: PATROL_YAML, cwd: ROOT }, () =>
    dc.setExceptionBreakpointsRequest({ filters: ['failed'] }),
  );
  const stack = await stopped;
  assert.match(stack.body.stackFrames[0].name, /^battery_low .*FAILURE/);
  const info = await dc.exceptionInfoRequest({ threadId: 1 });
  assert.equal(info.body.exceptionId, 'NodeFailed');
  await dc.setExceptionBreakpointsRequest({ filters: [] });
  const terminated = dc.waitForEvent('terminated');
  await dc.continueRequest({ threadId: 1 });
  await terminated;
});

const TIME_TRAVEL = 'stepBack and reverseContinue show the recorded past; continue returns to the live tree';
scenario(TIME_TRAVEL, async (dc) => {
  const drain = { path: FACTORIES_PY, line: classLine('Drain') };
  const first = dc.assertStoppedLocation('breakpoint', drain);
  await launchConfigured(
    dc,
    { program: PATROL_FACTORY, blackboard: { battery: 100 }, cwd: ROOT },
    async () => {
      const set = await dc.setBreakpointsRequest({
        source: { path: FACTORIES_PY },
        breakpoints: [{ line: drain.line }],
      });
      assert.equal(set.body.breakpoints[0].verified, true);
      assert.equal(set.body.breakpoints[0].line, drain.line);
    },
  );
  let stack = await first;
  let state = await stateOf(dc, stack);
  assert.deepEqual([state.tick.tick, state.board.battery], ['2', '100']);

  stack = await stepTo(dc, (a) => dc.continueRequest(a), 'breakpoint', drain);
  state = await stateOf(dc, stack);
  assert.deepEqual([state.tick.tick, state.board.battery], ['4', '70']);

  // One step back: the end of tick 3, recorded (read-only).
  stack = await stepTo(dc, (a) => dc.stepBackRequest(a), 'step', {});
  state = await stateOf(dc, stack);
  assert.deepEqual([state.tick.tick, state.tick.past], ['3', 'True']);
  assert.equal(stack.body.stackFrames[0].presentationHint, 'subtle');
  await assert.rejects(
    dc.setVariableRequest({
      variablesReference: state.scopes.Blackboard.variablesReference,
      name: 'battery',
      value: '5',
    }),
    /past is read-only/,
  );

  // Two more: the end of tick 1, before the first drain.
  await stepTo(dc, (a) => dc.stepBackRequest(a), 'step', {});
  stack = await stepTo(dc, (a) => dc.stepBackRequest(a), 'step', {});
  state = await stateOf(dc, stack);
  assert.deepEqual([state.tick.tick, state.board.battery, state.tick.past], ['1', '100', 'True']);

  // continue leaves the past and resumes the live tree (stopped at tick 4): next drain on tick 6.
  stack = await stepTo(dc, (a) => dc.continueRequest(a), 'breakpoint', drain);
  state = await stateOf(dc, stack);
  assert.deepEqual([state.tick.tick, state.board.battery, state.tick.past], ['6', '40', 'False']);

  // reverseContinue: back to the previous stop, the breakpoint on tick 4.
  stack = await stepTo(dc, (a) => dc.reverseContinueRequest(a), 'step', {});
  state = await stateOf(dc, stack);
  assert.deepEqual([state.tick.tick, state.board.battery, state.tick.past], ['4', '70', 'True']);
  // ...and shows the node that stop was at.
  assert.deepEqual(nodeNames(stack), ['drain', 'round', 'patrol']);
  assert.equal(stack.body.stackFrames[0].line, drain.line);
});

scenario('a data breakpoint on a blackboard key stops after the write', async (dc) => {
  const entry = dc.assertStoppedLocation('entry', {});
  await launchConfigured(dc, {
    program: PATROL_FACTORY,
    blackboard: { battery: 100 },
    stopOnEntry: true,
    cwd: ROOT,
  });
  const stack = await entry;
  const { scopes } = await stateOf(dc, stack);
  const info = await dc.dataBreakpointInfoRequest({
    variablesReference: scopes.Blackboard.variablesReference,
    name: 'battery',
  });
  assert.ok(info.body.dataId, 'battery can be watched');
  assert.deepEqual(info.body.accessTypes, ['write']);
  const set = await dc.setDataBreakpointsRequest({
    breakpoints: [{ dataId: info.body.dataId, accessType: 'write' }],
  });
  assert.equal(set.body.breakpoints[0].verified, true);

  const drain = { path: FACTORIES_PY, line: classLine('Drain') };
  const hit = await stepTo(dc, (a) => dc.continueRequest(a), 'data breakpoint', drain);
  const state = await stateOf(dc, hit);
  assert.deepEqual([state.tick.tick, state.board.battery], ['2', '70']);
});
