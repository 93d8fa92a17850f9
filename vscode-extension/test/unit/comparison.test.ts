import * as assert from "node:assert/strict";
import { type ComparisonPage, comparisonBody, escapeHtml, jumpTarget, type RecordedState, statesAt } from "../../src/comparison/page";
import { type ExecutionDiff, describeDiff } from "../../src/diffReport";

const summary = (id: string, ticks: number) => ({ execution_id: id, ticks, root_status: "RUNNING", ended: null, tree_name: "patrol" });

/** Tick 1 goes differently: A wrote the battery first, then its move failed. */
function diverging(): ExecutionDiff {
  return {
    a: summary("run-a", 3),
    b: summary("run-b", 7),
    diverged_at: 1,
    same_through: 0,
    diff: {
      tick_a: 1,
      tick_b: 1,
      nodes: { "patrol/round/move": ["FAILURE", "RUNNING"], "patrol/round/<scan>": ["SUCCESS", "FAILURE"] },
      added: { "/goal": "dock B" },
      removed: {},
      changed: { "/battery": [40, 45], "/note": ["<b>&'\"", "plain"] },
    },
    diverged_on: { a: { node: null, key: "/battery", value: 40, unset: false }, b: null },
    ticks_a: { duration_ms: { mean: 1.25, max: 2 }, paused_ms: 1500 },
    ticks_b: { duration_ms: { mean: 1, max: 1.5 }, paused_ms: 0 },
    nodes_only_in_a: [],
    nodes_only_in_b: ["patrol/dock"],
  };
}

const page = (diff: ExecutionDiff, extra: Partial<ComparisonPage> = {}): string => comparisonBody({ diff, showState: false, ...extra });

/** The table rows of `html` whose `data-<kind>` is `subject`, as written. */
function row(html: string, kind: "node" | "key", subject: string): string | undefined {
  const rows = html.match(/<tr data-[a-z]+="[^"]*"[^>]*>.*?<\/tr>/g) ?? [];
  return rows.find((r) => r.startsWith(`<tr data-${kind}="${escapeHtml(subject)}"`));
}

