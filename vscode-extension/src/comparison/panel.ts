/**
 * The comparison view: a webview that shows where two executions part (the page is built by
 * `page.ts`), jumps to the diverging tick, and opens the same report as Markdown.
 *
 * The jump goes to the live tree, scrubbed to that tick, when a session on either execution
 * is still running (the live tree asks that session for the past tick); otherwise the page
 * shows both states at that tick itself, from A's state read when the comparison was made.
 */
import * as vscode from "vscode";
import { describeDiff } from "../diffReport";
import type { LiveTreePanel } from "../liveTree/panel";
import { webviewPage } from "../webviewPage";
import { type ComparisonPage, comparisonBody, type FromComparison, jumpTarget } from "./page";

/** The running session on an execution, if there is one. */
export type SessionOf = (executionId: string) => vscode.DebugSession | undefined;

export class ComparisonPanel implements vscode.Disposable {
  private panel: vscode.WebviewPanel | undefined;
  private page: ComparisonPage | undefined;
  private readonly subscriptions: vscode.Disposable[] = [];

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly liveTree: LiveTreePanel,
    private readonly sessionOf: SessionOf,
  ) {}

  /** Show `page` (replacing the comparison shown before). */
  show(page: ComparisonPage): void {
    this.page = page;
    if (this.panel === undefined) {
      this.panel = this.create();
    } else {
      this.panel.reveal(vscode.ViewColumn.Beside);
    }
    this.render();
  }

  private create(): vscode.WebviewPanel {
    const media = vscode.Uri.joinPath(this.extensionUri, "media");
    const panel = vscode.window.createWebviewPanel(
      "canopy.comparison",
      "Canopy: Comparison",
      vscode.ViewColumn.Beside,
      // Kept while hidden behind the live tree it jumps to: going back shows it as it was.
      { enableScripts: true, retainContextWhenHidden: true, localResourceRoots: [media] },
    );
    panel.webview.onDidReceiveMessage((message: FromComparison) => this.onViewMessage(message), undefined, this.subscriptions);
    panel.onDidDispose(() => {
      this.panel = undefined;
    });
    return panel;
  }

  private render(): void {
    if (this.panel === undefined || this.page === undefined) {
      return;
    }
    const { a, b } = this.page.diff;
    this.panel.title = `Canopy: ${a.execution_id} vs ${b.execution_id}`;
    const media = vscode.Uri.joinPath(this.extensionUri, "media");
    const body = `<main id="comparison">\n${comparisonBody(this.page)}\n</main>`;
    this.panel.webview.html = webviewPage(this.panel.webview, media, "comparison", "Canopy: Comparison", body);
  }

  private onViewMessage(message: FromComparison): void {
    switch (message.type) {
      case "jump":
        void this.jump();
        break;
      case "markdown":
        void this.showMarkdown();
        break;
    }
  }

  private async jump(): Promise<void> {
    const page = this.page;
    if (page === undefined) {
      return;
    }
    const sessionA = this.sessionOf(page.diff.a.execution_id);
    const sessionB = this.sessionOf(page.diff.b.execution_id);
    const target = jumpTarget(page.diff, sessionA !== undefined, sessionB !== undefined);
    if (target === undefined) {
      return;
    }
    if (target.kind === "liveTree") {
      const session = (target.side === "a" ? sessionA : sessionB) as vscode.DebugSession;
      await this.liveTree.showTick(session, target.tick);
      return;
    }
    const notice =
      page.stateA === undefined
        ? `No session on either execution runs any more, and the state at tick ${target.tick} could not be read when they were compared.`
        : `No session on either execution runs any more: the state at the end of tick ${target.tick} is shown below.`;
    this.page = { ...page, showState: true, notice };
    this.render();
  }

  private async showMarkdown(): Promise<void> {
    if (this.page === undefined) {
      return;
    }
    const document = await vscode.workspace.openTextDocument({ language: "markdown", content: describeDiff(this.page.diff) });
    await vscode.window.showTextDocument(document, { preview: true, viewColumn: vscode.ViewColumn.Active });
  }

  dispose(): void {
    this.panel?.dispose();
    for (const subscription of this.subscriptions) {
      subscription.dispose();
    }
  }
}
