/** The Canopy extension: the `canopy` debugger, debug mode, the live tree and comparisons. */
import * as vscode from "vscode";
import { AdapterFactory, ConfigurationProvider } from "./adapter";
import { Comparisons } from "./compare";
import { ComparisonPanel } from "./comparison/panel";
import { DebugMode } from "./debugMode";
import { Forks } from "./forks";
import { LiveTreePanel } from "./liveTree/panel";
import { stepIntoPython } from "./pythonStep";
import { Servers } from "./servers";
import { SessionEvents } from "./sessionEvents";

export function activate(context: vscode.ExtensionContext): void {
  const output = vscode.window.createOutputChannel("Canopy");
  const servers = new Servers(output);
  const events = new SessionEvents(output);
  const debugMode = new DebugMode(servers);
  const liveTree = new LiveTreePanel(context.extensionUri, events);
  const comparisonView = new ComparisonPanel(context.extensionUri, liveTree, (execution): vscode.DebugSession | undefined =>
    comparisons.sessionOf(execution),
  );
  const comparisons = new Comparisons(context.workspaceState, servers, events, comparisonView, context.subscriptions);
  const forks = new Forks(events, context.subscriptions);

  context.subscriptions.push(
    output,
    servers,
    events,
    debugMode,
    liveTree,
    comparisonView,
    vscode.debug.registerDebugAdapterDescriptorFactory("canopy", new AdapterFactory(servers, output)),
    vscode.debug.registerDebugConfigurationProvider("canopy", new ConfigurationProvider()),
    command("canopy.startServer", async () => {
      const endpoint = await servers.start();
      void vscode.window.showInformationMessage(`Canopy server running at ${endpoint.url}`);
      await debugMode.refresh();
    }),
    command("canopy.stopServer", async () => {
      const stopped = await servers.stop();
      debugMode.serverStopped();
      void vscode.window.showInformationMessage(
        stopped ? "Canopy: the local server has stopped." : "Canopy: no local server started by this window is running.",
      );
    }),
    command("canopy.toggleDebugMode", () => debugMode.toggle()),
    command("canopy.showLiveTree", () => liveTree.show()),
    command("canopy.showTimeline", () => liveTree.showTimeline()),
    command("canopy.showAgentTimeline", () => liveTree.showAgents()),
    command("canopy.compareExecutions", () => comparisons.compare()),
    command("canopy.forkExecution", () => forks.fork()),
    command("canopy.restartExecution", () => forks.restart()),
    vscode.commands.registerCommand("canopy.stepIntoPython", async (frame?: { frameId?: number; threadId?: number }) => {
      try {
        await stepIntoPython(frame);
      } catch (error) {
        void vscode.window.showErrorMessage((error as Error).message);
      }
    }),
  );
  void debugMode.refresh();
}

/** A command whose failure is shown to the user rather than lost in the log. */
function command(name: string, run: () => Promise<void>): vscode.Disposable {
  return vscode.commands.registerCommand(name, async () => {
    try {
      await run();
    } catch (error) {
      void vscode.window.showErrorMessage((error as Error).message);
    }
  });
}

export function deactivate(): void {
  // Everything is in the context's subscriptions; the local server stops with `servers`.
}
