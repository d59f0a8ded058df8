import type { TableProgressReport } from '../p2p/messages.js';

/** One capture's tables of a changefeed, as its heartbeats said them. */
export interface CaptureTableList {
  readonly tables: Map<number, TableProgressReport>;
  /** The tables it lists as replicating (a processor's floor holds for these). */
  readonly replicating: Set<number>;
  /** The processor incarnation that said it (a restarted processor's list starts again). */
  readonly processor: string | undefined;
  /** When its last full list began (ms). */
  readonly fullAt: number;
  /** False while a list sent in parts has more to come: a table not listed yet is not gone. */
  whole: boolean;
}

/**
 * What each capture's heartbeats said of one changefeed's tables on the owner: a full list, then only the changes
 * (deltas), folded in as they come. A full list, or a list from another processor incarnation, replaces the one
 * before; a long one comes in parts (HeartbeatResponse.continued) and is whole at its last part.
 */
export class CaptureReports {
  private readonly lists = new Map<string, CaptureTableList>();

  /** Folds a response's reports (table ids resolved) into the capture's list and returns the list. */
  fold(capture: string, reports: readonly TableProgressReport[], processor: string | undefined, delta: boolean, continued: boolean, now = Date.now()): CaptureTableList {
    let list = this.lists.get(capture);
    if (!delta || list === undefined || list.processor !== processor) {
      list = { tables: new Map(), replicating: new Set(), processor, fullAt: delta ? (list?.fullAt ?? 0) : now, whole: false };
      this.lists.set(capture, list);
    }
    list.whole = !continued;
    for (const r of reports) {
      if (r.state === 'stopped' || r.state === 'absent') {
        list.tables.delete(r.tableId);
        list.replicating.delete(r.tableId);
        continue;
      }
      list.tables.set(r.tableId, r);
      if (r.state === 'replicating') list.replicating.add(r.tableId);
      else list.replicating.delete(r.tableId);
    }
    return list;
  }

  get(capture: string): CaptureTableList | undefined {
    return this.lists.get(capture);
  }

  /** Every capture's tables as listed, for the scheduler's rebuild after an owner change. */
  tablesByCapture(): Map<string, TableProgressReport[]> {
    return new Map([...this.lists].map(([capture, list]) => [capture, [...list.tables.values()]]));
  }

  /** Forgets captures that are gone. */
  prune(alive: (capture: string) => boolean): void {
    for (const capture of this.lists.keys()) if (!alive(capture)) this.lists.delete(capture);
  }
}
