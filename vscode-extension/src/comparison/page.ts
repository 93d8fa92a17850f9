/**
 * The comparison view's page: an execution diff (`canopy/diff`) as HTML, built in the extension
 * so that what it shows is tested without a browser. Node ids, keys and values come from the
 * user's trees and blackboards: every one is escaped, nothing from them becomes markup.
 */
import {
  type AgentComparison,
  type AgentOutcome,
  type Change,
  type Divergence,
  type ExecutionDiff,
  type Summary,
  type TickTimes,
  describeAgent,
  tickTime,
} from "../diffReport";

/** Execution A's recorded state at a tick, as `canopy/stateAt` answers it. */
export interface RecordedState {
  execution_id: string;
  tick: number;
  statuses: Record<string, string>;
  blackboard: Record<string, unknown>;
  root_status: string | null;
}

/** Everything the page shows. */
export interface ComparisonPage {
  diff: ExecutionDiff;
  /** A's state at the diverging tick, read when the comparison was made (B's follows from it
   * and the diff: the diff is every difference between the two states). */
  stateA?: RecordedState;
  /** Show both states at the diverging tick (where the jump lands when no session can). */
  showState: boolean;
  notice?: string;
}

/** What the page asks of the extension. */
export type FromComparison = { type: "jump" } | { type: "markdown" };

/** Where the jump to the divergence goes: the live tree of a session on A (else on B) at that
 * side's diverging tick, or the states shown in the page itself. */
export type JumpTarget = { kind: "liveTree"; side: "a" | "b"; tick: number } | { kind: "page"; tick: number };

/** One line of a two-sided table: a node's status or a key's value on each side. */
export interface SideBySide {
  subject: string;
  a: string;
  b: string;
  differs: boolean;
  first: boolean;
}

const ABSENT = "(absent)";

/** `text` safe as HTML text and as a double- or single-quoted attribute value. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A blackboard value as JSON, or "(absent)". */
export function showValue(value: unknown): string {
  return value === undefined ? ABSENT : JSON.stringify(value) ?? String(value);
}

/** The nodes and keys the first difference is about, on either side. */
export function firstSubjects(divergence: Divergence | null | undefined): { nodes: Set<string>; keys: Set<string> } {
  const nodes = new Set<string>();
  const keys = new Set<string>();
  for (const change of [divergence?.a, divergence?.b]) {
    if (change?.node != null) {
      nodes.add(change.node);
    } else if (change?.key != null) {
      keys.add(change.key);
    }
  }
  return { nodes, keys };
}

/** Where the jump goes, given whether a session on A or on B can still show a past tick;
 * undefined when the runs never part. */
export function jumpTarget(diff: ExecutionDiff, liveA: boolean, liveB: boolean): JumpTarget | undefined {
  if (diff.diverged_at === null || diff.diff === null) {
    return undefined;
  }
  if (liveA) {
    return { kind: "liveTree", side: "a", tick: diff.diff.tick_a };
  }
  if (liveB) {
    return { kind: "liveTree", side: "b", tick: diff.diff.tick_b };
  }
  return { kind: "page", tick: diff.diverged_at };
}

/** The node statuses of the diverging tick that differ, then the blackboard keys. */
export function differences(diff: ExecutionDiff): { nodes: SideBySide[]; keys: SideBySide[] } {
  if (diff.diff === null) {
    return { nodes: [], keys: [] };
  }
  const first = firstSubjects(diff.diverged_on);
  const nodes = Object.entries(diff.diff.nodes).map(([node, [a, b]]) => ({
    subject: node,
    a: a ?? ABSENT,
    b: b ?? ABSENT,
    differs: true,
    first: first.nodes.has(node),
  }));
  const keys = [
    ...Object.entries(diff.diff.changed).map(([key, [a, b]]) => [key, showValue(a), showValue(b)] as const),
    ...Object.entries(diff.diff.removed).map(([key, a]) => [key, showValue(a), ABSENT] as const),
    ...Object.entries(diff.diff.added).map(([key, b]) => [key, ABSENT, showValue(b)] as const),
  ].map(([key, a, b]) => ({ subject: key, a, b, differs: true, first: first.keys.has(key) }));
  return { nodes, keys };
}

