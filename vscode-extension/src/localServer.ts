/**
 * A `canopy serve` the extension starts for the workspace, so that debug mode and pod
 * launches work with nothing configured. The server advertises itself in the workspace's
 * `.canopy/server.json`, which the debug adapter reads too, so both use the same server.
 */
import { type ChildProcess, spawn } from "node:child_process";
import type { Discovery } from "./discovery";
import { readDiscovery } from "./discovery";

export interface Output {
  append(text: string): void;
}

export class LocalServer {
  private process: ChildProcess | undefined;
  private exited: Promise<number | null> | undefined;

  constructor(private readonly output: Output) {}

  get running(): boolean {
    return this.process !== undefined && this.process.exitCode === null;
  }

  /**
   * Start `canopy serve --port 0` in `folder` and resolve with its address once it has written
   * its discovery file; reject with its last words if it exits first or takes too long.
   */
  async start(
    command: string,
    folder: string,
    env: Record<string, string>,
    withinMs = 30_000,
  ): Promise<Discovery> {
    if (this.running) {
      throw new Error("Canopy: the local server is already running");
    }
    const child = spawn(command, ["serve", "--port", "0"], { cwd: folder, env, stdio: ["ignore", "pipe", "pipe"] });
    this.process = child;
    let lastWords = "";
    const collect = (chunk: Buffer): void => {
      const text = chunk.toString("utf8");
      lastWords = (lastWords + text).slice(-2000);
      this.output.append(text);
    };
    child.stdout?.on("data", collect);
    child.stderr?.on("data", collect);
    this.exited = new Promise((resolve) => {
      child.on("exit", (code) => resolve(code));
      child.on("error", (error) => {
        lastWords += `\n${error.message}`;
        resolve(null);
      });
    });
    const deadline = Date.now() + withinMs;
    for (;;) {
      const found = readDiscovery(folder);
      if (found !== undefined && found.pid === child.pid) {
        return found;
      }
      const exited = await Promise.race([this.exited.then(() => true), delay(100).then(() => false)]);
      if (exited || Date.now() > deadline) {
        await this.stop();
        const why = exited ? `exited (code ${child.exitCode})` : `did not start within ${withinMs / 1000} s`;
        throw new Error(`Canopy: the local server ${why}: ${lastWords.trim().split("\n").slice(-5).join(" | ")}`);
      }
    }
  }

  /** Stop the server (SIGTERM: it stops its pods and removes its discovery file). */
  async stop(): Promise<void> {
    const child = this.process;
    this.process = undefined;
    if (child === undefined || this.exited === undefined) {
      return;
    }
    if (child.exitCode === null) {
      child.kill("SIGTERM");
      const stopped = await Promise.race([this.exited.then(() => true), delay(10_000).then(() => false)]);
      if (!stopped) {
        child.kill("SIGKILL");
        await this.exited;
      }
    }
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
