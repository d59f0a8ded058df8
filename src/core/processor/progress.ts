import { formatCoordinate } from '../model/ts.js';
import { topK } from '../model/top-k.js';
import type { TaskPosition } from '../model/task-position.js';
import type { TableSnapshot } from '../snapshot/table-snapshot.js';
import type { TableProgressReport, TableState } from '../p2p/messages.js';
import type { Ts } from '../sink/api.js';
import type { TablePipeline } from './table-pipeline.js';
import type { TableProgress, TableSnapshotProgress } from '../model/task-position.js';

/** A table's snapshot as the task position shows it while it is copied here. */
function snapshotProgressOf(s: TableSnapshot, now: number): TableSnapshotProgress {
  const rows = s.rowsAtStart + s.rowsWritten;
  const seconds = s.copyStartedAt === undefined ? 0 : (now - s.copyStartedAt) / 1000;
  const rate = seconds >= 1 ? Math.round(s.rowsWritten / seconds) : null;
  const left = s.estimatedRows === undefined ? undefined : Math.max(0, s.estimatedRows - rows);
  return {
    state: s.copyStartedAt === undefined ? 'waiting' : 'copying',
    method: s.method ?? null,
    rows,
    estimated_rows: s.estimatedRows ?? null,
    chunks: s.chunksAtStart + s.chunksWritten,
    rows_per_second: rate,
    eta_seconds: left === undefined || rate === null || rate === 0 ? null : Math.round(left / rate),
  };
}

/**
 * Tables listed in the task position in etcd: those furthest behind, for a glance with etcdctl, the owner's
 * checkpoint times and the API's fallback when a capture does not answer (the API lists every table from the
 * processors themselves).
 */
export const MAX_POSITION_TABLES = 200;
/**
 * How often the tables the task position lists are chosen again (when there are more than it lists), per 10,000
 * tables: the choice walks every table (with 100,000, 140 ms).
 */
const CHOOSE_AGAIN_MS = 10_000;

/** What the progress reports read of a processor. */
export interface ProgressSource {
  /** `namespace/changefeed-id`. */
  readonly changefeedKey: string;
  /** The upstream's binlog basename, for coordinates. */
  readonly basename: string;
  readonly tables: ReadonlyMap<string, TablePipeline>;
  readonly readerTs: Ts;
  readonly readerTime: number;
  /** The processor's checkpoint and resolved-ts (one walk over its tables). */
  floors(): ProgressFloors;
  resolvedOf(table: TablePipeline): Ts;
}

/** A processor's checkpoint (with its commit time) and resolved-ts: the lowest of its tables'. */
export interface ProgressFloors {
  readonly checkpointTs: Ts;
  /** Wall time (ms) of the commit at checkpointTs (0: unknown). */
  readonly checkpointTime: number;
  readonly resolvedTs: Ts;
}

/**
 * A processor's progress as others see it (DESIGN §3, §4): the per-table reports of the owner's heartbeat
 * (a removed table once, with its final checkpoint) and the task position kept in etcd for `cdc top` and the API.
 */
export class ProcessorProgress {
  /** Tables removed since the last report: reported once as stopped, with their final checkpoint. */
  private readonly stopped = new Map<string, TableProgressReport>();
  /** The state each table had in the last answer to the owner (what it knows, once it has read that answer). */
  private readonly reported = new Map<string, TableState>();
  private answered = false;
  /**
   * Tables whose state may differ from what the owner was last told (added, promoted, asked to stop), and the
   * secondaries still preparing (prepared once the reader passes their catch-up point): a delta looks only at
   * these, so a heartbeat of 100,000 unchanged tables walks none of them.
   */
  private readonly changed = new Set<TablePipeline>();
  private readonly preparing = new Set<TablePipeline>();
  /** The tables the task position lists, when there are more than it can, and when they were chosen. */
  private chosen: { readonly at: number; readonly tables: readonly TablePipeline[] } | undefined;

  constructor(private readonly source: ProgressSource) {}

  /** A table removed here: its final checkpoint goes with the next heartbeat. */
  tableStopped(table: TablePipeline): void {
    this.changed.delete(table);
    this.preparing.delete(table);
    this.stopped.set(table.key, this.report(table, 'stopped'));
  }

  /** A table was added, promoted or asked to stop: the next heartbeat looks at it. */
  tableChanged(table: TablePipeline): void {
    this.changed.add(table);
  }

  /** Tables stopped here whose final checkpoint the owner has not been told yet (a draining capture waits for them). */
  get unreportedStops(): number {
    return this.stopped.size;
  }

