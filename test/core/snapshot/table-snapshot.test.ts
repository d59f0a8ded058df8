import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ColumnInfo, RowChangedEvent, TableName } from '../../../src/core/sink/api.js';
import type { Value } from '../../../src/core/upstream/rows.js';
import { TableSnapshot, type ChunkRead, type SnapshotPiece } from '../../../src/core/snapshot/table-snapshot.js';
import { addChunk, compactChunks, decodeKey, encodeKey, pendingRecord, type TableSnapshotRecord } from '../../../src/core/snapshot/progress.js';

const table: TableName = { schema: 'db', table: 't', tableId: 1 };
const columns: ColumnInfo[] = [
  { name: 'id', mysqlType: 'int', primaryKey: true, nullable: false },
  { name: 'v', mysqlType: 'int', primaryKey: false, nullable: true },
];
const compare = (a: readonly Value[], b: readonly Value[]): number => (a[0] as number) - (b[0] as number);

function change(kind: RowChangedEvent['kind'], ts: bigint, before: number | null, after: number | null): RowChangedEvent {
  return { table, commitTs: ts, commitTime: 0, seq: 0, kind, columns, before: before === null ? null : [before, 0], after: after === null ? null : [after, 1] };
}

function piece(ts: bigint, ids: number[], end?: { lower?: number | null; upper: number | null }): SnapshotPiece {
  const rows = ids.map((id, seq): RowChangedEvent => ({ table, commitTs: ts, commitTime: 0, seq, kind: 'insert', columns, before: null, after: [id, 0], snapshot: 'row' }));
  const key = (v: number | null | undefined): Value[] | null => (v === null || v === undefined ? null : [v]);
  return { ts, rows, bytes: 10 * ids.length, final: false, ...(end === undefined ? {} : { chunkEnd: { lower: key(end.lower), upper: key(end.upper) } }) };
}

function fresh(record: TableSnapshotRecord = pendingRecord(100n), start = 100n): TableSnapshot {
  const s = new TableSnapshot(record, start, () => undefined, 1 << 20);
  s.setKey({ names: ['id'], compare }, 'chunks');
  return s;
}

/** Takes the first range to read up to `upper` (null: all of it); positions the read at `ts` when given. */
function take(s: TableSnapshot, upper: number | null, ts?: bigint): ChunkRead {
  const read = s.open(s.toRead[0], upper === null ? null : [upper]);
  if (ts !== undefined) s.positioned(read, ts);
  return read;
}

/** What the table sink stage does with the front piece: begin, hand over, written. */
function write(s: TableSnapshot): SnapshotPiece {
  const piece = s.begin(s.front()!);
  s.written(piece);
  return piece;
}

const signal = (): AbortSignal => AbortSignal.timeout(1000);

