/**
 * What the user types to fork an execution, checked before anything is sent: a tick (empty
 * for the last completed one) and blackboard edits as a JSON object. Pure, so it is tested
 * without VS Code.
 */

export interface ForkArguments {
  tick?: number;
  blackboard: Record<string, unknown>;
}

/** Why `text` is not a tick, or undefined when it is one (or empty). */
export function tickProblem(text: string): string | undefined {
  const trimmed = text.trim();
  if (trimmed === "" || /^\d{1,15}$/.test(trimmed)) {
    return undefined;
  }
  return "a tick is a whole number ≥ 0 (empty: the last completed tick)";
}

/** Why `text` is not a JSON object of blackboard edits, or undefined when it is one. */
export function editsProblem(text: string): string | undefined {
  if (text.trim() === "") {
    return undefined;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return `not JSON: ${(error as Error).message}`;
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return 'blackboard edits are a JSON object, e.g. {"category": "refund"}';
  }
  return undefined;
}

/** The `canopy/fork` arguments for checked `tickText` and `editsText`. */
export function forkArguments(tickText: string, editsText: string): ForkArguments {
  const problem = tickProblem(tickText) ?? editsProblem(editsText);
  if (problem !== undefined) {
    throw new Error(problem);
  }
  const tick = tickText.trim() === "" ? undefined : Number(tickText.trim());
  const blackboard = editsText.trim() === "" ? {} : (JSON.parse(editsText) as Record<string, unknown>);
  return tick === undefined ? { blackboard } : { tick, blackboard };
}

/** A launch configuration that forks `executionId` as the session `configuration` ran it. */
export function forkConfiguration(
  configuration: { name: string; [key: string]: unknown },
  executionId: string,
  fork: ForkArguments,
): { name: string; type: string; request: string; [key: string]: unknown } {
  const { forkOf: _previous, ...rest } = configuration;
  const what = fork.tick === 0 && Object.keys(fork.blackboard).length === 0 ? "Restart" : "Fork";
  return {
    ...rest,
    type: "canopy",
    request: "launch",
    name: `${what} of ${executionId}`,
    forkOf: { executionId, ...fork },
  };
}
