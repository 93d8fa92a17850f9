/**
 * Comparing executions: the active session's execution against another one in the same event
 * log, through the adapter's `canopy/diff`, shown in the comparison view. The extension
 * remembers the executions it has seen (per workspace) so earlier runs can be picked; a
 * server's own list is added when one is known. It also knows which running session debugs
 * which execution, so that the view's jump can go to that session's live tree.
 */
import * as vscode from "vscode";
import type { Servers } from "./servers";
import { ServerClient } from "./serverClient";
import type { ComparisonPanel } from "./comparison/panel";
import type { RecordedState } from "./comparison/page";
import { type ExecutionDiff, type Known, remember } from "./diffReport";
import type { SessionEvents } from "./sessionEvents";
import { activeTreeSession } from "./treeSessions";

const MEMORY_KEY = "canopy.executions";

export class Comparisons {
  /** The running sessions by the execution they debug. */
  private readonly running = new Map<string, vscode.DebugSession>();

  constructor(
    private readonly memory: vscode.Memento,
    private readonly servers: Servers,
    private readonly events: SessionEvents,
    private readonly view: ComparisonPanel,
    subscriptions: vscode.Disposable[],
  ) {
    subscriptions.push(
      events.onEvent(({ session, event }) => {
        if (event === "configured") {
          void this.learn(session);
        } else if (event === "terminated") {
          this.forget(session);
        }
      }),
      vscode.debug.onDidTerminateDebugSession((session) => this.forget(session)),
    );
  }

  /** The running session on `executionId`, if there is one. */
  sessionOf(executionId: string): vscode.DebugSession | undefined {
    const session = this.running.get(executionId);
    return session !== undefined && this.events.isConfigured(session) ? session : undefined;
  }

  private forget(session: vscode.DebugSession): void {
    for (const [execution, running] of this.running) {
      if (running.id === session.id) {
        this.running.delete(execution);
      }
    }
  }

  /** Remember the execution a session debugs. */
  private async learn(session: vscode.DebugSession): Promise<void> {
    try {
      const timeline = (await session.customRequest("canopy/timeline")) as { executionId: string };
      this.running.set(timeline.executionId, session);
      const label = `${session.name} · ${new Date().toLocaleTimeString()}`;
      const known = remember(this.memory.get<Known[]>(MEMORY_KEY, []), { id: timeline.executionId, label, seen: Date.now() });
      await this.memory.update(MEMORY_KEY, known);
    } catch {
      // a session that ended at once has nothing to remember
    }
  }

  /** Ask for the other execution and show how the active session's differs from it. */
  async compare(): Promise<void> {
    const session = activeTreeSession(vscode.debug);
    if (session === undefined) {
      void vscode.window.showErrorMessage(
        "Canopy: start (or select) a Canopy debug session first; its execution is compared with the one you pick.",
      );
      return;
    }
    const { executionId } = (await session.customRequest("canopy/timeline")) as { executionId: string };
    const candidates = (await this.candidates()).filter((item) => item.id !== executionId);
    if (candidates.length === 0) {
      void vscode.window.showInformationMessage("Canopy: no other execution to compare with yet; run the tree again first.");
      return;
    }
    const picked = await vscode.window.showQuickPick(
      candidates.map((item) => ({ label: item.id, description: item.label })),
      { title: `Compare ${executionId} with…`, matchOnDescription: true },
    );
    if (picked === undefined) {
      return;
    }
    const diff = (await session.customRequest("canopy/diff", { otherExecutionId: picked.label })) as ExecutionDiff;
    // A's state at the diverging tick, read while the session runs: the view can then show
    // both states there even after the session has ended.
    let stateA: RecordedState | undefined;
    let notice: string | undefined;
    if (diff.diff !== null) {
      try {
        stateA = (await session.customRequest("canopy/stateAt", { tick: diff.diff.tick_a })) as RecordedState;
      } catch (error) {
        notice = `canopy/stateAt: ${(error as Error).message}`;
      }
    }
    this.view.show({ diff, stateA, showState: false, notice });
  }

  private async candidates(): Promise<Known[]> {
    let known = this.memory.get<Known[]>(MEMORY_KEY, []);
    const endpoint = this.servers.known();
    if (endpoint !== undefined) {
      try {
        for (const execution of await new ServerClient(endpoint, 5_000).executions()) {
          if (!known.some((item) => item.id === execution.id)) {
            known = [...known, { id: execution.id, label: `${execution.tree} · ${execution.state}, tick ${execution.tick}`, seen: 0 }];
          }
        }
      } catch {
        // the remembered executions are still worth offering
      }
    }
    return known;
  }
}
