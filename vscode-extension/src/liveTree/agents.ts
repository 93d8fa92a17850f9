/**
 * The agents of a workflow over time: one lane per agent node, each call a bar from its start
 * to its end, and an estimate of when the running workflow is done.
 *
 * Built from the agent events of the live stream (`canopy/liveTree` batches' `agents`) and the
 * tree of `canopy/picture`; pure, so that what the Agents view draws is tested without a
 * webview. The view posts {@link AgentsView} to the webview, which only draws it.
 */
import type { PictureNode } from "./model";

/** An agent event as the live stream sends it: timing, usage and outcome, not content. */
export interface AgentCall {
  type: string;
  offset: number;
  /** When it was recorded, in milliseconds since the epoch. */
  time: number;
  tick: number;
  node_id: string;
  call_id: string;
  agent?: string;
  model?: string;
  function?: string;
  latency_ms?: number;
  retries?: number;
  input_tokens?: number;
  output_tokens?: number;
  cost_usd?: number | null;
  rounds?: number;
  served_from?: { execution_id: string; offset: number; call_id: string };
  error_type?: string;
  message?: string;
  reason?: string;
  attempt?: number;
  tool?: string;
  /** AgentSlow: how long the call had run, what was expected of it and why (`timeout`,
   * `median`). */
  elapsed_ms?: number;
  expected_ms?: number;
  basis?: string;
}

export type Outcome = "running" | "succeeded" | "served" | "failed" | "cancelled";

/** One agent node: its lane, in tree order. */
export interface Lane {
  id: string;
  name: string;
  /** Names from the root down to the agent, for its label's tooltip. */
  path: string[];
  /** The nearest Parallel above it: adjacent lanes with the same one ran as a fan-out. */
  parallel: { id: string; name: string } | null;
  failed: boolean;
}

/** One call of an agent: a bar on its lane. */
export interface Bar {
  lane: number;
  node: string;
  callId: string;
  start: number;
  /** Its end, or null while it runs. */
  end: number | null;
  outcome: Outcome;
  startTick: number;
  /** When the call was told slow (AgentSlow: it ran past what was expected of it), or null. */
  slow: number | null;
  /** What its tooltip says: the call's kind, usage, cost, latency, retries, error. */
  tip: string;
}

/** How far the workflow is and when it should be done. */
export interface Estimate {
  /** Lanes whose last call has ended, of all lanes. */
  done: number;
  total: number;
  running: number;
  /** The median latency of the calls that ran to an answer or a failure so far. */
  medianMs: number | null;
  /** When the last agent should be done (ms since the epoch), null when nothing is left or
   * nothing to go by yet. */
  endsAt: number | null;
}

/** What the Agents view draws. */
export interface AgentsView {
  lanes: Lane[];
  bars: Bar[];
  /** The first call's start: the time axis begins there. */
  origin: number | null;
  /** The latest moment known: the last event, or the clock when later. */
  now: number;
  estimate: Estimate;
  /** The failing agents and every node above them to the root: highlighted in both views. */
  failedPath: string[];
  /** (time, tick) of every event, in time order: the tick at a moment of the time axis. */
  ticks: [number, number][];
}

const ENDS: Record<string, Outcome> = {
  AgentCallCompleted: "succeeded",
  AgentCallFailed: "failed",
  AgentCallCancelled: "cancelled",
};

/** Kinds of agent nodes: the tree files' type names and the classes of Python trees. */
const AGENT_KINDS = new Set(["llm", "python", "LlmAgent", "PythonAgent"]);

interface Call {
  node: string;
  started?: AgentCall;
  ended?: AgentCall;
  slow?: AgentCall;
  retries: number;
  tools: string[];
  /** Where it first showed up: bars of a lane in the order their calls came. */
  offset: number;
}

export class AgentTimeline {
  private nodes: PictureNode[] = [];
  private readonly calls = new Map<string, Call>();
  private readonly seen = new Set<number>();
  private readonly marks: [number, number][] = [];
  /** Whether `marks` is in time order (events mostly come in it; a late one breaks it). */
  private sorted = true;
  private latest = 0;

  /** Take the tree (again after a reload): the agent nodes' lanes, in its order. */
  setTree(nodes: PictureNode[]): void {
    this.nodes = nodes;
  }

