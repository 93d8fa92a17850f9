import * as assert from "node:assert/strict";
import { StatusBatcher } from "../../src/liveTree/batcher";

describe("StatusBatcher", () => {
  it("keeps each node's latest status and the node that changed last", () => {
    const batcher = new StatusBatcher();
    batcher.add({ type: "NodeStatusChanged", tick: 3, node_id: "a", status: "RUNNING" });
    batcher.add({ type: "NodeStatusChanged", tick: 3, node_id: "b", status: "SUCCESS" });
    batcher.add({ type: "NodeStatusChanged", tick: 4, node_id: "a", status: "FAILURE" });
    batcher.add({ type: "TickCompleted", tick: 4, root_status: "FAILURE" });
    const batch = batcher.flush()!;
    assert.deepEqual(batch, { changes: { b: "SUCCESS", a: "FAILURE" }, current: "a", tick: 4 });
    assert.equal(batcher.flush(), undefined);
    assert.equal(batcher.lastTick, 4);
  });

  it("bounds a burst by the tree's size", () => {
    const batcher = new StatusBatcher();
    for (let tick = 1; tick <= 50; tick++) {
      for (let n = 0; n < 200; n++) {
        batcher.add({ type: "NodeStatusChanged", tick, node_id: `n${n}`, status: tick % 2 ? "RUNNING" : "SUCCESS" });
      }
    }
    const batch = batcher.flush()!;
    assert.equal(Object.keys(batch.changes).length, 200);
    assert.equal(batch.changes.n0, "SUCCESS");
    assert.equal(batch.tick, 50);
  });

  it("reports a reload once and drops pending changes on clear", () => {
    const batcher = new StatusBatcher();
    batcher.add({ type: "TreeReloaded", tick: 2 });
    assert.equal(batcher.takeReload(), true);
    assert.equal(batcher.takeReload(), false);
    batcher.add({ type: "NodeStatusChanged", tick: 2, node_id: "a", status: "RUNNING" });
    batcher.clear();
    assert.equal(batcher.flush(), undefined);
  });

  it("ignores events without a node or status", () => {
    const batcher = new StatusBatcher();
    batcher.add({ type: "NodeStatusChanged", tick: 1 });
    batcher.add({ type: "NodeStatusChanged", tick: 1, node_id: "a", status: 7 as unknown as string });
    assert.equal(batcher.flush(), undefined);
  });
});
