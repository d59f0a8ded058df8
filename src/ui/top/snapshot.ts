import type { ApiClient } from '../../core/api/client.js';
import { snapshotInProgress, type ChangefeedRow, type ChangefeedSnapshotTables, type SnapshotTotals, type SortKey, type TableRow, type TableSnapshotRow, type TopSnapshot } from './state.js';
import type { ChangefeedDetail, ChangefeedSummary, TableProgress, TableSnapshotProgress } from '../../core/api/model.js';

export interface FetchOptions {
  /**
   * Also read the tables of every changefeed and keep those whose initial snapshot is not done (the one-shot
   * form, which has no changefeed open): one request per changefeed.
   */
  readonly snapshotTables?: boolean;
}

/** The open changefeed, and the page of its tables to read (all of them when no window is given). */
export interface OpenChangefeed {
  readonly id: string;
  readonly namespace: string;
  readonly window?: { readonly offset: number; readonly limit: number; readonly sort: SortKey; readonly filter: string };
}

/** Reads one snapshot of the cluster from a capture's OpenAPI (never from etcd). */
export async function fetchSnapshot(client: ApiClient, openChangefeed: OpenChangefeed | null, options: FetchOptions = {}): Promise<TopSnapshot> {
  const window = openChangefeed?.window;
  const [status, captures, changefeeds, tables, page, detail] = await Promise.all([
    client.status(),
    client.captures(),
    client.changefeeds({ all: true }),
    openChangefeed === null || window !== undefined ? Promise.resolve(null) : client.tables(openChangefeed.id, openChangefeed.namespace),
    openChangefeed === null || window === undefined
      ? Promise.resolve(null)
      : client.tablePage(openChangefeed.id, openChangefeed.namespace, { offset: window.offset, limit: window.limit, sort: window.sort, ...(window.filter === '' ? {} : { filter: window.filter }) }),
    openChangefeed === null || window === undefined ? Promise.resolve(null) : client.changefeed(openChangefeed.id, openChangefeed.namespace),
  ]);
  const snapshotTables = options.snapshotTables === true ? await fetchSnapshotTables(client, changefeeds) : undefined;
  return {
    clusterId: status.cluster_id,
    server: client.base.origin,
    captures: captures.map((c) => ({ id: c.id, address: c.address, isOwner: c.is_owner })),
    changefeeds: changefeeds.map(
      (c): ChangefeedRow => ({
        id: c.id,
        namespace: c.namespace,
        state: c.state,
        checkpointTs: c.checkpoint_tso,
        checkpointCoordinate: c.checkpoint_coordinate,
        checkpointTime: c.checkpoint_time === null ? null : Date.parse(c.checkpoint_time),
        rowsPerSecond: null,
        error: c.error === null ? null : `${c.error.code}: ${c.error.message}`,
      }),
    ),
    tables: page !== null ? page.items.map(tableRowOf) : tables === null ? null : tables.map(tableRowOf),
    ...(page === null || window === undefined ? {} : { tablePage: { offset: page.offset, total: page.total, sort: window.sort, filter: window.filter } }),
    ...(detail === null ? {} : { openSnapshot: openSnapshotOf(detail) }),
    ...(snapshotTables === undefined ? {} : { snapshotTables }),
    takenAt: Date.now(),
  };
}

/** The tables of each changefeed whose snapshot is being copied; a changefeed whose tables cannot be read is left out. */
async function fetchSnapshotTables(client: ApiClient, changefeeds: readonly ChangefeedSummary[]): Promise<ChangefeedSnapshotTables[]> {
  const all = await Promise.all(
    changefeeds.map((c) =>
      client
        .tables(c.id, c.namespace)
        .then((items): ChangefeedSnapshotTables => ({ changefeedId: c.id, tables: items.map(tableRowOf) }))
        .catch(() => null),
    ),
  );
  return all.filter((c): c is ChangefeedSnapshotTables => c !== null && snapshotInProgress(c.tables));
}

/** The changefeed's snapshot totals while its copy is not done; null otherwise. */
function openSnapshotOf(detail: ChangefeedDetail): SnapshotTotals | null {
  const s = detail.snapshot;
  if (s === undefined || s.mode !== 'initial' || s.tables_done >= s.tables) return null;
  return { tables: s.tables, done: s.tables_done, rows: s.rows_copied, estimatedRows: s.estimated_rows };
}

function tableRowOf(t: TableProgress): TableRow {
  return {
    table: t.table,
    captureId: t.capture_id,
    resolvedTs: t.resolved_ts,
    resolvedCoordinate: t.resolved_coordinate,
    resolvedTime: t.resolved_time,
    checkpointTs: t.checkpoint_ts,
    checkpointCoordinate: t.checkpoint_coordinate,
    checkpointTime: t.checkpoint_time,
    rowsPerSecond: t.rows_per_second,
    spilledBytes: t.spilled_bytes,
    ...(t.snapshot === undefined ? {} : { snapshot: snapshotRowOf(t.snapshot) }),
  };
}

function snapshotRowOf(s: TableSnapshotProgress): TableSnapshotRow {
  return {
    state: s.state,
    method: s.method,
    rows: s.rows,
    estimatedRows: s.estimated_rows,
    chunks: s.chunks,
    rowsPerSecond: s.rows_per_second,
    etaSeconds: s.eta_seconds,
  };
}
