import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { TransactionBuffer, type PendingRow } from '../../../src/core/pipeline/puller/transaction-buffer.js';
import { MemoryQuota, SpillStore, TableSorter } from '../../../src/core/pipeline/sorter/index.js';
import { PackedRows } from '../../../src/core/pipeline/sorter/packed-rows.js';
import { SORTED_ROW_CODEC } from '../../../src/core/pipeline/row-codec.js';

interface Dest {
  readonly name: { readonly tableId: number };
}

/** A sorted row's bytes (16-byte header, byte 1 = sharers) whose body says which row it is. */
function row(n: number, size: number, sharers = 1): Buffer {
  const b = Buffer.alloc(Math.max(size, 20));
  b[1] = sharers;
  b.writeUInt32LE(n, 16);
  return b;
}

describe('TransactionBuffer', () => {
  const stores: SpillStore[] = [];
  after(async () => {
    for (const s of stores) await s.destroy();
  });
  const store = async (): Promise<SpillStore> => {
    const s = await SpillStore.open(join(mkdtempSync(join(tmpdir(), 'tidemark-txn-buffer-')), 'cf'));
    stores.push(s);
    return s;
  };
  const tables: Dest[] = [1, 2, 3].map((tableId) => ({ name: { tableId } }));
  /** 60,000 rows over three tables: mostly narrow, every 1,000th over 8 KiB, every 7th shared by two changefeeds. */
  const rows = (count: number): PendingRow<Dest>[] =>
    Array.from({ length: count }, (_, n) => ({ pipeline: tables[n % 3], seq: n, payload: row(n, n % 1000 === 999 ? 9000 : 40 + (n % 50), n % 7 === 0 ? 2 : 1) }));

  it('gives back a big transaction in order, with its tables, the same bytes and shared rows as themselves, and the quota', async () => {
    const s = await store();
    const quota = new MemoryQuota(256 << 20);
    const buffer = new TransactionBuffer<Dest>(quota, () => s);
    const added = rows(60_000);
    for (const r of added) assert.equal(buffer.add(r), undefined);
    assert.equal(buffer.size, 60_000);
    assert.ok(quota.used > 0);
    const out: PendingRow<Dest>[] = [];
    await buffer.drain((r) => void out.push({ ...r, payload: Buffer.from(r.payload) }));
    assert.equal(quota.used, 0);
    assert.equal(buffer.size, 0);
    assert.equal(out.length, added.length);
    for (let i = 0; i < added.length; i++) {
      assert.equal(out[i].seq, added[i].seq, `seq of row ${i}`);
      assert.equal(out[i].pipeline, added[i].pipeline, `table of row ${i}`);
      assert.ok(out[i].payload.equals(added[i].payload), `bytes of row ${i}`);
    }
    // a shared row past the first rows is handed back as the very buffer the other changefeeds hold
    const shared: Buffer[] = [];
    const next = rows(30_000);
    for (const r of next) assert.equal(buffer.add(r), undefined);
    await buffer.drain((r) => void (r.seq % 7 === 0 && shared.push(r.payload)));
    assert.equal(shared.length, next.filter((r) => r.seq % 7 === 0).length);
    shared.forEach((payload, i) => assert.equal(payload, next[i * 7].payload, `shared row ${i * 7} is the same buffer`));
  });

  it('a transaction moved on to the sorters (or dropped) is not rows given to the sink: a reader found stalled stays so', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const s = await store();
    const MiB = 1 << 20;
    const quota = new MemoryQuota(256 * MiB, 16 * MiB, 10_000);
    // rows held for tables stopped at a DDL barrier: nothing goes to the sink, the reader waits, then reads on
    quota.force(20 * MiB);
    const wait = quota.readAhead(new AbortController().signal);
    t.mock.timers.tick(10_000);
    assert.equal(await wait, 'stalled');
    assert.equal(quota.readAheadFull, false);
    // the next transactions are read and handed to the sorters (which take their own share), or dropped
    const sorter = new TableSorter(1, quota, s, SORTED_ROW_CODEC);
    const buffer = new TransactionBuffer<Dest>(quota, () => s);
    for (let txn = 0; txn < 3; txn++) {
      for (const r of rows(2_000)) assert.equal(buffer.add(r), undefined);
      await buffer.drain((r) => void sorter.add({ ts: BigInt(txn + 1), seq: r.seq, payload: r.payload }));
      assert.equal(quota.readAheadFull, false, `after transaction ${txn + 1}: still stalled, the reader does not wait again`);
    }
    for (const r of rows(100)) assert.equal(buffer.add(r), undefined);
    await buffer.reset();
    assert.equal(quota.readAheadFull, false, 'a transaction read again (reset) says nothing of the sink either');
    quota.release(1 * MiB);
    assert.equal(quota.readAheadFull, true, 'rows went to the sink: the reader waits again');
    await sorter.close();
  });

  it('keeps order across loose, packed and spilled rows when the quota runs out mid-transaction, and reset drops them all', async () => {
    const s = await store();
    const quota = new MemoryQuota(4 << 20);
    const buffer = new TransactionBuffer<Dest>(quota, () => s);
    const added = rows(60_000);
    for (const r of added) {
      const wait = buffer.add(r);
      if (wait !== undefined) await wait;
    }
    const seqs: number[] = [];
    const bodies: number[] = [];
    await buffer.drain((r) => {
      seqs.push(r.seq);
      bodies.push(r.payload.readUInt32LE(16));
      return undefined;
    });
    assert.deepEqual(seqs, added.map((r) => r.seq));
    assert.deepEqual(bodies, added.map((_, n) => n));
    assert.equal(quota.used, 0);
    for (const r of rows(40_000)) {
      const wait = buffer.add(r);
      if (wait !== undefined) await wait;
    }
    await buffer.reset();
    assert.equal(quota.used, 0);
    assert.equal(buffer.size, 0);
    let left = 0;
    await buffer.drain(() => void left++);
    assert.equal(left, 0);
  });

  it("offers a one-table transaction's packed rows whole, with their quota, to a sorter that takes them as they are", async () => {
    const s = await store();
    const quota = new MemoryQuota(256 << 20);
    const buffer = new TransactionBuffer<Dest>(quota, () => s);
    const sorter = new TableSorter(1, quota, s, SORTED_ROW_CODEC);
    // one table: the first 16,384 rows one by one, the rest whole
    const added = rows(60_000).map((r) => ({ ...r, pipeline: tables[0] }));
    for (const r of added) assert.equal(buffer.add(r), undefined);
    const used = quota.used;
    let one = 0;
    let wholes = 0;
    await buffer.drain(
      (r) => {
        one++;
        sorter.add({ ts: 5n, seq: r.seq, payload: r.payload });
        return undefined;
      },
      (pipeline, packed) => {
        wholes++;
        assert.equal(pipeline, tables[0]);
        return sorter.addPacked(packed, 5n);
      },
    );
    assert.equal(wholes, 1);
    assert.equal(one, 16_384, 'only the rows held as they came went one by one');
    assert.equal(quota.used, used, 'the sorter holds what the buffer held, no more');
    sorter.advanceResolved(5n);
    const out = sorter.takeReady(100_000);
    assert.deepEqual(out.map((e) => e.seq), added.map((r) => r.seq));
    out.forEach((e, i) => assert.ok(e.payload.equals(added[i].payload), `bytes of row ${i}`));
    assert.equal(out[20_000 - (20_000 % 7)].payload, added[20_000 - (20_000 % 7)].payload, 'a shared row is still the buffer the others hold');
    assert.equal(quota.used, 0, 'taking every row gave the quota back exactly');

    // several tables, or a sorter that refuses: row by row, the quota given back first
    for (const r of rows(30_000)) assert.equal(buffer.add(r), undefined);
    let offered = 0;
    const seqs: number[] = [];
    await buffer.drain(
      (r) => void seqs.push(r.seq),
      () => ++offered > 1,
    );
    assert.equal(offered, 0, 'rows of three tables are not offered whole');
    assert.equal(seqs.length, 30_000);
    assert.equal(quota.used, 0);
    for (const r of rows(30_000).map((r) => ({ ...r, pipeline: tables[1] }))) assert.equal(buffer.add(r), undefined);
    seqs.length = 0;
    await buffer.drain(
      (r) => void seqs.push(r.seq),
      () => ++offered > 1,
    );
    assert.equal(offered, 1);
    assert.deepEqual(seqs, Array.from({ length: 30_000 }, (_, n) => n), 'refused: every row one by one, in order');
    assert.equal(quota.used, 0);
    await sorter.close();
  });
});

