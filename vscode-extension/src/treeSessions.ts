/**
 * Tree sessions and the Python sessions they start. A step into a node's own Python code
 * (Step Into Target) makes the tree session ask VS Code for a child session (`startDebugging`);
 * VS Code gives a child its parent's debug type, so it is a `canopy` session too, but one whose
 * adapter relays to debugpy (its configuration has `pythonOf`). Canopy's own requests
 * (`canopy/...`) mean nothing there: the views and commands act on the tree session, which is
 * the Python session's parent.
 */
import type * as vscode from "vscode";

/** What this module reads of a debug session. */
export interface SessionLike {
  type: string;
  configuration: Record<string, unknown>;
  parentSession?: SessionLike;
}

/** Whether `session` debugs a tree (a `canopy` session that is not a Python relay). */
export function isTreeSession(session: SessionLike | undefined): boolean {
  return session?.type === "canopy" && session.configuration["pythonOf"] === undefined;
}

/** Whether `session` is the Python half of a tree session. */
export function isPythonSession(session: SessionLike | undefined): boolean {
  return session?.type === "canopy" && session.configuration["pythonOf"] !== undefined;
}

/** The tree session `session` belongs to: itself, or the parent of a Python session. */
export function treeSessionOf<S extends SessionLike>(session: S | undefined): S | undefined {
  if (isTreeSession(session)) {
    return session;
  }
  const parent = session?.parentSession as S | undefined;
  return isPythonSession(session) && isTreeSession(parent) ? parent : undefined;
}

/** The tree session in focus (the active session's, when a Python session is active). */
export function activeTreeSession(debug: typeof vscode.debug): vscode.DebugSession | undefined {
  return treeSessionOf(debug.activeDebugSession);
}
