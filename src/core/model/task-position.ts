import type { RunningError } from './changefeed.js';

/** A processor's progress and problems for one changefeed on one capture (`task/position/{capture}/{changefeed}`). */
export interface TaskPosition {
  readonly 'checkpoint-ts': string;
  readonly 'resolved-ts': string;
  /** Wall time (ms) of the checkpoint's commit. */
  readonly 'checkpoint-time'?: number;
  readonly error?: RunningError | null;
  readonly warning?: RunningError | null;
  /** Per-table progress for `cdc top` (see server/table-progress.ts). */
  readonly tables?: readonly unknown[];
}
