/** The report of a comparison of two executions, and the list of executions to pick from. */

/** An execution the user can pick. */
export interface Known {
  id: string;
  label: string;
  seen: number;
}

const REMEMBERED = 30;

/** The JSON form of the runtime's `ExecutionDiff`, as `canopy/diff` answers it. */
export interface ExecutionDiff {
  a: Summary;
  b: Summary;
  diverged_at: number | null;
  diff: {
    tick_a: number;
    tick_b: number;
    nodes: Record<string, [string | null, string | null]>;
    added: Record<string, unknown>;
    removed: Record<string, unknown>;
    changed: Record<string, [unknown, unknown]>;
  } | null;
  same_through: number | null;
  /** Where, within the diverging tick, the runs part (absent from older servers). */
  diverged_on?: Divergence | null;
  /** Each side's tick statistics (absent from older servers). */
  ticks_a?: TickTimes;
  ticks_b?: TickTimes;
  nodes_only_in_a: string[];
  nodes_only_in_b: string[];
  /** Each agent node on both sides (absent from older servers). */
  agents?: AgentComparison[];
}

/** One agent node in one execution: its last call's end and all its calls' totals. */
export interface AgentOutcome {
  status: "completed" | "served" | "failed" | "cancelled";
  calls: number;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
  latency_ms: number;
  outputs: Record<string, unknown> | null;
  text: string | null;
  error: string | null;
}

/** An agent node in two executions (null where it made no call) and what differs. */
export interface AgentComparison {
  node_id: string;
  a: AgentOutcome | null;
  b: AgentOutcome | null;
  differs: string[];
}

/** One recorded change: a node's status (`node`, the status in `value`) or a blackboard key
 * (`key`) written with `value`, or removed (`unset`). */
export interface Change {
  node: string | null;
  key: string | null;
  value: unknown;
  unset: boolean;
}

/** The first change the two runs recorded differently, as each side recorded it (null: that
 * side recorded nothing in its place). */
export interface Divergence {
  a: Change | null;
  b: Change | null;
}

/** How long ticks took: `duration_ms` is the tree's own time, `paused_ms` the total time
 * stopped for the debugger. */
export interface TickTimes {
  duration_ms: { mean: number; max: number } | null;
  paused_ms: number;
}

export interface Summary {
  execution_id: string;
  ticks: number;
  root_status: string | null;
  ended: string | null;
  tree_name: string;
}

