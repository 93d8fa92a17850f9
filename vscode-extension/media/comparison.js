// The comparison webview: the page is built by the extension; this only passes the clicks on
// its buttons (data-action="jump" | "markdown") back to it.
(function () {
  "use strict";
  const vscode = acquireVsCodeApi();
  document.addEventListener("click", (event) => {
    const button = event.target.closest && event.target.closest("button[data-action]");
    if (button) vscode.postMessage({ type: button.getAttribute("data-action") });
  });
  // After a jump with no session to show it, the states at the diverging tick are the news.
  const state = document.getElementById("state");
  if (state) state.scrollIntoView();
})();