/** Both whole states at the diverging tick: A's as recorded, B's as A's with the diff applied. */
export function statesAt(stateA: RecordedState, diff: ExecutionDiff): { nodes: SideBySide[]; keys: SideBySide[] } {
  const first = firstSubjects(diff.diverged_on);
  const nodesB: Record<string, string | null> = { ...stateA.statuses };
  const valuesB: Record<string, unknown> = { ...stateA.blackboard };
  if (diff.diff !== null) {
    for (const [node, [, b]] of Object.entries(diff.diff.nodes)) {
      nodesB[node] = b;
    }
    for (const [key, [, b]] of Object.entries(diff.diff.changed)) {
      valuesB[key] = b;
    }
    for (const key of Object.keys(diff.diff.removed)) {
      delete valuesB[key];
    }
    Object.assign(valuesB, diff.diff.added);
  }
  const nodes = union(stateA.statuses, nodesB).map((node) => {
    const a = stateA.statuses[node] ?? ABSENT;
    const b = nodesB[node] ?? ABSENT;
    return { subject: node, a, b, differs: a !== b, first: first.nodes.has(node) };
  });
  const keys = union(stateA.blackboard, valuesB).map((key) => {
    const a = key in stateA.blackboard ? showValue(stateA.blackboard[key]) : ABSENT;
    const b = key in valuesB ? showValue(valuesB[key]) : ABSENT;
    return { subject: key, a, b, differs: a !== b, first: first.keys.has(key) };
  });
  return { nodes, keys };
}

/** The page's body. */
export function comparisonBody(page: ComparisonPage): string {
  const { diff } = page;
  const parts = [
    `<nav id="actions"><button type="button" id="markdown" data-action="markdown" title="The same report as Markdown, to paste into a ticket">Show as Markdown</button></nav>`,
    `<h1>${code(diff.a.execution_id)} vs ${code(diff.b.execution_id)}</h1>`,
    summaryTable(diff.a, diff.b, diff.ticks_a, diff.ticks_b),
    divergenceSection(diff),
  ];
  if (page.notice !== undefined) {
    parts.push(`<p id="notice" role="status">${escapeHtml(page.notice)}</p>`);
  }
  if (diff.diff !== null && diff.diverged_at !== null) {
    const { nodes, keys } = differences(diff);
    parts.push(table("nodes", `Node statuses at tick ${diff.diverged_at}`, "node", nodes));
    parts.push(table("blackboard", `Blackboard at tick ${diff.diverged_at}`, "key", keys));
    if (page.showState && page.stateA !== undefined) {
      const states = statesAt(page.stateA, diff);
      parts.push(
        `<section id="state"><h2>The state at the end of tick ${page.stateA.tick}</h2>`,
        table("state-nodes", "Node statuses", "node", states.nodes),
        table("state-blackboard", "Blackboard", "key", states.keys),
        `</section>`,
      );
    }
  }
  parts.push(agentsTable(diff.agents ?? []));
  for (const [side, nodes] of [["A", diff.nodes_only_in_a], ["B", diff.nodes_only_in_b]] as const) {
    if (nodes.length > 0) {
      parts.push(`<p class="only">Nodes only in ${side} (${nodes.length}): ${nodes.map(code).join(", ")}</p>`);
    }
  }
  return parts.join("\n");
}

function summaryTable(a: Summary, b: Summary, ticksA: TickTimes | undefined, ticksB: TickTimes | undefined): string {
  const rows: [string, string, string][] = [
    ["tree", escapeHtml(a.tree_name), escapeHtml(b.tree_name)],
    ["ticks", String(a.ticks), String(b.ticks)],
    ["root status", escapeHtml(a.root_status ?? "—"), escapeHtml(b.root_status ?? "—")],
    ["ended", escapeHtml(a.ended ?? "running"), escapeHtml(b.ended ?? "running")],
  ];
  if (ticksA !== undefined && ticksB !== undefined) {
    rows.push(["tick time (mean, max)", tickTime(ticksA), tickTime(ticksB)]);
    if (ticksA.paused_ms > 0 || ticksB.paused_ms > 0) {
      rows.push(["paused at breakpoints", `${ticksA.paused_ms.toFixed(1)} ms`, `${ticksB.paused_ms.toFixed(1)} ms`]);
    }
  }
  const body = rows.map(([name, x, y]) => `<tr><th scope="row">${name}</th><td>${x}</td><td>${y}</td></tr>`).join("");
  return `<table id="summary"><thead><tr><th></th><th>A</th><th>B</th></tr></thead><tbody>${body}</tbody></table>`;
}

