import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from '../../../src/core/logger/logger.js';
import { SharedBinlog } from '../../../src/core/logservice/shared-binlog.js';
import type { ResumableEvent } from '../../../src/core/upstream/resumable-reader.js';
import type { TableMap } from '../../../src/core/upstream/events.js';
import type { RowsLayout } from '../../../src/core/upstream/rows.js';

const FAKE_TABLE = { schema: 'a', table: 'x' };

/**
 * A binlog of transactions, each two rows events and a commit at ts 100 + 10 k; it grows with `append`, and a read
 * from a commit position gives what follows it and then waits for more, like a binlog dump.
 */
class FakeBinlog {
  readonly commits: bigint[] = [];
  opens = 0;
  open = 0;
  private waiters: (() => void)[] = [];
  /** When set, the shared reads (not the readers' own) fail with it after this many events. */
  failAfter: { events: number; error: Error } | undefined;

  append(n: number): void {
    for (let i = 0; i < n; i++) this.commits.push(100n + 10n * BigInt(this.commits.length + 1));
    for (const w of this.waiters.splice(0)) w();
  }

  events(k: number): ResumableEvent[] {
    const ts = this.commits[k];
    const rows = (i: number): ResumableEvent => ({ kind: 'rows', layout: { ts, i, map: FAKE_TABLE } as unknown as RowsLayout, seq: i });
    return [rows(0), rows(1), { kind: 'commit', ts, commitTime: Date.now(), rows: 2 }];
  }

  async *read(start: bigint, signal: AbortSignal, stats?: { bytes: number }, failing = false): AsyncGenerator<ResumableEvent> {
    this.opens++;
    this.open++;
    let given = 0;
    try {
      let k = this.commits.findIndex((c) => c > start);
      if (k < 0) k = this.commits.length;
      while (!signal.aborted) {
        if (k < this.commits.length) {
          for (const e of this.events(k)) {
            if (failing && this.failAfter !== undefined && given >= this.failAfter.events) throw this.failAfter.error;
            if (stats !== undefined) stats.bytes += 100;
            given++;
            yield e;
          }
          k++;
          continue;
        }
        await new Promise<void>((resolve) => {
          this.waiters.push(resolve);
          signal.addEventListener('abort', () => resolve(), { once: true });
        });
      }
    } finally {
      this.open--;
    }
  }
}

/** What a consumer keeps of a read (the puller: rows wait for their commit; a reset drops those of the open transaction). */
class Applied {
  readonly rows: string[] = [];
  readonly commits: bigint[] = [];
  private pending: string[] = [];
  resets = 0;

  take(e: ResumableEvent): void {
    if (e.kind === 'rows') {
      const { ts, i } = e.layout as unknown as { ts: bigint; i: number };
      this.pending.push(`${ts}/${i}`);
    } else if (e.kind === 'reset') {
      this.pending = [];
      this.resets++;
    } else if (e.kind === 'commit') {
      this.rows.push(...this.pending);
      this.pending = [];
      this.commits.push(e.ts);
    }
  }
}

function expectedRows(commits: readonly bigint[], after: bigint): string[] {
  return commits.filter((c) => c > after).flatMap((c) => [`${c}/0`, `${c}/1`]);
}

async function consume(events: AsyncIterable<ResumableEvent>, until: bigint, applied = new Applied(), atEnd?: () => void): Promise<Applied> {
  for await (const e of events) {
    applied.take(e);
    if (e.kind === 'commit' && e.ts >= until) {
      atEnd?.();
      break;
    }
  }
  return applied;
}

function shared(binlog: FakeBinlog, options: { maxBytes?: number; historyBytes?: number; aheadBytes?: number } = {}): SharedBinlog {
  return new SharedBinlog({ source: (start, signal, stats) => binlog.read(start, signal, stats, true), logger: silentLogger, joinWaitMs: 200, ...options });
}

const own = (binlog: FakeBinlog) => ({ ownRead: (start: bigint, signal: AbortSignal) => binlog.read(start, signal), who: 'test' });

/** A table's map as the binlog reader gives it: one object per table version, reused by its rows events. */
const tableMap = (schema: string, table: string) => ({ schema, table }) as unknown as TableMap;
const ax = tableMap('a', 'x');
const by = tableMap('b', 'y');

