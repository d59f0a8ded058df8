import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { TransactionBuffer, type PendingRow } from '../../../src/core/pipeline/puller/transaction-buffer.js';
import { MemoryQuota, SpillStore } from '../../../src/core/pipeline/sorter/index.js';

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
});
