import type { ProgressPush } from '../p2p/messages.js';
import type { ReplicationSet } from '../scheduler/scheduler.js';
import type { Ts } from '../model/ts.js';

/** A table's checkpoint as the owner knows it: the ts and the wall time of its commit, when known. */
export interface KnownCheckpoint {
  ts: Ts;
  time: number | undefined;
}

/**
 * The processors' floors of one changefeed on the owner (ProgressPush): between heartbeats a processor sends only
 * its minimum checkpoint and resolved-ts, and the owner raises to it the tables that processor's last heartbeat
 * listed as replicating, whose primary it still is. A floor from another incarnation than the heartbeat's (the
 * processor restarted and may have lost tables) is not used; a new incarnation's heartbeat drops the old floor.
 */
export class ProgressFloors {
  /** Per capture, the processor incarnation of its last heartbeat and the tables it listed as replicating. */
  private readonly heartbeats = new Map<string, { readonly processor: string | undefined; readonly replicating: ReadonlySet<number> }>();
  private readonly floors = new Map<string, { ts: Ts; time: number | undefined; resolved: Ts }>();

  /** A capture's heartbeat: its processor incarnation (undefined from a capture that names none) and the tables replicating there. */
  heartbeat(capture: string, processor: string | undefined, replicating: ReadonlySet<number>): void {
    if (processor === undefined || this.heartbeats.get(capture)?.processor !== processor) this.floors.delete(capture);
    this.heartbeats.set(capture, { processor, replicating });
  }

  /** A processor's push: kept when it comes from the incarnation of the capture's last heartbeat and moves the floor up. */
  push(capture: string, push: ProgressPush): void {
    const heard = this.heartbeats.get(capture);
    if (heard === undefined || heard.processor === undefined || heard.processor !== push.processor) return;
    const ts = BigInt(push.checkpointTs);
    const floor = this.floors.get(capture);
    if (floor !== undefined && floor.ts >= ts) return;
    this.floors.set(capture, { ts, time: push.checkpointTime, resolved: BigInt(push.resolvedTs) });
  }

  /** Forgets captures that are gone; true when there were some. */
  prune(alive: (capture: string) => boolean): boolean {
    let pruned = false;
    for (const capture of this.floors.keys()) if (!alive(capture)) pruned = this.floors.delete(capture) || pruned;
    for (const capture of this.heartbeats.keys()) if (!alive(capture)) pruned = this.heartbeats.delete(capture) || pruned;
    return pruned;
  }

  get size(): number {
    return this.floors.size;
  }

  /**
   * Raises table `id`'s known checkpoint and resolved-ts to its primary's floor, where the floor holds for it: the
   * primary replicates it (replicating, or while a secondary is prepared) and listed it as replicating.
   */
  raise(id: number, set: ReplicationSet | undefined, checkpoints: Map<number, KnownCheckpoint>, resolved: Map<number, Ts>): void {
    const primary = set?.primary;
    if (primary === undefined || (set!.phase !== 'replicating' && set!.phase !== 'preparing-secondary')) return;
    const floor = this.floors.get(primary);
    if (floor === undefined || this.heartbeats.get(primary)?.replicating.has(id) !== true) return;
    const known = checkpoints.get(id);
    if (known === undefined || floor.ts > known.ts) checkpoints.set(id, { ts: floor.ts, time: floor.time });
    if (floor.resolved > (resolved.get(id) ?? 0n)) resolved.set(id, floor.resolved);
  }
}
