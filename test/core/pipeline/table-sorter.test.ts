import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { MemoryQuota, SpillStore, TableSorter, type SorterOutput } from '../../../src/core/pipeline/sorter/index.js';

const root = mkdtempSync(join(tmpdir(), 'tidemark-sorter-'));
let n = 0;
const storeDir = (): string => join(root, `cf-${n++}`);

function payload(ts: bigint, seq: number, size = 100): Buffer {
  const b = Buffer.alloc(size, 0x61);
  b.writeBigUInt64BE(ts, 0);
  b.writeUInt32BE(seq, 8);
  return b;
}

async function drain(sorter: TableSorter, count: number): Promise<SorterOutput[]> {
  const out: SorterOutput[] = [];
  const signal = AbortSignal.timeout(30_000);
  for (let events = 0; events < count; ) {
    const o = await sorter.next(signal);
    out.push(o);
    if (o.kind === 'event') events++;
  }
  return out;
}

describe('TableSorter with a LevelDB spill store', () => {
  const stores: SpillStore[] = [];
  after(async () => {
    for (const s of stores) await s.destroy();
  });
  const open = async (): Promise<SpillStore> => {
    const s = await SpillStore.open(storeDir());
    stores.push(s);
    return s;
  };

  it('holds events until the resolved-ts passes them, then emits them and the resolved-ts', async () => {
    const sorter = new TableSorter(1, new MemoryQuota(1 << 20), await open());
    sorter.add({ ts: 10n, seq: 0, payload: payload(10n, 0) });
    sorter.add({ ts: 10n, seq: 1, payload: payload(10n, 1) });
    sorter.add({ ts: 20n, seq: 0, payload: payload(20n, 0) });
    const controller = new AbortController();
    const pending = sorter.next(controller.signal);
    let settled = false;
    void pending.then(() => (settled = true));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(settled, false, 'nothing may come out before resolved-ts covers it');
    sorter.advanceResolved(15n);
    const outputs = [await pending, await sorter.next(controller.signal), await sorter.next(controller.signal)];
    assert.deepEqual(outputs.map((o) => (o.kind === 'event' ? `e${o.event.ts}/${o.event.seq}` : `r${o.ts}`)), ['e10/0', 'e10/1', 'r15']);
    sorter.advanceResolved(20n);
    const last = [await sorter.next(controller.signal), await sorter.next(controller.signal)];
    assert.deepEqual(last.map((o) => (o.kind === 'event' ? `e${o.event.ts}/${o.event.seq}` : `r${o.ts}`)), ['e20/0', 'r20']);
    await sorter.close();
  });

  it('rejects out-of-order input as a bug instead of reordering silently', async () => {
    const sorter = new TableSorter(2, new MemoryQuota(1 << 20), await open());
    sorter.add({ ts: 10n, seq: 1, payload: payload(10n, 1) });
    assert.throws(() => sorter.add({ ts: 10n, seq: 1, payload: payload(10n, 1) }), { code: 'ErrBugIndicating' });
    assert.throws(() => sorter.add({ ts: 9n, seq: 5, payload: payload(9n, 5) }), { code: 'ErrBugIndicating' });
    await sorter.close();
  });

  it('spills past the quota, stays within it, and gives back 100k events exactly in order', async () => {
    const quota = new MemoryQuota(256 * 1024);
    const store = await open();
    const sorter = new TableSorter(3, quota, store);
    const total = 100_000;
    const reader = drain(sorter, total);
    for (let i = 0; i < total; i++) {
      const ts = BigInt(1000 + Math.floor(i / 3));
      sorter.add({ ts, seq: i % 3, payload: payload(ts, i % 3) });
      if (i % 5000 === 4999) sorter.advanceResolved(ts - 1n);
    }
    sorter.advanceResolved(BigInt(1000 + total));
    const out = (await reader).filter((o) => o.kind === 'event');
    assert.equal(out.length, total);
    for (let i = 0; i < total; i++) {
      const e = out[i].kind === 'event' ? (out[i] as { event: { ts: bigint; seq: number; payload: Buffer } }).event : undefined;
      const ts = BigInt(1000 + Math.floor(i / 3));
      assert.ok(e !== undefined && e.ts === ts && e.seq === i % 3, `event ${i} out of order`);
      assert.ok(e.payload.equals(payload(ts, i % 3)), `event ${i} payload changed on its way through disk`);
    }
    assert.ok(sorter.stats.spilledEvents > total / 2, `expected most events to spill, spilled ${sorter.stats.spilledEvents}`);
    assert.ok(quota.peak <= quota.limitBytes, `memory ${quota.peak} went over the quota ${quota.limitBytes}`);
    assert.equal(quota.used, 0);
    assert.equal(sorter.stats.spilledBytes, 0, 'everything read back was deleted from disk');
    await sorter.close();
  });

  it('compacts what it has read back, so LevelDB drops it from the table files it maps, and deletes the rest at close', async () => {
    const store = await open();
    const compacted: { from: Buffer; to: Buffer }[] = [];
    const compact = store.compact.bind(store);
    store.compact = (from, to) => {
      compacted.push({ from, to });
      return compact(from, to);
    };
    const sorter = new TableSorter(4, new MemoryQuota(0), store);
    const range = { gte: Buffer.from([0, 0, 0, 4]), lt: Buffer.from([0, 0, 0, 5]) };
    const total = 300_000;
    const size = 200;
    const reader = drain(sorter, total);
    for (let i = 0; i < total; i++) {
      const ts = BigInt(1 + Math.floor(i / 2));
      sorter.add({ ts, seq: i % 2, payload: payload(ts, i % 2, size) });
      if (i % 5000 === 4999) {
        if (i > total / 2) sorter.advanceResolved(ts - 1n); // a backlog first, then reads while the puller still writes
        await sorter.writable();
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
    sorter.advanceResolved(BigInt(total));
    const out = (await reader).filter((o) => o.kind === 'event');
    assert.equal(out.length, total);
    for (let i = 0; i < total; i++) {
      const o = out[i];
      const ts = BigInt(1 + Math.floor(i / 2));
      assert.ok(o.kind === 'event' && o.event.ts === ts && o.event.seq === i % 2, `event ${i} out of order`);
      assert.ok(o.event.payload.equals(payload(ts, i % 2, size)), `event ${i} payload changed on its way through disk`);
    }
    const spilled = sorter.stats.totalSpilledBytes;
    assert.ok(spilled >= 60_000_000, `expected 60 MB spilled, got ${spilled}`);
    // every 32 MiB read back, the range they came from is compacted, each range starting where the last one ended
    assert.ok(compacted.length >= 1, 'nothing read back was compacted');
    assert.ok(compacted[0].from.equals(range.gte));
    for (let i = 1; i < compacted.length; i++) assert.ok(compacted[i].from.equals(compacted[i - 1].to));
    // what was read back before the last 32 MiB is gone from the table files (read back, it would stay mapped in RSS)
    const onDisk = await store.db.approximateSize(range.gte, range.lt);
    assert.ok(onDisk < 40 * 1024 * 1024, `read-back blocks still fill ${onDisk} B of table files (${spilled} B spilled): not compacted`);
    const compactedBeforeClose = compacted.length;
    await sorter.close();
    assert.equal(compacted.length, compactedBeforeClose + 1, 'close() compacts the rest read back');
    assert.equal((await store.db.keys(range).all()).length, 0, 'close() left keys of the table behind');
    const afterClose = await store.db.approximateSize(range.gte, range.lt);
    assert.ok(afterClose < 1024 * 1024, `close() left ${afterClose} B of the table's data in table files`);
  });

  it('deletes a closed table\'s spilled data and leaves the others\'; destroy removes the folder', async () => {
    const store = await open();
    const quota = new MemoryQuota(0);
    const a = new TableSorter(7, quota, store);
    const b = new TableSorter(8, quota, store);
    for (let i = 1; i <= 3000; i++) {
      a.add({ ts: BigInt(i), seq: 0, payload: payload(BigInt(i), 0) });
      b.add({ ts: BigInt(i), seq: 0, payload: payload(BigInt(i), 0) });
    }
    b.advanceResolved(3000n);
    assert.equal((await b.next(AbortSignal.timeout(5000))).kind, 'event'); // writes b's events to disk and reads one chunk back
    a.advanceResolved(1n);
    assert.equal((await a.next(AbortSignal.timeout(5000))).kind, 'event');
    await a.close();
    let aKeys = 0;
    let bKeys = 0;
    for await (const key of store.db.keys()) {
      if (key.readUInt32BE(0) === 7) aKeys++;
      if (key.readUInt32BE(0) === 8) bKeys++;
    }
    assert.equal(aKeys, 0, 'closed table left spilled data behind');
    assert.ok(bKeys > 0, 'the other table lost its spilled data');
    const rest = await drain(b, 2999);
    assert.equal(rest.filter((o) => o.kind === 'event').length, 2999);
    await b.close();
    await store.destroy();
    assert.equal(existsSync(store.dir), false);
  });
});

describe('TableSorter.takeReady', () => {
  it('takes resolved events in order without waiting, then next() reports the resolved-ts', async () => {
    const store = await SpillStore.open(storeDir());
    const sorter = new TableSorter(1, new MemoryQuota(1 << 20), store);
    for (let i = 1; i <= 10; i++) sorter.add({ ts: BigInt(i), seq: 0, payload: Buffer.from([i]) });
    assert.deepEqual(sorter.takeReady(5), [], 'nothing is ready before resolved-ts passes it');
    sorter.advanceResolved(7n);
    assert.deepEqual(sorter.takeReady(5).map((e) => Number(e.ts)), [1, 2, 3, 4, 5]);
    assert.deepEqual(sorter.takeReady(5).map((e) => Number(e.ts)), [6, 7]);
    assert.deepEqual(await sorter.next(AbortSignal.timeout(1000)), { kind: 'resolved', ts: 7n });
    await sorter.close();
    await store.destroy();
  });
});
