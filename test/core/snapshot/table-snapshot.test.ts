import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ColumnInfo, RowChangedEvent, TableName } from '../../../src/core/sink/api.js';
import type { Value } from '../../../src/core/upstream/rows.js';
import { TableSnapshot, type SnapshotPiece } from '../../../src/core/snapshot/table-snapshot.js';
import { compactChunks, decodeKey, encodeKey, pendingRecord, type TableSnapshotRecord } from '../../../src/core/snapshot/progress.js';

const table: TableName = { schema: 'db', table: 't', tableId: 1 };
const columns: ColumnInfo[] = [
  { name: 'id', mysqlType: 'int', primaryKey: true, nullable: false },
  { name: 'v', mysqlType: 'int', primaryKey: false, nullable: true },
];
const compare = (a: readonly Value[], b: readonly Value[]): number => (a[0] as number) - (b[0] as number);

function change(kind: RowChangedEvent['kind'], ts: bigint, before: number | null, after: number | null): RowChangedEvent {
  return { table, commitTs: ts, commitTime: 0, seq: 0, kind, columns, before: before === null ? null : [before, 0], after: after === null ? null : [after, 1] };
}

function piece(ts: bigint, ids: number[], end?: { upper: number | null }, final = false): SnapshotPiece {
  const rows = ids.map((id, seq): RowChangedEvent => ({ table, commitTs: ts, commitTime: 0, seq, kind: 'insert', columns, before: null, after: [id, 0], snapshot: 'row' }));
  return { ts, rows, bytes: 10 * ids.length, final, ...(end === undefined ? {} : { chunkEnd: { upper: end.upper === null ? null : [end.upper] } }) };
}

function fresh(record: TableSnapshotRecord = pendingRecord(100n), start = 100n): TableSnapshot {
  const s = new TableSnapshot(record, start, () => undefined, 1 << 20);
  s.setKey({ names: ['id'], compare }, 'chunks');
  return s;
}

