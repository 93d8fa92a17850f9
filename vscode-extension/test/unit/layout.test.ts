import * as assert from "node:assert/strict";
import { layout, NODE_HEIGHT, NODE_WIDTH } from "../../src/liveTree/layout";
import type { PictureNode } from "../../src/liveTree/model";

function node(id: string, parent: string | null): PictureNode {
  return { id, name: id.split("/").pop()!, kind: "k", kind_short: "K", shape: "behaviour", parent, status: null, source: null };
}

function edgesOf(nodes: PictureNode[]): { from: string; to: string }[] {
  return nodes.filter((n) => n.parent !== null).map((n) => ({ from: n.parent!, to: n.id }));
}

describe("layout", () => {
  it("centres each parent over its children, one row per depth", () => {
    const nodes = [node("r", null), node("r/a", "r"), node("r/a/x", "r/a"), node("r/a/y", "r/a"), node("r/b", "r")];
    const drawing = layout(nodes, edgesOf(nodes));
    const at = new Map(drawing.nodes.map((n) => [n.id, n]));
    assert.equal(at.get("r/a/x")!.y, at.get("r/a/y")!.y);
    assert.ok(at.get("r/a")!.y < at.get("r/a/x")!.y);
    assert.equal(at.get("r/a")!.x, (at.get("r/a/x")!.x + at.get("r/a/y")!.x) / 2);
    assert.equal(at.get("r")!.x, (at.get("r/a")!.x + at.get("r/b")!.x) / 2);
    assert.ok(at.get("r/a/x")!.x < at.get("r/a/y")!.x && at.get("r/a/y")!.x < at.get("r/b")!.x);
  });

  it("never overlaps two boxes and fits them all in the drawing", () => {
    // 200 nodes: a root with 19 sequences of 9 behaviours, and a chain under the last one.
    const nodes = [node("root", null)];
    for (let s = 0; s < 19; s++) {
      nodes.push(node(`root/s${s}`, "root"));
      for (let b = 0; b < 9; b++) nodes.push(node(`root/s${s}/b${b}`, `root/s${s}`));
    }
    for (let d = 0; nodes.length < 200; d++) nodes.push(node(`root/s18/b8/c${d}`, d === 0 ? "root/s18/b8" : `root/s18/b8/c${d - 1}`));
    const drawing = layout(nodes, edgesOf(nodes));
    assert.equal(drawing.nodes.length, 200);
    for (const a of drawing.nodes) {
      assert.ok(a.x >= 0 && a.y >= 0 && a.x + NODE_WIDTH <= drawing.width && a.y + NODE_HEIGHT <= drawing.height, a.id);
      for (const b of drawing.nodes) {
        if (a.id < b.id) {
          const apart = Math.abs(a.x - b.x) >= NODE_WIDTH || Math.abs(a.y - b.y) >= NODE_HEIGHT;
          assert.ok(apart, `${a.id} overlaps ${b.id}`);
        }
      }
    }
  });

  it("handles a chain deeper than the call stack would allow", () => {
    const nodes = [node("n0", null)];
    for (let i = 1; i < 20_000; i++) nodes.push(node(`n${i}`, `n${i - 1}`));
    const drawing = layout(nodes, edgesOf(nodes));
    assert.equal(drawing.nodes.length, 20_000);
    assert.equal(drawing.nodes[19_999].x, drawing.nodes[0].x);
  });
});
