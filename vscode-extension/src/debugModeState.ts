/** What the debug-mode status-bar item says, kept apart from the editor so it can be tested alone. */

export type DebugModeState =
  | { kind: "off" }
  | { kind: "starting" }
  | { kind: "ready"; detail: string }
  | { kind: "error"; message: string };

/** What the status-bar item says in `state`. */
export function presentation(state: DebugModeState): { text: string; tooltip: string } {
  switch (state.kind) {
    case "off":
      return { text: "$(debug-disconnect) Canopy: off", tooltip: "Debug mode is off. Click to start your debug pod." };
    case "starting":
      return { text: "$(sync~spin) Canopy: starting", tooltip: "Starting your debug pod…" };
    case "ready":
      return { text: "$(debug) Canopy: ready", tooltip: `Debug mode is on: ${state.detail}. Click to stop your debug pod.` };
    case "error":
      return { text: "$(error) Canopy: error", tooltip: `${state.message}\nClick to try again.` };
  }
}

/** "local pod pod-ab12, ready in 22 ms". */
export function describePod(pod: { pod_id?: string; provider?: string; ready_ms?: number }): string {
  const name = [pod.provider, "pod", pod.pod_id].filter((part) => part !== undefined && part !== "").join(" ");
  return pod.ready_ms === undefined ? name : `${name}, ready in ${Math.round(pod.ready_ms)} ms`;
}