describe('TableSnapshot: the binlog reconciled with chunks read at known positions', () => {
  it('holds the table at its start until a piece comes, then at each piece, and lets it go after the last', async () => {
    const s = fresh();
    assert.equal(s.cap, 100n);
    const p1 = piece(200n, [1, 2, 3], { upper: 3 });
    await s.push(p1, AbortSignal.timeout(1000));
    assert.equal(s.cap, 200n);
    s.written(p1);
    assert.equal(s.cap, 200n, 'written up to the piece, the table waits for the next one');
    const p2 = piece(300n, [4], { upper: null }, true);
    await s.push(p2, AbortSignal.timeout(1000));
    assert.equal(s.cap, 300n);
    s.written(p2);
    assert.equal(s.finished, true);
    assert.equal(s.cap, undefined);
  });

  it('drops changes a chunk holds or will hold, keeps the ones after its position', async () => {
    const s = fresh();
    // nothing copied yet: every change is dropped (its chunk will be read at a later position)
    assert.equal(s.keep(change('insert', 150n, null, 1)), undefined);
    const p1 = piece(200n, [1, 2, 3], { upper: 3 });
    await s.push(p1, AbortSignal.timeout(1000));
    s.written(p1);
    assert.equal(s.keep(change('update', 199n, 2, 2)), undefined, 'before the chunk: in its rows');
    assert.equal(s.keep(change('update', 200n, 2, 2)), undefined, 'at the chunk position: in its rows');
    const after = change('update', 201n, 2, 2);
    assert.equal(s.keep(after), after, 'after the chunk position: written');
    assert.equal(s.keep(change('insert', 250n, null, 4)), undefined, 'a key of the next chunk: dropped');
    const p2 = piece(300n, [4, 5], { upper: 5 });
    await s.push(p2, AbortSignal.timeout(1000));
    s.written(p2);
    assert.equal(s.keep(change('insert', 290n, null, 5)), undefined);
    const late = change('delete', 301n, 5, null);
    assert.equal(s.keep(late), late);
    assert.equal(s.keep(change('insert', 301n, null, 9)), undefined, 'beyond every chunk read: dropped');
  });

  it('splits an update whose key moves across the copied line', async () => {
    const s = fresh();
    const p1 = piece(200n, [1, 2], { upper: 2 });
    await s.push(p1, AbortSignal.timeout(1000));
    s.written(p1);
    const out = s.keep(change('update', 250n, 2, 7));
    assert.equal(out?.kind, 'delete', 'key 2 left the copied range: its delete is written, key 7 comes with its chunk');
    assert.deepEqual(out?.before, [2, 0]);
    assert.equal(out?.after, null);
    const back = s.keep(change('update', 260n, 7, 1));
    assert.equal(back?.kind, 'insert');
    assert.deepEqual(back?.after, [1, 1]);
  });

  it('resumes from the acknowledged chunks of an earlier run', () => {
    const record: TableSnapshotRecord = { ...pendingRecord(100n), state: 'copying', chunks: [{ upper: encodeKey([3]), ts: '0' }, { upper: encodeKey([6]), ts: '400' }], rows: 6 };
    const s = fresh(record, 300n);
    assert.deepEqual(s.resumeAfter, [6]);
    const keptOld = change('update', 350n, 2, 2);
    assert.equal(s.keep(keptOld), keptOld, 'a key of a chunk before the checkpoint');
    assert.equal(s.keep(change('update', 350n, 5, 5)), undefined, 'a key of a chunk read at 400');
    const notCopied = change('update', 350n, 8, 8);
    assert.equal(s.keep(notCopied), notCopied, 'a key not copied yet: written, as the earlier run may have written its chunk unrecorded');
  });

  it('a copy an earlier run began writes the changes of keys not copied yet (that run may have written rows no record counts)', async () => {
    const record: TableSnapshotRecord = { ...pendingRecord(100n), state: 'copying', chunks: [{ upper: encodeKey([3]), ts: '250' }], rows: 3 };
    const s = fresh(record, 200n);
    assert.equal(s.resumed, true);
    const unread = change('delete', 220n, 9, null);
    assert.equal(s.keep(unread), unread, 'a delete of a key an unrecorded chunk may have written goes to the sink');
    assert.equal(s.keep(change('update', 240n, 2, 2)), undefined, 'a recorded chunk still holds the changes before its position');
    const p = piece(300n, [4, 9], { upper: 9 });
    await s.push(p, AbortSignal.timeout(1000));
    s.written(p);
    assert.equal(s.keep(change('update', 290n, 9, 9)), undefined, 'once its chunk is read again, the chunk holds them');
    assert.equal(fresh().resumed, false);
  });

  it('a record whose every chunk was acknowledged only writes the table past the last one', () => {
    const record: TableSnapshotRecord = { ...pendingRecord(100n), state: 'copying', chunks: [{ upper: encodeKey([3]), ts: '200' }, { upper: null, ts: '500' }], rows: 6 };
    const s = fresh(record, 300n);
    assert.equal(s.resumeAfter, null, 'nothing left to read');
    assert.equal(s.cap, 500n);
    const front = s.front()!;
    assert.equal(front.rows.length, 0);
    s.written(front);
    assert.equal(s.finished, true);
  });

  it('a one-pass table keeps changes after the pass only', async () => {
    const s = new TableSnapshot(pendingRecord(100n), 100n, () => undefined, 1 << 20);
    s.setKey({ names: undefined, compare }, 'one-pass');
    const p = piece(200n, [1, 2], undefined);
    await s.push(p, AbortSignal.timeout(1000));
    s.written(p);
    assert.equal(s.keep(change('insert', 150n, null, 3)), undefined, 'the pass is not over: dropped');
    const last = piece(200n, [3], { upper: null }, true);
    await s.push(last, AbortSignal.timeout(1000));
    s.written(last);
    assert.equal(s.keep(change('insert', 200n, null, 3)), undefined);
    const after = change('insert', 201n, null, 4);
    assert.equal(s.keep(after), after);
  });

  it('a slow sink holds the reader back', async () => {
    const s = new TableSnapshot(pendingRecord(100n), 100n, () => undefined, 25);
    s.setKey({ names: ['id'], compare }, 'chunks');
    const a = piece(200n, [1, 2, 3]);
    await s.push(a, AbortSignal.timeout(1000));
    let pushed = false;
    const waiting = s.push(piece(200n, [4]), AbortSignal.timeout(1000)).then(() => (pushed = true));
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(pushed, false, 'the queue holds 30 bytes of a 25-byte allowance');
    s.written(a);
    await waiting;
    assert.equal(pushed, true);
  });
});

describe('snapshot progress records', () => {
  it('keys survive JSON with their types', () => {
    const key: Value[] = [1, 2n ** 63n, 'a b', Buffer.from([0, 255]), null];
    assert.deepEqual(decodeKey(JSON.parse(JSON.stringify(encodeKey(key)))), key);
  });
  it('chunks at or before the checkpoint merge into one', () => {
    const chunks = [
      { upper: encodeKey([1]), ts: '10' },
      { upper: encodeKey([2]), ts: '20' },
      { upper: encodeKey([3]), ts: '30' },
    ];
    assert.deepEqual(compactChunks(chunks, 25n), [{ upper: encodeKey([2]), ts: '0' }, chunks[2]]);
    assert.deepEqual(compactChunks(chunks, 5n), chunks);
  });
});
