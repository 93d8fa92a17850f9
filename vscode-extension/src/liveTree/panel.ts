/**
 * The live tree: a webview that draws the active Canopy session's tree, colours each node by
 * its live status, highlights the current node, scrubs back through the ticks (time travel),
 * and sets or clears a node's breakpoint on a click. Its Agents tab draws the workflow's agents
 * as lanes over time (see ./agents.ts).
 *
 * Everything comes through the debug adapter: `canopy/picture` (the tree and its statuses at a
 * tick), `canopy/liveTree` (batched `canopy/nodeStatuses` events, with the agents' calls since
 * the start) and `canopy/timeline`, so the view works the same for embedded runs and for runs in
 * a debug pod.
 */
import * as vscode from "vscode";
import type { SessionEvent, SessionEvents } from "../sessionEvents";
import { webviewPage } from "../webviewPage";
import { activeTreeSession, treeSessionOf } from "../treeSessions";
import { type AgentCall, AgentTimeline } from "./agents";
import { type NodeStatusBatch, StatusBatcher } from "./batcher";
import { layout } from "./layout";
import {
  describeTimeline,
  endNotice,
  problemNotice,
  type FromView,
  PAGE_BODY,
  type Picture,
  snapshotOf,
  type Tab,
  type TimelineStatistics,
  type ToView,
} from "./model";

/** How often the adapter sends batched status changes, and the webview gets them: 25 times a
 * second at most. */
const FLUSH_MS = 40;

