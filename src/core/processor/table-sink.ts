import { TidemarkError } from '../errors/index.js';
import type { Logger } from '../logger/logger.js';
import type { MemoryQuota } from '../pipeline/sorter/memory-quota.js';
import type { SorterEvent } from '../pipeline/sorter/table-sorter.js';
import { decodedRowBytes, type SortedRow } from '../pipeline/row-codec.js';
import type { RowChangedEvent, Sink, Ts } from '../sink/api.js';
import type { ProgressClock, TablePipeline } from './table-pipeline.js';
import type { SnapshotPiece } from '../snapshot/table-snapshot.js';

/** Rows per `writeRows` call (for a sink with `transactionAtomicity: 'table'`, at least to the end of the transaction). */
export const WRITE_BATCH = 1024;
/**
 * To a sink with table atomicity, one transaction's rows of one table go in one call up to this many rows (and
 * half the memory quota, which the rows held for it take from); a bigger transaction is handed over in parts.
 */
export const MAX_TXN_BATCH = 65_536;
/** Flushes the stage keeps in flight at once; rows go on being written meanwhile. */
export const MAX_FLUSHES_IN_FLIGHT = 4;
/** Within one pass over the tables with new rows, a flush starts once this many rows wait for one (else at its end). */
const FLUSH_EARLY_ROWS = 8 * WRITE_BATCH;
/**
 * A sink whose calls resolve at once (the blackhole, a plugin that only buffers) would let a backlog's hand-over run
 * as one chain of promise callbacks, and timers and sockets wait for its end (the etcd session's keep-alive, the
 * API): after this long without a turn of the event loop the stage gives it one.
 */
const TURN_MS = 20;

/** What the stage needs to know of the reader that feeds the tables. */
export interface ReaderProgress {
  /** Every change of the table with ts ≤ this has been added to its sorter. */
  resolvedOf(table: TablePipeline): Ts;
  /** The commit time to give a checkpoint at `ts` (ms): never older than the commit at `ts`. */
  timeAt(ts: Ts): number;
}

export interface TableSinkOptions {
  readonly sink: Sink;
  readonly quota: MemoryQuota;
  readonly reader: ReaderProgress;
  /**
   * The mounter: a sorted change of the table becomes a RowChangedEvent (and is counted in the table's stats);
   * undefined when the table's snapshot rows hold it (see TableSnapshot.keep).
   */
  readonly mount: (table: TablePipeline, event: SorterEvent<SortedRow>) => RowChangedEvent | undefined;
  /** Types a sink call's failure (retryable or not) naming the call. */
  readonly sinkError: (call: string, error: unknown) => TidemarkError;
  /** A removed table whose written rows are all acknowledged: the processor closes it and reports its checkpoint. */
  readonly onRemoved: (table: TablePipeline) => Promise<void>;
  /**
   * Checkpoints moved (the processor tells the owner): on an acknowledgement, and at the end of a pass that moved
   * any (idle tables reaching a barrier that moved, or the clock they follow), so the owner hears of them even
   * while the reader stands still (held back by rows that wait for that very owner to run a DDL).
   */
  readonly onProgress?: () => void;
  /** Empties the table in the sink before a one-pass snapshot starts over (see TableSnapshot.truncateFirst). */
  readonly truncate?: (table: TablePipeline, ts: Ts) => Promise<void>;
  /** Snapshot pieces of the table the sink acknowledged, in order (the processor records the copy's progress). */
  readonly onSnapshotAcknowledged?: (table: TablePipeline, pieces: readonly SnapshotPiece[]) => void;
  readonly logger: Logger;
  readonly barrierTs: Ts;
  readonly maxFlushesInFlight?: number;
  /** Counts each writeRows batch (rows by kind, duration) and flush (duration to acknowledgement). */
  readonly metrics?: { written(rows: readonly RowChangedEvent[], seconds: number): void; flushed(seconds: number): void };
}

/** Calls the stage made, counted so a test can show what a committed transaction costs (not how long it takes). */
export interface TableSinkStats {
  /** Times the stage woke up. */
  wakeups: number;
  /** Tables looked at, over all wake-ups. */
  tableVisits: number;
  writeCalls: number;
  flushes: number;
  acknowledgements: number;
}

