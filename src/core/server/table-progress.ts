/**
 * Per-table progress as the OpenAPI answers it (`GET /api/v2/changefeeds/{id}/tables`), for `cdc top`.
 * Processors report it in their task positions under `tables`; until table pipelines run, the list is empty.
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
}

/** Collects the `tables` entries of every task position of a changefeed. */
export function tableProgressOf(taskPositions: ReadonlyMap<string, unknown>): TableProgress[] {
  const items: TableProgress[] = [];
  for (const [captureId, position] of taskPositions) {
    const tables = (position as { tables?: Omit<TableProgress, 'capture_id'>[] } | undefined)?.tables;
    if (!Array.isArray(tables)) continue;
    for (const t of tables) items.push({ ...t, capture_id: captureId });
  }
  return items.sort((a, b) => a.table.localeCompare(b.table));
}