export class LiveTreePanel implements vscode.Disposable {
  private panel: vscode.WebviewPanel | undefined;
  private session: vscode.DebugSession | undefined;
  private live = true;
  private batcher = new StatusBatcher();
  /** The agent calls of each session with a live stream, by session id: a stream sends them
   * once, so they are kept for when the view comes back to that session. */
  private readonly timelines = new Map<string, AgentTimeline>();
  /** Whether agent calls came since the Agents tab was last sent its view. */
  private agentsChanged = false;
  /** The tab to show once the webview is ready (a command may ask before it is). */
  private tab: Tab = "tree";
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly streaming = new Set<string>();
  /** How each session's execution ended (`canopy/executionEnded`), said when it terminates. */
  private readonly endings = new Map<string, string>();
  /** The last problem each session told on stderr (a behaviour's exception, an agent's failed
   * call), kept while the view is closed too: it is said when the view shows that session. */
  private readonly problems = new Map<string, string>();
  private scrubbing: { wanted: number | undefined; busy: boolean } = { wanted: undefined, busy: false };
  /** A tick to show once the view has drawn the tree (a comparison's jump). */
  private jumpTo: number | undefined;
  /** Whether the webview's script has said it is ready (messages before that are lost). */
  private ready = false;
  private readonly subscriptions: vscode.Disposable[] = [];

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly events: SessionEvents,
  ) {
    this.subscriptions.push(
      events.onEvent((event) => this.onSessionEvent(event)),
      vscode.debug.onDidChangeActiveDebugSession((session) => {
        const tree = treeSessionOf(session);
        if (tree !== undefined && tree.id !== this.session?.id) {
          void this.bind(tree);
        }
      }),
      vscode.debug.onDidChangeBreakpoints(() => this.post({ type: "breakpoints", ids: breakpointNodes() })),
    );
  }

  /** Open (or bring forward) the view, following the active Canopy session. */
  async show(): Promise<void> {
    if (this.panel === undefined) {
      this.panel = this.create();
    } else {
      this.panel.reveal(undefined, true);
    }
    await this.bind(activeCanopySession() ?? this.session);
  }

  /** Open the view on `session`'s tree as it was at the end of `tick` (a comparison's jump to
   * where two executions part); the timeline stays, to move on from there. */
  async showTick(session: vscode.DebugSession, tick: number): Promise<void> {
    this.jumpTo = tick;
    if (this.panel === undefined) {
      this.panel = this.create();
    } else {
      this.panel.reveal(undefined, false);
    }
    await this.bind(session);
  }

  /** Open the view on its Agents tab: the workflow's agents as lanes over time. */
  async showAgents(): Promise<void> {
    this.tab = "agents";
    await this.show();
    this.post({ type: "tab", tab: "agents" });
  }

  /** Open the view with its timeline summary: ticks so far and their durations. */
  async showTimeline(): Promise<void> {
    await this.show();
    const session = this.session;
    if (session === undefined || !this.events.isConfigured(session)) {
      return;
    }
    try {
      const timeline = (await session.customRequest("canopy/timeline")) as {
        ticks: number;
        statistics: TimelineStatistics;
      };
      this.post({ type: "timeline", summary: describeTimeline(timeline.ticks, timeline.statistics) });
      this.post({ type: "ticks", lastTick: Math.max(timeline.ticks, this.batcher.lastTick) });
    } catch (error) {
      this.post({ type: "notice", message: `canopy/timeline: ${(error as Error).message}` });
    }
  }

  /** Show the tree as it was at the end of `tick` (time travel; live updates pause). */
  async scrub(tick: number): Promise<void> {
    this.live = false;
    this.batcher.clear();
    this.scrubbing.wanted = tick;
    if (this.scrubbing.busy) {
      return; // the request in flight picks the latest wanted tick up when it is done
    }
    this.scrubbing.busy = true;
    try {
      while (this.scrubbing.wanted !== undefined && !this.live) {
        const wanted = this.scrubbing.wanted;
        this.scrubbing.wanted = undefined;
        const picture = await this.picture(wanted);
        if (picture !== undefined && !this.live) {
          this.post({ type: "snapshot", snapshot: snapshotOf(picture), live: false, lastTick: this.batcher.lastTick });
        }
      }
    } finally {
      this.scrubbing.busy = false;
    }
  }

  /** Back to the running tree. */
  async goLive(): Promise<void> {
    this.live = true;
    this.batcher.clear();
    const picture = await this.picture(undefined);
    if (picture !== undefined) {
      this.post({ type: "snapshot", snapshot: snapshotOf(picture), live: true, lastTick: this.lastTick(picture) });
    }
  }

  private create(): vscode.WebviewPanel {
    const media = vscode.Uri.joinPath(this.extensionUri, "media");
    const panel = vscode.window.createWebviewPanel(
      "canopy.liveTree",
      "Canopy: Live Tree",
      { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true },
      { enableScripts: true, retainContextWhenHidden: true, localResourceRoots: [media] },
    );
    panel.webview.html = webviewPage(panel.webview, media, "liveTree", "Canopy: Live Tree", PAGE_BODY, ["agentLanes"]);
    panel.webview.onDidReceiveMessage((message: FromView) => this.onViewMessage(message), undefined, this.subscriptions);
    this.ready = false;
    panel.onDidDispose(() => {
      this.panel = undefined;
      this.stopFlushing();
    });
    return panel;
  }

  private async bind(session: vscode.DebugSession | undefined): Promise<void> {
    this.session = session;
    this.live = true;
    this.batcher = new StatusBatcher();
    for (const id of this.timelines.keys()) {
      if (id !== session?.id && !this.streaming.has(id)) {
        this.timelines.delete(id); // an ended session's, left behind
      }
    }
    if (session === undefined) {
      this.post({ type: "empty", message: "Start a Canopy debug session to see its tree here." });
      return;
    }
    if (!this.events.isConfigured(session)) {
      this.post({ type: "empty", message: `Waiting for ${session.name} to start…` });
      return;
    }
    await this.load(session);
  }

  /** Fetch the whole tree and start its status stream (once per session). */
  private async load(session: vscode.DebugSession): Promise<void> {
    if (this.panel === undefined) {
      return;
    }
    const picture = await this.picture(undefined);
    if (picture === undefined) {
      this.jumpTo = undefined; // said in the view's notice; a later load must not jump
      return;
    }
    if (session.id !== this.session?.id) {
      return;
    }
    if (!this.streaming.has(session.id)) {
      this.streaming.add(session.id);
      try {
        // Statuses from the picture on (what came before is in the picture already), agent
        // calls from the start: the Agents tab draws the whole run.
        await session.customRequest("canopy/liveTree", { batchMs: FLUSH_MS, after: picture.offset, agentsAfter: 0 });
      } catch (error) {
        this.streaming.delete(session.id);
        this.post({ type: "notice", message: `canopy/liveTree: ${(error as Error).message}` });
      }
    }
    this.post({
      type: "tree",
      drawing: layout(picture.nodes, picture.edges),
      snapshot: snapshotOf(picture),
      live: this.live,
      lastTick: this.lastTick(picture),
      breakpoints: breakpointNodes(),
      session: session.name,
    });
    const problem = this.problems.get(session.id);
    if (problem !== undefined) {
      this.post({ type: "notice", message: problem });
    }
    this.timelineOf(session).setTree(picture.nodes);
    this.postAgents();
    if (this.jumpTo !== undefined && this.ready) {
      const tick = this.jumpTo;
      this.jumpTo = undefined;
      await this.scrub(tick);
    }
  }

  private lastTick(picture: Picture): number {
    return Math.max(picture.tick, this.batcher.lastTick);
  }

  private async picture(tick: number | undefined): Promise<Picture | undefined> {
    const session = this.session;
    if (session === undefined) {
      return undefined;
    }
    try {
      const args = tick === undefined ? { format: "json" } : { format: "json", tick };
      const answer = (await session.customRequest("canopy/picture", args)) as { content: Picture };
      return answer.content;
    } catch (error) {
      this.post({ type: "notice", message: `canopy/picture: ${(error as Error).message}` });
      return undefined;
    }
  }

  private onSessionEvent({ session, event, body }: SessionEvent): void {
    if (event === "output" && body.category === "stderr") {
      this.problems.set(session.id, problemNotice(session.name, String(body.output ?? "")));
      if (session.id === this.session?.id) {
        this.post({ type: "notice", message: this.problems.get(session.id) ?? "" });
      }
      return;
    }
    if (event === "terminated") {
      this.problems.delete(session.id); // the end notice says how it ended
    }
    if (this.panel === undefined) {
      return;
    }
    if (this.session === undefined && event === "configured") {
      void this.bind(session);
      return;
    }
    const agents = event === "canopy/nodeStatuses" ? (body.agents as AgentCall[] | undefined) : undefined;
    if (agents !== undefined && agents.length > 0) {
      this.timelineOf(session).add(agents);
      this.agentsChanged ||= session.id === this.session?.id;
    }
    if (session.id !== this.session?.id) {
      return;
    }
    switch (event) {
      case "configured":
        void this.load(session);
        break;
      case "canopy/nodeStatuses":
        this.batcher.addBatch(body as unknown as NodeStatusBatch);
        if (this.batcher.takeReload()) {
          void this.load(session);
        } else if (this.live || this.agentsChanged) {
          this.scheduleFlush();
        } else {
          this.post({ type: "ticks", lastTick: this.batcher.lastTick });
        }
        break;
      case "stopped":
        if (this.live) {
          void this.goLive();
        }
        break;
      case "canopy/executionEnded":
        this.endings.set(session.id, String(body.text ?? ""));
        break;
      case "terminated":
        this.flush();
        this.streaming.delete(session.id);
        this.post({ type: "notice", message: endNotice(session.name, this.endings.get(session.id)) });
        this.endings.delete(session.id);
        break;
    }
  }

  private onViewMessage(message: FromView): void {
    switch (message.type) {
      case "ready":
        this.ready = true;
        this.post({ type: "tab", tab: this.tab });
        void this.bind(this.session ?? activeCanopySession());
        break;
      case "toggleBreakpoint":
        toggleBreakpoint(message.id);
        break;
      case "scrub":
        void this.scrub(message.tick);
        break;
      case "live":
        void this.goLive();
        break;
      case "tab":
        this.tab = message.tab;
        break;
    }
  }

  private scheduleFlush(): void {
    if (this.flushTimer === undefined) {
      this.flushTimer = setTimeout(() => {
        this.flushTimer = undefined;
        this.flush();
      }, FLUSH_MS);
    }
  }

  private flush(): void {
    const batch = this.batcher.flush();
    if (batch !== undefined && this.live) {
      // Stopped, the current node is where the session stopped, not the last one to change.
      const current = this.session !== undefined && this.events.isStopped(this.session) ? undefined : batch.current;
      this.post({ type: "statuses", changes: batch.changes, current, tick: batch.tick, lastTick: batch.tick });
    }
    if (this.agentsChanged) {
      this.postAgents();
    }
  }

  /** The Agents tab's lanes, bars and estimate as of now. */
  private postAgents(): void {
    this.agentsChanged = false;
    if (this.session !== undefined) {
      this.post({ type: "agents", view: this.timelineOf(this.session).view(Date.now()) });
    }
  }

  private timelineOf(session: vscode.DebugSession): AgentTimeline {
    let timeline = this.timelines.get(session.id);
    if (timeline === undefined) {
      timeline = new AgentTimeline();
      this.timelines.set(session.id, timeline);
    }
    return timeline;
  }

  private stopFlushing(): void {
    if (this.flushTimer !== undefined) {
      clearTimeout(this.flushTimer);
      this.flushTimer = undefined;
    }
  }

  private post(message: ToView): void {
    void this.panel?.webview.postMessage(message);
  }

  dispose(): void {
    this.stopFlushing();
    this.panel?.dispose();
    for (const subscription of this.subscriptions) {
      subscription.dispose();
    }
  }
}

function activeCanopySession(): vscode.DebugSession | undefined {
  return activeTreeSession(vscode.debug);
}

/** Node ids with a function breakpoint (the live tree's clicks make those). */
function breakpointNodes(): string[] {
  return vscode.debug.breakpoints
    .filter((bp): bp is vscode.FunctionBreakpoint => bp instanceof vscode.FunctionBreakpoint && bp.enabled)
    .map((bp) => bp.functionName);
}

/** A click on a node: add a breakpoint on it, or remove the one it has. */
function toggleBreakpoint(nodeId: string): void {
  const existing = vscode.debug.breakpoints.filter(
    (bp) => bp instanceof vscode.FunctionBreakpoint && bp.functionName === nodeId,
  );
  if (existing.length > 0) {
    vscode.debug.removeBreakpoints(existing);
  } else {
    vscode.debug.addBreakpoints([new vscode.FunctionBreakpoint(nodeId)]);
  }
}
