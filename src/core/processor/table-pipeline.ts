import type { TableName, Ts } from '../sink/api.js';
import type { TableSorter } from '../pipeline/sorter/table-sorter.js';

/** Counters of one table pipeline, reported in the task position for `cdc top`. */
export interface TablePipelineStats {
  inserts: number;
  updates: number;
  deletes: number;
}

/**
 * One table's pipeline inside a processor (DESIGN §5): its sorter (which holds the table's changes until
 * resolved-ts passes them, spilling beyond the memory quota), and its progress. The puller side adds to
 * the sorter; the processor's sink loop drains it into the sink and moves `checkpointTs` after `flush`.
 */
export class TablePipeline {
  /** Every change of this table with ts ≤ this has been handed to `Sink.writeRows`. */
  writtenTs: Ts;
  /** Every change of this table with ts ≤ this is acknowledged by the sink. */
  checkpointTs: Ts;
  checkpointTime = 0;
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
  /** The owner took it away: it stops after the sink loop's current round. */
  stopRequested = false;
  /** Added behind the reader: skipped until the reader starts again at its checkpoint. */
  awaitingRestart = false;
  /** The owner's id for the table (echoed in heartbeat reports). */
  ownerTableId = 0;

  constructor(
    public name: TableName,
    readonly sorter: TableSorter,
    startTs: Ts,
  ) {
    this.writtenTs = startTs;
    this.checkpointTs = startTs;
  }

  get key(): string {
    return `${this.name.schema}.${this.name.table}`;
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
