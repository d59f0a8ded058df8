import type { ApiClient } from '../../core/api/client.js';
import type { ChangefeedSummary } from '../../core/owner/changefeed-admin.js';
import type { CaptureSummary } from '../../core/server/server.js';
import type { TableProgress } from '../../core/server/table-progress.js';
import type { ChangefeedRow, TableRow, TopSnapshot } from './state.js';

/** Reads one snapshot of the cluster from a capture's OpenAPI (never from etcd). */
export async function fetchSnapshot(client: ApiClient, openChangefeed: string | null): Promise<TopSnapshot> {
  const [status, captures, changefeeds, tables] = await Promise.all([
    client.get<{ cluster_id: string }>('/api/v2/status'),
    client.get<{ items: CaptureSummary[] }>('/api/v2/captures'),
    client.get<{ items: ChangefeedSummary[] }>('/api/v2/changefeeds?state=all'),
    openChangefeed === null
      ? Promise.resolve(null)
      : client.get<{ items: TableProgress[] }>(`/api/v2/changefeeds/${encodeURIComponent(openChangefeed)}/tables`).then((r) => r.items),
  ]);
  return {
    clusterId: status.cluster_id,
    server: client.base.origin,
    captures: captures.items.map((c) => ({ id: c.id, address: c.address, isOwner: c.is_owner })),
    changefeeds: changefeeds.items.map(
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
    tables:
      tables === null
        ? null
        : tables.map(
            (t): TableRow => ({
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
            }),
          ),
    takenAt: Date.now(),
  };
}
