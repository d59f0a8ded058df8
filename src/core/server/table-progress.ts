import type { TableProgress, TableSnapshotProgress } from '../api/model.js';

/** The progress an etcd snapshot record gives for a table not being copied on any capture now. */
export function snapshotProgressOfRecord(record: unknown): TableSnapshotProgress | undefined {
  const r = record as { state?: string; rows?: number; chunks?: unknown[]; method?: 'chunks' | 'one-pass'; 'estimated-rows'?: number } | undefined;
  if (r === undefined || (r.state !== 'pending' && r.state !== 'copying' && r.state !== 'done')) return undefined;
  return { state: r.state, method: r.method ?? null, rows: r.rows ?? 0, estimated_rows: r['estimated-rows'] ?? null, chunks: r.chunks?.length ?? 0, rows_per_second: null, eta_seconds: r.state === 'done' ? 0 : null };
}

/**
 * Collects the `tables` entries of every task position of a changefeed; a table that is not being copied has
 * its snapshot's state from its record in etcd (`snapshots`, by table), when the changefeed has one.
 */
export function tableProgressOf(taskPositions: ReadonlyMap<string, unknown>, snapshots?: ReadonlyMap<string, unknown>): TableProgress[] {
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
