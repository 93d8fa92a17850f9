/** The few calls of the Canopy server's HTTP API that the extension makes. */
import type { Endpoint } from "./environment";

/** A refused or failed call, with the server's own explanation when it gave one. */
export class ServerError extends Error {
  constructor(
    readonly status: number | undefined,
    message: string,
  ) {
    super(message);
  }
}

/** The caller's debug pod, as `GET/PUT /api/v1/pods/me` describe it. */
export interface PodDescription {
  pod_id?: string;
  state?: string;
  provider?: string;
  ready_ms?: number;
  [key: string]: unknown;
}

/** An execution at a glance (`GET /api/v1/executions`). */
export interface ExecutionInfo {
  id: string;
  program: string;
  tree: string;
  state: string;
  tick: number;
  end_reason?: string | null;
}

export class ServerClient {
  constructor(
    readonly endpoint: Endpoint,
    private readonly timeoutMs = 60_000,
  ) {}

  /** Debug mode on: start the caller's pod if needed and wait until it is ready. */
  ensurePod(): Promise<PodDescription> {
    return this.call<PodDescription>("PUT", "/api/v1/pods/me");
  }

  /** The caller's pod, or undefined when debug mode is off. */
  async pod(): Promise<PodDescription | undefined> {
    try {
      return await this.call<PodDescription>("GET", "/api/v1/pods/me");
    } catch (error) {
      if (error instanceof ServerError && error.status === 404) {
        return undefined;
      }
      throw error;
    }
  }

  /** Debug mode off: stop the caller's pod. */
  async stopPod(): Promise<void> {
    await this.call<undefined>("DELETE", "/api/v1/pods/me");
  }

  /** The caller's executions in their pod, live or ended. */
  executions(): Promise<ExecutionInfo[]> {
    return this.call<ExecutionInfo[]>("GET", "/api/v1/executions");
  }

  private async call<T>(method: string, route: string): Promise<T> {
    const where = `${method} ${this.endpoint.url}${route}`;
    let response: Response;
    try {
      response = await fetch(this.endpoint.url + route, {
        method,
        headers: { authorization: `Bearer ${this.endpoint.token}` },
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      const cause = (error as { cause?: { message?: string } }).cause?.message;
      throw new ServerError(undefined, `${where}: ${cause ?? (error as Error).message}`);
    }
    if (response.status === 204) {
      return undefined as T;
    }
    const text = await response.text();
    if (!response.ok) {
      throw new ServerError(response.status, `${where}: ${describeProblem(response.status, text)}`);
    }
    return JSON.parse(text) as T;
  }
}

/** The readable part of an RFC 9457 problem document (or of whatever else came back). */
export function describeProblem(status: number, body: string): string {
  try {
    const problem = JSON.parse(body) as { title?: unknown; detail?: unknown };
    const parts = [problem.title, problem.detail].filter((part) => typeof part === "string");
    if (parts.length > 0) {
      return `${status} ${parts.join(": ")}`;
    }
  } catch {
    // not JSON: fall through to the raw text
  }
  const text = body.trim().slice(0, 200);
  return text === "" ? `${status}` : `${status} ${text}`;
}
