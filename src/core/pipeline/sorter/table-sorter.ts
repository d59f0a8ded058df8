import { BugIndicatingError, TidemarkError } from '../../errors/index.js';
import type { MemoryQuota } from './memory-quota.js';
import { encodeKey, tablePrefix, type SpillStore } from './spill-store.js';

/** One change as the sorter sees it: its ts, its order within the transaction, and its encoded bytes. */
export interface SorterEvent {
  readonly ts: bigint;
  readonly seq: number;
  readonly payload: Buffer;
}

/** What `next()` yields: an event that is safe to emit (ts ≤ resolved-ts), or the resolved-ts itself once all before it are out. */
export type SorterOutput = { readonly kind: 'event'; readonly event: SorterEvent } | { readonly kind: 'resolved'; readonly ts: bigint };

export interface TableSorterStats {
  memoryEvents: number;
  spilledEvents: number;
  spilledBytes: number;
  totalSpilledBytes: number;
}

/** Fixed per-event overhead counted against the quota besides the payload. */
const EVENT_OVERHEAD = 64;
/** Spilled events are written as blocks of about this size: one LevelDB entry per block, not per event. */
const BLOCK_BYTES = 256 * 1024;
const BLOCK_HEADER = 16; // u32 payload length, u64 ts, u32 seq
/** Spill blocks in flight beyond this make `writable()` wait, so a fast puller cannot outrun the disk. */
const SPILL_BACKLOG_BYTES = 4 * 1024 * 1024;

/**
 * The sorter of one table pipeline (DESIGN §5). The binlog already delivers a table's changes in commit
 * order, so the sorter's work is to hold them until the resolved-ts passes them and to keep memory within
 * the changefeed's quota: while the quota has room events stay in memory; past it they spill to LevelDB
 * and come back in (ts, seq) order. The queue is always [memory head][disk segment]: once anything is on
 * disk, new events go to disk too, until the disk segment is drained, so order never breaks.
 *
 * `add` and `advanceResolved` are called by the puller side, `next` by the sink side; neither blocks
 * the other. `close` drops the table's spilled data.
 */
export class TableSorter {
  readonly stats: TableSorterStats = { memoryEvents: 0, spilledEvents: 0, spilledBytes: 0, totalSpilledBytes: 0 };
  private readonly memory: SorterEvent[] = [];
  private memoryHead = 0;
  private pendingWrites: SorterEvent[] = [];
  private pendingBytes = 0;
  private readBuffer: SorterEvent[] = [];
  private readIndex = 0;
  private diskCount = 0;
  private lastAdded: { ts: bigint; seq: number } | undefined;
  private resolvedTs = 0n;
  private emittedResolved = 0n;
  private waiter: (() => void) | undefined;
  private closed = false;
  /** Disk writes in flight, in order; a read of the disk segment waits for them. */
  private writeChain: Promise<void> = Promise.resolve();
  private failure: Error | undefined;
  private inFlightBytes = 0;
  private writableWaiters: (() => void)[] = [];
  /** Bumped on every add, resolve or failure, so `next` never sleeps through one that came during a disk read. */
  private changes = 0;

  constructor(
    readonly tableId: number,
    private readonly quota: MemoryQuota,
    private readonly store: SpillStore,
  ) {}

  get resolved(): bigint {
    return this.resolvedTs;
  }

  /** Appends a change; must come in (ts, seq) order. Never blocks: beyond the quota it goes to disk. */
  add(event: SorterEvent): void {
    if (this.closed) throw new TidemarkError('ErrClosed', `sorter of table ${this.tableId} is closed`);
    const last = this.lastAdded;
    if (last !== undefined && (event.ts < last.ts || (event.ts === last.ts && event.seq <= last.seq))) {
      throw new BugIndicatingError(`sorter of table ${this.tableId} got (${event.ts}, ${event.seq}) after (${last.ts}, ${last.seq})`);
    }
    if (event.ts <= this.resolvedTs) {
      throw new BugIndicatingError(`sorter of table ${this.tableId} got ts ${event.ts} at or below resolved-ts ${this.resolvedTs}`);
    }
    this.lastAdded = { ts: event.ts, seq: event.seq };
    const cost = event.payload.length + EVENT_OVERHEAD;
    if (this.diskCount === 0 && this.quota.tryAcquire(cost)) {
      this.memory.push(event);
      this.stats.memoryEvents++;
    } else {
      this.pendingWrites.push(event);
      this.pendingBytes += event.payload.length + BLOCK_HEADER;
      this.diskCount++;
      this.stats.spilledEvents++;
      this.stats.spilledBytes += event.payload.length;
      this.stats.totalSpilledBytes += event.payload.length;
      if (this.pendingBytes >= BLOCK_BYTES) this.flushWrites();
    }
    this.wake();
  }

  /**
   * Resolves when the spill writes in flight are under the backlog limit (at once when they are): the puller
   * awaits it between reads, so memory stays bounded when the sink is slow and everything spills.
   */
  writable(): Promise<void> {
    if (this.inFlightBytes < SPILL_BACKLOG_BYTES || this.closed || this.failure !== undefined) return Promise.resolve();
    return new Promise((resolve) => this.writableWaiters.push(resolve));
  }

