import { BugIndicatingError } from '../../errors/index.js';
import { abortReason } from '../../lifecycle/abortable.js';

/**
 * How far the binlog's reader may run ahead of a sink that takes rows: the binlog rows held in memory for the sink
 * (in sorters, transactions being read, batches being handed over) at which it waits. A backlog then stays in the
 * upstream's binlog, where it costs nothing, instead of in this process's memory; with a quota below it, the quota
 * binds first and the sorters spill as before.
 */
export const READ_AHEAD_BYTES = 16 << 20;
/** How long the reader waits while nothing is given back before it reads on (what is held cannot go to the sink yet). */
export const READ_AHEAD_STALL_MS = 10_000;

/**
 * A changefeed's memory budget on one capture (changefeed.toml `memory-quota`): the sorters of all its
 * tables take from it; what does not fit spills to disk. Rows the initial snapshot read count too, as a share of
 * their own (they come from the upstream's tables, not the binlog, and never wait for the binlog's reader).
 */
export class MemoryQuota {
  private usedBytes = 0;
  private peakBytes = 0;
  private snapshotBytes = 0;
  /** Acquisitions refused (the rows spilled instead): the quota-waits metric, read when scraped. */
  denied = 0;
  /** Waits of the binlog's reader for the sink (readAhead), the milliseconds they took, and those that ended in a stall: read when scraped. */
  readAheadWaits = 0;
  readAheadWaitMs = 0;
  readAheadStalls = 0;
  /** The binlog's reader waiting for room (see readAhead). */
  private waiter: (() => void) | undefined;
  /** Something was given back since the reader's wait began (or its stall timer was last set). */
  private gaveBack = false;
  /**
   * The last wait ended without anything given back: what is held cannot go to the sink yet (rows behind a DDL
   * barrier, a table held by its copy). The reader does not wait again until something is given back.
   */
  private stalled = false;

  constructor(
    readonly limitBytes: number,
    private readonly readAheadBytes = READ_AHEAD_BYTES,
    readonly stallMs = READ_AHEAD_STALL_MS,
  ) {}

  get used(): number {
    return this.usedBytes;
  }

  get peak(): number {
    return this.peakBytes;
  }

  /** Bytes held for the sink of rows read from the binlog (all but the snapshot's). */
  get binlogUsed(): number {
    return this.usedBytes - this.snapshotBytes;
  }

  /** Takes `bytes` if they fit under the limit; never blocks. */
  tryAcquire(bytes: number): boolean {
    if (this.usedBytes + bytes > this.limitBytes) {
      this.denied++;
      return false;
    }
    this.usedBytes += bytes;
    if (this.usedBytes > this.peakBytes) this.peakBytes = this.usedBytes;
    return true;
  }

  /** Takes `bytes` even past the limit (rows that must stay together, e.g. a transaction handed to the sink whole). */
  force(bytes: number): void {
    this.usedBytes += bytes;
    if (this.usedBytes > this.peakBytes) this.peakBytes = this.usedBytes;
  }

  /** Gives back bytes of rows that went on to the sink (or left the changefeed): the rows held are not stuck. */
  release(bytes: number): void {
    this.releaseRead(bytes);
    if (bytes > 0) {
      this.gaveBack = true;
      this.stalled = false;
    }
    // it reads on once half the read-ahead went to the sink: not one wait per transaction
    if (this.waiter !== undefined && this.binlogUsed <= this.readAheadBytes / 2) this.waiter();
  }

  /**
   * Gives back bytes the binlog's reader let go itself (a transaction's rows moved on to the sorters, which take
   * their own share, or were dropped): that says nothing of the sink, so a reader found stalled stays so. (Counted
   * as release, each transaction read after a stall ended it: the reader then read one transaction per stall time.)
   */
  releaseRead(bytes: number): void {
    this.usedBytes -= bytes;
    if (this.usedBytes < 0) this.usedBytes = 0;
  }

  /** force, for rows the initial snapshot read (bounded by its own read slots, not by the binlog's reader). */
  forceSnapshot(bytes: number): void {
    this.snapshotBytes += bytes;
    this.force(bytes);
  }

  /** release, for rows the initial snapshot read: they say nothing of whether the binlog rows held can go. */
  releaseSnapshot(bytes: number): void {
    this.snapshotBytes -= bytes;
    this.usedBytes -= bytes;
    if (this.snapshotBytes < 0) this.snapshotBytes = 0;
    if (this.usedBytes < 0) this.usedBytes = 0;
  }

  /**
   * The binlog rows held reached the read-ahead, and the reader has not found them stuck (see readAhead): the
   * binlog's reader checks this between transactions, and waits with readAhead when it is true.
   */
  get readAheadFull(): boolean {
    return !this.stalled && this.binlogUsed >= this.readAheadBytes;
  }

  /**
   * Resolves at once unless readAheadFull; else when the binlog rows held fall to half the read-ahead, or when
   * nothing was given back for the stall time (the rows held cannot go to the sink until the reader reads on: it
   * then reads on, and the sorters spill past the quota). Says which of the two ended it ('room' also when there was
   * no need to wait). Rejects when `signal` aborts. One waiter at a time (the changefeed's one reader).
   */
  readAhead(signal: AbortSignal): Promise<'room' | 'stalled'> {
    if (!this.readAheadFull) return Promise.resolve('room');
    if (this.waiter !== undefined) throw new BugIndicatingError('two readers wait for the same memory quota');
    if (signal.aborted) return Promise.reject(abortReason(signal));
    this.readAheadWaits++;
    const began = performance.now();
    return new Promise<'room' | 'stalled'>((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        this.waiter = undefined;
        this.readAheadWaitMs += performance.now() - began;
      };
      const onAbort = (): void => {
        done();
        reject(abortReason(signal));
      };
      const check = (): void => {
        if (this.gaveBack) {
          this.gaveBack = false;
          timer = setTimeout(check, this.stallMs);
          return;
        }
        this.stalled = true;
        this.readAheadStalls++;
        done();
        resolve('stalled');
      };
      this.gaveBack = false;
      let timer = setTimeout(check, this.stallMs);
      this.waiter = () => {
        done();
        resolve('room');
      };
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}
