/**
 * Forking and restarting the execution of the focused thread, through the adapter's
 * `canopy/fork` and `canopy/restart`. The new execution joins the same debug session as a new
 * thread; agent leaves whose inputs did not change are answered from the log, not called again.
 */
import * as vscode from "vscode";
import { editsProblem, forkArguments, tickProblem } from "./forkInput";

interface Forked {
  executionId: string;
  threadId: number;
}

/** The active Canopy session and the thread in focus (its first thread when none is). */
function focus(): { session: vscode.DebugSession; threadId: number | undefined } {
  const session = vscode.debug.activeDebugSession;
  if (session?.type !== "canopy") {
    throw new Error("Canopy: start (or select) a Canopy debug session first.");
  }
  const item = vscode.debug.activeStackItem;
  const threadId = item !== undefined && item.session.id === session.id ? item.threadId : undefined;
  return { session, threadId };
}

/** Ask for a tick and blackboard edits, then fork the focused thread's execution. */
export async function forkExecution(): Promise<void> {
  const { session, threadId } = focus();
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
  const forked = (await session.customRequest("canopy/fork", { threadId, ...forkArguments(tick, edits) })) as Forked;
  void vscode.window.showInformationMessage(`Canopy: forked as execution ${forked.executionId} (thread ${forked.threadId}).`);
}

/** Run the focused thread's execution again from its start, agents that succeeded answered from the log. */
export async function restartExecution(): Promise<void> {
  const { session, threadId } = focus();
  const restarted = (await session.customRequest("canopy/restart", { threadId })) as Forked;
  void vscode.window.showInformationMessage(
    `Canopy: restarted as execution ${restarted.executionId} (thread ${restarted.threadId}); agents that succeeded are answered from the log.`,
  );
}
