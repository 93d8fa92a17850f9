'use strict';
// The YAML patrol tree (tests/server/runtime/trees/patrol.yaml, behaviours in
// robot_behaviours.py). With battery_level 0.8, battery_low fails, so the Selector runs `route`:
// tick 1 ticks go_to_a (RUNNING: it takes two steps); tick 2 ticks go_to_a (SUCCESS), go_to_b
// (SUCCESS) and not_failed (SUCCESS), and the tree succeeds. recharge is never ticked unless the
// battery is low.

const assert = require('node:assert/strict');
const {
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

const at = (line) => ({ path: PATROL_YAML, line });

const LINE_BREAKPOINT = 'a line breakpoint stops on the node whose block holds its line, with stack and blackboard';
scenario(LINE_BREAKPOINT, async (dc) => {
  // The `params:` line of go_to_b is inside go_to_b's block: the breakpoint binds to go_to_b.
  const line = lineOf(PATROL_YAML, 'name: go_to_b') + 1;
  const goToB = yamlNodeLine(PATROL_YAML, 'go_to_b');
  assert.ok(goToB < line);

  const [, , stack] = await dc.hitBreakpoint(
    { program: PATROL_YAML, cwd: ROOT },
    at(line), // where the breakpoint is set
    at(goToB), // where it stops
    at(goToB), // where setBreakpoints says it is
  );

  // The stack is the node path, innermost first, each frame at its node's line.
  assert.deepEqual(nodeNames(stack), ['go_to_b', 'limit_b', 'route', 'patrol']);
  assert.deepEqual(
    stack.body.stackFrames.map((f) => [f.source.path, f.line]),
    ['go_to_b', 'limit_b', 'route', 'patrol'].map((node) => [
      PATROL_YAML,
      yamlNodeLine(PATROL_YAML, node),
    ]),
  );
  assert.match(stack.body.stackFrames[0].name, /MoveTo/);

  const frameId = stack.body.stackFrames[0].id;
  const scopes = await scopesOf(dc, frameId);
  assert.deepEqual(Object.keys(scopes), ['Node', 'Blackboard', 'Tick']);
  const board = await valuesOf(dc, scopes.Blackboard.variablesReference);
  assert.deepEqual(board, { battery_level: '0.8' });
  const node = await valuesOf(dc, scopes.Node.variablesReference);
  assert.equal(node.name, "'go_to_b'");
  assert.equal(node.id, "'patrol/route/limit_b/go_to_b'");
  assert.equal((await valuesOf(dc, scopes.Tick.variablesReference)).tick, '2');

  const value = await dc.evaluateRequest({
    expression: 'battery_level * 100',
    frameId,
    context: 'watch',
  });
  assert.equal(value.body.result, '80.0');
  const threads = await dc.threadsRequest();
  assert.equal(threads.body.threads.length, 1);
  assert.equal(threads.body.threads[0].id, 1);
});

scenario('stepIn, stepOut and next move through the tree, and next stops at a breakpoint', async (dc) => {
  // On go_to_a's `name:` line: binds to go_to_a, ticked on ticks 1 and 2.
  const line = lineOf(PATROL_YAML, 'name: go_to_a');
  const goToA = yamlNodeLine(PATROL_YAML, 'go_to_a');
  await dc.hitBreakpoint({ program: PATROL_YAML, cwd: ROOT }, at(line), at(goToA), at(goToA));

  // stepIn: to the next node that reports a status: go_to_a itself, now RUNNING.
  let stack = await stepTo(dc, (a) => dc.stepInRequest(a), 'step', at(goToA));
  assert.match(stack.body.stackFrames[0].name, /^go_to_a .*RUNNING/);

  // stepOut: until the parent, retry_a, is done for this tick.
  const retryA = yamlNodeLine(PATROL_YAML, 'retry_a');
  stack = await stepTo(dc, (a) => dc.stepOutRequest(a), 'step', at(retryA));
  assert.deepEqual(nodeNames(stack), ['retry_a', 'route', 'patrol']);

  // next: over the rest of the tick, to its end at the root.
  const patrol = yamlNodeLine(PATROL_YAML, 'patrol');
  stack = await stepTo(dc, (a) => dc.nextRequest(a), 'step', at(patrol));
  assert.deepEqual(nodeNames(stack), ['patrol']);
  const scopes = await scopesOf(dc, stack.body.stackFrames[0].id);
  assert.equal((await valuesOf(dc, scopes.Tick.variablesReference)).tick, '1');

  // next over tick 2 stops first at the breakpoint on go_to_a.
  await stepTo(dc, (a) => dc.nextRequest(a), 'breakpoint', at(goToA));

  const terminated = dc.waitForEvent('terminated');
  await dc.continueRequest({ threadId: 1 });
  await terminated;
});

scenario('setVariable on the blackboard changes the path the tree takes', async (dc) => {
  const recharge = yamlNodeLine(PATROL_YAML, 'recharge');
  const patrol = yamlNodeLine(PATROL_YAML, 'patrol');
  const entry = dc.assertStoppedLocation('entry', at(patrol));
  await launchConfigured(dc, { program: PATROL_YAML, cwd: ROOT, stopOnEntry: true }, async () => {
    const set = await dc.setBreakpointsRequest({
      source: { path: PATROL_YAML },
      breakpoints: [{ line: recharge }],
    });
    assert.equal(set.body.breakpoints[0].verified, true);
    assert.equal(set.body.breakpoints[0].line, recharge);
  });
  const stack = await entry;

  const scopes = await scopesOf(dc, stack.body.stackFrames[0].id);
  const board = scopes.Blackboard.variablesReference;
  const set = await dc.setVariableRequest({
    variablesReference: board,
    name: 'battery_level',
    value: '0.1',
  });
  assert.equal(set.body.value, '0.1');
  // Expanding the same scope again shows the new value (DebugClient does not announce
  // supportsInvalidatedEvent, so nothing tells it to ask for new scopes)...
  assert.deepEqual(await valuesOf(dc, board), { battery_level: '0.1' });
  // ...and so do new scopes, as VS Code asks for on `invalidated`.
  const again = await dc.stackTraceRequest({ threadId: 1 });
  const fresh = await scopesOf(dc, again.body.stackFrames[0].id);
  const refetched = await valuesOf(dc, fresh.Blackboard.variablesReference);
  assert.deepEqual(refetched, { battery_level: '0.1' });
  // Only blackboard values can be edited.
  await assert.rejects(
    dc.setVariableRequest({
      variablesReference: scopes.Tick.variablesReference,
      name: 'tick',
      value: '5',
    }),
    /blackboard/,
  );

  // With the battery low, recharge runs (and its breakpoint is hit) on the first tick.
  const [, atRecharge] = await Promise.all([
    dc.continueRequest({ threadId: 1 }),
    dc.assertStoppedLocation('breakpoint', at(recharge)),
  ]);
  assert.deepEqual(nodeNames(atRecharge), ['recharge', 'recharge_if_low', 'patrol']);
  const now = await scopesOf(dc, atRecharge.body.stackFrames[0].id);
  assert.deepEqual(await valuesOf(dc, now.Blackboard.variablesReference), { battery_level: '0.1' });
  assert.equal((await valuesOf(dc, now.Tick.variablesReference)).tick, '1');

  const terminated = dc.waitForEvent('terminated');
  await dc.continueRequest({ threadId: 1 });
  await terminated;
});

scenario('manual mode stops at entry and after every tick', async (dc) => {
  const patrol = at(yamlNodeLine(PATROL_YAML, 'patrol'));
  const entry = dc.assertStoppedLocation('entry', patrol);
  await launchConfigured(dc, { program: PATROL_YAML, cwd: ROOT, mode: 'manual' });
  let stack = await entry;
  let scopes = await scopesOf(dc, stack.body.stackFrames[0].id);
  assert.equal((await valuesOf(dc, scopes.Tick.variablesReference)).tick, '0');

  for (const tick of ['1', '2']) {
    stack = await stepTo(dc, (a) => dc.continueRequest(a), 'step', patrol);
    scopes = await scopesOf(dc, stack.body.stackFrames[0].id);
    assert.equal((await valuesOf(dc, scopes.Tick.variablesReference)).tick, tick);
  }
  // The tree succeeded on tick 2: the next continue ends it.
  const terminated = dc.waitForEvent('terminated');
  await dc.continueRequest({ threadId: 1 });
  await terminated;
});
