/**
 * Debug mode: whether the user's debug pod is up. The status-bar item shows it and toggles it;
 * turning it on makes the server start (or reuse) the pod and waits until it is ready, so the
 * next debug session starts without the pod's start-up time.
 */
import * as vscode from "vscode";
import type { Servers } from "./servers";
import { type DebugModeState, describePod, presentation } from "./debugModeState";
import { ServerClient } from "./serverClient";

export class DebugMode implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private state: DebugModeState = { kind: "off" };

  constructor(private readonly servers: Servers) {
    this.item = vscode.window.createStatusBarItem("canopy.debugMode", vscode.StatusBarAlignment.Left, 50);
    this.item.name = "Canopy debug mode";
    this.item.command = "canopy.toggleDebugMode";
    this.show({ kind: "off" });
    this.item.show();
  }

  /** Learn whether a pod is already up, when a server is already known (nothing is started). */
  async refresh(): Promise<void> {
    const endpoint = this.servers.known();
    if (endpoint === undefined) {
      return;
    }
    try {
      const pod = await new ServerClient(endpoint, 5_000).pod();
      this.show(pod === undefined ? { kind: "off" } : { kind: "ready", detail: describePod(pod) });
    } catch {
      // a server that does not answer leaves the item as it is; toggling reports the error
    }
  }

  /** Off → on (start the pod), anything else → off (stop it). */
  async toggle(): Promise<void> {
    if (this.state.kind === "starting") {
      return;
    }
    if (this.state.kind === "ready") {
      await this.turnOff();
    } else {
      await this.turnOn();
    }
  }

  private async turnOn(): Promise<void> {
    this.show({ kind: "starting" });
    try {
      const endpoint = await this.servers.ensure();
      const pod = await new ServerClient(endpoint).ensurePod();
      this.show({ kind: "ready", detail: describePod(pod) });
    } catch (error) {
      const message = (error as Error).message;
      this.show({ kind: "error", message });
      void vscode.window.showErrorMessage(`Canopy debug mode: ${message}`);
    }
  }

  private async turnOff(): Promise<void> {
    try {
      const endpoint = this.servers.known();
      if (endpoint !== undefined) {
        await new ServerClient(endpoint).stopPod();
      }
      this.show({ kind: "off" });
    } catch (error) {
      const message = (error as Error).message;
      this.show({ kind: "error", message });
      void vscode.window.showErrorMessage(`Canopy debug mode: ${message}`);
    }
  }

  /** The server went away: there is no pod any more. */
  serverStopped(): void {
    this.show({ kind: "off" });
  }

  private show(state: DebugModeState): void {
    this.state = state;
    const { text, tooltip } = presentation(state);
    this.item.text = text;
    this.item.tooltip = tooltip;
    this.item.backgroundColor =
      state.kind === "error" ? new vscode.ThemeColor("statusBarItem.errorBackground") : undefined;
  }

  dispose(): void {
    this.item.dispose();
  }
}
