import { BugIndicatingError, TidemarkError } from '../../errors/index.js';
import type { MemoryQuota } from './memory-quota.js';
import { PACKED_ROW_OVERHEAD, PackedRows, type TakenRow } from './packed-rows.js';
import { encodeKey, tablePrefix, type SpillStore } from './spill-store.js';

/** One change as the sorter sees it: its ts, its order within the transaction, and what it carries. */
export interface SorterEvent<T = Buffer> {
  readonly ts: bigint;
  readonly seq: number;
  readonly payload: T;
}

/**
 * How a sorter weighs what its events carry against the memory quota, and turns it into bytes and back: a payload
 * waiting in memory is held as its bytes, packed with others (see PackedRows), and so is one that spills to disk.
 */
export interface SorterCodec<T> {
  /** Bytes the payload takes in memory as an object; the same for the same payload every time it is asked. */
  size(payload: T): number;
  /** Its bytes, which the sorter copies or keeps until they are written: not a view of a buffer reused later. */
  encode(payload: T): Buffer;
  /** The payload again from its bytes (a view into a slab or a block read back: copy what must be changed). */
  decode(bytes: Buffer): T;
  /** Whether this payload must be held as the very object it is (its identity matters), not packed as bytes. */
  keepsIdentity?(payload: T): boolean;
}

/** Payloads that are bytes already. */
export const BYTES_CODEC: SorterCodec<Buffer> = { size: (b) => b.length, encode: (b) => b, decode: (b) => b };

/** What `next()` yields: an event that is safe to emit (ts ≤ resolved-ts), or the resolved-ts itself once all before it are out. */
export type SorterOutput<T = Buffer> = { readonly kind: 'event'; readonly event: SorterEvent<T> } | { readonly kind: 'resolved'; readonly ts: bigint };

/** An event waiting to be written to disk, with its bytes. */
interface SpillingEvent {
  readonly ts: bigint;
  readonly seq: number;
  readonly bytes: Buffer;
}

export interface TableSorterStats {
  memoryEvents: number;
  spilledEvents: number;
  spilledBytes: number;
  totalSpilledBytes: number;
}

/** Fixed per-event overhead counted against the quota besides the payload, for a payload held as an object. */
const EVENT_OVERHEAD = 64;
/**
 * Events held as they came while fewer than this many wait in memory (a table that keeps up: its rows go out
 * young, and copying them would only cost); the ones after are packed (a backlog: see PackedRows).
 */
const LOOSE_EVENTS = 16384;
/** Spilled events are written as blocks of about this size: one LevelDB entry per block, not per event. */
const BLOCK_BYTES = 256 * 1024;
const BLOCK_HEADER = 16; // u32 payload length, u64 ts, u32 seq
/** Spill blocks in flight beyond this make `writable()` wait, so a fast puller cannot outrun the disk. */
const SPILL_BACKLOG_BYTES = 4 * 1024 * 1024;
/**
 * After this many bytes read back, the range they came from is compacted (`SpillStore.compact`): LevelDB maps
 * its table files, so what was read stays resident until a compaction deletes the files. This bounds that.
 */
const COMPACT_EVERY_BYTES = 32 * 1024 * 1024;
/** Deletes of the blocks left at `close()` go in batches of this many keys. */
const DELETE_BATCH_KEYS = 1024;

/**
 * The sorter of one table pipeline (DESIGN §5). The binlog already delivers a table's changes in commit
 * order, so the sorter's work is to hold them until the resolved-ts passes them and to keep memory within
 * the changefeed's quota: while the quota has room events stay in memory; past it they spill to LevelDB
 * and come back in (ts, seq) order. The queue is always [memory head][disk segment]: once anything is on
 * disk, new events go to disk too, until the disk segment is drained, so order never breaks. In memory, the
 * first 16,384 events wait as they came; the ones behind them are packed as bytes (PackedRows), so
 * a backlog held in memory is its bytes, not objects for the garbage collector to keep walking.
 *
 * `add` and `advanceResolved` are called by the puller side, `next` by the sink side; neither blocks
 * the other. `close` drops the table's spilled data.
 */
