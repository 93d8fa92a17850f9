/**
 * Which Canopy server the extension talks to: the one in the settings, else the one the
 * workspace's discovery file names, else one the extension starts (and later stops) itself.
 */
import * as vscode from "vscode";
import { findCanopy } from "./canopyCommand";
import { readDiscovery } from "./discovery";
import { canopyEnvironment, type Endpoint } from "./environment";
import { LocalServer } from "./localServer";
import { readSettings } from "./settings";

export class Servers implements vscode.Disposable {
  private readonly local: LocalServer;
  private started: Endpoint | undefined;

  constructor(private readonly output: vscode.OutputChannel) {
    this.local = new LocalServer(output);
  }

  /** The folder servers are started in and discovered from: the first workspace folder. */
  folder(): string {
    const folder = vscode.workspace.workspaceFolders?.[0];
    if (folder === undefined) {
      throw new Error("Canopy: open a folder first; the server keeps its event log in it");
    }
    return folder.uri.fsPath;
  }

  /** A server that is already there, without starting one. */
  known(): Endpoint | undefined {
    const settings = readSettings();
    if (settings.serverUrl !== "") {
      return { url: settings.serverUrl, token: settings.token };
    }
    if (this.started !== undefined && this.local.running) {
      return this.started;
    }
    const folder = vscode.workspace.workspaceFolders?.[0];
    return folder === undefined ? undefined : readDiscovery(folder.uri.fsPath);
  }

  /** A server to use, starting the local one when there is none. */
  async ensure(): Promise<Endpoint> {
    return this.known() ?? (await this.start());
  }

  /** Start the workspace's local server (`canopy serve`). */
  async start(): Promise<Endpoint> {
    const existing = this.known();
    if (existing !== undefined) {
      this.output.appendLine(`A Canopy server already runs at ${existing.url}`);
      return existing;
    }
    const folder = this.folder();
    const settings = readSettings();
    const command = findCanopy(settings, [folder]);
    this.output.appendLine(`Starting ${command} serve in ${folder}`);
    const found = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Window, title: "Canopy: starting the local server" },
      () => this.local.start(command, folder, canopyEnvironment(settings, undefined)),
    );
    this.started = { url: found.url, token: found.token };
    this.output.appendLine(`Canopy server ready at ${found.url}`);
    return this.started;
  }

  /** Stop the local server, if the extension started one; true when it did. */
  async stop(): Promise<boolean> {
    const was = this.local.running;
    await this.local.stop();
    this.started = undefined;
    return was;
  }

  dispose(): void {
    void this.stop();
  }
}
