import type { TableSnapshotRecord } from '../snapshot/progress.js';
import type { ChangefeedSnapshotSummary } from './model.js';

/**
 * Sums a changefeed's table snapshot records (`ChangefeedReactorState.snapshots`, values as read from etcd) for
 * its detail; `mode` is the changefeed's `config.snapshot.mode`. Undefined for `never` (or no mode). A value that
 * is not a record is left out.
 */
export function snapshotSummaryOf(mode: string | undefined, records: ReadonlyMap<string, unknown>): ChangefeedSnapshotSummary | undefined {
  if (mode === 'schema') return { mode, tables: 0, tables_done: 0, rows_copied: 0, estimated_rows: null };
  if (mode !== 'initial') return undefined;
  let tables = 0;
  let done = 0;
  let rows = 0;
  let estimated: number | null = 0;
  for (const value of records.values()) {
    const record = value as Partial<TableSnapshotRecord> | null | undefined;
    const state = record?.state;
    if (state !== 'pending' && state !== 'copying' && state !== 'done') continue;
    const copied = typeof record?.rows === 'number' && Number.isFinite(record.rows) ? record.rows : 0;
    const estimate = record?.['estimated-rows'];
    tables++;
    rows += copied;
    if (state === 'done') {
      done++;
      if (estimated !== null) estimated += copied;
    } else if (typeof estimate === 'number' && Number.isFinite(estimate)) {
      // a table can hold more rows than the server estimated when its copy began
      if (estimated !== null) estimated += Math.max(estimate, copied);
    } else {
      estimated = null;
    }
  }
  return { mode, tables, tables_done: done, rows_copied: rows, estimated_rows: estimated };
}
