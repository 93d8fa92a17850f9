import * as assert from "node:assert/strict";
import { editsProblem, forkArguments, forkConfiguration, tickProblem } from "../../src/forkInput";

describe("fork input", () => {
  it("takes an empty tick as the last completed one and a whole number as a tick", () => {
    assert.equal(tickProblem(""), undefined);
    assert.equal(tickProblem(" 12 "), undefined);
    assert.match(tickProblem("-1") ?? "", /whole number/);
    assert.match(tickProblem("2.5") ?? "", /whole number/);
    assert.match(tickProblem("last") ?? "", /whole number/);
  });

  it("takes blackboard edits as a JSON object only", () => {
    assert.equal(editsProblem(""), undefined);
    assert.equal(editsProblem('{"category": "refund"}'), undefined);
    assert.match(editsProblem("[1]") ?? "", /JSON object/);
    assert.match(editsProblem("null") ?? "", /JSON object/);
    assert.match(editsProblem("{category: refund}") ?? "", /^not JSON: /);
  });

  it("builds the canopy/fork arguments, or says what is wrong", () => {
    assert.deepEqual(forkArguments("", ""), { blackboard: {} });
    assert.deepEqual(forkArguments("3", '{"a": {"b": [1, 2]}}'), { tick: 3, blackboard: { a: { b: [1, 2] } } });
    assert.throws(() => forkArguments("x", "{}"), /whole number/);
    assert.throws(() => forkArguments("1", "{"), /not JSON/);
  });
});

describe("a fork's launch configuration", () => {
  const ran = { type: "canopy", request: "launch", name: "Debug the triage workflow", program: "${workspaceFolder}/triage/triage.yaml", mode: "interval", stopOnEntry: true };

  it("restarts an ended execution as its session ran it, from tick 0", () => {
    assert.deepEqual(forkConfiguration(ran, "e1", { tick: 0, blackboard: {} }), {
      ...ran,
      name: "Restart of e1",
      forkOf: { executionId: "e1", tick: 0, blackboard: {} },
    });
  });

  it("forks with edits, replacing the fork its session may itself have been", () => {
    const forked = forkConfiguration({ ...ran, forkOf: { executionId: "e0" } }, "e1", { tick: 3, blackboard: { urgency: "high" } });
    assert.equal(forked.name, "Fork of e1");
    assert.deepEqual(forked.forkOf, { executionId: "e1", tick: 3, blackboard: { urgency: "high" } });
    assert.equal(forked.program, ran.program);
  });
});
