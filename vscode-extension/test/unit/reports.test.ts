import * as assert from "node:assert/strict";
import { describePod, presentation } from "../../src/debugModeState";
import { type ExecutionDiff, describeAgent, describeDiff, remember } from "../../src/diffReport";
import { describeTimeline, endNotice, problemNotice, snapshotOf } from "../../src/liveTree/model";
import { describeProblem } from "../../src/serverClient";

const summary = (id: string, ticks: number, root: string | null) => ({ execution_id: id, ticks, root_status: root, ended: "completed", tree_name: "patrol" });

describe("describeDiff", () => {
  it("says where two executions diverge, by node and by blackboard key", () => {
    const diff: ExecutionDiff = {
      a: summary("e1", 12, "FAILURE"),
      b: summary("e2", 20, "SUCCESS"),
      diverged_at: 9,
      same_through: 8,
      diff: {
        tick_a: 9,
        tick_b: 9,
        nodes: { "patrol/round/scan": ["FAILURE", "SUCCESS"] },
        added: { "/target": "dock" },
        removed: {},
        changed: { "/battery": [9, 40] },
      },
      nodes_only_in_a: [],
      nodes_only_in_b: ["patrol/round/dock"],
    };
    const text = describeDiff(diff);
    assert.match(text, /^# e1 vs e2/);
    assert.match(text, /\*\*They diverge at tick 9\.\*\* The same through tick 8\./);
    assert.match(text, /\| `patrol\/round\/scan` \| FAILURE \| SUCCESS \|/);
    assert.match(text, /\| `\/battery` \| `9` \| `40` \|/);
    assert.match(text, /\| `\/target` \| \(absent\) \| `"dock"` \|/);
    assert.match(text, /Nodes only in B: `patrol\/round\/dock`/);
  });

  it("says so when nothing differs", () => {
    const text = describeDiff({ a: summary("e1", 3, "SUCCESS"), b: summary("e2", 3, "SUCCESS"), diverged_at: null, diff: null, same_through: 3, nodes_only_in_a: [], nodes_only_in_b: [] });
    assert.match(text, /\*\*No divergence\*\*: every tick both completed is the same \(through tick 3\)/);
    assert.doesNotMatch(text, /tick time/);
  });

  it("compares the ticks' own time and tells the time paused apart", () => {
    const ticks = (mean: number, max: number, paused: number) => ({ duration_ms: { mean, max }, paused_ms: paused });
    const same = { diverged_at: null, diff: null, same_through: 3, nodes_only_in_a: [], nodes_only_in_b: [] };
    const text = describeDiff({ a: summary("e1", 3, "SUCCESS"), b: summary("e2", 3, "SUCCESS"), ...same, ticks_a: ticks(0.8, 1.34, 0), ticks_b: ticks(0.9, 1.2, 2513) });
    assert.match(text, /\| tick time \(mean, max\) \| 0\.8 ms, 1\.3 ms \| 0\.9 ms, 1\.2 ms \|/);
    assert.match(text, /\| paused at breakpoints \| 0\.0 ms \| 2513\.0 ms \|/);
    const free = describeDiff({ a: summary("e1", 3, "SUCCESS"), b: summary("e2", 3, "SUCCESS"), ...same, ticks_a: ticks(1, 1, 0), ticks_b: ticks(1, 1, 0) });
    assert.doesNotMatch(free, /paused/);
  });
});

describe("the agents of two runs", () => {
  const outcome = (status: "completed" | "served" | "failed", extra: object = {}) => ({
    status,
    calls: 1,
    input_tokens: 40,
    output_tokens: 12,
    cost_usd: 0.00032,
    latency_ms: 812.25,
    outputs: { "/category": "billing" },
    text: "billing",
    error: null,
    ...extra,
  });

  it("tells each agent's end, tokens, cost and time on both sides, and what differs", () => {
    const same = { diverged_at: null, diff: null, same_through: 3, nodes_only_in_a: [], nodes_only_in_b: [] };
    const text = describeDiff({
      a: summary("run", 3, "SUCCESS"),
      b: summary("fork", 3, "SUCCESS"),
      ...same,
      agents: [
        { node_id: "triage/classify", a: outcome("completed"), b: outcome("served", { cost_usd: 0, latency_ms: 0 }), differs: [] },
        { node_id: "triage/summarise", a: outcome("completed"), b: outcome("failed", { calls: 2, error: "node 'triage/summarise': Timeout" }), differs: ["status", "error"] },
        { node_id: "triage/escalate", a: null, b: outcome("completed"), differs: ["calls"] },
      ],
    });
    assert.match(text, /## Agents/);
    assert.match(text, /\| `triage\/classify` \| completed · 52 tokens · \$0\.0003 · 812\.3 ms \| served from the log · 52 tokens · \$0\.0000 · 0\.0 ms \| — \|/);
    assert.match(text, /\| `triage\/summarise` \| .* \| failed \(2 calls\) · .* \| status, error \|/);
    assert.match(text, /\| `triage\/escalate` \| no call \| completed .* \| calls \|/);
    assert.equal(describeAgent(null), "no call");
  });
});

describe("remember", () => {
  it("keeps the newest first, once each, within the limit", () => {
    let known = remember([], { id: "a", label: "A", seen: 1 });
    known = remember(known, { id: "b", label: "B", seen: 2 });
    known = remember(known, { id: "a", label: "A again", seen: 3 }, 2);
    assert.deepEqual(known.map((k) => k.label), ["A again", "B"]);
    known = remember(known, { id: "c", label: "C", seen: 4 }, 2);
    assert.deepEqual(known.map((k) => k.id), ["c", "a"]);
  });
});

describe("status bar and summaries", () => {
  it("shows each debug-mode state", () => {
    assert.equal(presentation({ kind: "off" }).text, "$(debug-disconnect) Canopy: off");
    assert.equal(presentation({ kind: "starting" }).text, "$(sync~spin) Canopy: starting");
    assert.match(presentation({ kind: "ready", detail: "local pod p1" }).tooltip, /local pod p1/);
    assert.match(presentation({ kind: "error", message: "503 no pod" }).tooltip, /503 no pod/);
    assert.equal(describePod({ pod_id: "p1", provider: "local", ready_ms: 21.6 }), "local pod p1, ready in 22 ms");
  });

  it("reads problem documents and other bodies", () => {
    assert.equal(describeProblem(429, '{"title": "Too many sessions", "detail": "at most 5"}'), "429 Too many sessions: at most 5");
    assert.equal(describeProblem(502, "<html>bad gateway</html>"), "502 <html>bad gateway</html>");
    assert.equal(describeProblem(500, ""), "500");
  });

  it("summarises a timeline", () => {
    assert.equal(
      describeTimeline(42, { duration_ms: { mean: 1.25, max: 4 }, root_statuses: { RUNNING: 41, FAILURE: 1 } }),
      "42 ticks · 1.3 ms mean, 4.0 ms max · RUNNING 41, FAILURE 1",
    );
    assert.equal(describeTimeline(1, { duration_ms: null, root_statuses: {} }), "1 tick");
  });

  it("tells the time stopped at breakpoints apart from the ticks' own time", () => {
    assert.equal(
      describeTimeline(4, { duration_ms: { mean: 0.8, max: 1.34 }, paused_ms: 3190.4, root_statuses: { RUNNING: 3, SUCCESS: 1 } }),
      "4 ticks · 0.8 ms mean, 1.3 ms max · 3190.4 ms paused · RUNNING 3, SUCCESS 1",
    );
    assert.equal(
      describeTimeline(2, { duration_ms: { mean: 1, max: 1 }, paused_ms: 0, root_statuses: {} }),
      "2 ticks · 1.0 ms mean, 1.0 ms max",
    );
  });

  it("says how a session's execution ended", () => {
    assert.equal(
      endNotice("Debug patrol", "failed: KeyError in check_battery"),
      "Debug patrol has ended: failed: KeyError in check_battery.",
    );
    assert.equal(endNotice("Debug patrol", undefined), "Debug patrol has ended.");
  });

  it("says the problem a session told on stderr by its report's first line", () => {
    const told =
      "KeyError in check_battery (tick 1): \"client 'check_battery' tried to access '/battery'\"\n" +
      "  node patrol/round/check_battery at /ws/patrol/patrol.xml:8\n" +
      "  raised in update at /ws/patrol/robot.py:26: level = self.blackboard.battery\n";
    assert.equal(
      problemNotice("Debug patrol", told),
      "Debug patrol: KeyError in check_battery (tick 1): \"client 'check_battery' tried to access '/battery'\"",
    );
  });

  it("takes a snapshot of a picture", () => {
    const snapshot = snapshotOf({
      execution_id: "e1", tick: 5, offset: 9, in_tick: true, root_status: "RUNNING", current: "r/a",
      nodes: [
        { id: "r", name: "r", kind: "k", kind_short: "K", shape: "sequence", parent: null, status: "RUNNING", source: null },
        { id: "r/a", name: "a", kind: "k", kind_short: "K", shape: "behaviour", parent: "r", status: null, source: null },
      ],
      edges: [{ from: "r", to: "r/a" }],
    });
    assert.deepEqual(snapshot, { statuses: { r: "RUNNING", "r/a": null }, current: "r/a", tick: 5, inTick: true, rootStatus: "RUNNING" });
  });
});
