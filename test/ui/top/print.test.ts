import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApiClient } from '../../../src/core/api/client.js';
import { formatSnapshot } from '../../../src/ui/top/print.js';
import { fetchSnapshot } from '../../../src/ui/top/snapshot.js';
import type { TableProgress, TableSnapshotProgress } from '../../../src/core/api/model.js';

const NOW = 1_700_000_000_000;

function table(name: string, snapshot?: TableSnapshotProgress): TableProgress {
  return {
    table: name, capture_id: 'c1aaaaaaaa', resolved_ts: '2', resolved_coordinate: 'mysql-bin.000001:9', resolved_time: NOW - 100,
    checkpoint_ts: '1', checkpoint_coordinate: 'mysql-bin.000001:4', checkpoint_time: NOW - 2500, rows_per_second: null, spilled_bytes: 0,
    ...(snapshot === undefined ? {} : { snapshot }),
  };
}

/** An OpenAPI with two changefeeds: `orders` copying its initial snapshot, `audit` streaming. */
function client(paths: string[]): ApiClient {
  const changefeed = (id: string) => ({ id, namespace: 'default', upstream_id: 'u', state: 'normal', checkpoint_tso: '5', checkpoint_coordinate: 'mysql-bin.000001:5', checkpoint_time: new Date(NOW - 2500).toISOString(), error: null });
  const tables: Record<string, unknown[]> = {
    orders: [
      table('shop.events', { state: 'copying', method: 'one-pass', rows: 12_345, estimated_rows: null, chunks: 0, rows_per_second: 800, eta_seconds: null }),
      table('shop.items', { state: 'done', method: 'chunks', rows: 2000, estimated_rows: 1950, chunks: 1, rows_per_second: null, eta_seconds: 0 }),
      table('shop.orders', { state: 'copying', method: 'chunks', rows: 45_000, estimated_rows: 100_000, chunks: 6, rows_per_second: 1200, eta_seconds: 45.8 }),
    ],
    audit: [table('crm.log')],
  };
  // the real client's typed routes, answered here instead of over HTTP: the paths they build are recorded
  const api = new ApiClient('http://127.0.0.1:8300');
  return Object.assign(api, {
    request: (method: string, path: string) => {
      if (method !== 'GET') return Promise.reject(new Error(`unexpected ${method} ${path}`));
      paths.push(path);
      if (path === '/api/v2/status') return Promise.resolve({ cluster_id: 'prod' });
      if (path === '/api/v2/captures') return Promise.resolve({ items: [{ id: 'c1', address: '127.0.0.1:8300', is_owner: true, cluster_id: 'prod' }] });
      if (path === '/api/v2/changefeeds?state=all') return Promise.resolve({ items: [changefeed('audit'), changefeed('orders')] });
      const id = /^\/api\/v2\/changefeeds\/([^/]+)\/tables\?namespace=default&limit=10000$/.exec(path)?.[1];
      if (id !== undefined && id in tables) return Promise.resolve({ total: tables[id].length, offset: 0, items: tables[id], next: null });
      return Promise.reject(new Error(`unexpected GET ${path}`));
    },
  });
}

describe('cdc top --once', () => {
  it('prints each changefeed whose initial snapshot is copied with its totals and every table\'s progress', async () => {
    const paths: string[] = [];
    const snapshot = await fetchSnapshot(client(paths), null, { snapshotTables: true });
    assert.ok(paths.includes('/api/v2/changefeeds/orders/tables?namespace=default&limit=10000'));
    assert.deepEqual(snapshot.snapshotTables?.map((c) => c.changefeedId), ['orders'], 'audit has no snapshot');
    const text = formatSnapshot(snapshot, NOW);
    const lines = text.split('\n');
    assert.deepEqual(lines.slice(4), [
      '',
      'snapshot of orders · 1/3 tables done · 59345 rows copied',
      'TABLE                CAPTURE   STATE   METHOD   PROGRESS                  ROWS     EST      CHUNKS ROWS/S ETA',
      'shop.events          c1aaaaaa  copying one-pass ▒▒▒▒▒▒▒▒▒▒▒▒▒▒▒▒▒▒▒▒    — 12345    —        0      800    —',
      'shop.items           c1aaaaaa  done    chunks   ████████████████████ 100% 2000     ~1950    1      —      —',
      'shop.orders          c1aaaaaa  copying chunks   █████████░░░░░░░░░░░  45% 45000    ~100.0k  6      1200   46.0s',
    ]);
  });

  it('prints the changefeeds alone when no snapshot is copied, and reads no tables without being asked', async () => {
    const paths: string[] = [];
    const snapshot = await fetchSnapshot(client(paths), null);
    assert.equal(snapshot.snapshotTables, undefined);
    assert.ok(!paths.some((p) => p.includes('/tables')));
    assert.doesNotMatch(formatSnapshot(snapshot, NOW), /snapshot of/);
  });
});
