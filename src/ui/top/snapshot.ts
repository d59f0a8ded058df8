import type { ApiClient } from '../../core/api/client.js';
import { snapshotInProgress, type ChangefeedRow, type ChangefeedSnapshotTables, type TableRow, type TableSnapshotRow, type TopSnapshot } from './state.js';
import type { ChangefeedSummary, TableProgress, TableSnapshotProgress } from '../../core/api/model.js';

export interface FetchOptions {
  /**
   * Also read the tables of every changefeed and keep those whose initial snapshot is not done (the one-shot
   * form, which has no changefeed open): one request per changefeed.
   */
  readonly snapshotTables?: boolean;
}

/** Reads one snapshot of the cluster from a capture's OpenAPI (never from etcd). */
export async function fetchSnapshot(client: ApiClient, openChangefeed: { readonly id: string; readonly namespace: string } | null, options: FetchOptions = {}): Promise<TopSnapshot> {
  const [status, captures, changefeeds, tables] = await Promise.all([
    client.status(),
    client.captures(),
    client.changefeeds({ all: true }),
    openChangefeed === null ? Promise.resolve(null) : client.tables(openChangefeed.id, openChangefeed.namespace),
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
    tables: tables === null ? null : tables.map(tableRowOf),
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