/** One flush: the tables written (or moved) since the flush before it, each with the ts it reaches once acknowledged. */
class FlushRound {
  readonly tables = new Map<TablePipeline, { upTo: Ts; time: number }>();
  /** Snapshot pieces written in this round, by table. */
  readonly pieces = new Map<TablePipeline, SnapshotPiece[]>();
  rows = 0;
  flushTo: Ts = 0n;
  acknowledged = false;

  add(table: TablePipeline, upTo: Ts, time: number): void {
    const entry = this.tables.get(table);
    if (entry === undefined) {
      this.tables.set(table, { upTo, time });
      table.pendingRounds++;
    } else if (upTo > entry.upTo) {
      entry.upTo = upTo;
      entry.time = time;
    }
    if (upTo > this.flushTo) this.flushTo = upTo;
  }
}

/**
 * The table sink stage of a processor (DESIGN §5, "table sink"): hands each table's sorted changes to the sink
 * plugin in commit order, asks for flushes and moves each table's checkpoint when the flush covering it is
 * acknowledged. It is event-driven: it works when rows are committed to a table, the reader or the barrier
 * moves, a flush is acknowledged, or a table comes or goes; it looks only at the tables something happened to.
 * An idle table follows the shared ProgressClock and costs nothing per event.
 *
 * Flushes overlap writes: while up to `maxFlushesInFlight` flushes are pending, rows of later transactions go
 * on to the sink. A flush covers every row handed over before it was called, so its acknowledgement also
 * acknowledges every earlier round, whatever order they resolve in. The invariants hold throughout: a
 * table's checkpoint never passes an unacknowledged row, its resolved-ts or the barrier, and never goes back.
 */
export class TableSinkStage {
  readonly stats: TableSinkStats = { wakeups: 0, tableVisits: 0, writeCalls: 0, flushes: 0, acknowledgements: 0 };
  private readonly clock: ProgressClock = { ts: 0n, time: 0 };
  private readerHigh: Ts = 0n;
  private barrierTs: Ts;
  /** Tables with rows to hand over (or a new position to reach). */
  private readonly dirty = new Set<TablePipeline>();
  /** Tables whose next rows are beyond the barrier: looked at again when it moves. */
  private readonly blocked = new Set<TablePipeline>();
  /**
   * Idle tables that cannot follow the clock yet (behind it, or fed by a reader that has not caught up): looked at
   * again only when the reader, the clock or the barrier moves (`recheck`), not at every wake-up.
   */
  private readonly waiting = new Set<TablePipeline>();
  /** Tables to settle at the next pass whatever moved: just added, or their last flush acknowledged. */
  private readonly fresh = new Set<TablePipeline>();
  /** The reader, the clock or the barrier moved since the waiting tables were last looked at. */
  private recheck = false;
  /** A checkpoint moved (or the clock idle tables follow) since onProgress was last called. */
  private checkpointsMoved = false;
  /** Removed tables waiting for their written rows to be acknowledged. */
  private readonly removals = new Set<TablePipeline>();
  private open = new FlushRound();
  private readonly inFlight: FlushRound[] = [];
  /** The table being handed over now: a removal waits for it. */
  private current: TablePipeline | undefined;
  private failure: TidemarkError | undefined;
  private pending = false;
  private resolveWait: (() => void) | undefined;
  private readonly maxFlushes: number;
  /** When the stage last gave the event loop a turn (see TURN_MS). */
  private turnAt = performance.now();

  constructor(private readonly options: TableSinkOptions) {
    this.barrierTs = options.barrierTs;
    this.maxFlushes = options.maxFlushesInFlight ?? MAX_FLUSHES_IN_FLIGHT;
  }

