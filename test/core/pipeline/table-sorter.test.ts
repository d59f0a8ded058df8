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
