import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import { createLogger } from '../../../src/core/logger/logger.js';
import { MemoryQuota, SpillStore, TableSorter } from '../../../src/core/pipeline/sorter/index.js';
import { SORTED_ROW_CODEC, decodeRow } from '../../../src/core/pipeline/row-codec.js';
import { sortedRow, testTableMap } from '../../helpers/binlog-rows.js';

const TEXT_ROW = testTableMap('t', ['text']);
import { TablePipeline } from '../../../src/core/processor/table-pipeline.js';
import { TableSinkStage } from '../../../src/core/processor/table-sink.js';
import { TidemarkError } from '../../../src/core/errors/index.js';
import type { DDLEvent, RowChangedEvent, Sink, TableName, Ts } from '../../../src/core/sink/api.js';
import { TableSnapshot, type SnapshotPiece } from '../../../src/core/snapshot/table-snapshot.js';
import { pendingRecord } from '../../../src/core/snapshot/progress.js';
import { waitFor } from '../../helpers/wait-for.js';

/**
 * The table sink stage on real sorters (LevelDB spill store in a temp folder) and a sink whose flushes the test
 * resolves by hand, so the order of acknowledgements is the test's to choose.
 */
const root = mkdtempSync(join(tmpdir(), 'tidemark-table-sink-'));
let stores = 0;

interface PendingFlush {
  readonly upTo: Ts;
  /** Rows the sink had been given when flush was called. */
  readonly rowsBefore: number;
  resolve(): void;
  reject(error: Error): void;
}

/** A sink that records every call and leaves each flush pending until the test settles it. */
class HandSink implements Sink {
  readonly written: RowChangedEvent[] = [];
  readonly flushes: PendingFlush[] = [];
  readonly log: string[] = [];
  /** While set, each write waits until the test calls the release it leaves in `heldWrites`. */
  holdWrites = false;
  readonly heldWrites: (() => void)[] = [];

  writeRows(table: TableName, rows: readonly RowChangedEvent[]): Promise<void> {
    this.written.push(...rows);
    this.log.push(`write ${table.table} ${rows.map((r) => r.commitTs).join(',')}`);
    if (this.holdWrites) return new Promise((resolve) => this.heldWrites.push(resolve));
    return Promise.resolve();
  }

  flush(upTo: Ts): Promise<void> {
    this.log.push(`flush ${upTo}`);
    return new Promise((resolve, reject) => this.flushes.push({ upTo, rowsBefore: this.written.length, resolve, reject }));
  }

  writeDDL(_ddl: DDLEvent): Promise<void> {
    return Promise.resolve();
  }

