/**
 * The etcd key layout of DESIGN §3 (TiCDC's). Every key Tidemark writes is built and parsed here.
 *
 *   /tidb/cdc/{cluster}/__cdc_meta__/capture/{capture-id}
 *   /tidb/cdc/{cluster}/__cdc_meta__/owner/{lease-id hex}
 *   /tidb/cdc/{cluster}/{namespace}/changefeed/info/{id}
 *   /tidb/cdc/{cluster}/{namespace}/changefeed/status/{id}
 *   /tidb/cdc/{cluster}/{namespace}/task/position/{capture-id}/{id}
 *   /tidb/cdc/{cluster}/{namespace}/upstream/{upstream-id}
 *   /tidb/cdc/{cluster}/{namespace}/changefeed/schema/{id}[/{generation}/{part}]
 *   /tidb/cdc/{cluster}/{namespace}/changefeed/snapshot/{id}/{schema.table, URI-encoded}
 *
 * The last one is Tidemark's own (TiCDC reads old table definitions from TiKV's MVCC meta; a MySQL upstream
 * has none): the changefeed's schema storage for upstreams without binlog_row_metadata=FULL, a JSON manifest
 * and its gzip parts (schema-store.ts). The snapshot keys are Tidemark's too: the progress of each table's
 * initial snapshot (`--snapshot initial`), so a capture taking a table over resumes its copy (snapshot/progress.ts).
 */
export const KEY_ROOT = '/tidb/cdc';
export const META = '__cdc_meta__';
export const DEFAULT_NAMESPACE = 'default';

export function clusterPrefix(clusterId: string): string {
  return `${KEY_ROOT}/${clusterId}`;
}
export function capturePrefix(clusterId: string): string {
  return `${clusterPrefix(clusterId)}/${META}/capture/`;
}
export function captureKey(clusterId: string, captureId: string): string {
  return `${capturePrefix(clusterId)}${captureId}`;
}
export function ownerPrefix(clusterId: string): string {
  return `${clusterPrefix(clusterId)}/${META}/owner/`;
}
export function ownerKey(clusterId: string, leaseId: string): string {
  return `${ownerPrefix(clusterId)}${BigInt(leaseId).toString(16)}`;
}
export function changefeedInfoKey(clusterId: string, namespace: string, id: string): string {
  return `${clusterPrefix(clusterId)}/${namespace}/changefeed/info/${id}`;
}
export function changefeedStatusKey(clusterId: string, namespace: string, id: string): string {
  return `${clusterPrefix(clusterId)}/${namespace}/changefeed/status/${id}`;
}
export function taskPositionKey(clusterId: string, namespace: string, captureId: string, id: string): string {
  return `${clusterPrefix(clusterId)}/${namespace}/task/position/${captureId}/${id}`;
}
export function changefeedSchemaKey(clusterId: string, namespace: string, id: string): string {
  return `${clusterPrefix(clusterId)}/${namespace}/changefeed/schema/${id}`;
}
export function changefeedSnapshotPrefix(clusterId: string, namespace: string, id: string): string {
  return `${clusterPrefix(clusterId)}/${namespace}/changefeed/snapshot/${id}/`;
}
export function changefeedSnapshotKey(clusterId: string, namespace: string, id: string, table: string): string {
  return `${changefeedSnapshotPrefix(clusterId, namespace, id)}${encodeURIComponent(table)}`;
}
export function upstreamKey(clusterId: string, namespace: string, upstreamId: string): string {
  return `${clusterPrefix(clusterId)}/${namespace}/upstream/${upstreamId}`;
}

export type ParsedKey =
  | { readonly kind: 'capture'; readonly captureId: string }
  | { readonly kind: 'owner'; readonly leaseHex: string }
  | { readonly kind: 'changefeedInfo'; readonly namespace: string; readonly changefeedId: string }
  | { readonly kind: 'changefeedStatus'; readonly namespace: string; readonly changefeedId: string }
  | { readonly kind: 'taskPosition'; readonly namespace: string; readonly captureId: string; readonly changefeedId: string }
  | { readonly kind: 'upstream'; readonly namespace: string; readonly upstreamId: string }
  | { readonly kind: 'snapshotProgress'; readonly namespace: string; readonly changefeedId: string; readonly table: string }
  | { readonly kind: 'unknown' };

const UNKNOWN: ParsedKey = Object.freeze({ kind: 'unknown' });

/** Parses a key under the cluster prefix; keys of other clusters or shapes are `unknown`. */
export function parseKey(clusterId: string, key: string): ParsedKey {
  const prefix = `${clusterPrefix(clusterId)}/`;
  if (!key.startsWith(prefix)) return UNKNOWN;
  const parts = key.slice(prefix.length).split('/');
  if (parts[0] === META) {
    if (parts.length === 3 && parts[1] === 'capture') return { kind: 'capture', captureId: parts[2] };
    if (parts.length === 3 && parts[1] === 'owner') return { kind: 'owner', leaseHex: parts[2] };
    return UNKNOWN;
  }
  const [namespace, a, b, c, d] = parts;
  if (namespace === undefined) return UNKNOWN;
  if (parts.length === 4 && a === 'changefeed' && b === 'info') return { kind: 'changefeedInfo', namespace, changefeedId: c };
  if (parts.length === 4 && a === 'changefeed' && b === 'status') return { kind: 'changefeedStatus', namespace, changefeedId: c };
  if (parts.length === 5 && a === 'task' && b === 'position') {
    return { kind: 'taskPosition', namespace, captureId: c, changefeedId: d };
  }
  if (parts.length === 5 && a === 'changefeed' && b === 'snapshot') {
    let table: string;
    try {
      table = decodeURIComponent(d);
    } catch {
      return UNKNOWN;
    }
    return { kind: 'snapshotProgress', namespace, changefeedId: c, table };
  }
  if (parts.length === 3 && a === 'upstream') return { kind: 'upstream', namespace, upstreamId: b };
  return UNKNOWN;
}
