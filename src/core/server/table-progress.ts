import type { TableProgress, TableSnapshotProgress } from '../api/model.js';
import type { TableSnapshotRecord } from '../snapshot/progress.js';

/** The progress an etcd snapshot record gives for a table not being copied on any capture now. */
export function snapshotProgressOfRecord(r: TableSnapshotRecord | undefined): TableSnapshotProgress | undefined {
  if (r === undefined) return undefined;
  return { state: r.state, method: r.method ?? null, rows: r.rows, estimated_rows: r['estimated-rows'] ?? null, chunks: r.chunks.length, rows_per_second: null, eta_seconds: r.state === 'done' ? 0 : null };
}

/**
 * The tables a capture's task position in etcd lists (the furthest behind), as the API answers them: what is left
 * to list for a capture that did not answer for itself. The page they go into sorts them, and takes the snapshot
 * state of a table not being copied from its record.
 */
export function positionTables(captureId: string, position: unknown): TableProgress[] {
  const tables = (position as { tables?: Omit<TableProgress, 'capture_id'>[] } | undefined)?.tables;
  return Array.isArray(tables) ? tables.map((t) => ({ ...t, capture_id: captureId })) : [];
}
