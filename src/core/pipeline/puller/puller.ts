import { TidemarkError } from '../../errors/index.js';
import { Notifier } from '../../lifecycle/abortable.js';
import type { Logger } from '../../logger/logger.js';
import type { Ts } from '../../sink/api.js';
import type { TableMap } from '../../upstream/events.js';
import type { ResumableEvent } from '../../upstream/resumable-reader.js';
import type { MemoryQuota } from '../sorter/memory-quota.js';
import type { SpillStore } from '../sorter/spill-store.js';
import type { PackedRows } from '../sorter/packed-rows.js';
import type { SorterEvent } from '../sorter/table-sorter.js';
import { setPackedRowCommitTime, setRowCommitTime, type SortedRow } from '../row-codec.js';
import type { Mounter } from '../mounter/index.js';
import { TransactionBuffer } from './transaction-buffer.js';

/** A table the puller feeds: its sorter, and how far it already has the table's changes. */
export interface PulledTable {
  /** `schema.table`. */
  readonly key: string;
  readonly name: { readonly tableId: number };
  readonly sorter: { add(event: SorterEvent<SortedRow>): void; addPacked(rows: PackedRows<SortedRow>, ts: Ts): boolean; writable(): Promise<void> };
  /** Removed: it gets nothing more. */
  readonly closed: boolean;
  /** Changes with a ts at or below this are already in the sorter (or were written elsewhere): skipped. */
  floorTs: Ts;
  /** Added behind the reader: skipped until the reader starts again at its floor. */
  awaitingRestart: boolean;
}

/** What the puller tells the stages after it, in this order for one binlog event. */
export interface PullerListener<T extends PulledTable> {
  /** A commit added rows to these tables' sorters (the set is reused: read it now). */
  committed(tables: ReadonlySet<T>): void;
  /** A DDL committed at `ts`; `prevTs` is the commit before it (where tables must stop until the DDL has run). */
  ddl(ts: Ts, prevTs: Ts): void;
  /** The reader's position moved: every change with ts ≤ `ts` is in its table's sorter. */
  moved(ts: Ts, time: number): void;
  /** The reader starts again at an older position for a table added behind it; the other tables skip what they have. */
  restarted(tables: Iterable<T>): void;
}

export interface PullerOptions<T extends PulledTable> {
  /** Reads transactions from a ts (the resumable binlog reader, in production). */
  readonly read: (start: Ts, signal: AbortSignal) => AsyncIterable<ResumableEvent>;
  /** The tables scheduled here, by `schema.table` (the processor's; the puller reads it). */
  readonly tables: ReadonlyMap<string, T>;
  readonly quota: MemoryQuota;
  /** Where a transaction bigger than the quota spills while it is read. */
  readonly store: () => SpillStore;
  /** Makes each rows event's rows into the sorter's payloads (with the TABLE_MAP version the mounter decodes them with). */
  readonly mounter: Pick<Mounter, 'rowsOf'>;
  /** 0 = no end. */
  readonly targetTs: Ts;
  /** `[filter] ignore-txn-start-ts`: transactions whose commit ts is here are dropped whole. */
  readonly ignoredTs: ReadonlySet<Ts>;
  readonly listener: PullerListener<T>;
  readonly logger: Logger;
}

/**
 * The puller (DESIGN §5): one binlog reader for the tables of a changefeed on this capture, from the lowest of
 * their checkpoints. It assembles transactions (the rows of a transaction come before its commit; the
 * transaction buffer holds them, spilling a huge one) and, at the commit, adds each row to its table's sorter with
 * the commit's ts, unless the table already has it (its `floorTs`). Resolved-ts moves on commits, DDL and the
 * upstream's heartbeats. A table added with a checkpoint behind the reader makes the reader start again from
 * there; the tables it already fed skip what they have.
 *
 * Rows are not decoded here: the binlog reader only finds where each row's image is, and each row travels as its
 * binlog bytes behind a small header (SortedRow) to the mounter, which decodes it once.
 */
export class Puller<T extends PulledTable> {
  /** The reader's position: every change with ts ≤ it has been read (for the tables it feeds). */
  readerTs: Ts = 0n;
  /** The commit time at the reader's position (ms). */
  readerTime = 0;
  /** Set when reading stopped at target-ts. */
  targetReached = false;
  /** Row changes read from the binlog for the tables fed here, by kind (counted per rows event; read when scraped). */
  readonly rowsRead = { insert: 0, update: 0, delete: 0 };
  /** The highest position ever read and its commit time (above `readerTs` while the reader reads again). */
  private highTs: Ts = 0n;
  private highTime = 0;
  private started = false;
  private restart: AbortController | undefined;
  private readonly tableArrived = new Notifier();
  private readonly keyOf = new WeakMap<TableMap, string>();
  /** Tables with rows in the transaction being read (fed or not), so a table added mid-transaction is read again. */
  private readonly txnTables = new Set<string>();
  private readonly touched = new Set<T>();