describe('TableSnapshot: the binlog reconciled with chunks read at known positions', () => {
  it('holds the table where it was written while a read has no position yet, then at the read\'s position; lets it go between reads and after the last', async () => {
    let written = 100n;
    const s = new TableSnapshot(pendingRecord(100n), 100n, () => undefined, 1 << 20, Promise.resolve(), () => written);
    s.setKey({ names: ['id'], compare }, 'chunks');
    assert.equal(s.cap, undefined, 'no read yet: any chunk is read at a later position than the table can reach');
    written = 150n;
    const r1 = take(s, 3);
    assert.equal(s.cap, 150n, 'a read without its position yet holds the table where it was written');
    s.positioned(r1, 200n);
    assert.equal(s.cap, 200n);
    assert.equal(s.front(), undefined, 'no piece yet');
    await s.push(r1, piece(200n, [1, 2, 3], { upper: 3 }), signal());
    write(s);
    assert.equal(s.cap, undefined, 'no read in flight: the table goes on');
    written = 250n;
    const r2 = take(s, null, 300n);
    await s.push(r2, piece(300n, [4], { lower: 3, upper: null }), signal());
    assert.equal(s.cap, 300n);
    const last = write(s);
    assert.equal(last.final, true);
    assert.equal(s.finished, true);
    assert.equal(s.cap, undefined);
  });

  it('drops changes a chunk holds or will hold, keeps the ones after its position', async () => {
    const s = fresh();
    // nothing copied yet: every change is dropped (its chunk will be read at a later position)
    assert.equal(s.keep(change('insert', 150n, null, 1)), undefined);
    const r1 = take(s, 3, 200n);
    await s.push(r1, piece(200n, [1, 2, 3], { upper: 3 }), signal());
    write(s);
    assert.equal(s.keep(change('update', 199n, 2, 2)), undefined, 'before the chunk: in its rows');
    assert.equal(s.keep(change('update', 200n, 2, 2)), undefined, 'at the chunk position: in its rows');
    const after = change('update', 201n, 2, 2);
    assert.equal(s.keep(after), after, 'after the chunk position: written');
    assert.equal(s.keep(change('insert', 250n, null, 4)), undefined, 'a key of the next chunk: dropped');
    const r2 = take(s, 5, 300n);
    await s.push(r2, piece(300n, [4, 5], { lower: 3, upper: 5 }), signal());
    write(s);
    assert.equal(s.keep(change('insert', 290n, null, 5)), undefined);
    const late = change('delete', 301n, 5, null);
    assert.equal(s.keep(late), late);
    assert.equal(s.keep(change('insert', 301n, null, 9)), undefined, 'beyond every chunk read: dropped');
  });

  it('chunks read at once finish in any order: the table goes to the lowest position first, and each key follows its own chunk', async () => {
    const s = fresh();
    const a = take(s, 3);
    const b = take(s, null);
    assert.deepEqual(s.toRead, [], 'both ranges taken');
    s.positioned(a, 200n);
    assert.equal(s.cap, 100n, 'the other read has no position yet: it may read below 200');
    s.positioned(b, 150n);
    assert.equal(s.cap, 150n, 'the lowest position of the reads');
    await s.push(a, piece(200n, [1, 2, 3], { lower: null, upper: 3 }), signal());
    assert.equal(s.front(), undefined, "the chunk read at 200 waits for the table to pass the one read at 150");
    await s.push(b, piece(150n, [4, 5], { lower: 3, upper: null }), signal());
    const first = write(s);
    assert.deepEqual(first.rows.map((r) => r.after![0]), [4, 5]);
    assert.equal(first.final, false, 'another chunk is still being read');
    assert.equal(s.cap, 200n);
    const late = change('update', 170n, 5, 5);
    assert.equal(s.keep(late), late, 'key 5: its chunk was read at 150');
    assert.equal(s.keep(change('update', 170n, 2, 2)), undefined, 'key 2: its chunk, read at 200, holds the change');
    const second = write(s);
    assert.equal(second.final, true, 'the last chunk being read, nothing left to read');
    assert.equal(s.finished, true);
    assert.equal(first.rows[0].snapshot, 'first');
    assert.equal(second.rows[2].snapshot, 'last', 'the last row written is marked, whatever its key');
    assert.equal(s.keep(change('update', 210n, 2, 2))?.kind, 'update');
  });

  it('a read that fails before handing rows over gives its range back, and no longer holds the table', async () => {
    const s = fresh();
    const a = take(s, 3, 200n);
    assert.equal(s.cap, 200n);
    s.abandon(a);
    assert.equal(s.cap, undefined, 'its range is read again at a later position');
    assert.deepEqual(s.toRead.map((r) => [r.lower, r.upper]), [[null, [3]], [[3], null]]);
    const again = take(s, 3, 250n);
    await s.push(again, piece(250n, [1], { upper: 3 }), signal());
    assert.equal(write(s).final, false, 'the range after 3 is still to read');
  });

  it('a read that fails part-way keeps what it handed over as a chunk and leaves the rest to read', async () => {
    const s = fresh();
    const a = take(s, null, 200n);
    await s.push(a, piece(200n, [1, 2]), signal());
    write(s);
    // the read failed after [1, 2]: what is left is read again, then the handed-over part ends its chunk
    s.readAgain({ lower: [2], upper: null });
    await s.push(a, piece(200n, [], { lower: null, upper: 2 }), signal());
    const end = write(s);
    assert.equal(end.final, false, 'not final: the rest is still to read');
    assert.equal(s.finished, false);
    assert.equal(s.keep(change('update', 201n, 2, 2))?.kind, 'update', 'key 2 was copied at 200');
    assert.equal(s.keep(change('update', 201n, 3, 3)), undefined, 'key 3 is read again later');
    const rest = take(s, null, 300n);
    await s.push(rest, piece(300n, [3], { lower: 2, upper: null }), signal());
    const last = write(s);
    assert.equal(last.final, true);
    assert.equal(last.rows[0].snapshot, 'last');
  });

  it('splits an update whose key moves across the copied line', async () => {
    const s = fresh();
    const r = take(s, 2, 200n);
    await s.push(r, piece(200n, [1, 2], { upper: 2 }), signal());
    write(s);
    const out = s.keep(change('update', 250n, 2, 7));
    assert.equal(out?.kind, 'delete', 'key 2 left the copied range: its delete is written, key 7 comes with its chunk');
    assert.deepEqual(out?.before, [2, 0]);
    assert.equal(out?.after, null);
    const back = s.keep(change('update', 260n, 7, 1));
    assert.equal(back?.kind, 'insert');
    assert.deepEqual(back?.after, [1, 1]);
  });

  it('resumes from the acknowledged chunks of an earlier run, gaps included', () => {
    const record: TableSnapshotRecord = {
      ...pendingRecord(100n),
      state: 'copying',
      chunks: [
        { lower: null, upper: encodeKey([3]), ts: '0' },
        { lower: encodeKey([6]), upper: encodeKey([9]), ts: '400' },
      ],
      rows: 6,
    };
    const s = fresh(record, 300n);
    assert.deepEqual(s.toRead.map((r) => [r.lower, r.upper]), [[[3], [6]], [[9], null]]);
    const keptOld = change('update', 350n, 2, 2);
    assert.equal(s.keep(keptOld), keptOld, 'a key of a chunk before the checkpoint');
    assert.equal(s.keep(change('update', 350n, 8, 8)), undefined, 'a key of a chunk read at 400');
    const notCopied = change('update', 350n, 5, 5);
    assert.equal(s.keep(notCopied), notCopied, 'a key not copied yet: written, as the earlier run may have written its chunk unrecorded');
    const six = change('update', 350n, 6, 6);
    assert.equal(s.keep(six), six, 'key 6: a lower end is not in its chunk (6, 9]');
  });

  it('reads a record of an earlier version (chunks in key order without lower ends)', () => {
    const record: TableSnapshotRecord = { ...pendingRecord(100n), state: 'copying', chunks: [{ upper: encodeKey([3]), ts: '0' }, { upper: encodeKey([6]), ts: '400' }], rows: 6 };
    const s = fresh(record, 300n);
    assert.deepEqual(s.toRead.map((r) => [r.lower, r.upper]), [[[6], null]]);
    assert.equal(s.keep(change('update', 350n, 5, 5)), undefined, 'key 5: in the chunk (3, 6] read at 400');
  });

  it('a copy an earlier run began writes the changes of keys not copied yet (that run may have written rows no record counts)', async () => {
    const record: TableSnapshotRecord = { ...pendingRecord(100n), state: 'copying', chunks: [{ upper: encodeKey([3]), ts: '250' }], rows: 3 };
    const s = fresh(record, 200n);
    assert.equal(s.resumed, true);
    const unread = change('delete', 220n, 9, null);
    assert.equal(s.keep(unread), unread, 'a delete of a key an unrecorded chunk may have written goes to the sink');
    assert.equal(s.keep(change('update', 240n, 2, 2)), undefined, 'a recorded chunk still holds the changes before its position');
    const r = take(s, null, 300n);
    await s.push(r, piece(300n, [4, 9], { lower: 3, upper: null }), signal());
    const last = write(s);
    assert.equal(s.keep(change('update', 290n, 9, 9)), undefined, 'once its chunk is read again, the chunk holds them');
    assert.equal(last.rows[0].snapshot, 'row', 'rows were acknowledged before: no first mark again');
    assert.equal(fresh().resumed, false);
  });

  it('a record whose every chunk was acknowledged only writes the table past the last one', () => {
    const record: TableSnapshotRecord = { ...pendingRecord(100n), state: 'copying', chunks: [{ upper: encodeKey([3]), ts: '200' }, { upper: null, ts: '500' }], rows: 6 };
    const s = fresh(record, 300n);
    assert.deepEqual(s.toRead, [], 'nothing left to read');
    assert.equal(s.cap, 500n);
    const front = s.front()!;
    assert.equal(front.rows.length, 0);
    assert.equal(s.begin(front).final, true);
    s.written(front);
    assert.equal(s.finished, true);
  });

  it('a one-pass table keeps changes after the pass only', async () => {
    const s = new TableSnapshot(pendingRecord(100n), 100n, () => undefined, 1 << 20);
    s.setKey({ names: undefined, compare }, 'one-pass');
    const r = s.open(s.toRead[0], null);
    s.positioned(r, 200n);
    await s.push(r, piece(200n, [1, 2]), signal());
    write(s);
    assert.equal(s.keep(change('insert', 150n, null, 3)), undefined, 'the pass is not over: dropped');
    await s.push(r, piece(200n, [3], { lower: null, upper: null }), signal());
    const last = write(s);
    assert.equal(last.final, true);
    assert.equal(s.keep(change('insert', 200n, null, 3)), undefined);
    const after = change('insert', 201n, null, 4);
    assert.equal(s.keep(after), after);
  });

  it('a slow sink holds each read back', async () => {
    const s = new TableSnapshot(pendingRecord(100n), 100n, () => undefined, 25);
    s.setKey({ names: ['id'], compare }, 'chunks');
    const r = take(s, null, 200n);
    await s.push(r, piece(200n, [1, 2, 3]), signal());
    let pushed = false;
    const waiting = s.push(r, piece(200n, [4]), signal()).then(() => (pushed = true));
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(pushed, false, 'the queue holds 30 bytes of a 25-byte allowance');
    write(s);
    await waiting;
    assert.equal(pushed, true);
  });
});