export class TableSorter<T = Buffer> {
  readonly stats: TableSorterStats = { memoryEvents: 0, spilledEvents: 0, spilledBytes: 0, totalSpilledBytes: 0 };
  /**
   * The events in memory, the queue's head: first those held as they came (`loose`, from `looseHead`), then the
   * packed ones. An event is held loose only while nothing is packed, so the order holds.
   */
  private loose: SorterEvent<T>[] = [];
  private looseHead = 0;
  private readonly packed = new PackedRows<T>();
  /** Scratch for `PackedRows.shift`. */
  private readonly taken: TakenRow<T> = { ts: 0n, seq: 0, tag: 0, view: undefined, object: undefined };
  private pendingWrites: SpillingEvent[] = [];
  private pendingBytes = 0;
  private readBuffer: SorterEvent<T>[] = [];
  private readIndex = 0;
  private diskCount = 0;
  /** The last event added (-1n before the first). */
  private lastTs = -1n;
  private lastSeq = 0;
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
  /**
   * The keys of the blocks on disk not read back yet, oldest first from `blockHead`: a block is read back with a
   * `get` of its exact key and deleted by its exact key, never through an iterator or a range `clear` (see `loadChunk`).
   */
  private blockKeys: Buffer[] = [];
  private blockHead = 0;
  /** Blocks read back since the last compaction: deleted together, right before it, and their bytes. */
  private readKeys: Buffer[] = [];
  private readBytes = 0;
  /** Where the next compaction of what was read back starts. */
  private compactFrom: Buffer | undefined;
  /** The deletes and compaction of what was read back, in the background; `close()` waits for them. */
  private compaction: Promise<void> = Promise.resolve();

  private readonly codec: SorterCodec<T>;

  constructor(
    readonly tableId: number,
    private readonly quota: MemoryQuota,
    private readonly store: SpillStore,
    codec?: SorterCodec<T>,
  ) {
    this.codec = codec ?? (BYTES_CODEC as unknown as SorterCodec<T>);
  }

  /** Nothing is held: no event in memory, in the block read back, on disk or waiting to be written. */
  get isEmpty(): boolean {
    return this.looseHead >= this.loose.length && this.packed.length === 0 && this.readIndex >= this.readBuffer.length && this.diskCount === 0 && this.pendingWrites.length === 0;
  }

  get resolved(): bigint {
    return this.resolvedTs;
  }

  /** Appends a change; must come in (ts, seq) order. Never blocks: beyond the quota it goes to disk. */
  add(event: SorterEvent<T>): void {
    if (this.closed) throw new TidemarkError('ErrClosed', `sorter of table ${this.tableId} is closed`);
    this.follows(event.ts, event.seq);
    this.lastTs = event.ts;
    this.lastSeq = event.seq;
    const loose = this.diskCount === 0 && this.packed.length === 0 && this.loose.length - this.looseHead < LOOSE_EVENTS;
    const packed = loose || this.codec.keepsIdentity?.(event.payload) === true ? undefined : this.codec.encode(event.payload);
    const cost = PackedRows.packs(packed) ? packed.length + PACKED_ROW_OVERHEAD : this.codec.size(event.payload) + EVENT_OVERHEAD;
    if (this.diskCount === 0 && this.quota.tryAcquire(cost)) {
      if (loose) this.loose.push(event);
      else this.packed.push(event.ts, event.seq, event.payload, packed);
      this.stats.memoryEvents++;
    } else {
      const bytes = packed ?? this.codec.encode(event.payload);
      this.pendingWrites.push({ ts: event.ts, seq: event.seq, bytes });
      this.pendingBytes += bytes.length + BLOCK_HEADER;
      this.diskCount++;
      this.stats.spilledEvents++;
      this.stats.spilledBytes += bytes.length;
      this.stats.totalSpilledBytes += bytes.length;
      if (this.pendingBytes >= BLOCK_BYTES) this.flushWrites();
    }
    this.wake();
  }

  /**
   * Appends a transaction's packed rows (from the transaction buffer: all of this table, with this ts, counted against
   * the quota already, which this sorter now holds for them) without copying their bytes. Only while nothing of the
   * table is on disk: returns false, and takes nothing, when something is (the rows must then be added one by one).
   */
  addPacked(rows: PackedRows<T>, ts: bigint): boolean {
    if (rows.length === 0) return true;
    if (this.closed) throw new TidemarkError('ErrClosed', `sorter of table ${this.tableId} is closed`);
    if (this.diskCount !== 0) return false;
    this.follows(ts, rows.headSeq);
    this.lastTs = ts;
    this.lastSeq = rows.tailSeq;
    this.stats.memoryEvents += rows.length;
    rows.retime(ts);
    rows.moveInto(this.packed);
    this.wake();
    return true;
  }

