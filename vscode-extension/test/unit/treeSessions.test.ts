import * as assert from "node:assert/strict";
import { isPythonSession, isTreeSession, treeSessionOf } from "../../src/treeSessions";

const tree = { type: "canopy", configuration: {} };
const python = { type: "canopy", configuration: { pythonOf: { host: "127.0.0.1", port: 5678 } }, parentSession: tree };

describe("tree sessions", () => {
  it("tells a tree session from the Python session it started", () => {
    assert.ok(isTreeSession(tree));
    assert.ok(!isTreeSession(python));
    assert.ok(isPythonSession(python));
    assert.ok(!isPythonSession(tree));
    assert.ok(!isTreeSession({ type: "debugpy", configuration: {} }));
    assert.ok(!isTreeSession(undefined));
  });

  it("finds the tree session of a Python session, and of nothing else", () => {
    assert.equal(treeSessionOf(tree), tree);
    assert.equal(treeSessionOf(python), tree);
    assert.equal(treeSessionOf({ type: "canopy", configuration: { pythonOf: {} } }), undefined);
    assert.equal(treeSessionOf({ type: "debugpy", configuration: {}, parentSession: tree }), undefined);
    assert.equal(treeSessionOf(undefined), undefined);
  });
});