describe('snapshot progress records', () => {
  it('keys survive JSON with their types', () => {
    const key: Value[] = [1, 2n ** 63n, 'a b', Buffer.from([0, 255]), null];
    assert.deepEqual(decodeKey(JSON.parse(JSON.stringify(encodeKey(key)))), key);
  });
  it('neighbouring chunks at or before the checkpoint merge into one', () => {
    const chunks = [
      { upper: encodeKey([1]), ts: '10' },
      { upper: encodeKey([2]), ts: '20' },
      { upper: encodeKey([3]), ts: '30' },
    ];
    assert.deepEqual(compactChunks(chunks, 25n), [
      { lower: null, upper: encodeKey([2]), ts: '0' },
      { lower: encodeKey([2]), upper: encodeKey([3]), ts: '30' },
    ]);
    assert.deepEqual(compactChunks(chunks, 5n), chunks);
    const gapped = [
      { lower: null, upper: encodeKey([1]), ts: '10' },
      { lower: encodeKey([5]), upper: encodeKey([6]), ts: '20' },
      { lower: encodeKey([6]), upper: null, ts: '15' },
    ];
    assert.deepEqual(compactChunks(gapped, 25n), [
      { lower: null, upper: encodeKey([1]), ts: '0' },
      { lower: encodeKey([5]), upper: null, ts: '0' },
    ], 'a gap (keys 1 to 5, not read yet) is never merged over');
  });
  it('an acknowledged chunk goes in its place by key', () => {
    const chunks = addChunk([{ upper: encodeKey([3]), ts: '10' }], { lower: encodeKey([8]), upper: null, ts: '30' }, compare);
    const all = addChunk(chunks, { lower: encodeKey([3]), upper: encodeKey([8]), ts: '40' }, compare);
    assert.deepEqual(all.map((c) => [c.lower, c.upper]), [[null, encodeKey([3])], [encodeKey([3]), encodeKey([8])], [encodeKey([8]), null]]);
  });
});
