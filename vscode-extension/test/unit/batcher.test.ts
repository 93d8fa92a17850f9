import * as assert from "node:assert/strict";
import { StatusBatcher } from "../../src/liveTree/batcher";

describe("StatusBatcher", () => {
  it("merges the adapter's batches, keeping each node's latest status and the tick", () => {
    const batcher = new StatusBatcher();
    batcher.addBatch({ changes: { a: "RUNNING", b: "SUCCESS" }, current: "b", tick: 7, reloaded: false });
    batcher.addBatch({ changes: { a: "FAILURE" }, current: "a", tick: 8, reloaded: false });
    assert.deepEqual(batcher.flush(), { changes: { b: "SUCCESS", a: "FAILURE" }, current: "a", tick: 8 });
    assert.equal(batcher.flush(), undefined);
    assert.equal(batcher.lastTick, 8);
  });

  it("bounds a burst by the tree's size", () => {
    const batcher = new StatusBatcher();
    for (let tick = 1; tick <= 50; tick++) {
      const changes: Record<string, string> = {};
      for (let n = 0; n < 200; n++) changes[`n${n}`] = tick % 2 ? "RUNNING" : "SUCCESS";
      batcher.addBatch({ changes, current: "n199", tick, reloaded: false });
    }
    const batch = batcher.flush()!;
    assert.equal(Object.keys(batch.changes).length, 200);
    assert.equal(batch.changes.n0, "SUCCESS");
    assert.equal(batch.tick, 50);
  });

  it("keeps the current node when a batch has none, and never goes back a tick", () => {
    const batcher = new StatusBatcher();
    batcher.addBatch({ changes: { a: "RUNNING" }, current: "a", tick: 3, reloaded: false });
    batcher.addBatch({ changes: {}, current: null, tick: 2, reloaded: false });
    assert.deepEqual(batcher.flush(), { changes: { a: "RUNNING" }, current: "a", tick: 3 });
  });

  it("reports a reload once and drops pending changes on clear", () => {
    const batcher = new StatusBatcher();
    batcher.addBatch({ changes: {}, current: null, tick: 9, reloaded: true });
    assert.equal(batcher.takeReload(), true);
    assert.equal(batcher.takeReload(), false);
    batcher.addBatch({ changes: { a: "RUNNING" }, current: "a", tick: 9, reloaded: false });
    batcher.clear();
    assert.equal(batcher.flush(), undefined);
  });
});