function divergenceSection(diff: ExecutionDiff): string {
  if (diff.diverged_at === null || diff.diff === null) {
    const through = diff.same_through === null ? "" : ` (through tick ${diff.same_through})`;
    return `<section id="divergence" class="same"><p><strong>No divergence</strong>: every tick both completed is the same${through}.</p></section>`;
  }
  const through = diff.same_through === null ? "They differ from the start." : `The same through tick ${diff.same_through}.`;
  const lines = [`<p><strong>They diverge at tick ${diff.diverged_at}.</strong> ${through}</p>`];
  if (diff.diverged_on) {
    lines.push(
      `<p id="first-change">First difference: A ${changeHtml(diff.diverged_on.a)}; B ${changeHtml(diff.diverged_on.b)}.</p>`,
    );
  }
  lines.push(
    `<button type="button" id="jump" data-action="jump" data-tick="${diff.diverged_at}" title="Show the tick in the live tree of a running session, else here">Go to tick ${diff.diverged_at}</button>`,
  );
  return `<section id="divergence" class="diverged">${lines.join("")}</section>`;
}

/** Each agent on both sides: how it ended, tokens, cost and time; what it wrote on hover. */
function agentsTable(agents: AgentComparison[]): string {
  if (agents.length === 0) {
    return "";
  }
  const differing = agents.filter((agent) => agent.differs.length > 0).length;
  const cell = (outcome: AgentOutcome | null): string => {
    const written = outcome?.outputs ? showValue(outcome.outputs) : "";
    const error = outcome?.error ? ` — ${outcome.error}` : "";
    return `<td title="${escapeHtml(written)}">${escapeHtml(describeAgent(outcome) + error)}</td>`;
  };
  const body = agents
    .map(
      (agent) =>
        `<tr data-agent="${escapeHtml(agent.node_id)}"${agent.differs.length > 0 ? ` class="differs"` : ""}>` +
        `<td>${code(agent.node_id)}</td>${cell(agent.a)}${cell(agent.b)}<td>${escapeHtml(agent.differs.join(", ") || "—")}</td></tr>`,
    )
    .join("");
  return (
    `<h3>Agents <span class="count">· ${differing} of ${agents.length} differ</span></h3>` +
    `<table id="agents"><thead><tr><th>agent</th><th>A</th><th>B</th><th>differs in</th></tr></thead><tbody>${body}</tbody></table>`
  );
}

function changeHtml(change: Change | null): string {
  if (change === null) {
    return "recorded nothing there";
  }
  if (change.node !== null) {
    return `set ${code(change.node)} to ${escapeHtml(String(change.value))}`;
  }
  const key = code(change.key ?? "");
  return change.unset ? `removed ${key}` : `wrote ${key} = ${code(showValue(change.value))}`;
}

function table(id: string, title: string, subject: "node" | "key", rows: SideBySide[]): string {
  if (rows.length === 0) {
    return "";
  }
  const differing = rows.filter((row) => row.differs).length;
  const count = differing === rows.length ? `${rows.length} differ${rows.length === 1 ? "s" : ""}` : `${differing} of ${rows.length} differ`;
  const body = rows
    .map((row) => {
      const classes = [row.differs ? "differs" : "", row.first ? "first" : ""].filter((name) => name !== "").join(" ");
      const badge = row.first ? ` <span class="badge">first difference</span>` : "";
      return (
        `<tr data-${subject}="${escapeHtml(row.subject)}"${classes === "" ? "" : ` class="${classes}"`}>` +
        `<td>${code(row.subject)}${badge}</td><td>${escapeHtml(row.a)}</td><td>${escapeHtml(row.b)}</td></tr>`
      );
    })
    .join("");
  return (
    `<h3>${escapeHtml(title)} <span class="count">· ${count}</span></h3>` +
    `<table id="${id}"><thead><tr><th>${subject}</th><th>A</th><th>B</th></tr></thead><tbody>${body}</tbody></table>`
  );
}

function code(text: string): string {
  return `<code>${escapeHtml(text)}</code>`;
}

/** Keys of `a`, then those only in `b`, in their order. */
function union(a: Record<string, unknown>, b: Record<string, unknown>): string[] {
  return [...Object.keys(a), ...Object.keys(b).filter((key) => !(key in a))];
}
