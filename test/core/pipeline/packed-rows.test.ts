import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { MAX_PACKED_BYTES, PackedRows, SLAB_BYTES, type TakenRow } from '../../../src/core/pipeline/sorter/packed-rows.js';
import { MemoryQuota, SpillStore, TableSorter } from '../../../src/core/pipeline/sorter/index.js';
import { BYTES_CODEC, type SorterCodec } from '../../../src/core/pipeline/sorter/table-sorter.js';

/** A row's bytes that say which row it is: its number repeated, `size` bytes long. */
function rowBytes(n: number, size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i + 4 <= size; i += 4) b.writeUInt32LE(n, i);
  return b;
}

describe('PackedRows', () => {
  it('gives back every row in order, the same bytes, ts and seq, across slabs, runs, growth and objects', () => {
    const rows = new PackedRows<Buffer>();
    const taken: TakenRow<Buffer> = { ts: 0n, seq: 0, tag: 0, view: undefined, object: undefined };
    const views: [number, Buffer][] = [];
    let added = 0;
    let next = 0;
    const expectNext = (): void => {
      rows.shift(taken);
      const n = next++;
      assert.equal(taken.ts, BigInt(Math.floor(n / 7)) + 100n, `ts of row ${n}`);
      assert.equal(taken.seq, n % 7, `seq of row ${n}`);
      const got = taken.view ?? taken.object!;
      assert.deepEqual(got, rowBytes(n, sizeOf(n)), `bytes of row ${n}`);
      if (n % 5 === 0) assert.ok(taken.object !== undefined, `row ${n} was kept as its object`);
      else if (sizeOf(n) <= MAX_PACKED_BYTES) assert.ok(taken.view !== undefined && taken.object === undefined, `row ${n} was packed`);
      if (n % 97 === 0) views.push([n, got]);
    };
    // sizes from 4 bytes to past MAX_PACKED_BYTES; every fifth row kept as an object (as shared rows are)
    const sizeOf = (n: number): number => (n % 211 === 0 ? MAX_PACKED_BYTES + 4 : 4 + ((n * 37) % 600));
    const add = (): void => {
      const n = added++;
      const bytes = rowBytes(n, sizeOf(n));
      // seven rows per ts, as the rows of a transaction
      // every fifth without bytes to pack (its identity matters); rows over MAX_PACKED_BYTES are kept by push itself
      rows.push(BigInt(Math.floor(n / 7)) + 100n, n % 7, bytes, n % 5 === 0 ? undefined : bytes);
    };
    // a backlog (the fields grow), drained half, refilled, drained to empty, then rows that come and go one by one
    for (let i = 0; i < 50_000; i++) add();
    assert.equal(rows.length, 50_000);
    for (let i = 0; i < 25_000; i++) expectNext();
    for (let i = 0; i < 30_000; i++) add();
    while (rows.length > 0) expectNext();
    for (let i = 0; i < 5_000; i++) {
      add();
      add();
      expectNext();
      expectNext();
    }
    assert.equal(rows.length, 0);
    assert.equal(next, added);
    // views taken long ago still hold their rows: a slab is never written over
    for (const [n, view] of views) assert.deepEqual(view, rowBytes(n, sizeOf(n)), `view of row ${n} after later rows`);
    assert.ok(added * 300 > 10 * SLAB_BYTES, 'the rows spanned many slabs');
  });

  it("a backlog's fields go once it is mostly taken, though the queue never empties", () => {
    const rows = new PackedRows<Buffer>();
    const taken: TakenRow<Buffer> = { ts: 0n, seq: 0, tag: 0, view: undefined, object: undefined };
    const bytes = Buffer.alloc(40, 1);
    const fieldsLength = (): number => (rows as unknown as { fields: Uint32Array }).fields.length;
    let ts = 100n;
    for (let i = 0; i < 200_000; i++) rows.push((ts += 1n), 0, bytes, bytes);
    const grown = fieldsLength();
    assert.ok(grown >= 200_000 * 5, 'the fields grew with the backlog');
    // a reader that waits for the sink keeps a few thousand rows queued from then on, never none
    for (let round = 0; round < 100; round++) {
      while (rows.length > 3_000) rows.shift(taken);
      for (let i = 0; i < 2_000; i++) rows.push((ts += 1n), 0, bytes, bytes);
    }
    assert.ok(rows.length > 0);
    assert.ok(fieldsLength() <= grown / 8, `the fields array is ${fieldsLength()} long, not the backlog's ${grown}`);
    while (rows.length > 0) rows.shift(taken);
  });

  it('moveInto hands every row over with its ts, seq, tag and bytes, into an empty queue or behind queued rows', () => {
    const taken: TakenRow<Buffer> = { ts: 0n, seq: 0, tag: 0, view: undefined, object: undefined };
    const sizeOf = (n: number): number => (n % 211 === 0 ? MAX_PACKED_BYTES + 4 : 4 + ((n * 37) % 600));
    /** A transaction's rows as the transaction buffer packs them: ts 0 until the commit, every fifth as an object. */
    const transaction = (from: number, count: number): PackedRows<Buffer> => {
      const rows = new PackedRows<Buffer>();
      for (let n = from; n < from + count; n++) {
        const bytes = rowBytes(n, sizeOf(n));
        rows.push(0n, n, bytes, n % 5 === 0 ? undefined : bytes, n % 3);
      }
      return rows;
    };
    const target = new PackedRows<Buffer>();
    const expect = (n: number, ts: bigint): void => {
      target.shift(taken);
      assert.equal(taken.ts, ts, `ts of row ${n}`);
      assert.equal(taken.seq, n, `seq of row ${n}`);
      assert.equal(taken.tag, n % 3, `tag of row ${n}`);
      assert.deepEqual(taken.view ?? taken.object, rowBytes(n, sizeOf(n)), `bytes of row ${n}`);
      if (n % 5 === 0) assert.ok(taken.object !== undefined, `row ${n} is still its object`);
    };
    // into an empty queue whose indexes moved on (rows came and went before)
    target.push(1n, 0, Buffer.alloc(4), Buffer.alloc(4));
    target.shift(taken);
    const first = transaction(0, 30_000);
    assert.equal(first.headSeq, 0);
    assert.equal(first.tailSeq, 29_999);
    first.retime(10n);
    first.moveInto(target);
    assert.equal(first.length, 0);
    assert.equal(target.length, 30_000);
    // behind queued rows: half of the first is still there
    for (let n = 0; n < 15_000; n++) expect(n, 10n);
    const second = transaction(30_000, 20_000);
    second.retime(11n);
    second.moveInto(target);
    // a row pushed after the move goes behind the moved ones, and the emptied queue takes rows again
    const last = rowBytes(50_000, sizeOf(50_000));
    target.push(12n, 50_000, last, undefined, 50_000 % 3); // kept as its object, as every fifth
    first.push(0n, 7, rowBytes(7, 40), rowBytes(7, 40));
    first.shift(taken);
    assert.deepEqual(taken.view, rowBytes(7, 40));
    for (let n = 15_000; n < 30_000; n++) expect(n, 10n);
    for (let n = 30_000; n < 50_000; n++) expect(n, 11n);
    expect(50_000, 12n);
    assert.equal(target.length, 0);
  });

  it('visit gives each packed row as its slab and offset, each other row as its object', () => {
    const rows = new PackedRows<Buffer>();
    const kept = Buffer.from('kept');
    rows.push(0n, 0, Buffer.from('ab'), Buffer.from('ab'));
    rows.push(0n, 1, kept, undefined);
    rows.push(0n, 2, Buffer.from('cd'), Buffer.from('cd'));
    const seen: string[] = [];
    rows.visit(
      (slab, offset) => {
        seen.push(slab.toString('latin1', offset, offset + 2));
        slab[offset] = 0x78; // changed in place: what shift gives has it
      },
      (row) => seen.push(row.toString()),
    );
    assert.deepEqual(seen, ['ab', 'kept', 'cd']);
    const taken: TakenRow<Buffer> = { ts: 0n, seq: 0, tag: 0, view: undefined, object: undefined };
    rows.shift(taken);
    assert.equal(taken.view?.toString(), 'xb');
  });

  it('clear hands back what every row held and empties the queue', () => {
    const rows = new PackedRows<string>();
    rows.push(1n, 0, 'abc', Buffer.from('abc'));
    rows.push(1n, 1, 'kept', undefined);
    rows.push(2n, 0, 'defgh', Buffer.from('defgh'));
    const seen: [number, string | undefined][] = [];
    rows.clear((length, object) => seen.push([length, object]));
    assert.deepEqual(seen, [[3, undefined], [0, 'kept'], [5, undefined]]);
    assert.equal(rows.length, 0);
    rows.push(3n, 0, 'x', Buffer.from('x'));
    const taken: TakenRow<string> = { ts: 0n, seq: 0, tag: 0, view: undefined, object: undefined };
    rows.shift(taken);
    assert.equal(taken.ts, 3n);
    assert.equal(taken.view?.toString(), 'x');
  });
});

