import * as assert from "node:assert/strict";
import { type AgentCall, AgentTimeline } from "../../src/liveTree/agents";
import type { PictureNode } from "../../src/liveTree/model";

function node(id: string, kind: string, shape = "behaviour"): PictureNode {
  const parts = id.split("/");
  const parent = parts.length > 1 ? parts.slice(0, -1).join("/") : null;
  return { id, name: parts[parts.length - 1], kind, kind_short: kind, shape, parent, status: null, source: null };
}

/** triage: a Sequence of a Parallel of two agents and a sequence holding a third, then reply. */
const TREE = [
  node("triage", "Sequence", "sequence"),
  node("triage/fan", "Parallel", "parallel"),
  node("triage/fan/classify", "llm"),
  node("triage/fan/lookup", "python"),
  node("triage/check", "Sequence", "sequence"),
  node("triage/check/gate", "Gate"),
  node("triage/reply", "llm"),
];

let offset = 0;
const T0 = 1_700_000_000_000;

function event(type: string, node: string, call: string, at: number, fields: Partial<AgentCall> = {}): AgentCall {
  offset += 1;
  return { type, offset, time: T0 + at, tick: Math.floor(at / 100), node_id: node, call_id: call, agent: "llm", ...fields };
}

function timeline(events: AgentCall[]): AgentTimeline {
  const built = new AgentTimeline();
  built.setTree(TREE);
  built.add(events);
  return built;
}