  /**
   * The tables for the owner's heartbeat, and whether they are all of them: every table when `full` (the owner
   * asked, or this processor never answered), otherwise only those whose state changed since the last answer
   * (a heartbeat of 100,000 idle tables is then empty: their checkpoints travel as the processor's floor, in
   * ProgressPush). Stopped tables are listed once, with their final checkpoint.
   */
  reports(full: boolean): { tables: TableProgressReport[]; full: boolean } {
    const { readerTs } = this.source;
    const all = full || !this.answered;
    this.answered = true;
    if (all) this.reported.clear();
    const out: TableProgressReport[] = [];
    const { tables } = this.source;
    if (all) this.preparing.clear();
    const candidates = all ? tables.values() : new Set([...this.changed, ...this.preparing]);
    this.changed.clear();
    for (const t of candidates) {
      if (tables.get(t.key) !== t) continue;
      if (t.state === 'preparing' && readerTs >= t.catchUpTs && readerTs >= t.floorTs) t.state = 'prepared';
      if (t.state === 'preparing') this.preparing.add(t);
      else this.preparing.delete(t);
      const state = t.stopRequested ? 'stopping' : t.state;
      if (!all && this.reported.get(t.key) === state) continue;
      this.reported.set(t.key, state);
      out.push(this.report(t, state));
    }
    for (const [key, report] of this.stopped) {
      out.push(report);
      this.reported.delete(key);
    }
    this.stopped.clear();
    return { tables: out, full: all };
  }

  /** Every table here as the API lists it (`GET /api/v2/changefeeds/{id}/tables`), unsorted. */
  tables(now = Date.now()): Omit<TableProgress, 'capture_id'>[] {
    const out: Omit<TableProgress, 'capture_id'>[] = [];
    for (const t of this.source.tables.values()) out.push(this.entry(t, now));
    return out;
  }

  /**
   * The task position this processor reports (DESIGN §3 task/position key): its checkpoint, resolved-ts, the
   * number of its tables and at most MAX_POSITION_TABLES of them (those furthest behind).
   */
  position(now = Date.now(), floors: ProgressFloors = this.source.floors()): TaskPosition {
    const all = this.source.tables;
    // an etcd value stays far below its 1.5 MiB limit: with many tables, the position lists the ones furthest behind,
    // chosen before their entries are built (building 10,000 entries to keep a few hundred was most of an idle
    // capture's work), and chosen again at most every CHOOSE_AGAIN_MS (with 100,000 tables the choice itself was)
    let chosen: Iterable<TablePipeline>;
    if (all.size <= MAX_POSITION_TABLES) chosen = all.values();
    else {
      const every = CHOOSE_AGAIN_MS * Math.max(1, all.size / 10_000);
      if (this.chosen === undefined || now - this.chosen.at >= every || now < this.chosen.at) {
        const behind = topK([...all.values()], MAX_POSITION_TABLES, (a, b) => (a.checkpointTs < b.checkpointTs ? -1 : a.checkpointTs > b.checkpointTs ? 1 : a.key < b.key ? -1 : 1));
        this.chosen = { at: now, tables: behind };
      }
      // tables removed since the choice are left out
      chosen = this.chosen.tables.filter((t) => all.get(t.key) === t);
    }
    const tables: Omit<TableProgress, 'capture_id'>[] = [];
    for (const t of chosen) tables.push(this.entry(t, now));
    tables.sort((a, b) => (a.table < b.table ? -1 : a.table > b.table ? 1 : 0));
    const count = all.size;
    const { checkpointTs, checkpointTime: time, resolvedTs } = floors;
    return {
      'checkpoint-ts': String(checkpointTs),
      'resolved-ts': String(resolvedTs),
      ...(time === 0 ? {} : { 'checkpoint-time': time }),
      'table-count': count,
      tables,
    };
  }

  private entry(t: TablePipeline, now: number): Omit<TableProgress, 'capture_id'> {
    const { basename, readerTime } = this.source;
    t.sampleRate(now);
    const resolved = this.source.resolvedOf(t);
    return {
      table: t.key,
      state: t.state,
      resolved_ts: String(resolved),
      resolved_coordinate: formatCoordinate(resolved, basename),
      resolved_time: readerTime || null,
      checkpoint_ts: String(t.checkpointTs),
      checkpoint_coordinate: formatCoordinate(t.checkpointTs, basename),
      checkpoint_time: t.checkpointTime || null,
      rows_per_second: t.rowsPerSecond,
      spilled_bytes: t.sorter.stats.spilledBytes,
      inserts: t.stats.inserts,
      updates: t.stats.updates,
      deletes: t.stats.deletes,
      ...(t.snapshot === undefined ? {} : { snapshot: snapshotProgressOf(t.snapshot, now) }),
    };
  }

  private report(t: TablePipeline, state: TableProgressReport['state']): TableProgressReport {
    return { changefeed: this.source.changefeedKey, tableId: t.ownerTableId, table: t.key, state, checkpointTs: String(t.checkpointTs), checkpointTime: t.checkpointTime, resolvedTs: String(this.source.resolvedOf(t)) };
  }
}
