import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Puller, type PulledTable, type PullerListener } from '../../../src/core/pipeline/puller/puller.js';
import { MemoryQuota } from '../../../src/core/pipeline/sorter/memory-quota.js';
import { SpillStore } from '../../../src/core/pipeline/sorter/spill-store.js';
import { Mounter } from '../../../src/core/pipeline/mounter/index.js';
import { decodeRow, type SortedRow } from '../../../src/core/pipeline/row-codec.js';
import { locatedRows, testTableMap } from '../../helpers/binlog-rows.js';
import type { SorterEvent } from '../../../src/core/pipeline/sorter/table-sorter.js';
import type { PackedRows, TakenRow } from '../../../src/core/pipeline/sorter/packed-rows.js';
import type { TableMap } from '../../../src/core/upstream/events.js';
import type { ResumableEvent } from '../../../src/core/upstream/resumable-reader.js';
import { TidemarkError } from '../../../src/core/errors/index.js';
import { silentLogger } from '../../../src/core/logger/logger.js';

const INT_ROW = testTableMap('any', ['int']);

function tableMap(table: string, names: readonly string[] | 'none' = ['id']): TableMap {
  return testTableMap(table, ['int'], { tableId: BigInt(table.length), names: names === 'none' ? null : names });
}

/** A table whose "sorter" records what the puller adds (the sorter has tests of its own). */
class Table implements PulledTable {
  readonly added: { ts: bigint; seq: number; id: number; commitTime: number }[] = [];
  closed = false;
  awaitingRestart = false;
  readonly sorter = {
    add: (event: SorterEvent<SortedRow>): void => {
      const row = decodeRow(event.payload, INT_ROW);
      this.added.push({ ts: event.ts, seq: event.seq, id: Number((row.after ?? row.before)![0]), commitTime: row.commitTime });
    },
    addPacked: (packed: PackedRows<SortedRow>, ts: bigint): boolean => {
      if (this.refusesPacked) return false;
      this.packedTakes++;
      const taken: TakenRow<SortedRow> = { ts: 0n, seq: 0, tag: 0, view: undefined, object: undefined };
      while (packed.length > 0) {
        packed.shift(taken);
        this.sorter.add({ ts, seq: taken.seq, payload: taken.view ?? taken.object! });
      }
      return true;
    },
    writable: (): Promise<void> => Promise.resolve(),
  };
  /** Whether the sorter takes a transaction's packed rows whole, and how often it did. */
  refusesPacked = false;
  packedTakes = 0;
  constructor(readonly key: string, readonly name: { tableId: number }, public floorTs: bigint) {}
  ids(): number[] {
    return this.added.map((r) => r.id);
  }
}

type Script = ResumableEvent[];

const rows = (map: TableMap, seq: number, ...ids: number[]): ResumableEvent => ({
  kind: 'rows', layout: locatedRows(map, 'insert', ids.map((id) => ({ before: null, after: [id] }))), seq,
});
const commit = (ts: bigint, rowCount = 0): ResumableEvent => ({ kind: 'commit', ts, commitTime: Number(ts) * 1000, rows: rowCount });

/**
 * A binlog as a list of events: a read from `start` yields what comes after the commit at `start`, then stays
 * open (a live reader) until its signal aborts. Records where each read started.
 */
function binlog(events: Script): { read: (start: bigint, signal: AbortSignal) => AsyncIterable<ResumableEvent>; starts: bigint[]; more: (e: ResumableEvent[]) => void; hold: (ts: bigint | undefined) => void } {
  const starts: bigint[] = [];
  const all = [...events];
  let wake: (() => void) | undefined;
  /** A read after the first one stops after the commit at this ts until `hold(undefined)`. */
  let holdAt: bigint | undefined;
  return {
    starts,
    more: (e) => {
      all.push(...e);
      wake?.();
    },
    hold: (ts) => {
      holdAt = ts;
      wake?.();
    },
    read: async function* (start, signal) {
      starts.push(start);
      // skip to the event after the commit at start
      let i = 0;
      if (start > 0n) {
        i = all.findIndex((e) => (e.kind === 'commit' || e.kind === 'ddl') && e.ts === start) + 1;
        assert.ok(i > 0, `no commit at ${start}`);
      }
      for (;;) {
        while (i < all.length) {
          signal.throwIfAborted();
          const e = all[i];
          const held = starts.length > 1 && holdAt !== undefined && i > 0 && all[i - 1].kind === 'commit' && (all[i - 1] as { ts: bigint }).ts === holdAt;
          if (held) break;
          i++;
          yield e;
        }
        signal.throwIfAborted();
        await new Promise<void>((resolve, reject) => {
          wake = resolve;
          signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
        });
      }
    },
  };
}