  /** Every change with ts ≤ `ts` has been added; they may now be emitted. */
  advanceResolved(ts: bigint): void {
    if (ts > this.resolvedTs) {
      this.resolvedTs = ts;
      this.wake();
    }
  }

  /** Waits for the next output; rejects with the signal's reason when aborted. */
  async next(signal: AbortSignal): Promise<SorterOutput> {
    for (;;) {
      if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new TidemarkError('ErrAborted', 'sorter read aborted');
      if (this.closed) throw new TidemarkError('ErrClosed', `sorter of table ${this.tableId} is closed`);
      if (this.failure !== undefined) throw this.failure;
      const seen = this.changes;
      const head = await this.peek();
      if (head !== undefined && head.ts <= this.resolvedTs) {
        this.shift(head);
        return { kind: 'event', event: head };
      }
      if (this.resolvedTs > this.emittedResolved) {
        this.emittedResolved = this.resolvedTs;
        return { kind: 'resolved', ts: this.resolvedTs };
      }
      if (this.changes !== seen) continue; // something arrived while the disk was read: look again
      await new Promise<void>((resolve) => {
        const onAbort = (): void => resolve();
        this.waiter = () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        };
        signal.addEventListener('abort', onAbort, { once: true });
      });
      this.waiter = undefined;
    }
  }

  /** Drops everything, including the table's spilled data. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (let i = this.memoryHead; i < this.memory.length; i++) this.quota.release(this.memory[i].payload.length + EVENT_OVERHEAD);
    this.memory.length = 0;
    this.pendingWrites = [];
    this.readBuffer = [];
    this.wake();
    await this.writeChain;
    if (!this.store.isClosed) await this.store.db.clear(tablePrefix(this.tableId));
    this.stats.spilledBytes = 0;
  }

  private async peek(): Promise<SorterEvent | undefined> {
    if (this.memoryHead < this.memory.length) return this.memory[this.memoryHead];
    if (this.readIndex < this.readBuffer.length) return this.readBuffer[this.readIndex];
    if (this.diskCount === 0) return undefined;
    await this.loadChunk();
    return this.readBuffer[this.readIndex];
  }

  private shift(event: SorterEvent): void {
    if (this.memoryHead < this.memory.length) {
      this.memoryHead++;
      this.quota.release(event.payload.length + EVENT_OVERHEAD);
      if (this.memoryHead > 1024 && this.memoryHead * 2 > this.memory.length) {
        this.memory.splice(0, this.memoryHead);
        this.memoryHead = 0;
      }
      return;
    }
    this.readIndex++;
    this.diskCount--;
    this.stats.spilledBytes -= event.payload.length;
  }

  /** Queues the pending disk writes behind those in flight; a failure is kept and thrown by `next`. */
  private flushWrites(): void {
    if (this.pendingWrites.length === 0) return;
    const events = this.pendingWrites;
    const block = Buffer.allocUnsafe(this.pendingBytes);
    let offset = 0;
    for (const e of events) {
      block.writeUInt32BE(e.payload.length, offset);
      block.writeBigUInt64BE(e.ts, offset + 4);
      block.writeUInt32BE(e.seq, offset + 12);
      e.payload.copy(block, offset + BLOCK_HEADER);
      offset += BLOCK_HEADER + e.payload.length;
    }
    // a block's key is its first event's: blocks are written in order and never overlap
    const batch = [{ type: 'put' as const, key: encodeKey(this.tableId, events[0].ts, events[0].seq), value: block }];
    this.pendingWrites = [];
    this.pendingBytes = 0;
    this.inFlightBytes += block.length;
    this.writeChain = this.writeChain.then(async () => {
      try {
        if (this.failure === undefined && !this.store.isClosed) await this.store.db.batch(batch);
      } catch (error) {
        this.failure = new TidemarkError('ErrBugIndicating', `sorter of table ${this.tableId} could not spill to ${this.store.dir}: ${(error as Error).message}`, { cause: error });
        this.wake();
      } finally {
        this.inFlightBytes -= block.length;
        if (this.inFlightBytes < SPILL_BACKLOG_BYTES) for (const resolve of this.writableWaiters.splice(0)) resolve();
      }
    });
  }

  /** Reads the next block of the disk segment and deletes it from disk. */
  private async loadChunk(): Promise<void> {
    this.flushWrites();
    await this.writeChain;
    if (this.failure !== undefined) throw this.failure;
    const { gte, lt } = tablePrefix(this.tableId);
    const chunk: SorterEvent[] = [];
    let lastKey: Buffer | undefined;
    for await (const [key, block] of this.store.db.iterator({ gte, lt, limit: 1 })) {
      for (let offset = 0; offset < block.length; ) {
        const length = block.readUInt32BE(offset);
        const start = offset + BLOCK_HEADER;
        chunk.push({ ts: block.readBigUInt64BE(offset + 4), seq: block.readUInt32BE(offset + 12), payload: block.subarray(start, start + length) });
        offset = start + length;
      }
      lastKey = key;
    }
    if (lastKey !== undefined) await this.store.db.clear({ gte, lte: lastKey });
    this.readBuffer = chunk;
    this.readIndex = 0;
  }

  private wake(): void {
    this.changes++;
    this.waiter?.();
  }
}
