import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatDetail } from '../../../src/cli/changefeed-output.js';
import { snapshotSummaryOf } from '../../../src/core/api/snapshot-summary.js';
import { pendingRecord, type TableSnapshotRecord } from '../../../src/core/snapshot/progress.js';
import type { ChangefeedDetail } from '../../../src/core/api/model.js';

const copying = (rows: number, estimate?: number): TableSnapshotRecord => ({
  state: 'copying', 'start-ts': '100', chunks: [{ upper: [['n', String(rows)]], ts: '120' }], rows, method: 'chunks',
  ...(estimate === undefined ? {} : { 'estimated-rows': estimate }),
});
const done = (rows: number, estimate: number): TableSnapshotRecord => ({ state: 'done', 'start-ts': '100', chunks: [{ upper: null, ts: '0' }], rows, method: 'chunks', 'estimated-rows': estimate });

describe('the changefeed detail\'s snapshot summary', () => {
  it('sums the table records of an initial snapshot: tables done, rows copied, estimated rows', () => {
    const records = new Map<string, unknown>([
      ['shop.orders', copying(45_000, 100_000)],
      ['shop.items', done(2000, 1950)],
      ['shop.big', copying(70_000, 60_000)],
    ]);
    // a done table counts the rows it copied, a table past its estimate its rows
    assert.deepEqual(snapshotSummaryOf('initial', records), { mode: 'initial', tables: 3, tables_done: 1, rows_copied: 117_000, estimated_rows: 172_000 });
  });

  it('has no estimate while a table not done has none (pending tables take it when their copy begins)', () => {
    const records = new Map<string, unknown>([
      ['shop.orders', copying(45_000, 100_000)],
      ['shop.users', pendingRecord(100n)],
      ['shop.items', done(2000, 1950)],
    ]);
    assert.deepEqual(snapshotSummaryOf('initial', records), { mode: 'initial', tables: 3, tables_done: 1, rows_copied: 47_000, estimated_rows: null });
    assert.deepEqual(snapshotSummaryOf('initial', new Map([['a.b', done(5, 4)], ['a.c', done(0, 0)]])), { mode: 'initial', tables: 2, tables_done: 2, rows_copied: 5, estimated_rows: 5 });
  });

  it('leaves out values that are not records; zeros for schema; nothing for never', () => {
    const records = new Map<string, unknown>([['x.y', null], ['x.z', { state: 'weird' }], ['shop.items', done(2000, 1950)]]);
    assert.deepEqual(snapshotSummaryOf('initial', records), { mode: 'initial', tables: 1, tables_done: 1, rows_copied: 2000, estimated_rows: 2000 });
    assert.deepEqual(snapshotSummaryOf('initial', new Map()), { mode: 'initial', tables: 0, tables_done: 0, rows_copied: 0, estimated_rows: 0 });
    assert.deepEqual(snapshotSummaryOf('schema', new Map()), { mode: 'schema', tables: 0, tables_done: 0, rows_copied: 0, estimated_rows: null });
    assert.equal(snapshotSummaryOf('never', records), undefined);
    assert.equal(snapshotSummaryOf(undefined, records), undefined);
  });

  it('is a line of `cdc changefeed query`', () => {
    const detail = {
      namespace: 'default', id: 'orders', upstream_id: 'u', state: 'normal', checkpoint_tso: '5', checkpoint_coordinate: 'mysql-bin.000001:5', checkpoint_time: null, error: null,
      sink_uri: 'blackhole://', create_time: '2024-01-01T00:00:00.000Z', start_ts: '5', target_ts: '0', resolved_ts: '5', creator_version: '0.1.0', warning: null, config: {}, task_status: [],
    } satisfies ChangefeedDetail;
    assert.doesNotMatch(formatDetail(detail), /Snapshot:/);
    const initial = formatDetail({ ...detail, snapshot: { mode: 'initial', tables: 3, tables_done: 1, rows_copied: 47_000, estimated_rows: 102_000 } });
    assert.match(initial, /\nSnapshot: {5}initial · 1\/3 tables done · 47000 rows copied of ~102000$/);
    assert.match(formatDetail({ ...detail, snapshot: { mode: 'initial', tables: 3, tables_done: 1, rows_copied: 47_000, estimated_rows: null } }), /rows copied$/);
    assert.match(formatDetail({ ...detail, snapshot: { mode: 'schema', tables: 0, tables_done: 0, rows_copied: 0, estimated_rows: null } }), /\nSnapshot: {5}schema \(definitions only\)$/);
  });
});