describe("the agents' timeline", () => {
  it("has one lane per agent node in tree order, a Parallel's agents adjacent under it", () => {
    const view = timeline([]).view(T0);
    assert.deepEqual(
      view.lanes.map((lane) => lane.id),
      ["triage/fan/classify", "triage/fan/lookup", "triage/reply"],
    );
    assert.deepEqual(view.lanes[0].parallel, { id: "triage/fan", name: "fan" });
    assert.deepEqual(view.lanes[1].parallel, { id: "triage/fan", name: "fan" });
    assert.equal(view.lanes[2].parallel, null);
    assert.deepEqual(view.lanes[1].path, ["triage", "fan", "lookup"]);
    assert.deepEqual(view.bars, []);
    assert.equal(view.origin, null);
  });

  it("draws a call from its start to its end, running until it ends", () => {
    const started = event("AgentCallStarted", "triage/fan/classify", "c1", 0, { model: "claude-haiku-4-5" });
    const built = timeline([started]);
    let [bar] = built.view(T0 + 300).bars;
    assert.deepEqual([bar.lane, bar.start, bar.end, bar.outcome], [0, T0, null, "running"]);
    assert.equal(bar.tip, "classify — running · claude-haiku-4-5 · 0.3 s so far · tick 0");
    built.add([
      event("AgentCallCompleted", "triage/fan/classify", "c1", 1240, {
        latency_ms: 1240,
        retries: 1,
        input_tokens: 40,
        output_tokens: 2,
        cost_usd: 0.00012,
      }),
    ]);
    [bar] = built.view(T0 + 2000).bars;
    assert.deepEqual([bar.end, bar.outcome], [T0 + 1240, "succeeded"]);
    assert.equal(bar.tip, "classify — succeeded · claude-haiku-4-5 · 1.24 s · 40 in / 2 out tokens · $0.000120 · 1 retry · ticks 0–12");
  });

  it("tells served, failed and cancelled calls apart, and marks the failing agent's path to the root", () => {
    const view = timeline([
      event("AgentCallStarted", "triage/fan/classify", "c1", 0),
      event("AgentCallStarted", "triage/fan/lookup", "c2", 0, { agent: "python", function: "shop:lookup" }),
      event("AgentCallCompleted", "triage/fan/classify", "c1", 5, {
        latency_ms: 0,
        retries: 0,
        served_from: { execution_id: "e0", offset: 12, call_id: "x" },
      }),
      event("AgentToolCalled", "triage/fan/lookup", "c2", 50, { tool: "orders" }),
      event("AgentCallFailed", "triage/fan/lookup", "c2", 400, { error_type: "KeyError", message: "'A-17'", latency_ms: 400 }),
      event("AgentCallStarted", "triage/reply", "c3", 500),
      event("AgentCallCancelled", "triage/reply", "c3", 650, { reason: "preempted", latency_ms: 150 }),
    ]).view(T0 + 700);
    assert.deepEqual(
      view.bars.map((bar) => [bar.node, bar.outcome]),
      [
        ["triage/fan/classify", "served"],
        ["triage/fan/lookup", "failed"],
        ["triage/reply", "cancelled"],
      ],
    );
    assert.match(view.bars[0].tip, /served from the log[^]*answered from execution e0 \(log offset 12\)/);
    assert.match(view.bars[1].tip, /shop:lookup · 400 ms · tools: orders · ticks 0–4\nKeyError: 'A-17'$/);
    assert.match(view.bars[2].tip, /cancelled[^]*\npreempted$/);
    assert.deepEqual(view.lanes.map((lane) => lane.failed), [false, true, false]);
    assert.deepEqual(view.failedPath.sort(), ["triage", "triage/fan", "triage/fan/lookup"]);
  });

  it("marks where a call was told slow, and says why in its tooltip", () => {
    const built = timeline([
      event("AgentCallStarted", "triage/reply", "c1", 0),
      event("AgentCallStarted", "triage/fan/classify", "c2", 0),
    ]);
    assert.deepEqual(
      built.view(T0 + 100).bars.map((bar) => bar.slow),
      [null, null],
    );
    built.add([
      event("AgentSlow", "triage/reply", "c1", 1700, { elapsed_ms: 1700, expected_ms: 1600, basis: "timeout" }),
      event("AgentCallFailed", "triage/reply", "c1", 2000, { error_type: "Timeout", message: "no answer within 2 s", latency_ms: 2000 }),
    ]);
    const [reply, classify] = built.view(T0 + 2000).bars;
    assert.equal(classify.slow, null);
    assert.deepEqual([reply.slow, reply.outcome, reply.end], [T0 + 1700, "failed", T0 + 2000]);
    assert.match(reply.tip, /\nslow: still running after 1\.70 s, over 1\.60 s \(80% of its timeout\)\nTimeout: /);
  });

  it("keeps each event once, whatever the order or repetition of the batches", () => {
    const start = event("AgentCallStarted", "triage/reply", "c1", 0);
    const end = event("AgentCallCompleted", "triage/reply", "c1", 200, { latency_ms: 200, retries: 0 });
    const built = timeline([end, start, start]);
    built.add([end]);
    const view = built.view(T0);
    assert.equal(view.bars.length, 1);
    assert.deepEqual([view.bars[0].start, view.bars[0].end], [T0, T0 + 200]);
    assert.deepEqual(view.ticks, [[T0, 0], [T0 + 200, 2]]);
    assert.equal(view.now, T0 + 200); // the last event, when the clock is behind it
  });

  it("gives an agent only the events name a lane of its own, last", () => {
    const view = timeline([event("AgentCallStarted", "triage/gone", "c1", 0)]).view(T0);
    assert.deepEqual(view.lanes.map((lane) => lane.id).slice(-1), ["triage/gone"]);
    assert.equal(view.bars[0].lane, 3);
  });

  it("estimates the end from the latencies so far: running calls by their median, the rest after them", () => {
    // classify took 1 s and lookup 3 s side by side (2 in flight at once); classify runs again.
    const built = timeline([
      event("AgentCallStarted", "triage/fan/classify", "c1", 0),
      event("AgentCallStarted", "triage/fan/lookup", "c2", 0),
      event("AgentCallCompleted", "triage/fan/classify", "c1", 1000, { latency_ms: 1000, retries: 0 }),
      event("AgentCallCompleted", "triage/fan/lookup", "c2", 3000, { latency_ms: 3000, retries: 0 }),
      event("AgentCallStarted", "triage/fan/classify", "c3", 3000),
    ]);
    const view = built.view(T0 + 3500);
    // classify's own median (1 s): it should end at 4000; reply (not started) then takes the
    // overall median (2 s) with up to 2 calls at a time: ceil(1 / 2) = 1 round.
    assert.deepEqual(view.estimate, { done: 1, total: 3, running: 1, medianMs: 2000, endsAt: T0 + 6000 });
    // Late past its median, the running call is taken to end now.
    assert.equal(built.view(T0 + 5000).estimate.endsAt, T0 + 7000);
  });

  it("has no estimate before any call has ended, nor once every agent is done", () => {
    const built = timeline([event("AgentCallStarted", "triage/fan/classify", "c1", 0)]);
    assert.equal(built.view(T0 + 10).estimate.endsAt, null);
    built.add([
      event("AgentCallCompleted", "triage/fan/classify", "c1", 100, { latency_ms: 100, retries: 0 }),
      event("AgentCallStarted", "triage/fan/lookup", "c2", 100),
      event("AgentCallCompleted", "triage/fan/lookup", "c2", 200, { latency_ms: 100, retries: 0 }),
      event("AgentCallStarted", "triage/reply", "c3", 200),
      event("AgentCallCancelled", "triage/reply", "c3", 250, { reason: "ended", latency_ms: 50 }),
    ]);
    const done = built.view(T0 + 300).estimate;
    assert.deepEqual(done, { done: 3, total: 3, running: 0, medianMs: 100, endsAt: null });
  });
});
