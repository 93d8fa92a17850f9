/**
 * Comparing executions: the active session's execution against another one in the same event
 * log, through the adapter's `canopy/diff`. The extension remembers the executions it has seen
 * (per workspace) so earlier runs can be picked; a server's own list is added when one is known.
 */
import * as vscode from "vscode";
import type { Servers } from "./servers";
import { ServerClient } from "./serverClient";
import { type ExecutionDiff, type Known, describeDiff, remember } from "./diffReport";
import type { SessionEvents } from "./sessionEvents";

const MEMORY_KEY = "canopy.executions";

export class Comparisons {
  constructor(
    private readonly memory: vscode.Memento,
    private readonly servers: Servers,
    events: SessionEvents,
    subscriptions: vscode.Disposable[],
  ) {
    subscriptions.push(
      events.onEvent(({ session, event }) => {
        if (event === "configured") {
          void this.learn(session);
        }
      }),
    );
  }

  /** Remember the execution a session debugs. */
  private async learn(session: vscode.DebugSession): Promise<void> {
    try {
      const timeline = (await session.customRequest("canopy/timeline")) as { executionId: string };
      const label = `${session.name} · ${new Date().toLocaleTimeString()}`;
      const known = remember(this.memory.get<Known[]>(MEMORY_KEY, []), { id: timeline.executionId, label, seen: Date.now() });
      await this.memory.update(MEMORY_KEY, known);
    } catch {
      // a session that ended at once has nothing to remember
    }
  }

  /** Ask for the other execution and show how the active session's differs from it. */
  async compare(): Promise<void> {
    const session = vscode.debug.activeDebugSession;
    if (session?.type !== "canopy") {
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
    const document = await vscode.workspace.openTextDocument({ language: "markdown", content: describeDiff(diff) });
    await vscode.window.showTextDocument(document, { preview: true, viewColumn: vscode.ViewColumn.Beside });
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
