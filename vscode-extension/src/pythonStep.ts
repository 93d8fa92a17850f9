/**
 * "Step Into the Node's Python Code" on a Call Stack frame: the same as the editor's Step Into
 * Target, picking the node's own method (`update()`, or `initialise()` / `terminate()`), for a
 * user who looks at the Call Stack rather than the tree file.
 */
import * as vscode from "vscode";
import { activeTreeSession } from "./treeSessions";

/** What VS Code passes to a Call Stack frame's context-menu command. */
interface FrameContext {
  sessionId?: string;
  threadId?: number;
  frameId?: number;
}

interface StepInTarget {
  id: number;
  label: string;
}

/** The plain step into's target (the tree's next status change) among the targets. */
const PLAIN = "next status change";

export async function stepIntoPython(context: FrameContext | undefined): Promise<void> {
  const session = activeTreeSession(vscode.debug);
  const item = vscode.debug.activeStackItem;
  const frame =
    context?.frameId !== undefined
      ? { threadId: context.threadId, frameId: context.frameId }
      : item instanceof vscode.DebugStackFrame && item.session.id === session?.id
        ? { threadId: item.threadId, frameId: item.frameId }
        : undefined;
  if (session === undefined || frame === undefined) {
    throw new Error("Canopy: stop a tree session at a node first, then step into its Python code.");
  }
  const { targets } = (await session.customRequest("stepInTargets", { frameId: frame.frameId })) as { targets: StepInTarget[] };
  const python = targets.filter((target) => target.label !== PLAIN);
  if (python.length === 0) {
    throw new Error("Canopy: this node has no Python code of its own to step into (a py_trees built-in).");
  }
  const chosen =
    python.length === 1
      ? python[0]
      : await vscode.window.showQuickPick(
          python.map((target) => ({ label: target.label, target })),
          { placeHolder: "Step into which method of the node?" },
        ).then((picked) => picked?.target);
  if (chosen !== undefined) {
    await session.customRequest("stepIn", { threadId: frame.threadId, targetId: chosen.id });
  }
}