  constructor(private readonly options: PullerOptions<T>) {}

  /**
   * A table was added (its `floorTs` set to its checkpoint). Behind the reader, or the transaction being read
   * already had rows of it (dropped: it was not here yet), the current read cannot feed it (it would get changes
   * out of order or miss some): the reader starts again at its floor.
   */
  tableAdded(table: T): void {
    table.awaitingRestart = this.started && (table.floorTs < this.readerTs || this.txnTables.has(table.key));
    if (table.awaitingRestart) this.restart?.abort(new TidemarkError('ErrAborted', 'reader restarts for a new table'));
    this.tableArrived.wake();
  }

  /** A table fed by the current read is resolved up to the reader; one waiting for the next read, up to its floor. */
  resolvedOf(table: T): Ts {
    if (table.awaitingRestart) return table.floorTs;
    return table.floorTs > this.readerTs ? table.floorTs : this.readerTs;
  }

  /**
   * A commit time for a position a table reached: the reader's time up to its position; above it (fed tables
   * are ahead of a reader that reads again for a new table), the time of the highest position read, so a
   * checkpoint's time is never older than the commit at its ts.
   */
  timeAt(ts: Ts): number {
    return ts <= this.readerTs ? this.readerTime : this.highTime;
  }

  /** Reads until `signal` aborts; starts again from the lowest floor when a table needs older changes. */
  async run(signal: AbortSignal): Promise<void> {
    const { tables } = this.options;
    while (!signal.aborted) {
      if (tables.size === 0) {
        await this.tableArrived.wait(1000, signal);
        continue;
      }
      // tables already fed have everything up to the old position: they skip it when it comes again, and the
      // read starts at the lowest floor after that (the checkpoint of the table added behind the reader)
      let start: Ts | undefined;
      for (const t of tables.values()) {
        if (this.started && !t.awaitingRestart && t.floorTs < this.readerTs) t.floorTs = this.readerTs;
        t.awaitingRestart = false;
        if (start === undefined || t.floorTs < start) start = t.floorTs;
      }
      if (this.started) {
        this.options.logger.debug('binlog reader restarts', { from: String(start), readerTs: String(this.readerTs), floors: [...tables.values()].map((t) => `${t.key}@${t.floorTs}`).join(' ') });
      }
      this.readerTs = start!;
      if (this.started) this.options.listener.restarted(tables.values());
      this.started = true;
      const restart = new AbortController();
      this.restart = restart;
      this.txnTables.clear();
      try {
        await this.read(start!, AbortSignal.any([signal, restart.signal]));
        if (!restart.signal.aborted && !signal.aborted) {
          // reading ended at target-ts: wait for a restart (a new table) or the end
          await new Promise<void>((resolve) => {
            const done = (): void => resolve();
            restart.signal.addEventListener('abort', done, { once: true });
            signal.addEventListener('abort', done, { once: true });
          });
        }
      } catch (error) {
        if (!restart.signal.aborted || signal.aborted) throw error;
      }
      if (restart.signal.aborted && !signal.aborted) this.options.logger.info('binlog reader starts again for a table added behind it');
    }
  }

