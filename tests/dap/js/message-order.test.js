'use strict';
// DAP orders a stepping request's messages: "the debug adapter first sends the response and then
// a stopped event (with reason step) after the step has completed" (next, stepIn, stepOut,
// stepBack; continue and reverseContinue likewise). A client that awaits the response and only
// then waits for the stopped event (as `await dc.stepBackRequest(); await
// dc.waitForEvent('stopped')` does with DebugClient, which does not buffer events) misses a
// stopped event sent before the response. The other scenarios listen before they send, so they
// pass either way; these tests check the order itself, from the transcript.

const assert = require('node:assert/strict');
const { PATROL_FACTORY, ROOT, launchConfigured, scenario } = require('./support');

/** Send `command`, wait for the stopped event it causes, and check that its response came
 * first. */
async function responseBeforeStopped(dc, adapter, command) {
  const from = adapter.transcript.length;
  const stopped = dc.waitForEvent('stopped');
  await dc.send(command, { threadId: 1 });
  await stopped;
  const after = (predicate) => {
    const index = adapter.transcript
      .slice(from)
      .findIndex((m) => m.dir === '<-' && predicate(m.message));
    return index < 0 ? Infinity : index;
  };
  const response = after((m) => m.type === 'response' && m.command === command);
  const event = after((m) => m.type === 'event' && m.event === 'stopped');
  assert.ok(response < event, `the ${command} response must come before its stopped event`);
}

/** A factory patrol in manual mode, stopped after its first two ticks. */
async function twoTicksIn(dc, adapter) {
  const entry = dc.waitForEvent('stopped');
  await launchConfigured(dc, {
    program: PATROL_FACTORY,
    blackboard: { battery: 100 },
    mode: 'manual',
    cwd: ROOT,
  });
  await entry;
  for (let i = 0; i < 2; i++) {
    await responseBeforeStopped(dc, adapter, 'continue');
  }
}

scenario('next, stepIn, stepOut and continue answer before they stop', async (dc, adapter) => {
  await twoTicksIn(dc, adapter);
  for (const command of ['stepIn', 'stepOut', 'next', 'continue']) {
    await responseBeforeStopped(dc, adapter, command);
  }
});

scenario(
  'stepBack and reverseContinue answer before they stop',
  async (dc, adapter) => {
    await twoTicksIn(dc, adapter);
    await responseBeforeStopped(dc, adapter, 'stepBack');
    await responseBeforeStopped(dc, adapter, 'reverseContinue');
  },
);
