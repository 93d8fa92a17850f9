/**
 * Forking and restarting executions. While a Canopy session runs, the focused thread's
 * execution is forked through the adapter's `canopy/fork` and `canopy/restart`, and the new
 * execution joins the session as a thread. Once a session has ended (a run that failed ends its
 * session), the fork is a new debug session whose launch names the ended execution in
 * `forkOf`: agent leaves whose inputs did not change are answered from the log either way.
 */
import * as vscode from "vscode";
import { type ForkArguments, editsProblem, forkArguments, forkConfiguration, tickProblem } from "./forkInput";
import type { SessionEvents } from "./sessionEvents";
import { activeTreeSession } from "./treeSessions";

interface Forked {
  executionId: string;
  threadId: number;
}

/** The last execution a Canopy session ended with, and how that session was configured. */
interface Ended {
  executionId: string;
  configuration: vscode.DebugConfiguration;
  folder: vscode.WorkspaceFolder | undefined;
}

export class Forks {
  private ended: Ended | undefined;

  constructor(events: SessionEvents, subscriptions: vscode.Disposable[]) {
    subscriptions.push(
      events.onEvent(({ session, event, body }) => {
        if (event === "canopy/executionEnded" && typeof body.executionId === "string") {
          this.ended = { executionId: body.executionId, configuration: session.configuration, folder: session.workspaceFolder };
        }
      }),
    );
  }

  /** Ask for a tick and blackboard edits, then fork the focused thread's execution (or the
   * last ended one, in a new session). */
  async fork(): Promise<void> {
    const live = focus();
    if (live === undefined && this.ended === undefined) {
      throw new Error("Canopy: no execution to fork yet: run a tree or workflow first.");
    }
    const tick = await vscode.window.showInputBox({
      title: "Fork the execution: from which tick?",
      prompt: "The fork starts from the blackboard at the end of this tick (empty: the last completed tick; 0: the start).",
      validateInput: tickProblem,
    });
    if (tick === undefined) {
      return;
    }
    const edits = await vscode.window.showInputBox({
      title: "Fork the execution: blackboard edits",
      prompt: 'A JSON object of keys to change, e.g. {"category": "refund"} (empty: none).',
      validateInput: editsProblem,
    });
    if (edits === undefined) {
      return;
    }
    const fork = forkArguments(tick, edits);
    if (live !== undefined) {
      const forked = (await live.session.customRequest("canopy/fork", { threadId: live.threadId, ...fork })) as Forked;
      void vscode.window.showInformationMessage(`Canopy: forked as execution ${forked.executionId} (thread ${forked.threadId}).`);
      return;
    }
    await this.startFork(fork);
  }

  /** Run the focused thread's execution (or the last ended one) again from its start, agents
   * that succeeded answered from the log. */
  async restart(): Promise<void> {
    const live = focus();
    if (live !== undefined) {
      const restarted = (await live.session.customRequest("canopy/restart", { threadId: live.threadId })) as Forked;
      void vscode.window.showInformationMessage(
        `Canopy: restarted as execution ${restarted.executionId} (thread ${restarted.threadId}); agents that succeeded are answered from the log.`,
      );
      return;
    }
    if (this.ended === undefined) {
      throw new Error("Canopy: no execution to restart yet: run a tree or workflow first.");
    }
    await this.startFork({ tick: 0, blackboard: {} });
  }

  private async startFork(fork: ForkArguments): Promise<void> {
    const ended = this.ended;
    if (ended === undefined) {
      return;
    }
    const configuration = forkConfiguration(ended.configuration, ended.executionId, fork);
    if (!(await vscode.debug.startDebugging(ended.folder, configuration))) {
      throw new Error(`Canopy: could not start a debug session forking ${ended.executionId}.`);
    }
  }
}

/** The active Canopy session and the thread in focus, if a session runs. */
function focus(): { session: vscode.DebugSession; threadId: number | undefined } | undefined {
  const session = activeTreeSession(vscode.debug);
  if (session === undefined) {
    return undefined;
  }
  const item = vscode.debug.activeStackItem;
  const threadId = item !== undefined && item.session.id === session.id ? item.threadId : undefined;
  return { session, threadId };
}
