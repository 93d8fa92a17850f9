/**
 * Starting the debug adapter: `canopy dap` from the user's Python environment, in the session's
 * workspace folder (where its event log and discovery file live), with the settings in its
 * environment.
 */
import * as vscode from "vscode";
import { CanopyNotFound, findCanopy } from "./canopyCommand";
import { canopyEnvironment } from "./environment";
import type { Servers } from "./servers";
import { readSettings } from "./settings";

export class AdapterFactory implements vscode.DebugAdapterDescriptorFactory {
  constructor(
    private readonly servers: Servers,
    private readonly output: vscode.OutputChannel,
  ) {}

  createDebugAdapterDescriptor(session: vscode.DebugSession): vscode.DebugAdapterDescriptor {
    const folder = session.workspaceFolder ?? vscode.workspace.workspaceFolders?.[0];
    const settings = readSettings(folder?.uri);
    const folders = (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath);
    let command: string;
    try {
      command = findCanopy(settings, folders);
    } catch (error) {
      if (error instanceof CanopyNotFound) {
        void vscode.window.showErrorMessage(error.message, "Open Settings").then((choice) => {
          if (choice === "Open Settings") {
            void vscode.commands.executeCommand("workbench.action.openSettings", "canopy.");
          }
        });
      }
      throw error;
    }
    this.output.appendLine(`Debug adapter: ${command} dap (session ${session.name})`);
    return new vscode.DebugAdapterExecutable(command, ["dap"], {
      cwd: folder?.uri.fsPath,
      env: canopyEnvironment(settings, this.servers.known()),
    });
  }
}

/** F5 with no launch.json: debug the tree file in the active editor. */
export class ConfigurationProvider implements vscode.DebugConfigurationProvider {
  resolveDebugConfiguration(
    _folder: vscode.WorkspaceFolder | undefined,
    config: vscode.DebugConfiguration,
  ): vscode.DebugConfiguration | undefined {
    if (config.type !== undefined || config.request !== undefined || config.name !== undefined) {
      return config;
    }
    const file = vscode.window.activeTextEditor?.document;
    if (file === undefined || !/\.(ya?ml|json|xml)$/i.test(file.fileName)) {
      void vscode.window.showInformationMessage("Canopy: open a tree file (YAML, JSON or Groot2 XML) to debug it.");
      return undefined;
    }
    return { type: "canopy", request: "launch", name: "Debug the tree", program: file.fileName, mode: "manual", stopOnEntry: true };
  }
}
