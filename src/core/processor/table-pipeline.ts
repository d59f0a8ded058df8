import type { TableName, Ts } from '../sink/api.js';
import type { TableSorter } from '../pipeline/sorter/table-sorter.js';
import type { SortedRow } from '../pipeline/row-codec.js';
import type { TableSnapshot } from '../snapshot/table-snapshot.js';

/** Counters of one table pipeline, reported in the task position for `cdc top`. */
export interface TablePipelineStats {
  inserts: number;
  updates: number;
  deletes: number;
}

/**
 * The position every idle table of a processor shares: min(reader position, barrier) and the commit time at
 * it. It only moves forward. A table with nothing to write and nothing waiting for an acknowledgement follows
 * it instead of keeping positions of its own, so moving the reader costs nothing per idle table.
 */
export interface ProgressClock {
  ts: Ts;
  time: number;
}

/**
 * One table's pipeline inside a processor (DESIGN §5): its sorter (which holds the table's changes until
 * resolved-ts passes them, spilling beyond the memory quota), and its progress. The puller side adds to
 * the sorter; the processor's table sink stage drains it into the sink and moves `checkpointTs` when the
 * flush covering it is acknowledged.
 */
export class TablePipeline {
  private ownWrittenTs: Ts;
  private ownCheckpointTs: Ts;
  private ownCheckpointTime = 0;
  /** Set while the table is idle and caught up: its positions are the shared clock's (see ProgressClock). */
  private clock: ProgressClock | undefined;
  readonly stats: TablePipelineStats = { inserts: 0, updates: 0, deletes: 0 };
  /** Rows handed to the sink, and when, for a rows/s figure. */
  private rateWindow: { at: number; rows: number } = { at: Date.now(), rows: 0 };
  rowsPerSecond = 0;
  /** Removed from this capture: its sorter is closed and it gets no more changes. */
  closed = false;
  /** replicating: written to the sink; preparing/prepared: a secondary being read but not written (a move in progress). */
  state: 'preparing' | 'prepared' | 'replicating' = 'replicating';
  /** Changes with a ts at or below this are already in the sorter or were written elsewhere: skipped when read. */
  floorTs: Ts = 0n;
  /** A secondary is prepared once the reader is past this (its position when the table was added). */
  catchUpTs: Ts = 0n;
  /** The owner took it away: it stops once what was written of it is acknowledged. */
  stopRequested = false;
  /** Added behind the reader: skipped until the reader starts again at its checkpoint. */
  awaitingRestart = false;
  /** The owner's id for the table (echoed in heartbeat reports). */
  ownerTableId = 0;
  /** Flush rounds (open or in flight) that hold rows of this table not acknowledged yet. */
  pendingRounds = 0;
  /** The table's initial snapshot while it is copied here (`--snapshot initial`): its rows, and the binlog reconciled with them. */
  snapshot: TableSnapshot | undefined;

  constructor(
    public name: TableName,
    readonly sorter: TableSorter<SortedRow>,
    startTs: Ts,
  ) {
    this.ownWrittenTs = startTs;
    this.ownCheckpointTs = startTs;
  }

  /** `schema.table`, built once per name (it is read per table at every heartbeat and task position). */
  get key(): string {
    if (this.keyOf?.name !== this.name) this.keyOf = { name: this.name, key: `${this.name.schema}.${this.name.table}` };
    return this.keyOf.key;
  }

  private keyOf: { readonly name: TableName; readonly key: string } | undefined;

  /** Every change of this table with ts ≤ this has been handed to `Sink.writeRows`. */
  get writtenTs(): Ts {
    return this.clock === undefined ? this.ownWrittenTs : this.clock.ts;
  }

  set writtenTs(ts: Ts) {
    this.detach();
    this.ownWrittenTs = ts;
  }

  /** The end of the changes being handed to the sink now (set while the table sink stage drains the table). */
  handingTo: Ts | undefined;

  /**
   * Every change of this table with ts ≤ this is handed to the sink, or is being handed now: the changes of keys a
   * snapshot has not copied yet are dropped up to here, so a chunk read that begins must read at this or later.
   */
  get handedTs(): Ts {
    const written = this.writtenTs;
    return this.handingTo !== undefined && this.handingTo > written ? this.handingTo : written;
  }

  /** Every change of this table with ts ≤ this is acknowledged by the sink. */
  get checkpointTs(): Ts {
    return this.clock === undefined ? this.ownCheckpointTs : this.clock.ts;
  }

  set checkpointTs(ts: Ts) {
    this.detach();
    this.ownCheckpointTs = ts;
  }

  get checkpointTime(): number {
    return this.clock === undefined ? this.ownCheckpointTime : this.clock.time;
  }

  set checkpointTime(time: number) {
    this.detach();
    this.ownCheckpointTime = time;
  }

  get following(): boolean {
    return this.clock !== undefined;
  }

  /** Follows the shared clock from now on; the caller checked that the clock is not behind this table. */
  follow(clock: ProgressClock): void {
    this.clock = clock;
  }

  /** Keeps the clock's present position as the table's own, and stops following it. */
  detach(): void {
    const clock = this.clock;
    if (clock === undefined) return;
    this.clock = undefined;
    this.ownWrittenTs = clock.ts;
    this.ownCheckpointTs = clock.ts;
    this.ownCheckpointTime = clock.time;
  }

  get rows(): number {
    return this.stats.inserts + this.stats.updates + this.stats.deletes;
  }

  /** Updates rows/s about once a second. */
  sampleRate(now: number): void {
    const elapsed = now - this.rateWindow.at;
    if (elapsed < 1000) return;
    this.rowsPerSecond = Math.round(((this.rows - this.rateWindow.rows) * 1000) / elapsed);
    this.rateWindow = { at: now, rows: this.rows };
  }
}
