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
