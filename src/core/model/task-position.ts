import type { RunningError } from './changefeed.js';

/** A processor's progress and problems for one changefeed on one capture (`task/position/{capture}/{changefeed}`). */
export interface TaskPosition {
  readonly 'checkpoint-ts': string;
  readonly 'resolved-ts': string;
  /** Wall time (ms) of the checkpoint's commit. */
  readonly 'checkpoint-time'?: number;
  readonly error?: RunningError | null;
  readonly warning?: RunningError | null;
  /** Tables replicated here (the list below holds at most 200 of them). */
  readonly 'table-count'?: number;
  /**
   * Per-table progress of the tables furthest behind, at most 200 (every field: TableProgress); the API lists
   * every table from the processors themselves.
   */
  readonly tables?: readonly TaskPositionTable[];
}

/** The fields of a task position's table entry that the owner reads (the entry holds more, for `cdc top`). */
export interface TaskPositionTable {
  readonly table: string;
  readonly checkpoint_ts: string;
  readonly checkpoint_time: number | null;
}

/**
 * Per-table progress as processors write it into their task positions under `tables` (the API answers it at
 * `GET /api/v2/changefeeds/{id}/tables`, for `cdc top`); until table pipelines run, the list is empty.
 */
export interface TableProgress {
  readonly table: string;
  readonly capture_id: string;
  readonly resolved_ts: string;
  readonly resolved_coordinate: string;
  readonly resolved_time: number | null;
  readonly checkpoint_ts: string;
  readonly checkpoint_coordinate: string;
  readonly checkpoint_time: number | null;
  readonly rows_per_second: number | null;
  readonly spilled_bytes: number;
  /** replicating, or preparing/prepared for a secondary copy during a move. */
  readonly state?: string;
  readonly inserts?: number;
  readonly updates?: number;
  readonly deletes?: number;
  /** The table's initial snapshot (`--snapshot initial`), while and after it is copied. */
  readonly snapshot?: TableSnapshotProgress;
}

/** How far a table's initial snapshot is. */
export interface TableSnapshotProgress {
  /** pending: not started; waiting: queued for a reader on its capture; copying; done. */
  readonly state: 'pending' | 'waiting' | 'copying' | 'done';
  /** chunks: by key ranges; one-pass: one consistent read (no key whose order is known). */
  readonly method: 'chunks' | 'one-pass' | null;
  /** Rows copied (handed to the sink; the record in etcd counts the acknowledged ones). */
  readonly rows: number;
  /** The server's estimate of the table's rows when the copy began. */
  readonly estimated_rows: number | null;
  readonly chunks: number;
  readonly rows_per_second: number | null;
  /** Seconds left at the current rate, from the estimate. */
  readonly eta_seconds: number | null;
}