/** A readable Markdown report of `diff`. */
export function describeDiff(diff: ExecutionDiff): string {
  const lines = [`# ${diff.a.execution_id} vs ${diff.b.execution_id}`, ""];
  lines.push("| | A | B |", "| --- | --- | --- |");
  lines.push(`| execution | \`${diff.a.execution_id}\` | \`${diff.b.execution_id}\` |`);
  lines.push(`| tree | ${diff.a.tree_name} | ${diff.b.tree_name} |`);
  lines.push(`| ticks | ${diff.a.ticks} | ${diff.b.ticks} |`);
  lines.push(`| root status | ${diff.a.root_status ?? "—"} | ${diff.b.root_status ?? "—"} |`);
  if (diff.ticks_a !== undefined && diff.ticks_b !== undefined) {
    lines.push(`| tick time (mean, max) | ${tickTime(diff.ticks_a)} | ${tickTime(diff.ticks_b)} |`);
    if (diff.ticks_a.paused_ms > 0 || diff.ticks_b.paused_ms > 0) {
      lines.push(`| paused at breakpoints | ${diff.ticks_a.paused_ms.toFixed(1)} ms | ${diff.ticks_b.paused_ms.toFixed(1)} ms |`);
    }
  }
  lines.push(`| ended | ${diff.a.ended ?? "running"} | ${diff.b.ended ?? "running"} |`, "");
  if (diff.diverged_at === null || diff.diff === null) {
    lines.push(`**No divergence**: every tick both completed is the same${diff.same_through === null ? "" : ` (through tick ${diff.same_through})`}.`);
  } else {
    const through = diff.same_through === null ? "They differ from the start." : `The same through tick ${diff.same_through}.`;
    lines.push(`**They diverge at tick ${diff.diverged_at}.** ${through}`, "");
    if (diff.diverged_on) {
      lines.push(`First difference: A ${describeChange(diff.diverged_on.a)}; B ${describeChange(diff.diverged_on.b)}.`, "");
    }
    const nodes = Object.entries(diff.diff.nodes);
    if (nodes.length > 0) {
      lines.push("## Node statuses", "", "| node | A | B |", "| --- | --- | --- |");
      for (const [node, [a, b]] of nodes) {
        lines.push(`| \`${node}\` | ${a ?? "(absent)"} | ${b ?? "(absent)"} |`);
      }
      lines.push("");
    }
    const values: [string, string, string][] = [
      ...Object.entries(diff.diff.changed).map(([key, [a, b]]) => [key, show(a), show(b)] as [string, string, string]),
      ...Object.entries(diff.diff.removed).map(([key, a]) => [key, show(a), "(absent)"] as [string, string, string]),
      ...Object.entries(diff.diff.added).map(([key, b]) => [key, "(absent)", show(b)] as [string, string, string]),
    ];
    if (values.length > 0) {
      lines.push("## Blackboard", "", "| key | A | B |", "| --- | --- | --- |");
      for (const [key, a, b] of values) {
        lines.push(`| \`${key}\` | ${a} | ${b} |`);
      }
      lines.push("");
    }
  }
  const agents = diff.agents ?? [];
  if (agents.length > 0) {
    lines.push("## Agents", "", "| agent | A | B | differs in |", "| --- | --- | --- | --- |");
    for (const agent of agents) {
      const differs = agent.differs.length === 0 ? "—" : agent.differs.join(", ");
      lines.push(`| \`${agent.node_id}\` | ${describeAgent(agent.a)} | ${describeAgent(agent.b)} | ${differs} |`);
    }
    lines.push("");
  }
  for (const [side, nodes] of [["A", diff.nodes_only_in_a], ["B", diff.nodes_only_in_b]] as const) {
    if (nodes.length > 0) {
      lines.push(`Nodes only in ${side}: ${nodes.map((node) => `\`${node}\``).join(", ")}`, "");
    }
  }
  return lines.join("\n");
}

/** What one side did where the runs part: "set `move` to FAILURE", "wrote `/battery` = 40". */
export function describeChange(change: Change | null): string {
  if (change === null) {
    return "recorded nothing there";
  }
  if (change.node !== null) {
    return `set \`${change.node}\` to ${String(change.value)}`;
  }
  return change.unset ? `removed \`${change.key}\`` : `wrote \`${change.key}\` = ${JSON.stringify(change.value)}`;
}

/** One side of an agent, in a line: "served from the log · 52 tokens · $0.0002 · 0.0 ms". */
export function describeAgent(outcome: AgentOutcome | null): string {
  if (outcome === null) {
    return "no call";
  }
  const status = outcome.status === "served" ? "served from the log" : outcome.status;
  const calls = outcome.calls > 1 ? ` (${outcome.calls} calls)` : "";
  const tokens = outcome.input_tokens + outcome.output_tokens;
  return `${status}${calls} · ${tokens} tokens · $${outcome.cost_usd.toFixed(4)} · ${outcome.latency_ms.toFixed(1)} ms`;
}

/** The tree's own time per tick: time stopped at breakpoints is never compared. */
export function tickTime(ticks: TickTimes): string {
  const duration = ticks.duration_ms;
  return duration === null ? "—" : `${duration.mean.toFixed(1)} ms, ${duration.max.toFixed(1)} ms`;
}

function show(value: unknown): string {
  return "`" + JSON.stringify(value).replace(/\|/g, "\\|") + "`";
}

/** Newest first, one entry per id, at most `limit`. */
export function remember(known: readonly Known[], entry: Known, limit = REMEMBERED): Known[] {
  return [entry, ...known.filter((item) => item.id !== entry.id)].slice(0, limit);
}

