import type { TableProgress, TableSnapshotProgress } from '../api/model.js';
import type { TableSnapshotRecord } from '../snapshot/progress.js';

/** The progress an etcd snapshot record gives for a table not being copied on any capture now. */
export function snapshotProgressOfRecord(r: TableSnapshotRecord | undefined): TableSnapshotProgress | undefined {
  if (r === undefined) return undefined;
  return { state: r.state, method: r.method ?? null, rows: r.rows, estimated_rows: r['estimated-rows'] ?? null, chunks: r.chunks.length, rows_per_second: null, eta_seconds: r.state === 'done' ? 0 : null };
}

/**
 * Collects the `tables` entries of every task position of a changefeed; a table that is not being copied has
 * its snapshot's state from its record in etcd (`snapshots`, by table), when the changefeed has one.
 */
export function tableProgressOf(taskPositions: ReadonlyMap<string, unknown>, snapshots?: ReadonlyMap<string, TableSnapshotRecord>): TableProgress[] {
  const items: TableProgress[] = [];
  for (const [captureId, position] of taskPositions) {
    const tables = (position as { tables?: Omit<TableProgress, 'capture_id'>[] } | undefined)?.tables;
    if (!Array.isArray(tables)) continue;
    for (const t of tables) {
      const fromRecord = t.snapshot === undefined ? snapshotProgressOfRecord(snapshots?.get(t.table)) : undefined;
      items.push(fromRecord === undefined ? { ...t, capture_id: captureId } : { ...t, capture_id: captureId, snapshot: fromRecord });
    }
  }
  return items.sort((a, b) => a.table.localeCompare(b.table));
}