describe('TableSorter with packed rows', () => {
  it('gives the quota back exactly: packed rows, rows kept as objects, big rows, and rows dropped at close', async () => {
    const store = await SpillStore.open(join(mkdtempSync(join(tmpdir(), 'tidemark-packed-')), 'cf'));
    try {
      // rows starting with 0xff keep their identity (as rows shared by several changefeeds do)
      const codec: SorterCodec<Buffer> = { ...BYTES_CODEC, keepsIdentity: (b) => b[0] === 0xff };
      const quota = new MemoryQuota(64 << 20);
      const sorter = new TableSorter(1, quota, store, codec);
      const kept = Buffer.from([0xff, 1, 2, 3]);
      const big = Buffer.alloc(MAX_PACKED_BYTES * 2, 7);
      // the first few thousand rows wait as they came; the rows behind them are packed
      const filler = Array.from({ length: 20_000 }, (_, i) => rowBytes(i, 40));
      const payloads = [Buffer.from([1, 2, 3]), kept, big, Buffer.from([4, 5])];
      const all = [...filler, ...payloads];
      all.forEach((payload, seq) => sorter.add({ ts: 10n, seq, payload }));
      assert.ok(quota.used > 0);
      sorter.advanceResolved(10n);
      const out = sorter.takeReady(100_000);
      assert.deepEqual(out.map((e) => [e.ts, e.seq, [...e.payload]]), all.map((p, seq) => [10n, seq, [...p]]));
      assert.equal(out[20_001].payload, kept, 'a row that keeps its identity comes back as the same object');
      assert.notEqual(out[20_000].payload, payloads[0], 'a row behind the first thousands comes back as a copy');
      assert.equal(quota.used, 0, 'every byte taken was given back');
      all.forEach((payload, seq) => sorter.add({ ts: 11n, seq, payload }));
      assert.ok(quota.used > 0);
      await sorter.close();
      assert.equal(quota.used, 0, 'rows dropped at close gave their bytes back');
    } finally {
      await store.destroy();
    }
  });
});