  writeCheckpoint(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** A processor's reader, played by the test: it adds rows to sorters, commits and moves. */
class Harness {
  readerTs: Ts = 100n;
  readerTime = 1_000;
  readonly sink = new HandSink();
  readonly quota = new MemoryQuota(64 * 1024 * 1024);
  readonly removed: TablePipeline[] = [];
  /** Times the stage said checkpoints moved (the processor then tells the owner). */
  progressCalls = 0;
  /** Snapshot pieces the stage reported acknowledged. */
  readonly acknowledgedPieces: SnapshotPiece[] = [];
  readonly controller = new AbortController();
  stage!: TableSinkStage;
  running!: Promise<void>;
  store!: SpillStore;
  private nextId = 1;

  static async start(barrierTs: Ts = 1n << 60n): Promise<Harness> {
    const h = new Harness();
    h.store = await SpillStore.open(join(root, `store-${stores++}`));
    h.stage = new TableSinkStage({
      sink: h.sink,
      quota: h.quota,
      reader: h,
      mount: (table, event): RowChangedEvent => {
        const row = decodeRow(event.payload, TEXT_ROW);
        return { table: table.name, commitTs: event.ts, commitTime: row.commitTime, seq: event.seq, kind: row.kind, columns: [], before: row.before, after: row.after };
      },
      sinkError: (call, error) => new TidemarkError('ErrSinkFailed', `sink failed in ${call}: ${(error as Error).message}`),
      onRemoved: (table) => {
        table.closed = true;
        h.removed.push(table);
        return table.sorter.close();
      },
      logger: createLogger({ level: 'error' }),
      barrierTs,
      onSnapshotAcknowledged: (_table, pieces) => h.acknowledgedPieces.push(...pieces),
      onProgress: () => h.progressCalls++,
    });
    h.running = h.stage.run(h.controller.signal);
    return h;
  }

  timeAt(): number {
    return this.readerTime;
  }

  resolvedOf(table: TablePipeline): Ts {
    return table.floorTs > this.readerTs ? table.floorTs : this.readerTs;
  }

  table(name: string, checkpointTs: Ts = this.readerTs): TablePipeline {
    const tableId = this.nextId++;
    const pipeline = new TablePipeline({ schema: 'db', table: name, tableId }, new TableSorter(tableId, this.quota, this.store, SORTED_ROW_CODEC), checkpointTs);
    pipeline.floorTs = checkpointTs;
    this.stage.added(pipeline);
    return pipeline;
  }

  /** One committed transaction at `ts` with `rows` rows in each of `tables`, then the reader moves to it. */
  commit(ts: Ts, tables: readonly TablePipeline[], rows = 1): void {
    for (const t of tables) {
      for (let seq = 0; seq < rows; seq++) t.sorter.add({ ts, seq, payload: sortedRow(TEXT_ROW, 'insert', null, [`${t.name.table}@${ts}#${seq}`], 1, this.readerTime) });
    }
    this.stage.committed(tables);
    this.moveTo(ts);
  }

  /** A heartbeat or a commit of other tables: the reader moves with nothing for these. */
  moveTo(ts: Ts): void {
    this.readerTs = ts;
    this.readerTime += 1000;
    this.stage.readerMoved(ts);
  }

  async stop(): Promise<void> {
    this.controller.abort();
    await this.running;
    await this.store.destroy();
  }
}

/** Lets the stage run everything it can now (its work is a chain of promise callbacks, no timers). */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
}

describe('TableSinkStage (real sorters, a sink whose flushes the test acknowledges)', () => {
  const harnesses: Harness[] = [];
  const start = async (barrierTs?: Ts): Promise<Harness> => {
    const h = await Harness.start(barrierTs);
    harnesses.push(h);
    return h;
  };
  afterEach(async () => {
    for (const h of harnesses.splice(0)) await h.stop();
  });
  after(async () => {
    const { rm } = await import('node:fs/promises');
    await rm(root, { recursive: true, force: true });
  });

  it('writes later rows while a flush is in flight; a checkpoint moves only with the acknowledgement covering it', async () => {
    const h = await start();
    const a = h.table('a');
    await settle();
    h.commit(110n, [a]);
    await settle();
    assert.deepEqual(h.sink.flushes.map((f) => f.upTo), [110n]);
    assert.equal(a.checkpointTs, 100n, 'nothing is acknowledged yet');
    h.commit(120n, [a]);
    h.commit(130n, [a]);
    await settle();
    // the rows of 120 and 130 went to the sink while flush(110) was still pending
    assert.deepEqual(h.sink.written.map((r) => r.commitTs), [110n, 120n, 130n]);
    assert.ok(h.sink.flushes.length >= 2, `a second flush while the first is in flight: ${h.sink.log.join(' | ')}`);
    assert.equal(a.checkpointTs, 100n, 'still nothing acknowledged');
    h.sink.flushes[0].resolve();
    await settle();
    assert.equal(a.checkpointTs, 110n, 'the first acknowledgement covers 110 only');
    for (const f of h.sink.flushes.slice(1)) f.resolve();
    await settle();
    assert.equal(a.checkpointTs, 130n);
    // caught up and idle: it follows the reader with no flush at all
    const flushes = h.sink.flushes.length;
    h.moveTo(150n);
    await settle();
    assert.equal(a.checkpointTs, 150n);
    assert.equal(h.sink.flushes.length, flushes, 'moving an idle table needs no flush');
  });

  it('acknowledgements out of order: a later flush acknowledges the rounds before it; an earlier one resolving after changes nothing', async () => {
    const h = await start();
    const a = h.table('a');
    const b = h.table('b');
    await settle();
    h.commit(110n, [a]);
    await settle();
    h.commit(120n, [b]);
    await settle();
    assert.deepEqual(h.sink.flushes.map((f) => f.upTo), [110n, 120n]);
    // flush(120) covers everything handed over before it was called: a's row at 110 too
    assert.equal(h.sink.flushes[1].rowsBefore, 2);
    h.sink.flushes[1].resolve();
    await settle();
    // both rounds acknowledged; a, idle again, then follows the reader (at 120) like b
    assert.deepEqual([a.checkpointTs, b.checkpointTs], [120n, 120n]);
    h.sink.flushes[0].resolve();
    await settle();
    assert.deepEqual([a.checkpointTs, b.checkpointTs], [120n, 120n], 'nothing goes back');
    // and while rows of a are unacknowledged, a's checkpoint never passes them, whatever the reader does
    h.commit(130n, [a]);
    h.moveTo(200n);
    await settle();
    assert.equal(a.checkpointTs, 120n);
    assert.equal(b.checkpointTs, 200n, 'an idle table follows the reader');
    for (const f of h.sink.flushes.slice(2)) f.resolve();
    await settle();
    assert.equal(a.checkpointTs, 200n);
  });

  it('rows committed while the table is being written go next, and once acknowledged the idle table follows the reader again', async () => {
    const h = await start();
    const a = h.table('a');
    await settle();
    h.sink.holdWrites = true;
    h.commit(110n, [a]);
    await settle();
    assert.equal(h.sink.heldWrites.length, 1, 'the write of 110 is under way');
    // the next transaction commits while that write is still under way (the reader is ahead of the sink)
    h.commit(120n, [a]);
    h.sink.holdWrites = false;
    h.sink.heldWrites.shift()!();
    await settle();
    assert.deepEqual(h.sink.written.map((r) => r.commitTs), [110n, 120n]);
    for (const f of h.sink.flushes) f.resolve();
    await settle();
    assert.equal(a.checkpointTs, 120n);
    // nothing else will come for it: with no barrier move to wake it, it must follow the reader on its own
    h.moveTo(150n);
    await settle();
    assert.equal(a.checkpointTs, 150n, 'the idle table follows the reader');
  });

  it('never writes or checkpoints past the barrier; rows beyond it go once it moves', async () => {
    const h = await start(115n);
    const a = h.table('a');
    await settle();
    h.commit(110n, [a]);
    h.commit(120n, [a]);
    await settle();
    assert.deepEqual(h.sink.written.map((r) => r.commitTs), [110n], 'the row after the barrier waits');
    for (const f of h.sink.flushes) f.resolve();
    await settle();
    assert.equal(a.checkpointTs, 115n, 'up to the barrier, not to the reader');
    h.stage.barrierMoved(200n);
    await settle();
    assert.deepEqual(h.sink.written.map((r) => r.commitTs), [110n, 120n]);
    for (const f of h.sink.flushes) f.resolve();
    await settle();
    assert.equal(a.checkpointTs, 120n);
  });

  it('checkpoints the barrier alone moves are reported: the owner hears of them while the reader stands still', async () => {
    // the reader waits for room (rows held behind a DDL barrier) and does not move: only the barrier does, when the
    // owner has run the DDL; the owner runs the next DDL once it hears the tables reached it
    const h = await start(150n);
    const idle = h.table('idle');
    const busy = h.table('busy');
    h.commit(140n, [busy]);
    h.moveTo(200n);
    await settle();
    for (const f of h.sink.flushes) f.resolve();
    await settle();
    assert.equal(idle.checkpointTs, 150n);
    assert.equal(busy.checkpointTs, 150n);
    const before = h.progressCalls;
    h.stage.barrierMoved(180n);
    await settle();
    assert.equal(idle.checkpointTs, 180n);
    assert.equal(busy.checkpointTs, 180n);
    assert.ok(h.progressCalls > before, 'the stage says the checkpoints moved');
    const after = h.progressCalls;
    h.stage.barrierMoved(180n);
    await settle();
    assert.equal(h.progressCalls, after, 'nothing moved: nothing to say');
  });

  it('a table fed by a reader that reads again from behind does not follow the clock past what it was given, when the barrier moves', async () => {
    const h = await start(150n);
    h.moveTo(200n); // the reader's highest position; the clock stops at the barrier (150)
    await settle();
    // a table added at 150 behind the reader: the reader reads again from 120, the table is fed from its floor
    const a = h.table('a', 150n);
    h.readerTs = 120n;
    h.stage.readerRestarted([a]);
    await settle();
    assert.equal(a.checkpointTs, 150n);
    h.stage.barrierMoved(300n);
    await settle();
    assert.equal(a.checkpointTs, 150n, 'the clock moved to 200 with the barrier, but the reader has given the table nothing past 150');
    h.commit(160n, [a]);
    await settle();
    for (const f of h.sink.flushes) f.resolve();
    await settle();
    assert.equal(a.checkpointTs, 160n);
    h.moveTo(200n);
    await settle();
    assert.equal(a.checkpointTs, 200n, 'caught up with the reader: it follows the clock');
    assert.deepEqual(h.sink.written.map((r) => r.commitTs), [160n], 'the row it was given after joining was written');
  });

  it('a copying table whose chunks keep a piece ready lets other tables go and starts flushes on the way', async () => {
    const h = await start();
    const a = h.table('a');
    const b = h.table('b');
    await settle();
    const compare = (x: readonly unknown[], y: readonly unknown[]): number => (x[0] as number) - (y[0] as number);
    const snapshot = new TableSnapshot(pendingRecord(100n), 100n, () => h.stage.snapshotPiece(a), 1 << 30);
    snapshot.setKey({ names: ['id'], compare }, 'chunks');
    a.snapshot = snapshot;
    // four chunks read at once at 105, eight pieces of 1,024 rows queued for each: 32,768 rows ready at once
    const reads = [0, 1, 2, 3].map((i) => snapshot.open(snapshot.toRead[0], i === 3 ? null : [(i + 1) * 10_000]));
    let id = 0;
    for (const read of reads) {
      snapshot.positioned(read, 105n);
      for (let p = 0; p < 8; p++) {
        const rows = Array.from({ length: 1024 }, (_, seq): RowChangedEvent => ({ table: a.name, commitTs: 105n, commitTime: 0, seq, kind: 'insert', columns: [], before: null, after: [++id], snapshot: 'row' }));
        await snapshot.push(read, { ts: 105n, rows, bytes: 0, final: false, ...(p === 7 ? { chunkEnd: read.range } : {}) }, AbortSignal.timeout(1000));
      }
    }
    h.commit(110n, [b]);
    await settle();
    const writesOfA = h.sink.log.filter((l) => l.startsWith('write a')).length;
    const firstOfB = h.sink.log.findIndex((l) => l.startsWith('write b'));
    const lastOfA = h.sink.log.findLastIndex((l) => l.startsWith('write a'));
    assert.equal(writesOfA, 32, 'every piece written');
    assert.ok(firstOfB >= 0 && firstOfB < lastOfA, `b's row goes between a's pieces, not after all of them: ${h.sink.log.map((l) => l.slice(0, 9)).join(' | ')}`);
    const flushesDuringCopy = h.sink.log.slice(0, lastOfA).filter((l) => l.startsWith('flush')).length;
    assert.ok(flushesDuringCopy >= 2, `flushes start while the pieces are written (${flushesDuringCopy} before the last piece)`);
    for (const f of h.sink.flushes) f.resolve();
    await settle();
    for (const f of h.sink.flushes) f.resolve();
    await settle();
    assert.equal(h.acknowledgedPieces.reduce((n, p) => n + p.rows.length, 0), 32 * 1024, 'every piece acknowledged');
    assert.equal(snapshot.finished, true);
  });

  it('a chunk read that begins while the copying table is being written takes the end of that write as its floor', async () => {
    const h = await start();
    const a = h.table('a');
    await settle();
    const compare = (x: readonly unknown[], y: readonly unknown[]): number => (x[0] as number) - (y[0] as number);
    // wired as the processor wires it: the floor is how far the table is handed to the sink, or is being handed
    const snapshot = new TableSnapshot(pendingRecord(100n), 100n, () => h.stage.snapshotPiece(a), 1 << 30, Promise.resolve(), () => a.handedTs);
    snapshot.setKey({ names: ['id'], compare }, 'chunks');
    a.snapshot = snapshot;
    // no chunk is being read: the table is written up to the reader (its changes of keys not copied yet dropped),
    // and the sink holds the write of 110
    h.sink.holdWrites = true;
    h.commit(110n, [a]);
    await settle();
    assert.equal(h.sink.heldWrites.length, 1, 'the write up to 110 is in the sink');
    assert.equal(a.writtenTs, 100n, 'not written up to 110 until the sink has the rows');
    const read = snapshot.open(snapshot.toRead[0], null);
    assert.equal(read.floor, 110n, 'changes up to 110 of the chunk\'s keys may be dropped: its rows must be read at 110 or later');
    assert.throws(() => snapshot.positioned(read, 105n), /below the position 110/);
    h.sink.heldWrites[0]();
    await settle();
    assert.equal(a.writtenTs, 110n);
    assert.equal(a.handedTs, 110n);
    h.sink.holdWrites = false;
  });

  it('a backlog into a sink that answers at once lets timers run while it is handed over', async () => {
    const h = await start();
    const a = h.table('a');
    await settle();
    const rows = 200_000;
    for (let seq = 0; seq < rows; seq++) a.sorter.add({ ts: 110n, seq, payload: sortedRow(TEXT_ROW, 'insert', null, [`row ${seq}`], 1, h.readerTime) });
    let writtenWhenTimerRan = -1;
    setTimeout(() => (writtenWhenTimerRan = h.sink.written.length), 0);
    h.stage.committed([a]);
    h.moveTo(110n);
    await waitFor(() => h.sink.written.length === rows, { what: 'every row written', timeoutMs: 20_000 });
    assert.ok(writtenWhenTimerRan >= 0 && writtenWhenTimerRan < rows, `a timer due at once ran after ${writtenWhenTimerRan} of ${rows} rows: the hand-over kept the event loop`);
  });

  it('a table removed while its flush is in flight stops only once that flush is acknowledged, at its checkpoint', async () => {
    const h = await start();
    const a = h.table('a');
    const b = h.table('b');
    await settle();
    h.commit(110n, [a, b]);
    await settle();
    assert.equal(h.sink.flushes.length, 1, 'one flush for the transaction, whatever the number of its tables');
    a.stopRequested = true;
    h.stage.removed(a);
    h.commit(120n, [a, b]); // rows of a after the removal are not written
    await settle();
    assert.equal(h.removed.length, 0, 'not closed while its rows wait for the acknowledgement');
    h.sink.flushes[0].resolve();
    await settle();
    assert.deepEqual(h.removed.map((t) => t.key), ['db.a']);
    assert.equal(a.checkpointTs, 110n, 'its final checkpoint is what was acknowledged');
    assert.deepEqual(h.sink.written.filter((r) => r.table.table === 'a').map((r) => r.commitTs), [110n]);
    for (const f of h.sink.flushes) f.resolve();
    await settle();
    assert.equal(b.checkpointTs, 120n);
  });

  it('a failed flush stops the stage with the typed error; no checkpoint moves', async () => {
    const h = await start();
    const a = h.table('a');
    await settle();
    h.commit(110n, [a]);
    await settle();
    h.sink.flushes[0].reject(new Error('downstream gone'));
    await assert.rejects(h.running, { code: 'ErrSinkFailed', message: /sink failed in flush: downstream gone/ });
    assert.equal(a.checkpointTs, 100n);
    h.running = Promise.resolve();
  });

  it('idle tables cost nothing: the stage calls per committed transaction are the same for 10 and 5,000 idle tables', async () => {
    const costs: { wakeups: number; tableVisits: number; writeCalls: number; flushes: number }[] = [];
    for (const idle of [10, 5000]) {
      const h = await start();
      const busy = h.table('busy');
      const idleTables = Array.from({ length: idle }, (_, i) => h.table(`idle${i}`));
      await settle();
      h.moveTo(105n);
      await settle();
      assert.ok(idleTables.every((t) => t.following), 'caught-up idle tables follow the clock');
      const before = { ...h.stage.stats };
      for (let i = 1; i <= 50; i++) {
        h.commit(105n + BigInt(i), [busy], 3);
        await settle();
        for (const f of h.sink.flushes.splice(0)) f.resolve();
        await settle();
      }
      const after = h.stage.stats;
      costs.push({ wakeups: after.wakeups - before.wakeups, tableVisits: after.tableVisits - before.tableVisits, writeCalls: after.writeCalls - before.writeCalls, flushes: after.flushes - before.flushes });
      assert.equal(busy.checkpointTs, 155n);
      assert.ok(idleTables.every((t) => t.checkpointTs === 155n), 'every idle table is at the reader');
    }
    assert.deepEqual(costs[1], costs[0], `per 50 transactions: ${JSON.stringify(costs)}`);
    assert.ok(costs[0].tableVisits <= 2 * 50, `at most two table visits per transaction: ${JSON.stringify(costs[0])}`);
  });
});