describe("the comparison page", () => {
  it("shows both executions: tree, end, tick statistics", () => {
    const html = page(diverging());
    assert.match(html, /<h1><code>run-a<\/code> vs <code>run-b<\/code><\/h1>/);
    assert.match(html, /<th scope="row">ticks<\/th><td>3<\/td><td>7<\/td>/);
    assert.match(html, /<th scope="row">ended<\/th><td>running<\/td><td>running<\/td>/);
    assert.match(html, /<th scope="row">tick time \(mean, max\)<\/th><td>1\.3 ms, 2\.0 ms<\/td><td>1\.0 ms, 1\.5 ms<\/td>/);
    assert.match(html, /<th scope="row">paused at breakpoints<\/th><td>1500\.0 ms<\/td><td>0\.0 ms<\/td>/);
    assert.match(html, /Nodes only in B \(1\): <code>patrol\/dock<\/code>/);
  });

  it("marks the first divergence: the tick, the first change, its row", () => {
    const html = page(diverging());
    assert.match(html, /<strong>They diverge at tick 1\.<\/strong> The same through tick 0\./);
    assert.match(html, /First difference: A wrote <code>\/battery<\/code> = <code>40<\/code>; B recorded nothing there\./);
    assert.match(html, /<button type="button" id="jump" data-action="jump" data-tick="1"[^>]*>Go to tick 1<\/button>/);
    assert.match(row(html, "key", "/battery") ?? "", /class="differs first".*first difference/);
    assert.doesNotMatch(row(html, "key", "/goal") ?? "", /first/);
    assert.doesNotMatch(row(html, "node", "patrol/round/move") ?? "", /first/);
    assert.equal((html.match(/class="badge"/g) ?? []).length, 1);
    assert.match(html, /Node statuses at tick 1 <span class="count">· 2 differ<\/span>/);
    assert.match(html, /Blackboard at tick 1 <span class="count">· 3 differ<\/span>/);
  });

  it("marks a node that is where the runs part, and what each side did", () => {
    const diff = {
      ...diverging(),
      diverged_on: {
        a: { node: "patrol/round/move", key: null, value: "FAILURE", unset: false },
        b: { node: null, key: "/goal", value: null, unset: true },
      },
    };
    const html = page(diff);
    assert.match(html, /A set <code>patrol\/round\/move<\/code> to FAILURE; B removed <code>\/goal<\/code>\./);
    assert.match(row(html, "node", "patrol/round/move") ?? "", /class="differs first"/);
    assert.match(row(html, "key", "/goal") ?? "", /class="differs first"/);
    assert.doesNotMatch(row(html, "key", "/battery") ?? "", /first/);
  });

  it("escapes node names, keys and values", () => {
    const diff = diverging();
    const html = page({ ...diff, diverged_on: { a: { node: "patrol/round/<scan>", key: null, value: "<i>", unset: false }, b: null } });
    assert.ok(!html.includes("<scan>") && !html.includes("<b>") && !html.includes("<i>"), html);
    assert.match(html, /<tr data-node="patrol\/round\/&#60;scan&#62;" class="differs first"><td><code>patrol\/round\/&#60;scan&#62;<\/code>/);
    assert.match(row(html, "key", "/note") ?? "", /<td>&#34;&#60;b&#62;&#38;&#39;\\&#34;&#34;<\/td><td>&#34;plain&#34;<\/td>/);
    assert.match(html, /set <code>patrol\/round\/&#60;scan&#62;<\/code> to &#60;i&#62;/);
    assert.equal(escapeHtml(`a"b'c<d>&`), "a&#34;b&#39;c&#60;d&#62;&#38;");
  });

  it("says so when the runs never part, with no jump", () => {
    const same: ExecutionDiff = { ...diverging(), diverged_at: null, diff: null, diverged_on: null, same_through: 3 };
    const html = page(same);
    assert.match(html, /<strong>No divergence<\/strong>: every tick both completed is the same \(through tick 3\)\./);
    assert.doesNotMatch(html, /id="jump"|<table id="nodes"/);
    assert.equal(jumpTarget(same, true, true), undefined);
  });

  it("works with a server that does not say where the runs part", () => {
    const { diverged_on: _, ...older } = diverging();
    const html = page(older);
    assert.match(html, /They diverge at tick 1/);
    assert.doesNotMatch(html, /First difference|class="[^"]*first/);
  });

  it("keeps the Markdown report, with the first difference", () => {
    const text = describeDiff(diverging());
    assert.match(text, /\*\*They diverge at tick 1\.\*\* The same through tick 0\./);
    assert.match(text, /First difference: A wrote `\/battery` = 40; B recorded nothing there\./);
    assert.match(text, /\| `\/battery` \| `40` \| `45` \|/);
  });
});

describe("the agents table", () => {
  it("shows each agent on both sides, marks those that differ, and escapes what they wrote", () => {
    const agent = (status: "completed" | "served", text: string) => ({
      status,
      calls: 1,
      input_tokens: 3,
      output_tokens: 4,
      cost_usd: 0,
      latency_ms: 1,
      outputs: { "/summary": text },
      text,
      error: null,
    });
    const html = page({
      ...diverging(),
      agents: [
        { node_id: "triage/classify", a: agent("completed", "billing"), b: agent("served", "billing"), differs: [] },
        { node_id: "triage/<summarise>", a: agent("completed", "<b>x</b>"), b: agent("completed", "y"), differs: ["outputs", "text"] },
      ],
    });
    assert.match(html, /<h3>Agents <span class="count">· 1 of 2 differ<\/span><\/h3>/);
    assert.match(html, /<tr data-agent="triage\/classify"><td>/);
    assert.match(html, /<tr data-agent="triage\/&#60;summarise&#62;" class="differs">/);
    assert.match(html, /served from the log · 7 tokens/);
    assert.doesNotMatch(html, /<b>x<\/b>/);
    assert.match(html, /outputs, text<\/td><\/tr>/);
  });
});

describe("the jump to the divergence", () => {
  it("goes to a running session's live tree, A's first, else to the page", () => {
    const diff = { ...diverging(), diff: { ...diverging().diff!, tick_a: 4, tick_b: 5 }, diverged_at: 4 };
    assert.deepEqual(jumpTarget(diff, true, true), { kind: "liveTree", side: "a", tick: 4 });
    assert.deepEqual(jumpTarget(diff, false, true), { kind: "liveTree", side: "b", tick: 5 });
    assert.deepEqual(jumpTarget(diff, false, false), { kind: "page", tick: 4 });
  });

  it("shows both states at the diverging tick: A's as read, B's with the diff applied", () => {
    const stateA: RecordedState = {
      execution_id: "run-a",
      tick: 1,
      root_status: "RUNNING",
      statuses: { patrol: "RUNNING", "patrol/round/move": "FAILURE", "patrol/round/<scan>": "SUCCESS" },
      blackboard: { "/battery": 40, "/waypoint": 1, "/note": "<b>&'\"" },
    };
    const states = statesAt(stateA, diverging());
    assert.deepEqual(
      states.nodes.map((r) => [r.subject, r.a, r.b, r.differs]),
      [
        ["patrol", "RUNNING", "RUNNING", false],
        ["patrol/round/move", "FAILURE", "RUNNING", true],
        ["patrol/round/<scan>", "SUCCESS", "FAILURE", true],
      ],
    );
    assert.deepEqual(
      states.keys.map((r) => [r.subject, r.a, r.b, r.differs, r.first]),
      [
        ["/battery", "40", "45", true, true],
        ["/waypoint", "1", "1", false, false],
        ["/note", '"<b>&\'\\""', '"plain"', true, false],
        ["/goal", "(absent)", '"dock B"', true, false],
      ],
    );
    const html = page(diverging(), { stateA, showState: true, notice: "No session <runs>" });
    assert.match(html, /<section id="state"><h2>The state at the end of tick 1<\/h2>/);
    assert.match(html, /<table id="state-nodes">.*<tr data-node="patrol"><td><code>patrol<\/code><\/td><td>RUNNING<\/td><td>RUNNING<\/td><\/tr>/);
    assert.match(html, /Node statuses <span class="count">· 2 of 3 differ<\/span>/);
    assert.match(html, /<p id="notice" role="status">No session &#60;runs&#62;<\/p>/);
    assert.doesNotMatch(page(diverging(), { stateA }), /id="state"/);
  });
});