describe('TableSorter.addPacked', () => {
  it('takes packed rows behind queued ones unless the table has rows on disk, and keeps (ts, seq) order', async () => {
    const s = await SpillStore.open(join(mkdtempSync(join(tmpdir(), 'tidemark-add-packed-')), 'cf'));
    try {
      const quota = new MemoryQuota(1 << 20);
      const sorter = new TableSorter(1, quota, s, SORTED_ROW_CODEC);
      /** Rows as the transaction buffer packs them (ts 0 until the commit). */
      const packedOf = (from: number, count: number): PackedRows<Buffer> => {
        const packed = new PackedRows<Buffer>();
        for (let seq = from; seq < from + count; seq++) packed.push(0n, seq, row(seq, 40), row(seq, 40));
        return packed;
      };
      sorter.add({ ts: 3n, seq: 0, payload: row(0, 40) });
      assert.throws(() => sorter.addPacked(packedOf(0, 10), 3n), /got \(3, 0\) after \(3, 0\)/);
      const ok = packedOf(1, 10);
      assert.equal(sorter.addPacked(ok, 3n), true);
      assert.equal(ok.length, 0);
      // past the quota the table spills; packed rows must then wait their turn row by row
      for (let seq = 0; quota.used < quota.limitBytes - 1000 || sorter.stats.spilledEvents === 0; seq++) sorter.add({ ts: 4n, seq, payload: row(seq, 400) });
      const refused = packedOf(0, 10);
      assert.equal(sorter.addPacked(refused, 5n), false);
      assert.equal(refused.length, 10, 'nothing was taken');
      sorter.advanceResolved(3n);
      assert.deepEqual(sorter.takeReady(100).map((e) => [e.ts, e.seq]), Array.from({ length: 11 }, (_, n) => [3n, n]));
      await sorter.close();
    } finally {
      await s.destroy();
    }
  });
});
