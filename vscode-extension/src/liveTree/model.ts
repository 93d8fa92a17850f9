/**
 * The live tree's data: the JSON model of `canopy/picture` (format `json`), laid out for
 * drawing, and the messages between the extension and the webview that draws it.
 */
import type { AgentsView } from "./agents";

/** One node of `canopy/picture`'s JSON model. */
export interface PictureNode {
  id: string;
  name: string;
  kind: string;
  kind_short: string;
  shape: string;
  parent: string | null;
  status: string | null;
  source: { path: string | null; line: number | null; column: number | null } | null;
}

/** `canopy/picture` with `format: "json"`: the tree at one point of its history. */
export interface Picture {
  execution_id: string;
  tick: number;
  offset: number;
  in_tick: boolean;
  root_status: string | null;
  current: string | null;
  nodes: PictureNode[];
  edges: { from: string; to: string }[];
}

/** A node placed on the drawing: its box's top-left corner. */
export interface PlacedNode {
  id: string;
  name: string;
  kind: string;
  shape: string;
  x: number;
  y: number;
}

/** The tree ready to draw: placed nodes, parent → child edges, and the drawing's size. */
export interface Drawing {
  nodes: PlacedNode[];
  edges: { from: string; to: string }[];
  width: number;
  height: number;
  nodeWidth: number;
  nodeHeight: number;
}

/** Statuses by node id, and the current node, at one tick. */
export interface Snapshot {
  statuses: Record<string, string | null>;
  current: string | null;
  tick: number;
  inTick: boolean;
  rootStatus: string | null;
}

/** What the extension tells the webview. */
export type ToView =
  | { type: "tree"; drawing: Drawing; snapshot: Snapshot; live: boolean; lastTick: number; breakpoints: string[]; session: string }
  | { type: "statuses"; changes: Record<string, string>; current?: string | null; tick: number; lastTick: number }
  | { type: "snapshot"; snapshot: Snapshot; live: boolean; lastTick: number }
  | { type: "breakpoints"; ids: string[] }
  | { type: "ticks"; lastTick: number }
  | { type: "empty"; message: string }
  | { type: "notice"; message: string }
  | { type: "timeline"; summary: string }
  | { type: "agents"; view: AgentsView }
  | { type: "tab"; tab: Tab };

/** The panel's two views: the tree, and its agents' calls over time. */
export type Tab = "tree" | "agents";

/** What the webview asks of the extension. */
export type FromView =
  | { type: "ready" }
  | { type: "toggleBreakpoint"; id: string }
  | { type: "scrub"; tick: number }
  | { type: "live" }
  | { type: "tab"; tab: Tab };

/** The elements media/liveTree.js draws into (the webview's page, and the benchmark's). */
export const PAGE_BODY = `<header id="bar">
  <span id="session"></span>
  <span id="tabs" role="tablist">
    <button id="tab-tree" type="button" role="tab" aria-selected="true" data-tab="tree">Tree</button>
    <button id="tab-agents" type="button" role="tab" aria-selected="false" data-tab="agents">Agents</button>
  </span>
  <input id="timeline" type="range" min="0" max="0" value="0" aria-label="Tick">
  <span id="tick">tick 0</span>
  <button id="live" type="button" title="Back to the running tree">Live</button>
</header>
<div id="summary"></div>
<div id="notice" role="status"></div>
<main id="canvas"></main>
<section id="agents" hidden>
  <div id="agents-summary" role="status"></div>
  <div id="lanes"></div>
  <div id="agents-at" role="status"></div>
</section>`;

/** The statuses and current node of `picture`. */
export function snapshotOf(picture: Picture): Snapshot {
  const statuses: Record<string, string | null> = {};
  for (const node of picture.nodes) {
    statuses[node.id] = node.status;
  }
  return {
    statuses,
    current: picture.current,
    tick: picture.tick,
    inTick: picture.in_tick,
    rootStatus: picture.root_status,
  };
}

/** What the view says when a session ends: how its execution ended, as the adapter's
 * `canopy/executionEnded` event put it ("failed: KeyError in check_battery"), when it said. */
export function endNotice(session: string, ended: string | undefined): string {
  return ended ? `${session} has ended: ${ended}.` : `${session} has ended.`;
}

/** What the view says when the adapter tells a problem on stderr as it happens (a behaviour's
 * exception, an agent's failed call): the report's first line, which names the exception, the
 * node and the tick ("KeyError in check_battery (tick 1): ..."). */
export function problemNotice(session: string, output: string): string {
  return `${session}: ${output.split("\n", 1)[0]}`;
}

/** The tick statistics of `canopy/timeline`: `duration_ms` is the tree's own time per tick,
 * `paused_ms` the time the ticks spent stopped for the debugger (absent from older servers). */
export interface TimelineStatistics {
  duration_ms: { mean?: number; p50?: number; max?: number } | null;
  paused_ms?: number;
  root_statuses: Record<string, number>;
}

/** "42 ticks · 1.3 ms mean, 4.0 ms max · 2513.0 ms paused · RUNNING 41, FAILURE 1": the time
 * stopped at breakpoints is told apart, never counted as the tree's. */
export function describeTimeline(ticks: number, statistics: TimelineStatistics): string {
  const parts = [`${ticks} tick${ticks === 1 ? "" : "s"}`];
  const duration = statistics.duration_ms;
  if (duration?.mean !== undefined) {
    parts.push(`${duration.mean.toFixed(1)} ms mean${duration.max !== undefined ? `, ${duration.max.toFixed(1)} ms max` : ""}`);
  }
  if (statistics.paused_ms) {
    parts.push(`${statistics.paused_ms.toFixed(1)} ms paused`);
  }
  const statuses = Object.entries(statistics.root_statuses).map(([status, count]) => `${status} ${count}`);
  if (statuses.length > 0) {
    parts.push(statuses.join(", "));
  }
  return parts.join(" · ");
}
