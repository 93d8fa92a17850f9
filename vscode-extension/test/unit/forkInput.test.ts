import * as assert from "node:assert/strict";
import { editsProblem, forkArguments, tickProblem } from "../../src/forkInput";

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
