/** Reading `.canopy/server.json`, the file a running `canopy serve` advertises itself in. */
import * as fs from "node:fs";
import * as path from "node:path";
import type { Endpoint } from "./environment";

/** The discovery file's content, as `canopy serve` writes it. */
export interface Discovery extends Endpoint {
  pid: number;
  version: string;
}

/** The path of the discovery file of a workspace folder. */
export function discoveryPath(folder: string): string {
  return path.join(folder, ".canopy", "server.json");
}

/** Parse a discovery file's text; undefined when it is not what a server writes. */
export function parseDiscovery(text: string): Discovery | undefined {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof data !== "object" || data === null) {
    return undefined;
  }
  const { url, token, pid, version } = data as Record<string, unknown>;
  if (typeof url !== "string" || typeof token !== "string" || typeof version !== "string") {
    return undefined;
  }
  if (typeof pid !== "number" || !Number.isInteger(pid)) {
    return undefined;
  }
  return { url, token, pid, version };
}

/**
 * The server advertised in `folder`, if its process still runs: a file left behind by a
 * killed server must not send the editor to a dead address.
 */
export function readDiscovery(folder: string, alive: (pid: number) => boolean = isAlive): Discovery | undefined {
  let text: string;
  try {
    text = fs.readFileSync(discoveryPath(folder), "utf8");
  } catch {
    return undefined;
  }
  const found = parseDiscovery(text);
  return found !== undefined && alive(found.pid) ? found : undefined;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
