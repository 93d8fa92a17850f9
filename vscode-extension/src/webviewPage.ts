/** The page of a Canopy webview: its script and stylesheet from `media/`, and a content
 * security policy that lets only those run (the script by a nonce fresh for every page). */
import { randomBytes } from "node:crypto";
import * as vscode from "vscode";

/** The page of `media/<name>.js` and `media/<name>.css` around `body`; the scripts `more`
 * (`media/<more>.js`) run after `<name>.js`, in order. */
export function webviewPage(
  webview: vscode.Webview,
  media: vscode.Uri,
  name: string,
  title: string,
  body: string,
  more: string[] = [],
): string {
  const nonce = randomBytes(18).toString("base64");
  const scripts = [name, ...more]
    .map((script) => `<script nonce="${nonce}" src="${webview.asWebviewUri(vscode.Uri.joinPath(media, `${script}.js`))}"></script>`)
    .join("\n");
  const style = webview.asWebviewUri(vscode.Uri.joinPath(media, `${name}.css`));
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src ${webview.cspSource}; script-src 'nonce-${nonce}';">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${style}">
<title>${title}</title>
</head>
<body>
${body}
${scripts}
</body>
</html>`;
}