interface Heard {
  log: string[];
  listener: PullerListener<Table>;
}

function listen(): Heard {
  const log: string[] = [];
  return {
    log,
    listener: {
      committed: (tables) => log.push(`committed ${[...tables].map((t) => t.key).sort().join(',')}`),
      ddl: (ts, prevTs) => log.push(`ddl ${ts} after ${prevTs}`),
      moved: (ts) => log.push(`moved ${ts}`),
      restarted: () => log.push('restarted'),
    },
  };
}

/** Waits for a condition; a broken puller never gets there (10 s is far beyond what a scripted binlog takes). */
async function until(what: string, condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`never: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

describe('puller: transaction assembly and table floors', { timeout: 30_000 }, () => {
  let dir: string;
  let store: SpillStore;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tidemark-puller-'));
    store = await SpillStore.open(dir);
  });
  after(async () => {
    await store.destroy();
    await rm(dir, { recursive: true, force: true });
  });

  function setup(script: Script, tables: Table[], opts: { quotaBytes?: number; targetTs?: bigint; ignored?: bigint[] } = {}) {
    const map = new Map(tables.map((t) => [t.key, t]));
    const source = binlog(script);
    const heard = listen();
    const quota = new MemoryQuota(opts.quotaBytes ?? 64 * 1024 * 1024);
    const puller = new Puller<Table>({
      read: source.read, tables: map, quota, store: () => store, mounter: new Mounter(), targetTs: opts.targetTs ?? 0n,
      ignoredTs: new Set(opts.ignored ?? []), listener: heard.listener, logger: silentLogger,
    });
    const controller = new AbortController();
    const running = puller.run(controller.signal);
    const stop = async (): Promise<void> => {
      controller.abort(new TidemarkError('ErrAborted', 'test over'));
      await running.catch(() => undefined);
    };
    return { puller, source, heard, quota, running, stop, map };
  }

  it('rows reach their sorter only at the commit, with its ts, in binlog order; other tables are not fed', async () => {
    const a = tableMap('a');
    const b = tableMap('bb');
    const ta = new Table('s.a', { tableId: 1 }, 0n);
    const h = setup([rows(a, 0, 1, 2), rows(b, 2, 100), rows(a, 3, 3), commit(10n, 4), rows(a, 0, 4), commit(20n, 1)], [ta]);
    await until('both commits read', () => h.puller.readerTs === 20n);
    assert.deepEqual(ta.added.map((r) => [r.ts, r.seq, r.id]), [[10n, 0, 1], [10n, 1, 2], [10n, 3, 3], [20n, 0, 4]]);
    assert.deepEqual(ta.added.map((r) => r.commitTime), [10_000, 10_000, 10_000, 20_000], 'each row carries its commit time');
    assert.deepEqual(h.heard.log, ['committed s.a', 'moved 10', 'committed s.a', 'moved 20']);
    assert.equal(h.quota.used, 0, 'the transaction buffer gave its quota back');
    await h.stop();
  });

  it('a transaction is not seen before its commit', async () => {
    const a = tableMap('a');
    const ta = new Table('s.a', { tableId: 1 }, 0n);
    const h = setup([rows(a, 0, 1), commit(10n, 1), rows(a, 0, 2, 3)], [ta]);
    await until('first commit', () => h.puller.readerTs === 10n);
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(ta.ids(), [1], 'rows of an open transaction wait');
    h.source.more([commit(30n, 2)]);
    await until('second commit', () => h.puller.readerTs === 30n);
    assert.deepEqual(ta.ids(), [1, 2, 3]);
    await h.stop();
  });

  it('a lost connection drops the unfinished transaction; it comes again and is added once', async () => {
    const a = tableMap('a');
    const ta = new Table('s.a', { tableId: 1 }, 0n);
    const reset: ResumableEvent = { kind: 'reset', ts: 10n, error: new TidemarkError('ErrConnectionLost', 'lost', { retryable: true }) };
    const h = setup([rows(a, 0, 1), commit(10n, 1), rows(a, 0, 2, 3), reset, rows(a, 0, 2, 3), commit(20n, 2)], [ta]);
    await until('second commit', () => h.puller.readerTs === 20n);
    assert.deepEqual(ta.ids(), [1, 2, 3]);
    await h.stop();
  });

  it('[filter] ignore-txn-start-ts drops a whole transaction but still moves the position', async () => {
    const a = tableMap('a');
    const ta = new Table('s.a', { tableId: 1 }, 0n);
    const h = setup([rows(a, 0, 1), commit(10n, 1), rows(a, 0, 2), commit(20n, 1), rows(a, 0, 3), commit(30n, 1)], [ta], { ignored: [20n] });
    await until('last commit', () => h.puller.readerTs === 30n);
    assert.deepEqual(ta.ids(), [1, 3]);
    await h.stop();
  });

  it('a transaction bigger than the memory quota spills while it is read and arrives whole, in order', async () => {
    const a = tableMap('a');
    const ta = new Table('s.a', { tableId: 1 }, 0n);
    const ids = Array.from({ length: 5000 }, (_, i) => i);
    const script: Script = [];
    for (let i = 0; i < ids.length; i += 500) script.push(rows(a, i, ...ids.slice(i, i + 500)));
    script.push(commit(10n, ids.length));
    const h = setup(script, [ta], { quotaBytes: 64 * 1024 });
    await until('commit', () => h.puller.readerTs === 10n);
    assert.deepEqual(ta.ids(), ids);
    assert.deepEqual(ta.added.map((r) => r.seq), ids, 'sequence numbers kept');
    assert.equal(h.quota.used, 0);
    await h.stop();
  });

  it("a big transaction of one table reaches its sorter packed, whole, with its commit time; or row by row when refused or below the table's floor", async () => {
    const a = tableMap('a');
    const b = tableMap('bb');
    const c = tableMap('ccc');
    const ta = new Table('s.a', { tableId: 1 }, 0n);
    const tb = new Table('s.bb', { tableId: 2 }, 20n);
    const tc = new Table('s.ccc', { tableId: 3 }, 0n);
    tc.refusesPacked = true;
    const ids = Array.from({ length: 20_000 }, (_, i) => i);
    const script: Script = [];
    const big = (map: TableMap, ts: bigint): void => {
      for (let i = 0; i < ids.length; i += 1000) script.push(rows(map, i, ...ids.slice(i, i + 1000)));
      script.push(commit(ts, ids.length));
    };
    big(a, 10n);
    big(b, 15n); // below b's floor: a read from before it already fed b
    big(c, 25n);
    big(b, 30n);
    const h = setup(script, [ta, tb, tc]);
    await until('last commit', () => h.puller.readerTs === 30n);
    assert.equal(ta.packedTakes, 1, 'the rows past the first 16,384 went to the sorter whole');
    assert.deepEqual(ta.ids(), ids);
    assert.deepEqual(ta.added.map((r) => r.seq), ids);
    assert.ok(ta.added.every((r) => r.ts === 10n && r.commitTime === 10_000), 'every row has the commit ts and time');
    assert.equal(tc.packedTakes, 0);
    assert.deepEqual(tc.ids(), ids, 'a refused transaction went row by row');
    assert.ok(tc.added.every((r) => r.ts === 25n && r.commitTime === 25_000));
    assert.equal(tb.packedTakes, 1, 'the transaction below the floor was not offered whole');
    assert.deepEqual(tb.ids(), ids, 'only the commit above the floor');
    assert.ok(tb.added.every((r) => r.ts === 30n && r.commitTime === 30_000));
    await h.stop();
  });

  it('target-ts: reading stops at it; nothing after is added', async () => {
    const a = tableMap('a');
    const ta = new Table('s.a', { tableId: 1 }, 0n);
    const h = setup([rows(a, 0, 1), commit(10n, 1), rows(a, 0, 2), commit(20n, 1), rows(a, 0, 3), commit(30n, 1)], [ta], { targetTs: 25n });
    await until('target reached', () => h.puller.targetReached);
    assert.equal(h.puller.readerTs, 25n);
    assert.deepEqual(ta.ids(), [1, 2]);
    await h.stop();
  });

  it('target-ts: a position from the shared read past it (commits with none of these tables) stops reading at it', async () => {
    const a = tableMap('a');
    const ta = new Table('s.a', { tableId: 1 }, 0n);
    const h = setup([rows(a, 0, 1), commit(10n, 1), { kind: 'resolved', ts: 40n, time: 40_000 }, rows(a, 0, 5), commit(50n, 1)], [ta], { targetTs: 25n });
    await until('target reached', () => h.puller.targetReached);
    assert.equal(h.puller.readerTs, 25n, 'at target-ts, not at the position past it');
    assert.deepEqual(ta.ids(), [1]);
    await h.stop();
  });

  it('a DDL is reported with the commit before it, then moves the position', async () => {
    const a = tableMap('a');
    const ta = new Table('s.a', { tableId: 1 }, 0n);
    const ddl: ResumableEvent = { kind: 'ddl', ts: 15n, commitTime: 15_000, schema: 's', query: 'ALTER TABLE a ADD c INT' };
    const h = setup([rows(a, 0, 1), commit(10n, 1), ddl, { kind: 'resolved', ts: 15n, time: 16_000 }], [ta]);
    await until('the heartbeat read', () => h.puller.readerTime === 16_000);
    // the heartbeat at the same position moves its time on (an idle upstream's checkpoint stays current)
    assert.deepEqual(h.heard.log, ['committed s.a', 'moved 10', 'ddl 15 after 10', 'moved 15', 'moved 15']);
    assert.equal(h.puller.readerTs, 15n);
    await h.stop();
  });

  it('a table added behind the reader restarts it there; tables already fed skip what they have', async () => {
    const a = tableMap('a');
    const b = tableMap('bb');
    const ta = new Table('s.a', { tableId: 1 }, 0n);
    const h = setup([rows(a, 0, 1), rows(b, 1, 101), commit(10n, 2), rows(a, 0, 2), rows(b, 1, 102), commit(20n, 2)], [ta]);
    await until('read to 20', () => h.puller.readerTs === 20n);
    const tb = new Table('s.bb', { tableId: 2 }, 10n);
    h.map.set(tb.key, tb);
    h.puller.tableAdded(tb);
    assert.equal(tb.awaitingRestart, true, 'behind the reader: not fed by this read');
    assert.equal(h.puller.resolvedOf(tb), 10n, 'resolved only to its floor until the reader starts again');
    await until('restarted and read to 20 again', () => h.source.starts.length === 2 && h.puller.readerTs === 20n);
    assert.deepEqual(h.source.starts, [0n, 10n], 'the second read starts at the new table\'s checkpoint');
    assert.deepEqual(tb.ids(), [102], 'the new table gets what is after its checkpoint');
    assert.deepEqual(ta.ids(), [1, 2], 'the table already fed gets nothing twice');
    assert.ok(h.heard.log.includes('restarted'));

    h.source.more([rows(a, 0, 3), rows(b, 1, 103), commit(30n, 2)]);
    await until('read to 30', () => h.puller.readerTs === 30n);
    assert.deepEqual([ta.ids(), tb.ids()], [[1, 2, 3], [102, 103]]);
    await h.stop();
  });

  it('while the reader reads again, a position above it is given the time of the highest position read, never an older one', async () => {
    const a = tableMap('a');
    const b = tableMap('bb');
    const ta = new Table('s.a', { tableId: 1 }, 0n);
    const h = setup([rows(a, 0, 1), commit(10n, 1), rows(b, 0, 101), commit(20n, 1), rows(a, 0, 2), commit(30n, 1)], [ta]);
    await until('read to 30', () => h.puller.readerTs === 30n);
    h.source.hold(20n);
    const tb = new Table('s.bb', { tableId: 2 }, 10n);
    h.map.set(tb.key, tb);
    h.puller.tableAdded(tb);
    await until('reading again, held after 20', () => h.source.starts.length === 2 && h.puller.readerTs === 20n);
    assert.equal(h.puller.resolvedOf(ta), 30n, 'the table already fed is resolved up to where the reader was');
    assert.equal(h.puller.readerTime, 20_000, 'the reader is at the commit of 20 again');
    assert.equal(h.puller.timeAt(30n), 30_000, 'a checkpoint at 30 gets the time of 30, not the time the reader is at now');
    assert.equal(h.puller.timeAt(20n), 20_000);
    h.source.hold(undefined);
    await until('read to 30 again', () => h.puller.readerTs === 30n);
    assert.deepEqual([ta.ids(), tb.ids()], [[1, 2], [101]]);
    await h.stop();
  });

  it('a table added in the middle of a transaction that already had rows of it waits for the next read', async () => {
    const a = tableMap('a');
    const b = tableMap('bb');
    const ta = new Table('s.a', { tableId: 1 }, 0n);
    const h = setup([rows(a, 0, 1), commit(10n, 1), rows(b, 0, 101)], [ta]);
    await until('read to 10', () => h.puller.readerTs === 10n);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const tb = new Table('s.bb', { tableId: 2 }, 10n);
    h.map.set(tb.key, tb);
    h.puller.tableAdded(tb);
    assert.equal(tb.awaitingRestart, true, 'its row 101 was already passed over');
    h.source.more([rows(a, 1, 2), commit(20n, 2)]);
    await until('read again to 20', () => h.source.starts.length === 2 && h.puller.readerTs === 20n);
    assert.deepEqual(tb.ids(), [101]);
    assert.deepEqual(ta.ids(), [1, 2]);
    await h.stop();
  });

  it('a fed table whose row events carry no column names stops the puller with an error that says what to set', async () => {
    const a = tableMap('a', 'none');
    const ta = new Table('s.a', { tableId: 1 }, 0n);
    const h = setup([rows(a, 0, 1), commit(10n, 1)], [ta]);
    await assert.rejects(h.running, (error: unknown) => error instanceof TidemarkError && error.code === 'ErrBinlogRowImageNotFull' && /binlog_row_metadata=FULL/.test(error.message));
    await h.stop();
  });
});