  /** Fold agent events in; an event seen before (by its log offset) is left out. */
  add(events: AgentCall[]): void {
    for (const event of events) {
      if (this.seen.has(event.offset)) {
        continue;
      }
      this.seen.add(event.offset);
      this.sorted &&= event.time >= this.latest;
      this.latest = Math.max(this.latest, event.time);
      this.marks.push([event.time, event.tick]);
      let call = this.calls.get(event.call_id);
      if (call === undefined) {
        call = { node: event.node_id, retries: 0, tools: [], offset: event.offset };
        this.calls.set(event.call_id, call);
      }
      if (event.type === "AgentCallStarted") {
        call.started = event;
      } else if (event.type === "AgentRetried") {
        call.retries += 1;
      } else if (event.type === "AgentSlow") {
        call.slow = event;
      } else if (event.type === "AgentToolCalled" && event.tool !== undefined) {
        call.tools.push(event.tool);
      } else if (event.type in ENDS) {
        call.ended = event;
      }
    }
  }

  /** Whether any agent event has come. */
  get empty(): boolean {
    return this.calls.size === 0;
  }

  /** The lanes, bars and estimate as of `clock` (ms since the epoch). */
  view(clock: number): AgentsView {
    const now = Math.max(this.latest, clock);
    const lanes = this.lanes();
    const index = new Map(lanes.map((lane, i) => [lane.id, i]));
    const ordered = [...this.calls.entries()].sort(([, a], [, b]) => a.offset - b.offset);
    const bars: Bar[] = [];
    for (const [callId, call] of ordered) {
      const start = call.started?.time ?? call.ended?.time;
      const lane = index.get(call.node);
      if (start === undefined || lane === undefined) {
        continue; // a retry or tool call whose start is not known: nothing to draw yet
      }
      const outcome = outcomeOf(call);
      bars.push({
        lane,
        node: call.node,
        callId,
        start,
        end: call.ended?.time ?? null,
        outcome,
        startTick: call.started?.tick ?? call.ended?.tick ?? 0,
        slow: call.slow?.time ?? null,
        tip: tipOf(lanes[lane].name, call, outcome, now),
      });
    }
    const failing = new Set(bars.filter((bar) => bar.outcome === "failed").map((bar) => bar.node));
    for (const lane of lanes) {
      lane.failed = failing.has(lane.id);
    }
    if (!this.sorted) {
      this.marks.sort((a, b) => a[0] - b[0]);
      this.sorted = true;
    }
    return {
      lanes,
      bars,
      origin: bars.reduce<number | null>((first, bar) => (first === null || bar.start < first ? bar.start : first), null),
      now,
      estimate: estimate(lanes, bars, now),
      failedPath: this.pathsToRoot(failing),
      ticks: [...this.marks],
    };
  }

  /** One lane per agent node of the tree, in its order (a subtree's lanes are adjacent, so a
   * Parallel's agents sit side by side), then agents only the events know of. */
  private lanes(): Lane[] {
    const byId = new Map(this.nodes.map((node) => [node.id, node]));
    const called = new Set([...this.calls.values()].map((call) => call.node));
    const lanes: Lane[] = [];
    for (const node of this.nodes) {
      if (AGENT_KINDS.has(node.kind) || AGENT_KINDS.has(node.kind_short) || called.has(node.id)) {
        lanes.push(laneOf(node.id, byId));
        called.delete(node.id);
      }
    }
    for (const id of called) {
      lanes.push(laneOf(id, byId));
    }
    return lanes;
  }

  private pathsToRoot(failing: Set<string>): string[] {
    const parents = new Map(this.nodes.map((node) => [node.id, node.parent]));
    const path = new Set<string>();
    for (const id of failing) {
      for (let at: string | null | undefined = id; at && !path.has(at); at = parents.get(at)) {
        path.add(at);
      }
    }
    return [...path];
  }
}

function laneOf(id: string, byId: Map<string, PictureNode>): Lane {
  const path: string[] = [];
  let parallel: Lane["parallel"] = null;
  for (let at = byId.get(id); at !== undefined; at = at.parent === null ? undefined : byId.get(at.parent)) {
    path.unshift(at.name);
    if (parallel === null && at.id !== id && at.shape === "parallel") {
      parallel = { id: at.id, name: at.name };
    }
  }
  const name = byId.get(id)?.name ?? id.split("/").pop() ?? id;
  return { id, name, path: path.length > 0 ? path : [name], parallel, failed: false };
}

function outcomeOf(call: Call): Outcome {
  const ended = call.ended;
  if (ended === undefined) {
    return "running";
  }
  const outcome = ENDS[ended.type];
  return outcome === "succeeded" && ended.served_from !== undefined ? "served" : outcome;
}

const OUTCOME_WORDS: Record<Outcome, string> = {
  running: "running",
  succeeded: "succeeded",
  served: "served from the log",
  failed: "failed",
  cancelled: "cancelled",
};

/** "classify — succeeded · 1.24 s · 40 in / 2 out tokens · $0.000120 · 1 retry · tools:
 * lookup_order · ticks 3–9", and the error of a failed call on a line of its own. */
