/**
 * What Canopy debug sessions say, for the parts of the extension that follow a session
 * without driving it (the live tree). A debug adapter tracker sees every message the adapter
 * sends, including `stopped`, which the custom-event API does not deliver.
 */
import * as vscode from "vscode";
import { isPythonSession } from "./treeSessions";

/** One event of a session: the DAP event's name and body. */
export interface SessionEvent {
  session: vscode.DebugSession;
  event: string;
  body: Record<string, unknown>;
}

/** Requests after which the tree runs again (until the adapter says `stopped`). */
const RESUMING = new Set(["continue", "next", "stepIn", "stepOut", "stepBack", "reverseContinue"]);

export class SessionEvents implements vscode.Disposable {
  private readonly emitter = new vscode.EventEmitter<SessionEvent>();
  private readonly registration: vscode.Disposable;
  /** Sessions whose launch is configured, i.e. whose execution can be asked about. */
  private readonly configured = new Set<string>();
  /** Sessions stopped right now (at a breakpoint, a step, an exception). */
  private readonly stopped = new Set<string>();

  /** Fires for every event a Canopy adapter sends, `configured` once per session, and
   * `resumed` when the client asks the tree to run on. */
  readonly onEvent = this.emitter.event;

  constructor(output: vscode.OutputChannel) {
    const trace = (direction: string, message: unknown): void => {
      if (vscode.workspace.getConfiguration("canopy").get<boolean>("traceProtocol", false)) {
        output.appendLine(`${direction} ${JSON.stringify(message)}`);
      }
    };
    this.registration = vscode.debug.registerDebugAdapterTrackerFactory("canopy", {
      // A Python session (a step into a node's code) speaks debugpy's DAP: the trace shows it,
      // but nothing that follows a tree listens to it.
      createDebugAdapterTracker: (session) =>
        isPythonSession(session)
          ? {
              onWillReceiveMessage: (message: unknown) => trace("→", message),
              onDidSendMessage: (message: unknown) => trace("←", message),
            }
          : {
              onWillReceiveMessage: (message: { type?: string; command?: string }) => {
                trace("→", message);
                if (message.type === "request" && RESUMING.has(message.command ?? "")) {
                  this.stopped.delete(session.id);
                  this.emitter.fire({ session, event: "resumed", body: {} });
                }
              },
              onDidSendMessage: (message: { type?: string; event?: string; command?: string; success?: boolean; body?: unknown }) => {
                trace("←", message);
                if (message.type === "event" && typeof message.event === "string") {
                  if (message.event === "stopped") {
                    this.stopped.add(session.id);
                  } else if (message.event === "continued" || message.event === "terminated") {
                    this.stopped.delete(session.id);
                  }
                  this.emitter.fire({ session, event: message.event, body: (message.body ?? {}) as Record<string, unknown> });
                } else if (message.type === "response" && message.command === "configurationDone" && message.success) {
                  this.configured.add(session.id);
                  this.emitter.fire({ session, event: "configured", body: {} });
                }
              },
              onWillStopSession: () => {
                this.configured.delete(session.id);
                this.stopped.delete(session.id);
              },
            },
    });
  }

  /** Whether `session` has finished its configuration (its execution exists). */
  isConfigured(session: vscode.DebugSession): boolean {
    return this.configured.has(session.id);
  }

  /** Whether `session` is stopped now: its current node is where it stopped. */
  isStopped(session: vscode.DebugSession): boolean {
    return this.stopped.has(session.id);
  }

  dispose(): void {
    this.registration.dispose();
    this.emitter.dispose();
  }
}