  /** Throws unless a change at (ts, seq) comes after the last one added and above the resolved-ts (a bug otherwise). */
  private follows(ts: bigint, seq: number): void {
    if (ts < this.lastTs || (ts === this.lastTs && seq <= this.lastSeq)) {
      throw new BugIndicatingError(`sorter of table ${this.tableId} got (${ts}, ${seq}) after (${this.lastTs}, ${this.lastSeq})`);
    }
    if (ts <= this.resolvedTs) {
      throw new BugIndicatingError(`sorter of table ${this.tableId} got ts ${ts} at or below resolved-ts ${this.resolvedTs}`);
    }
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

  /**
   * Takes up to `max` events that are ready now (ts ≤ resolved-ts, already in memory or in the block read
   * from disk), without waiting: the sink side drains a busy table in batches instead of one `next()` (and
   * its promises) per event. Empty when the next event must be read from disk or is not resolved yet;
   * `next()` then waits for it, and it alone reports the resolved-ts.
   */
  takeReady(max: number, into: SorterEvent<T>[] = []): SorterEvent<T>[] {
    if (this.closed || this.failure !== undefined) return into;
    const resolved = this.resolvedTs;
    for (let taken = 0; taken < max; taken++) {
      const ts = this.headTs();
      if (ts === undefined || ts > resolved) break;
      into.push(this.shift());
    }
    return into;
  }

  /** Waits for the next output; rejects with the signal's reason when aborted. */
  async next(signal: AbortSignal): Promise<SorterOutput<T>> {
    for (;;) {
      if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new TidemarkError('ErrAborted', 'sorter read aborted');
      if (this.closed) throw new TidemarkError('ErrClosed', `sorter of table ${this.tableId} is closed`);
      if (this.failure !== undefined) throw this.failure;
      const seen = this.changes;
      const ts = await this.peek();
      if (ts !== undefined && ts <= this.resolvedTs) return { kind: 'event', event: this.shift() };
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
    for (let i = this.looseHead; i < this.loose.length; i++) this.quota.release(this.codec.size(this.loose[i].payload) + EVENT_OVERHEAD);
    this.loose = [];
    this.looseHead = 0;
    this.packed.clear((packedLength, object) => this.quota.release(object !== undefined ? this.codec.size(object) + EVENT_OVERHEAD : packedLength + PACKED_ROW_OVERHEAD));
    this.pendingWrites = [];
    this.readBuffer = [];
    this.wake();
    await this.writeChain;
    // by their exact keys: a range `clear` would read every block left (and every deleted one not yet compacted) to find them
    const left = this.blockKeys.slice(this.blockHead);
    this.blockKeys = [];
    this.blockHead = 0;
    for (let i = 0; i < left.length && !this.store.isClosed; i += DELETE_BATCH_KEYS) {
      await this.store.db.batch(left.slice(i, i + DELETE_BATCH_KEYS).map((key) => ({ type: 'del' as const, key })));
    }
    this.compactRead();
    await this.compaction;
    this.stats.spilledBytes = 0;
  }

  /** The ts of the queue's head when it is in memory or in the block read back; undefined otherwise. */
  private headTs(): bigint | undefined {
    if (this.looseHead < this.loose.length) return this.loose[this.looseHead].ts;
    if (this.packed.length > 0) return this.packed.headTs;
    if (this.readIndex < this.readBuffer.length) return this.readBuffer[this.readIndex].ts;
    return undefined;
  }

  /** The ts of the queue's head, reading the next block from disk when it is there. */
  private async peek(): Promise<bigint | undefined> {
    const ts = this.headTs();
    if (ts !== undefined || this.diskCount === 0) return ts;
    await this.loadChunk();
    return this.readBuffer[this.readIndex]?.ts;
  }

  /** Takes the queue's head (which `headTs` or `peek` found). */
  private shift(): SorterEvent<T> {
    if (this.looseHead < this.loose.length) {
      const event = this.loose[this.looseHead++];
      this.quota.release(this.codec.size(event.payload) + EVENT_OVERHEAD);
      if (this.looseHead === this.loose.length) {
        this.loose.length = 0;
        this.looseHead = 0;
      } else if (this.looseHead > 1024 && this.looseHead * 2 > this.loose.length) {
        this.loose.splice(0, this.looseHead);
        this.looseHead = 0;
      }
      return event;
    }
    if (this.packed.length > 0) {
      const taken = this.taken;
      this.packed.shift(taken);
      let payload: T;
      if (taken.view !== undefined) {
        payload = this.codec.decode(taken.view);
        this.quota.release(taken.view.length + PACKED_ROW_OVERHEAD);
      } else {
        payload = taken.object!;
        this.quota.release(this.codec.size(payload) + EVENT_OVERHEAD);
      }
      const event = { ts: taken.ts, seq: taken.seq, payload };
      taken.view = taken.object = undefined;
      return event;
    }
    const event = this.readBuffer[this.readIndex++];
    this.diskCount--;
    return event;
  }

  /** Queues the pending disk writes behind those in flight; a failure is kept and thrown by `next`. */
  private flushWrites(): void {
    if (this.pendingWrites.length === 0) return;
    const events = this.pendingWrites;
    const block = Buffer.allocUnsafe(this.pendingBytes);
    let offset = 0;
    for (const e of events) {
      block.writeUInt32BE(e.bytes.length, offset);
      block.writeBigUInt64BE(e.ts, offset + 4);
      block.writeUInt32BE(e.seq, offset + 12);
      e.bytes.copy(block, offset + BLOCK_HEADER);
      offset += BLOCK_HEADER + e.bytes.length;
    }
    // a block's key is its first event's: blocks are written in order and never overlap
    const key = encodeKey(this.tableId, events[0].ts, events[0].seq);
    this.blockKeys.push(key);
    const batch = [{ type: 'put' as const, key, value: block }];
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

  /**
   * Reads the next block of the disk segment; it is deleted from disk with the next compaction. By its exact key:
   * an iterator would seek from the table's first key and step over every block deleted before (tombstones until a
   * compaction), and classic-level keeps an iterator's last entries in native memory, out of V8's sight, until the
   * iterator object is garbage-collected, closed or not: one block copy per iterator, ~80 MiB between major GCs.
   */
  private async loadChunk(): Promise<void> {
    this.flushWrites();
    await this.writeChain;
    if (this.failure !== undefined) throw this.failure;
    const key = this.blockKeys[this.blockHead];
    if (key === undefined) throw new BugIndicatingError(`sorter of table ${this.tableId} has ${this.diskCount} events on disk but no block`);
    const block = await this.store.db.get(key, { fillCache: false }); // read once: keep it out of LevelDB's block cache
    if (this.closed) return;
    if (block === undefined) throw new BugIndicatingError(`sorter of table ${this.tableId} lost its spilled block at ${key.toString('hex')}`);
    const chunk: SorterEvent<T>[] = [];
    for (let offset = 0; offset < block.length; ) {
      const length = block.readUInt32BE(offset);
      const start = offset + BLOCK_HEADER;
      chunk.push({ ts: block.readBigUInt64BE(offset + 4), seq: block.readUInt32BE(offset + 12), payload: this.codec.decode(block.subarray(start, start + length)) });
      // read back: no longer on disk (the block goes with the next compaction)
      this.stats.spilledBytes -= length;
      offset = start + length;
    }
    this.blockHead++;
    if (this.blockHead > 1024 && this.blockHead * 2 > this.blockKeys.length) {
      this.blockKeys.splice(0, this.blockHead);
      this.blockHead = 0;
    }
    this.readKeys.push(key);
    this.readBytes += block.length;
    if (this.readBytes >= COMPACT_EVERY_BYTES) {
      // one compaction at a time per table: read faster than LevelDB compacts, and the difference would stay mapped
      await this.compaction;
      this.compactRead();
    }
    this.readBuffer = chunk;
    this.readIndex = 0;
  }

  /**
   * Deletes the blocks read back since the last compaction and compacts the range they span, in the background:
   * a delete alone only writes a tombstone, and the table files keep the data, mapped (see `SpillStore.compact`).
   */
  private compactRead(): void {
    const keys = this.readKeys;
    if (keys.length === 0) return;
    const from = this.compactFrom ?? tablePrefix(this.tableId).gte;
    const to = keys[keys.length - 1];
    this.compactFrom = to;
    this.readKeys = [];
    this.readBytes = 0;
    const previous = this.compaction;
    this.compaction = (async () => {
      await previous;
      try {
        if (!this.store.isClosed) await this.store.db.batch(keys.map((key) => ({ type: 'del' as const, key })));
      } catch (error) {
        if (this.store.isClosed) return; // the changefeed's store went first: its folder goes with it
        this.failure ??= new TidemarkError('ErrBugIndicating', `sorter of table ${this.tableId} could not delete read-back blocks in ${this.store.dir}: ${(error as Error).message}`, { cause: error });
        this.wake();
        return;
      }
      await this.store.compact(from, to);
    })();
  }

  private wake(): void {
    this.changes++;
    this.waiter?.();
  }
}