  private async read(start: Ts, signal: AbortSignal): Promise<void> {
    const { targetTs: target, quota, listener } = this.options;
    if (target !== 0n && start >= target) {
      this.finishAt(target, this.readerTime);
      return;
    }
    const pending = new TransactionBuffer<T>(quota, this.options.store);
    const touched = this.touched;
    touched.clear();
    try {
      for await (const e of this.options.read(start, signal)) {
        switch (e.kind) {
          case 'rows': {
            const { layout } = e;
            const table = this.tableFor(layout.map);
            if (table === undefined) break;
            const rows = this.options.mounter.rowsOf(layout);
            this.rowsRead[layout.kind] += rows.length;
            for (let i = 0; i < rows.length; i++) {
              // add waits only when the transaction spills and its writes must catch up
              const spilling = pending.add({ pipeline: table, seq: e.seq + i, payload: rows[i] });
              if (spilling !== undefined) await spilling;
            }
            break;
          }
          case 'commit':
            if (target !== 0n && e.ts > target) {
              this.finishAt(target, e.commitTime);
              return;
            }
            if (this.options.ignoredTs.has(e.ts)) {
              await pending.reset();
              this.options.logger.info('transaction skipped ([filter] ignore-txn-start-ts)', { ts: String(e.ts) });
            } else {
              await pending.drain((row) => {
                const t = row.pipeline;
                if (t.closed || t.awaitingRestart || e.ts <= t.floorTs) return undefined;
                setRowCommitTime(row.payload, e.commitTime);
                t.sorter.add({ ts: e.ts, seq: row.seq, payload: row.payload });
                touched.add(t);
                // a huge transaction: let the sorter's spill writes catch up as it goes
                return (row.seq & 0x3ff) === 0x3ff ? t.sorter.writable() : undefined;
              }, (t, rows) => {
                // a big transaction of one table: its packed rows go to the sorter as they are
                if (t.closed || t.awaitingRestart || e.ts <= t.floorTs) return false;
                rows.visit((slab, offset) => setPackedRowCommitTime(slab, offset, e.commitTime), (row) => setRowCommitTime(row, e.commitTime));
                if (!t.sorter.addPacked(rows, e.ts)) return false;
                touched.add(t);
                return true;
              });
            }
            this.txnTables.clear();
            if (touched.size > 0) listener.committed(touched);
            this.advance(e.ts, e.commitTime);
            // a slow sink makes the sorters spill; wait while the disk catches up, so memory stays bounded
            for (const t of touched) await t.sorter.writable();
            touched.clear();
            // a sink that takes rows slower than they are read: the backlog waits in the binlog, not in memory
            if (quota.readAheadFull && (await quota.readAhead(signal)) === 'stalled') {
              this.options.logger.warn('the binlog reader waited for the sink, but no row went to it for a while: it reads on, and the sorters may spill', {
                heldBytes: quota.binlogUsed,
                quietMs: quota.stallMs,
              });
            }
            if (target !== 0n && e.ts === target) {
              this.finishAt(target, e.commitTime);
              return;
            }
            break;
          case 'ddl':
            if (target !== 0n && e.ts > target) {
              this.finishAt(target, e.commitTime);
              return;
            }
            listener.ddl(e.ts, this.readerTs);
            this.advance(e.ts, e.commitTime);
            break;
          case 'resolved':
            // from the shared read, a position past commits with none of these tables' rows: it may pass target-ts
            if (target !== 0n && e.ts >= target) {
              this.finishAt(target, e.time);
              return;
            }
            this.advance(e.ts, e.time);
            break;
          case 'reset':
            // the reader reconnects at the last commit: rows of the unfinished transaction come again
            await pending.reset();
            this.txnTables.clear();
            this.options.logger.warn('upstream connection lost; reading again from the last commit', { ts: String(e.ts), error: e.error.message });
            break;
        }
      }
    } finally {
      touched.clear();
      await pending.reset().catch(() => undefined);
    }
  }

  private finishAt(target: Ts, time: number): void {
    this.targetReached = true;
    this.advance(target, time);
    this.options.logger.info('reached target-ts', { targetTs: String(target) });
  }

  private advance(ts: Ts, time: number): void {
    if (ts === this.readerTs && time > this.readerTime) {
      // a heartbeat of an idle upstream: nothing after ts as of `time`, so what stands at ts is current as of then
      // (the checkpoint's time moves on and its lag stays small, as TiCDC's does while nothing is written)
      this.readerTime = time;
      if (ts === this.highTs) this.highTime = time;
      this.options.listener.moved(ts, time);
      return;
    }
    if (ts <= this.readerTs) return;
    this.readerTs = ts;
    this.readerTime = time;
    if (ts > this.highTs) {
      this.highTs = ts;
      this.highTime = time;
    }
    this.options.listener.moved(ts, time);
  }

  /** The table of a row event when it is fed here, or undefined; notes it as part of the transaction either way. */
  private tableFor(map: TableMap): T | undefined {
    let key = this.keyOf.get(map);
    if (key === undefined) {
      key = `${map.schema}.${map.table}`;
      this.keyOf.set(map, key);
    }
    this.txnTables.add(key);
    const table = this.options.tables.get(key);
    if (table !== undefined && map.names === undefined) {
      throw new TidemarkError('ErrBinlogRowImageNotFull', `the upstream sent no column names for ${key}: set binlog_row_metadata=FULL on the upstream`);
    }
    return table;
  }
}
