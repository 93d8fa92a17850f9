/**
 * Coalescing `canopy/nodeStatus` events between two frames of the live tree.
 *
 * A 200-node tree ticking at 50 Hz can change thousands of statuses a second; the webview
 * needs only each node's latest status once per frame. The batcher keeps that, so the work per
 * frame is bounded by the tree's size, not by the event rate.
 */

/** The payload of a `canopy/nodeStatus` event (the log event's type and payload). */
export interface NodeStatusEvent {
  type: string;
  tick?: number;
  node_id?: string;
  status?: string;
  [key: string]: unknown;
}

/** What changed since the last flush. */
export interface Batch {
  changes: Record<string, string>;
  /** The node whose status changed last: where the tree is working. */
  current: string | null;
  tick: number;
}

export class StatusBatcher {
  private changes = new Map<string, string>();
  private current: string | null = null;
  private tick = 0;
  private reloaded = false;

  /** Take one event in. */
  add(event: NodeStatusEvent): void {
    if (typeof event.tick === "number" && event.tick > this.tick) {
      this.tick = event.tick;
    }
    if (event.type === "NodeStatusChanged" && typeof event.node_id === "string" && typeof event.status === "string") {
      // Re-inserting moves the node to the end, so iteration order stays "last changed last".
      this.changes.delete(event.node_id);
      this.changes.set(event.node_id, event.status);
      this.current = event.node_id;
    } else if (event.type === "TreeReloaded") {
      this.reloaded = true;
    }
  }

  /** The highest tick seen so far. */
  get lastTick(): number {
    return this.tick;
  }

  /** True once, after a `TreeReloaded`: the drawing must be fetched again. */
  takeReload(): boolean {
    const reloaded = this.reloaded;
    this.reloaded = false;
    return reloaded;
  }

  /** Everything since the last flush, or undefined when nothing changed. */
  flush(): Batch | undefined {
    if (this.changes.size === 0) {
      return undefined;
    }
    const batch = { changes: Object.fromEntries(this.changes), current: this.current, tick: this.tick };
    this.changes = new Map();
    return batch;
  }

  /** Forget pending changes (a full snapshot is about to replace them). */
  clear(): void {
    this.changes = new Map();
  }
}
