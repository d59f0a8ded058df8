import type { RunningError } from './changefeed.js';

/** A processor's progress and problems for one changefeed on one capture (`task/position/{capture}/{changefeed}`). */
export interface TaskPosition {
  readonly 'checkpoint-ts': string;
  readonly 'resolved-ts': string;
  /** Wall time (ms) of the checkpoint's commit. */
  readonly 'checkpoint-time'?: number;
  readonly error?: RunningError | null;
  readonly warning?: RunningError | null;
  /** Per-table progress for `cdc top` (every field: see server/table-progress.ts). */
  readonly tables?: readonly TaskPositionTable[];
}

/** The fields of a task position's table entry that the owner reads (the entry holds more, for `cdc top`). */
export interface TaskPositionTable {
  readonly table: string;
  readonly checkpoint_ts: string;
  readonly checkpoint_time: number | null;
}
