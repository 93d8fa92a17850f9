/**
 * Coalescing the adapter's `canopy/nodeStatuses` batches between two updates of the live tree.
 *
 * A 200-node tree ticking at 50 Hz can change thousands of statuses a second. The adapter
 * already sends them as batches of each node's latest status; the extension merges the batches
 * that arrive between two updates of the webview the same way, so the work per update is bounded
 * by the tree's size, not by the event rate.
 */

/** The body of a `canopy/nodeStatuses` event: the adapter's own coalesced batch. */
export interface NodeStatusBatch {
  changes: Record<string, string>;
  current: string | null;
  tick: number;
  reloaded: boolean;
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

  /** Take a batch the adapter coalesced in (`canopy/liveTree` with `batchMs`). */
  addBatch(batch: NodeStatusBatch): void {
    if (batch.reloaded) {
      this.reloaded = true;
    }
    for (const [node, status] of Object.entries(batch.changes)) {
      this.changes.delete(node);
      this.changes.set(node, status);
    }
    if (batch.current !== null && batch.current !== undefined) {
      this.current = batch.current;
    }
    this.tick = Math.max(this.tick, batch.tick);
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