  /** Runs until `signal` aborts (resolves) or a sink call fails (rejects with the typed error). */
  async run(signal: AbortSignal): Promise<void> {
    const onAbort = (): void => this.wake();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      for (;;) {
        await this.waitForWork();
        this.throwIfFailed();
        if (signal.aborted) return;
        this.stats.wakeups++;
        await this.pass(signal);
        this.throwIfFailed();
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  // ------------------------------------------------------------------------------------------------ events

  /** Rows of these tables were added to their sorters (a transaction committed). */
  committed(tables: Iterable<TablePipeline>): void {
    let any = false;
    for (const table of tables) {
      if (table.state !== 'replicating' || table.closed || table.stopRequested) continue;
      table.detach();
      this.waiting.delete(table);
      this.fresh.delete(table);
      this.blocked.delete(table);
      this.dirty.add(table);
      any = true;
    }
    if (any) this.wake();
  }

  /** Rows read from the table for its snapshot are waiting to be written. */
  snapshotPiece(table: TablePipeline): void {
    if (table.state !== 'replicating' || table.closed || table.stopRequested) return;
    table.detach();
    this.waiting.delete(table);
    this.fresh.delete(table);
    this.blocked.delete(table);
    this.dirty.add(table);
    this.wake();
  }

  /** The reader moved: every table it feeds has all its changes up to `ts`. */
  readerMoved(ts: Ts): void {
    if (ts > this.readerHigh) this.readerHigh = ts;
    this.moveClock();
    if (this.waiting.size > 0) {
      this.recheck = true;
      this.wake();
    }
  }

  barrierMoved(ts: Ts): void {
    if (ts <= this.barrierTs) return;
    this.barrierTs = ts;
    this.moveClock();
    this.recheck = true;
    for (const table of this.blocked) this.dirty.add(table);
    this.blocked.clear();
    this.wake();
  }

  /** A table to write: new here, or a secondary promoted to primary. */
  added(table: TablePipeline): void {
    if (table.state !== 'replicating') return;
    table.detach();
    if (table.sorter.isEmpty) this.fresh.add(table);
    else this.dirty.add(table);
    this.wake();
  }

  /** The reader started again from an older position (a table was added behind it): every table is looked at again. */
  readerRestarted(tables: Iterable<TablePipeline>): void {
    for (const table of tables) if (table.state === 'replicating' && !table.following && table.pendingRounds === 0) this.waiting.add(table);
    this.recheck = true;
    this.wake();
  }

  /**
   * The owner took the table away: nothing more of it is written; once what was written is acknowledged,
   * `onRemoved` closes it with its final checkpoint.
   */
  removed(table: TablePipeline): void {
    table.detach();
    if (table.snapshot !== undefined) this.options.quota.releaseSnapshot(table.snapshot.discard());
    this.dirty.delete(table);
    this.blocked.delete(table);
    this.waiting.delete(table);
    this.fresh.delete(table);
    this.removals.add(table);
    this.wake();
  }

  // ------------------------------------------------------------------------------------------------ the work

  private async pass(signal: AbortSignal): Promise<void> {
    await this.finishRemovals();
    for (const table of [...this.fresh]) {
      this.stats.tableVisits++;
      this.fresh.delete(table);
      this.waiting.delete(table);
      this.settle(table);
    }
    if (this.recheck) {
      this.recheck = false;
      for (const table of [...this.waiting]) {
        this.stats.tableVisits++;
        this.waiting.delete(table);
        this.settle(table);
      }
    }
    while (this.dirty.size > 0 && !signal.aborted && this.failure === undefined) {
      const table = this.dirty.values().next().value as TablePipeline;
      this.dirty.delete(table);
      this.stats.tableVisits++;
      await this.handOver(table, signal);
      // a long pass: what was written so far is flushed now, and writing goes on while that flush is in flight
      if (this.open.rows >= FLUSH_EARLY_ROWS) this.flushOpenRound();
      if (this.removals.size > 0) await this.finishRemovals();
    }
    this.flushOpenRound();
    this.reportProgress();
  }

  /** Tells the processor that checkpoints moved, once for all those moved since it was last told. */
  private reportProgress(): void {
    if (!this.checkpointsMoved) return;
    this.checkpointsMoved = false;
    this.options.onProgress?.();
  }

  /**
   * Writes the table's changes up to its resolved-ts (never past the barrier, nor, while its snapshot is copied,
   * past the next snapshot piece: once written up to that piece's ts, the piece goes, and so on) and notes what
   * it will reach.
   */
  private async handOver(table: TablePipeline, signal: AbortSignal): Promise<void> {
    if (table.closed || table.stopRequested || table.state !== 'replicating') return;
    let pieceRows = 0;
    for (;;) {
      const upTo = this.upToOf(table);
      if (upTo > table.writtenTs) {
        const time = this.options.reader.timeAt(upTo);
        let rows = 0;
        if (!table.sorter.isEmpty) {
          this.current = table;
          table.handingTo = upTo;
          try {
            rows = await this.drain(table, upTo, signal);
          } finally {
            this.current = undefined;
            table.handingTo = undefined;
          }
          if (table.closed) return;
        }
        table.writtenTs = upTo;
        if (rows > 0) {
          this.open.add(table, upTo, time);
          this.open.rows += rows;
        } else if (this.open.tables.has(table)) {
          this.open.add(table, upTo, time);
        } else if (table.pendingRounds > 0) {
          // nothing new was written since its last flush call: that flush covers it up to here as well
          this.inFlight[this.inFlight.length - 1].add(table, upTo, time);
        } else {
          this.reach(table, upTo, time);
        }
      }
      const piece = table.snapshot?.front();
      if (piece === undefined || piece.ts > table.writtenTs || table.stopRequested || table.closed || signal.aborted) break;
      if (pieceRows >= FLUSH_EARLY_ROWS) {
        // chunks read at once can keep a piece ready all the time: the table goes to the back of the line, so the
        // other tables get their turn and what was written is flushed (and acknowledged) on the way
        this.dirty.add(table);
        return;
      }
      pieceRows += piece.rows.length;
      await this.writePiece(table, piece);
    }
    if (table.stopRequested) return; // removed while it was handed over: finished once its rows are acknowledged
    const copying = table.snapshot !== undefined && !table.snapshot.finished;
    if (copying && table.snapshot!.front() !== undefined) this.waiting.add(table); // its piece waits for the reader or the barrier
    // rows committed while it was handed over made it dirty again: the next hand-over takes them, it is not blocked
    else if (!table.sorter.isEmpty) {
      if (!this.dirty.has(table)) this.blocked.add(table);
    }
    else if (table.pendingRounds === 0) this.settle(table);
  }

  /** Hands a snapshot piece (rows read at the ts the table is written up to) to the sink, in WRITE_BATCH calls. */
  private async writePiece(table: TablePipeline, front: SnapshotPiece): Promise<void> {
    const piece = table.snapshot!.begin(front);
    const { rows } = piece;
    this.current = table;
    try {
      if (table.snapshot!.truncateFirst) {
        await this.options.truncate?.(table, piece.ts);
        table.snapshot!.truncateFirst = false;
      }
      for (let i = 0; i < rows.length; i += WRITE_BATCH) {
        const end = Math.min(i + WRITE_BATCH, rows.length);
        // the piece's quota goes back with its last call
        await this.write(table, i === 0 && end === rows.length ? (rows as RowChangedEvent[]) : rows.slice(i, end), end === rows.length ? piece.bytes : 0, true);
      }
    } finally {
      this.current = undefined;
    }
    table.snapshot!.written(piece);
    this.open.add(table, table.writtenTs, this.options.reader.timeAt(table.writtenTs));
    this.open.rows += rows.length;
    const pieces = this.open.pieces.get(table);
    if (pieces === undefined) this.open.pieces.set(table, [piece]);
    else pieces.push(piece);
  }

  /**
   * Hands every change of the table with writtenTs < ts ≤ upTo to the sink, in commit order, in batches of
   * about WRITE_BATCH rows; for a sink with `transactionAtomicity: 'table'` they end at a transaction boundary.
   * Returns the rows handed over.
   */
  private async drain(pipeline: TablePipeline, upTo: Ts, signal: AbortSignal): Promise<number> {
    const { quota, sink, mount, logger } = this.options;
    pipeline.sorter.advanceResolved(upTo);
    let batch: RowChangedEvent[] = [];
    let batchBytes = 0;
    let rows = 0;
    /** Batches complete (at a transaction boundary) and not handed over yet, with the quota bytes they hold. */
    const complete: [RowChangedEvent[], number][] = [];
    const maxBatchBytes = quota.limitBytes / 2;
    const wholeTransactions = sink.transactionAtomicity === 'table';
    const writtenTs = pipeline.writtenTs;
    const ready: SorterEvent<SortedRow>[] = [];
    const take = (event: SorterEvent<SortedRow>): void => {
      // a promoted secondary holds changes the old primary already wrote
      if (event.ts <= writtenTs) return;
      if (batch.length >= WRITE_BATCH) {
        const last = batch[batch.length - 1].commitTs;
        if (!wholeTransactions || event.ts !== last || batch.length >= MAX_TXN_BATCH || batchBytes >= maxBatchBytes) {
          if (wholeTransactions && event.ts === last) logger.warn('a transaction is handed to the sink in parts: too many rows in one table for one call (65,536) or for half the memory-quota', { table: pipeline.key, ts: String(last), rows: batch.length, bytes: batchBytes });
          complete.push([batch, batchBytes]);
          batch = [];
          batchBytes = 0;
        }
      }
      const row = mount(pipeline, event);
      if (row === undefined) return;
      // the rows held for the sink count against the memory quota, so the sorters spill instead
      const bytes = decodedRowBytes(event.payload);
      quota.force(bytes);
      batchBytes += bytes;
      batch.push(row);
    };
    try {
      for (;;) {
        // what is ready in memory is taken in batches; next() waits for disk reads and reports the resolved-ts
        ready.length = 0;
        pipeline.sorter.takeReady(WRITE_BATCH, ready);
        if (ready.length > 0) {
          for (const event of ready) take(event);
          if (performance.now() - this.turnAt > TURN_MS) await this.giveTurn();
        } else {
          let out;
          try {
            out = await pipeline.sorter.next(signal);
          } catch (error) {
            if (pipeline.closed) return rows; // removed while it was drained: the new capture starts from its checkpoint
            throw error;
          }
          if (out.kind === 'resolved') break;
          take(out.event);
        }
        while (complete.length > 0) {
          const [part, held] = complete.shift()!;
          rows += part.length;
          await this.write(pipeline, part, held);
        }
      }
      const [part, held] = [batch, batchBytes];
      batch = [];
      batchBytes = 0;
      if (part.length > 0) {
        rows += part.length;
        await this.write(pipeline, part, held);
      }
    } finally {
      // left on the way out (the table was removed, or the sink failed): give the quota back
      quota.release(batchBytes + complete.reduce((n, [, held]) => n + held, 0));
    }
    return rows;
  }

  /** Lets timers and I/O callbacks run (see TURN_MS). */
  private async giveTurn(): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.turnAt = performance.now();
  }

  /** One `writeRows`; the quota the rows held is given back once the sink has them (a snapshot piece's as its share). */
  private async write(pipeline: TablePipeline, rows: RowChangedEvent[], heldBytes: number, snapshot = false): Promise<void> {
    this.stats.writeCalls++;
    try {
      const started = performance.now();
      await this.options.sink.writeRows(pipeline.name, rows);
      this.options.metrics?.written(rows, (performance.now() - started) / 1000);
    } catch (error) {
      throw this.options.sinkError('writeRows', error);
    } finally {
      if (snapshot) this.options.quota.releaseSnapshot(heldBytes);
      else this.options.quota.release(heldBytes);
    }
  }

  /** Starts the flush of the rows written since the last one, when a slot is free; writing does not wait for it. */
  private flushOpenRound(): void {
    if ((this.open.rows === 0 && this.open.pieces.size === 0) || this.inFlight.length >= this.maxFlushes || this.failure !== undefined) return;
    const round = this.open;
    this.open = new FlushRound();
    this.inFlight.push(round);
    this.stats.flushes++;
    let call: Promise<void>;
    const started = performance.now();
    try {
      call = this.options.sink.flush(round.flushTo);
    } catch (error) {
      call = Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    call.then(
      () => {
        this.options.metrics?.flushed((performance.now() - started) / 1000);
        this.acknowledged(round);
      },
      (error: unknown) => this.fail(this.options.sinkError('flush', error)),
    );
  }

  /** A flush resolved: it and every round before it are acknowledged (a flush covers all rows handed over before it). */
  private acknowledged(round: FlushRound): void {
    if (this.failure !== undefined) return;
    round.acknowledged = true;
    const last = this.inFlight.indexOf(round);
    if (last < 0) return;
    const done = this.inFlight.splice(0, last + 1);
    try {
      for (const r of done) {
        this.stats.acknowledgements++;
        for (const [table, pieces] of r.pieces) if (!table.closed) this.options.onSnapshotAcknowledged?.(table, pieces);
        for (const [table, { upTo, time }] of r.tables) {
          table.pendingRounds--;
          if (table.closed) continue;
          if (upTo > table.checkpointTs) this.reach(table, upTo, time);
          if (table.pendingRounds === 0) {
            if (table.stopRequested) continue; // finished by the next pass
            if (table.sorter.isEmpty && !this.dirty.has(table) && !this.blocked.has(table)) this.fresh.add(table);
          }
        }
      }
    } catch (error) {
      this.fail(error instanceof TidemarkError ? error : new TidemarkError('ErrInvariantBroken', String(error)));
      return;
    }
    this.checkpointsMoved = true;
    this.reportProgress();
    this.wake();
  }

  /** Moves the table's checkpoint to `ts`, checking DESIGN §1's invariants. */
  private reach(table: TablePipeline, ts: Ts, time: number): void {
    if (ts < table.checkpointTs) throw new TidemarkError('ErrInvariantBroken', `table ${table.key}: checkpoint-ts would go back from ${table.checkpointTs} to ${ts}`);
    const resolved = this.options.reader.resolvedOf(table);
    if (ts > resolved) throw new TidemarkError('ErrInvariantBroken', `table ${table.key}: checkpoint-ts ${ts} would pass its resolved-ts ${resolved}`);
    if (table.writtenTs < ts) throw new TidemarkError('ErrInvariantBroken', `table ${table.key}: checkpoint-ts ${ts} would pass what was written to the sink (${table.writtenTs})`);
    table.checkpointTs = ts;
    table.checkpointTime = time;
    this.checkpointsMoved = true;
  }

  /**
   * An idle table (nothing in its sorter, nothing waiting for an acknowledgement): it follows the clock when the
   * clock is not behind it and the reader has given it everything up to the reader's highest position (the clock
   * reaches that as soon as the barrier moves, whatever the barrier was when the table joined); otherwise it
   * reaches what it can now and waits (a table fed by a reader reading again from an older position).
   */
  private settle(table: TablePipeline): void {
    if (table.closed || table.stopRequested || table.state !== 'replicating' || table.pendingRounds > 0) return;
    if (!table.sorter.isEmpty) {
      this.dirty.add(table);
      return;
    }
    if (table.snapshot !== undefined && !table.snapshot.finished) {
      // copying: never follows the clock (the table goes no further than its snapshot's pieces)
      const upTo = this.upToOf(table);
      const piece = table.snapshot.front();
      if (piece !== undefined && piece.ts <= upTo) {
        this.dirty.add(table);
        return;
      }
      if (upTo > table.checkpointTs && upTo >= table.writtenTs) {
        table.writtenTs = upTo;
        this.reach(table, upTo, this.options.reader.timeAt(upTo));
      }
      this.waiting.add(table);
      return;
    }
    const resolved = this.options.reader.resolvedOf(table);
    if (!table.awaitingRestart && resolved >= this.readerHigh && this.clock.ts >= table.checkpointTs) {
      table.follow(this.clock);
      return;
    }
    const upTo = this.upToOf(table);
    if (upTo > table.checkpointTs) {
      table.writtenTs = upTo;
      this.reach(table, upTo, this.options.reader.timeAt(upTo));
    }
    this.waiting.add(table);
  }

  private async finishRemovals(): Promise<void> {
    for (const table of [...this.removals]) {
      if (table.pendingRounds > 0 || table === this.current) continue;
      this.removals.delete(table);
      await this.options.onRemoved(table);
    }
  }

  private upToOf(table: TablePipeline): Ts {
    const resolved = this.options.reader.resolvedOf(table);
    const upTo = resolved < this.barrierTs ? resolved : this.barrierTs;
    const cap = table.snapshot?.cap;
    return cap !== undefined && cap < upTo ? cap : upTo;
  }

  private moveClock(): void {
    const ts = this.readerHigh < this.barrierTs ? this.readerHigh : this.barrierTs;
    if (ts > this.clock.ts) {
      this.clock.ts = ts;
      this.clock.time = this.options.reader.timeAt(ts);
      this.checkpointsMoved = true;
    } else if (ts === this.clock.ts && ts === this.readerHigh) {
      // the reader's position seen again later (an idle upstream's heartbeat), not a barrier holding the clock:
      // the idle tables' checkpoint time moves on
      const time = this.options.reader.timeAt(ts);
      if (time > this.clock.time) this.clock.time = time;
    }
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure;
  }

  private fail(error: TidemarkError): void {
    this.failure ??= error;
    this.wake();
  }

  private wake(): void {
    this.pending = true;
    this.resolveWait?.();
  }

  private async waitForWork(): Promise<void> {
    if (!this.pending) await new Promise<void>((resolve) => (this.resolveWait = resolve));
    this.resolveWait = undefined;
    this.pending = false;
  }
}