function tipOf(name: string, call: Call, outcome: Outcome, now: number): string {
  const started = call.started;
  const ended = call.ended;
  const parts = [`${name} — ${OUTCOME_WORDS[outcome]}`];
  const what = started?.model ?? started?.function;
  if (what !== undefined) {
    parts.push(what);
  }
  if (ended?.latency_ms !== undefined) {
    parts.push(seconds(ended.latency_ms));
  } else if (started !== undefined && ended === undefined) {
    // To the tenth of a second: the tooltip of a running call changes ten times a second.
    parts.push(`${((now - started.time) / 1000).toFixed(1)} s so far`);
  }
  if (ended?.input_tokens !== undefined || ended?.output_tokens !== undefined) {
    parts.push(`${ended.input_tokens ?? 0} in / ${ended.output_tokens ?? 0} out tokens`);
  }
  if (typeof ended?.cost_usd === "number") {
    parts.push(`$${ended.cost_usd.toFixed(6)}`);
  }
  const retries = Math.max(call.retries, ended?.retries ?? 0);
  if (retries > 0) {
    parts.push(`${retries} ${retries === 1 ? "retry" : "retries"}`);
  }
  if (call.tools.length > 0) {
    parts.push(`tools: ${call.tools.join(", ")}`);
  }
  const first = started?.tick;
  if (first !== undefined) {
    parts.push(ended !== undefined && ended.tick !== first ? `ticks ${first}–${ended.tick}` : `tick ${first}`);
  }
  let tip = parts.join(" · ");
  const slow = call.slow;
  if (slow?.elapsed_ms !== undefined && slow.expected_ms !== undefined) {
    const why = slow.basis === "timeout" ? "80% of its timeout" : "3 times its median latency";
    tip += `\nslow: still running after ${seconds(slow.elapsed_ms)}, over ${seconds(slow.expected_ms)} (${why})`;
  }
  if (outcome === "failed") {
    tip += `\n${ended?.error_type ?? "error"}: ${ended?.message ?? ""}`;
  } else if (outcome === "cancelled") {
    tip += `\n${ended?.reason ?? "cancelled"}`;
  } else if (outcome === "served" && ended?.served_from !== undefined) {
    tip += `\nanswered from execution ${ended.served_from.execution_id} (log offset ${ended.served_from.offset})`;
  }
  return tip;
}

/** "1.24 s", "850 ms". */
function seconds(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`;
}

function median(values: number[]): number | null {
  if (values.length === 0) {
    return null;
  }
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/**
 * The estimate: a running call should take its agent's median latency so far (the median of
 * all agents' when it has none of its own); agents not started yet run after the running ones,
 * as many at a time as the most calls seen in flight at once, each taking the overall median.
 * Served answers and cancelled calls say nothing of how long a call takes and are left out.
 */
function estimate(lanes: Lane[], bars: Bar[], now: number): Estimate {
  const latencies: number[] = [];
  const byLane = new Map<number, number[]>();
  const last = new Map<number, Bar>();
  for (const bar of bars) {
    last.set(bar.lane, bar);
    if (bar.end !== null && (bar.outcome === "succeeded" || bar.outcome === "failed")) {
      const latency = bar.end - bar.start;
      latencies.push(latency);
      const own = byLane.get(bar.lane);
      if (own === undefined) {
        byLane.set(bar.lane, [latency]);
      } else {
        own.push(latency);
      }
    }
  }
  const overall = median(latencies);
  const running = bars.filter((bar) => bar.end === null);
  const done = [...last.values()].filter((bar) => bar.end !== null).length;
  const waiting = lanes.length - last.size;
  let endsAt: number | null = null;
  if (overall !== null && (running.length > 0 || waiting > 0)) {
    let base = now;
    for (const bar of running) {
      const own = median(byLane.get(bar.lane) ?? []);
      base = Math.max(base, bar.start + (own ?? overall));
    }
    endsAt = base + Math.ceil(waiting / peakInFlight(bars, now)) * overall;
  }
  return { done, total: lanes.length, running: running.length, medianMs: overall, endsAt };
}

/** The most calls in flight at one moment (at least 1). */
function peakInFlight(bars: Bar[], now: number): number {
  const edges: [number, number][] = [];
  for (const bar of bars) {
    edges.push([bar.start, 1], [bar.end ?? now, -1]);
  }
  edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]); // an end before a start at the same time
  let inFlight = 0;
  let peak = 1;
  for (const [, change] of edges) {
    inFlight += change;
    peak = Math.max(peak, inFlight);
  }
  return peak;
}