/** Events of a binlog script, a batch at a time (a turn of the event loop between batches, like network reads). */
function scripted(batches: readonly (readonly ResumableEvent[])[]) {
  return async function* (_start: bigint, signal: AbortSignal, stats: { bytes: number }): AsyncGenerator<ResumableEvent> {
    for (const batch of batches) {
      for (const e of batch) {
        stats.bytes += 100;
        yield e;
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
  };
}

const rowsOf = (map: TableMap, seq = 0): ResumableEvent => ({ kind: 'rows', layout: { map, ends: [1] } as unknown as RowsLayout, seq });
const commitAt = (ts: bigint): ResumableEvent => ({ kind: 'commit', ts, commitTime: Number(ts), rows: 1 });

/** Takes events until `done` says so (or the reader ends). */
async function take(events: AsyncIterable<ResumableEvent>, done: (e: ResumableEvent) => boolean): Promise<ResumableEvent[]> {
  const got: ResumableEvent[] = [];
  for await (const e of events) {
    got.push(e);
    if (done(e)) break;
  }
  return got;
}

const notOwn = { ownRead: () => { throw new Error('no read of its own expected'); } };

describe('SharedBinlog: one binlog read for every reader of an upstream', () => {
  it('readers at one position share one read and each gets exactly what its own read would give', async () => {
    const binlog = new FakeBinlog();
    binlog.append(50);
    const log = shared(binlog);
    const stop = new AbortController();
    const readers = [0, 1, 2].map(() => consume(log.subscribe(100n, stop.signal, own(binlog)), binlog.commits[49]));
    const got = await Promise.all(readers);
    for (const a of got) assert.deepEqual(a.rows, expectedRows(binlog.commits, 100n));
    assert.equal(binlog.opens, 1, 'one read of the binlog');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(binlog.open, 0, 'the last reader gone, the shared read stopped');
    assert.equal(log.reading, false);
    stop.abort();
  });

  it('a reader behind what the store holds reads on its own, then joins the shared read at a commit', async () => {
    const binlog = new FakeBinlog();
    binlog.append(200);
    // the store keeps about 10 events of history
    const log = shared(binlog, { maxBytes: 100_000, historyBytes: 2_000 });
    const stop = new AbortController();
    const ahead = log.subscribe(binlog.commits[199], stop.signal, own(binlog));
    const aheadApplied = new Applied();
    const aheadIt = ahead[Symbol.asyncIterator]();
    const pump = (async () => {
      for (;;) {
        const r = await aheadIt.next();
        if (r.done === true) return;
        aheadApplied.take(r.value);
      }
    })();
    await new Promise((resolve) => setImmediate(resolve));
    binlog.append(100);
    await waitUntil(() => aheadApplied.commits.length === 100);
    // a changefeed far behind: its own read from the start, then the shared one
    let atEnd = { attached: 0, open: 0 };
    const behind = await consume(log.subscribe(100n, stop.signal, own(binlog)), binlog.commits[299], undefined, () => {
      atEnd = { attached: log.attachedCount, open: binlog.open };
    });
    assert.deepEqual(atEnd, { attached: 2, open: 1 }, 'caught up, it reads from the shared read and its own read is closed');
    assert.deepEqual(behind.rows, expectedRows(binlog.commits, 100n), 'every row once, in order');
    assert.equal(binlog.opens, 2, 'the shared read and one read of its own');
    binlog.append(20);
    await waitUntil(() => aheadApplied.commits.length === 120);
    assert.deepEqual(aheadApplied.rows, expectedRows(binlog.commits, binlog.commits[199]));
    stop.abort();
    await pump;
    assert.equal(binlog.open, 0);
  });

  it('a reader that does not keep up is let go (it reads on its own) while the others go on; it still gets every row once', async () => {
    const binlog = new FakeBinlog();
    const log = shared(binlog, { maxBytes: 4_000, historyBytes: 1_000 });
    const stop = new AbortController();
    const fast = new Applied();
    const fastDone = consume(log.subscribe(100n, stop.signal, own(binlog)), 100n + 10n * 300n, fast);
    // the slow reader takes two events (inside a transaction) and then nothing for a while
    const slowIt = log.subscribe(100n, stop.signal, own(binlog))[Symbol.asyncIterator]();
    await new Promise((resolve) => setImmediate(resolve));
    binlog.append(1);
    const slow = new Applied();
    for (let i = 0; i < 2; i++) slow.take((await slowIt.next()).value as ResumableEvent);
    binlog.append(299);
    await fastDone;
    assert.deepEqual(fast.rows, expectedRows(binlog.commits, 100n), 'the fast reader got everything while the slow one waited');
    assert.ok(log.detaches >= 1, 'the slow reader was let go');
    for (;;) {
      const r = await slowIt.next();
      slow.take(r.value as ResumableEvent);
      if ((r.value as ResumableEvent).kind === 'commit' && (r.value as { ts: bigint }).ts >= binlog.commits[299]) break;
    }
    assert.equal(slow.resets, 1, 'it was inside a transaction when let go: a reset drops its rows, they come again');
    assert.deepEqual(slow.rows, expectedRows(binlog.commits, 100n));
    await slowIt.return(undefined);
    stop.abort();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(binlog.open, 0);
  });

  it('the work per event does not grow with readers that do not select its table: they get the position once per batch', async () => {
    // 20 batches of 100 transactions, each one rows event of a.x and its commit
    const batches: ResumableEvent[][] = [];
    let ts = 100n;
    for (let b = 0; b < 20; b++) {
      const batch: ResumableEvent[] = [];
      for (let t = 0; t < 100; t++) batch.push(rowsOf(ax), commitAt((ts += 10n)));
      batches.push(batch);
    }
    const last = ts;
    const routed: number[] = [];
    for (const idle of [1, 40]) {
      const log = new SharedBinlog({ source: scripted(batches), logger: silentLogger });
      const stop = new AbortController();
      const selecting = take(log.subscribe(100n, stop.signal, { ...notOwn, who: 'a.x', selects: (s) => s === 'a' }), (e) => e.kind === 'commit' && e.ts === last);
      const every = take(log.subscribe(100n, stop.signal, { ...notOwn, who: 'every row' }), (e) => e.kind === 'commit' && e.ts === last);
      const others = Array.from({ length: idle }, (_, i) =>
        take(log.subscribe(100n, stop.signal, { ...notOwn, who: `other ${i}`, selects: (s) => s === 'b' }), (e) => e.kind !== 'rows' && e.ts === last),
      );
      const got = await selecting;
      assert.equal(got.length, 4000, 'every row of a.x and every commit after them');
      assert.deepEqual(got.filter((e) => e.kind === 'commit').length, 2000);
      assert.equal((await every).length, 4000);
      for (const other of await Promise.all(others)) {
        assert.ok(other.every((e) => e.kind === 'resolved'), 'no rows, no commit of transactions without its rows');
        assert.ok(other.length <= 21, `the position passed, once per batch: ${other.length} events for 4,000`);
        const positions = other.map((e) => (e as { ts: bigint }).ts);
        assert.deepEqual(positions, [...positions].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)), 'positions only move on');
      }
      routed.push(log.routed);
      stop.abort();
    }
    assert.deepEqual(routed, [4000, 4000], 'the events handed out at the shared read are the same with 1 and 40 readers that select nothing');
  });

  it('a reader with a table filter gets its rows of mixed transactions, their commits, DDL with the position just before it; it can join mid-store', async () => {
    const ddl: ResumableEvent = { kind: 'ddl', ts: 130n, commitTime: 130, schema: 'a', query: 'ALTER TABLE x ADD c INT' };
    const source = scripted([[rowsOf(ax), commitAt(110n), rowsOf(ax), commitAt(120n), ddl, rowsOf(ax, 0), rowsOf(by, 1), rowsOf(ax, 2), commitAt(140n)], [rowsOf(ax), commitAt(150n), rowsOf(by), commitAt(160n)]]);
    const log = new SharedBinlog({ source, logger: silentLogger });
    const stop = new AbortController();
    // a reader that stays (it takes one event and waits): the store holds everything meanwhile
    const holder = log.subscribe(100n, stop.signal, { ...notOwn, who: 'stays' })[Symbol.asyncIterator]();
    await holder.next();
    const onlyB = await take(log.subscribe(100n, stop.signal, { ...notOwn, who: 'b.y', selects: (s) => s === 'b' }), (e) => e.kind === 'commit' && e.ts === 160n);
    const shape = (events: ResumableEvent[]) => events.filter((e) => e.kind !== 'resolved').map((e) => (e.kind === 'rows' ? `rows ${(e.layout.map as { schema: string }).schema}/${e.seq}` : `${e.kind} ${e.ts}`));
    assert.deepEqual(shape(onlyB), ['ddl 130', 'rows b/1', 'commit 140', 'rows b/0', 'commit 160']);
    const beforeDDL = onlyB[onlyB.findIndex((e) => e.kind === 'ddl') - 1];
    assert.deepEqual(beforeDDL, { kind: 'resolved', ts: 120n, time: 120 }, 'the position just before the DDL comes first (where the barrier stops tables)');
    // the store still holds it all: a reader joining at 140 takes its rows from there, routed to it alone
    const joined = await take(log.subscribe(140n, stop.signal, { ...notOwn, who: 'joins at 140', selects: (s) => s === 'a' }), (e) => e.kind !== 'rows' && e.ts >= 160n);
    assert.deepEqual(shape(joined), ['rows a/0', 'commit 150']);
    assert.deepEqual(joined.at(-1), { kind: 'resolved', ts: 160n, time: 160 }, 'and then the position past the transaction without its rows');
    assert.equal(log.starts, 1);
    stop.abort();
    await holder.return(undefined);
  });

  it('rows read while no reader of rows was there are taken by the one that joins as its own: counted as one sharer, not two', async () => {
    const stop = new AbortController();
    const log = new SharedBinlog({ source: scripted([[rowsOf(ax), commitAt(110n), rowsOf(by), commitAt(120n)], [rowsOf(ax), commitAt(130n)]]), logger: silentLogger });
    // the owner's DDL reader: no rows; the store holds what it read
    const ddl = log.subscribe(100n, stop.signal, { ...notOwn, who: 'ddl', noRows: true })[Symbol.asyncIterator]();
    await ddl.next();
    await waitUntil(() => log.storedBytes >= 4 * 100, 'the store to hold the first batch');
    const rows = await take(log.subscribe(100n, stop.signal, { ...notOwn, who: 'a.x', selects: (schema) => schema === 'a' }), (e) => e.kind === 'commit' && e.ts === 130n);
    const taken = rows.filter((e) => e.kind === 'rows');
    assert.equal(taken.length, 2, 'both rows of a.x, the first from the store, the second routed as it was read');
    // a row counted as shared is kept as an object by the sorters (not packed) and its decoded images are kept for the others
    assert.deepEqual(taken.map((e) => log.sharersOf(e.layout)), [1, 1]);
    stop.abort();
    await ddl.return(undefined);
  });

  it('a reader of rows behind a shared read that serves only readers without rows starts it again there; they read on their own until it reaches them', async () => {
    const binlog = new FakeBinlog();
    binlog.append(100);
    const log = shared(binlog);
    const stop = new AbortController();
    // the owner's DDL reader, where the changefeed's schema was taken: the binlog's end
    const ddl = log.subscribe(binlog.commits[99], stop.signal, { ...own(binlog), who: 'ddl', noRows: true })[Symbol.asyncIterator]();
    const ddlTaken: ResumableEvent[] = [];
    const ddlPump = (async () => {
      for (;;) {
        const r = await ddl.next();
        if (r.done === true) return;
        ddlTaken.push(r.value);
      }
    })();
    await waitUntil(() => log.attachedCount === 1);
    // the changefeed's processor, from its start: it takes the shared read (it has no read of its own here)
    const reader = log.subscribe(100n, stop.signal, { ...notOwn, who: 'rows' })[Symbol.asyncIterator]();
    const applied = new Applied();
    for (;;) {
      const r = await reader.next();
      applied.take(r.value as ResumableEvent);
      if (applied.commits.at(-1) === binlog.commits[99]) break;
    }
    assert.deepEqual(applied.rows, expectedRows(binlog.commits, 100n));
    assert.deepEqual([log.restartsBehind, log.detaches], [1, 0], 'started again behind, no reader counted as fallen behind');
    // the DDL reader read on its own meanwhile, and comes back once the shared read reached it
    binlog.append(5);
    await waitUntil(() => log.attachedCount === 2 && binlog.open === 1);
    const more = new Applied();
    for (;;) {
      const r = await reader.next();
      more.take(r.value as ResumableEvent);
      if (more.commits.at(-1) === binlog.commits[104]) break;
    }
    assert.deepEqual(more.rows, expectedRows(binlog.commits, binlog.commits[99]));
    // the DDL reader is woken in batches, after the rows reader took the last commit: wait for it, not assert at once
    await waitUntil(() => ddlTaken.some((e) => (e.kind === 'commit' || e.kind === 'resolved') && e.ts >= binlog.commits[104]), 'the DDL reader to reach the end too');
    assert.ok(!ddlTaken.some((e) => e.kind === 'commit' && e.ts <= binlog.commits[99]), 'and never went back');
    stop.abort();
    await reader.return(undefined);
    await ddlPump;
  });

  it('a failed shared read fails its readers, and the next reader starts it again', async () => {
    const binlog = new FakeBinlog();
    binlog.append(10);
    binlog.failAfter = { events: 7, error: new Error('purged') };
    const log = shared(binlog);
    const stop = new AbortController();
    await assert.rejects(consume(log.subscribe(100n, stop.signal, own(binlog)), binlog.commits[9]), /purged/);
    binlog.failAfter = undefined;
    const again = await consume(log.subscribe(100n, stop.signal, own(binlog)), binlog.commits[9]);
    assert.deepEqual(again.rows, expectedRows(binlog.commits, 100n));
    assert.equal(log.starts, 2);
    stop.abort();
  });

  it('the shared read runs no further than aheadBytes past a reader of rows that is busy with what it has: a backlog waits in the binlog', async () => {
    const binlog = new FakeBinlog();
    // each event counts 100 binlog bytes: at most 20 events past the reader, then it waits until the reader took half
    const log = shared(binlog, { maxBytes: 1_000_000, historyBytes: 1_000, aheadBytes: 2_000 });
    const stop = new AbortController();
    const it = log.subscribe(100n, stop.signal, own(binlog))[Symbol.asyncIterator]();
    await new Promise((resolve) => setImmediate(resolve));
    binlog.append(300);
    const applied = new Applied();
    for (let i = 0; i < 2; i++) applied.take((await it.next()).value as ResumableEvent);
    for (let i = 0; i < 50; i++) await new Promise((resolve) => setImmediate(resolve));
    // 900 events in the binlog; held: the 2 taken, up to 21 read past them (the one that went over the bound)
    assert.ok(log.storedBytes <= 24 * 196, `the store holds ${log.storedBytes} bytes, not the backlog`);
    for (;;) {
      const e = (await it.next()).value as ResumableEvent;
      applied.take(e);
      if (e.kind === 'commit' && e.ts >= binlog.commits[299]) break;
    }
    assert.deepEqual(applied.rows, expectedRows(binlog.commits, 100n), 'every row once, in order');
    assert.equal(log.detaches, 0, 'it was never let go: it reads the shared read all along');
    await it.return(undefined);
    stop.abort();
  });

  it('a reader that waits for new events (its table has none held) never holds the shared read back, though another is busy', async () => {
    // a transaction of a.x bigger than aheadBytes (50 rows events of 100 bytes): b.y's reader can pass over it only
    // once its commit is read
    const big = [...Array.from({ length: 50 }, (_, i) => rowsOf(ax, i)), commitAt(110n)];
    const log = new SharedBinlog({ source: scripted([big, [rowsOf(ax), commitAt(120n)]]), logger: silentLogger, maxBytes: 1_000_000, historyBytes: 1_000, aheadBytes: 2_000 });
    const stop = new AbortController();
    const busy = log.subscribe(100n, stop.signal, { ...notOwn, who: 'a.x', selects: (schema) => schema === 'a' })[Symbol.asyncIterator]();
    const other = take(log.subscribe(100n, stop.signal, { ...notOwn, who: 'b.y', selects: (schema) => schema === 'b' }), (e) => e.kind !== 'rows' && e.ts >= 120n);
    await busy.next(); // a.x's reader took one event and is held up by its sink
    const got = await other;
    assert.ok(got.every((e) => e.kind === 'resolved'), 'only positions');
    assert.equal((got[got.length - 1] as { ts: bigint }).ts, 120n, "it reached the binlog's end while a.x's reader waited");
    await busy.return(undefined);
    stop.abort();
  });
});

async function waitUntil(condition: () => boolean, what = 'the condition', timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
