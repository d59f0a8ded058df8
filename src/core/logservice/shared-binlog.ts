import { TidemarkError } from '../errors/index.js';
import type { Logger } from '../logger/logger.js';
import type { Ts } from '../model/ts.js';
import type { TableMap } from '../upstream/events.js';
import type { RowsLayout } from '../upstream/rows.js';
import type { ResumableEvent } from '../upstream/resumable-reader.js';

/** Reads an upstream's binlog from a ts (the resumable reader in production), counting the binlog bytes it reads into `stats`. */
export type BinlogSource = (start: Ts, signal: AbortSignal, stats: { bytes: number }) => AsyncIterable<ResumableEvent>;

export interface SharedBinlogOptions {
  /** The shared read (its own replica server id). */
  readonly source: BinlogSource;
  /** Most binlog bytes held for the readers (default 64 MiB): beyond it, the one furthest behind reads on its own. */
  readonly maxBytes?: number;
  /** Binlog bytes kept behind the slowest reader (default 8 MiB), so a reader on its own can join again. */
  readonly historyBytes?: number;
  /**
   * How far the shared read runs ahead of the furthest reader of rows taking it (default 4 MiB, at most a quarter
   * of maxBytes): what no reader can take yet waits in the upstream's binlog, not here.
   */
  readonly aheadBytes?: number;
  /** How long a reader on its own, just ahead of the shared read, waits for it to come level (default 2 s). */
  readonly joinWaitMs?: number;
  readonly logger: Logger;
}

/** One changefeed's (or the owner's) read of the shared binlog. */
export interface SubscribeOptions {
  /** Reads the binlog on the reader's own (its own replica server id), while it is behind what the shared read holds. */
  readonly ownRead: (start: Ts, signal: AbortSignal) => AsyncIterable<ResumableEvent>;
  /** Binlog bytes the reader got (its binlog-read metric), shared or its own. */
  readonly stats?: { bytes: number };
  /** Who reads, for the log. */
  readonly who: string;
  /**
   * The tables whose rows the reader takes (a changefeed's table filter); absent, every row. From the shared read
   * it gets only the rows of those tables and the commits after them, every DDL and reset, and, once per batch
   * of events read, the position reached meanwhile as a `resolved` event: what it passes over costs it nothing.
   */
  readonly selects?: (schema: string, table: string) => boolean;
  /**
   * The reader takes no rows (the owner's DDL reader; `selects` is then none). It never keeps the shared read where
   * it is: when only such readers take the shared read and a reader of rows needs older events than the store
   * holds, the shared read starts again there, for the reader of rows, and these read on their own (skipping rows
   * undecoded) until it reaches them.
   */
  readonly noRows?: boolean;
}

interface Reader {
  /** See SubscribeOptions.selects; undefined: the reader takes every event. */
  readonly selects: ((schema: string, table: string) => boolean) | undefined;
  /**
   * Sequence number of the next event it reads from the store (a reader of every event); for a reader with
   * `selects`, the one after the last event it took or passed over.
   */
  cursor: number;
  /** A reader with `selects`: the sequence numbers of the events it has still to take, from `queueAt` on. */
  queue: number[];
  queueAt: number;
  /** A reader with `selects`: it got rows of the transaction the shared read is in (so it gets its commit). */
  inTransaction: boolean;
  /** The commit time it was last given (to pass on the upstream's heartbeats once per batch). */
  time: number;
  /** Binlog bytes up to which it was counted (a cumulative count of the shared read; see `ends`). */
  counted: number;
  attached: boolean;
  /** Set by the shared read when the reader fell too far behind: it goes on reading on its own. */
  detached: boolean;
  /** See SubscribeOptions.noRows. */
  readonly noRows: boolean;
  /** Let go because the shared read started again behind it for a reader of rows (not because it fell behind). */
  passed: boolean;
  wake: (() => void) | undefined;
}

/** The readers with `selects` that take a table's rows, as of a version of the reader set. */
interface Route {
  readonly version: number;
  readonly readers: readonly Reader[];
}

/** Per-event bookkeeping beyond the binlog bytes (the event object, its array slots). */
const ENTRY_OVERHEAD = 96;

/**
 * One binlog read shared by every reader of an upstream on this capture (DESIGN §5, "log service"): the events
 * are read and decoded once, kept in order in a bounded store, and each reader takes them from its own cursor,
 * exactly as its own read from its start position would have given them.
 *
 * - A reader joins the shared read where the store has the position it needs: the start of the read, or just
 *   after a commit or DDL the store still holds. Behind what the store holds (a changefeed an hour behind, a
 *   table added behind its reader), it reads the binlog on its own, and joins at the first commit it reads that
 *   the store has; just ahead of the shared read, it waits a moment for it.
 * - The store keeps what the slowest reader still needs, plus some history for readers about to join. When it is
 *   full and a reader waits for new events, the reader furthest behind is let go: it reads on its own from its
 *   last commit (a `reset` first, if it was inside a transaction) and comes back when it catches up. So a slow
 *   changefeed never holds the others back, and memory stays bounded; when every reader is busy, the shared read
 *   waits for them instead.
 * - A reader with a table filter (`selects`) is given only what it needs: the rows of its tables and the commits
 *   after them, DDL, resets, and, once per batch of events read, the position passed meanwhile. The shared read
 *   routes each rows event to the readers that select its table (looked up once per table version), so the work
 *   per event does not grow with readers that do not select it.
 * - The shared read starts with the first reader and stops when the last leaves.
 */
export class SharedBinlog {
  /** Events held, oldest first; `events[i]` has sequence number `base + i`. */
  private events: ResumableEvent[] = [];
  private sizes: number[] = [];
  /** `ends[i]`: binlog bytes read by the shared read up to and including `events[i]` (`baseEnd` before `base`). */
  private ends: number[] = [];
  private baseEnd = 0;
  private base = 0;
  /** Binlog bytes held (with a per-event overhead). */
  private heldBytes = 0;
  /** Positions a reader can join at: after commits and DDL (and the read's start), with the sequence number after. */
  private boundaryTs: Ts[] = [];
  private boundarySeq: number[] = [];
  private boundaryFirst = 0;
  /** The shared read's position (the last commit or DDL it read) and its commit time. */
  private headTs: Ts = 0n;
  private headTime = 0;
  /** The sequence number after the last commit, DDL or reset read. */
  private headSeq = 0;
  private readonly readers = new Set<Reader>();
  /** Attached readers of every event (woken at each). */
  private readonly everyEvent = new Set<Reader>();
  /** Attached readers with `selects` that got rows of the transaction being read. */
  private txnReaders: Reader[] = [];
  /** Bumped when a reader with `selects` attaches or leaves the store: the routes are looked up again. */
  private routeVersion = 0;
  /** Attached readers with `selects`. */
  private selecting = 0;
  private readonly routes = new WeakMap<TableMap, Route>();
  /** How many readers a rows event held was given, when not exactly one (they share its rows: see SharedRows). */
  private readonly sharers = new WeakMap<RowsLayout, number>();
  /** The wake of every reader, once per batch of events read (readers with `selects` pass over the rest). */
  private batchWake: NodeJS.Immediate | undefined;
  /**
   * For each DDL held, the position just before it: a reader with `selects` is given it first when it passed over
   * commits since its last position (the DDL barrier stops tables exactly at the commit before a DDL).
   */
  private readonly beforeDDL = new Map<number, { readonly ts: Ts; readonly time: number }>();
  /** Events stored since the last look for what can be dropped. */
  private sinceTrim = 0;
  private running: AbortController | undefined;
  private failed: Error | undefined;
  /** The shared read waits for room. */
  private roomWaiter: (() => void) | undefined;
  /** Readers on their own waiting for the shared read to come level. */
  private readonly levelWaiters = new Set<() => void>();
  private readonly stats = { bytes: 0 };
  private readonly maxBytes: number;
  private readonly historyBytes: number;
  private readonly aheadBytes: number;
  /** How many times the shared read started (for tests and the log). */
  starts = 0;
  /** Readers let go because they fell behind (for tests and the log). */
  detaches = 0;
  /** Times the shared read started again behind its readers without rows, for a reader of rows (for tests). */
  restartsBehind = 0;
  /** Events handed to readers with `selects` at the shared read (routed rows, their commits, DDL, resets): for tests. */
  routed = 0;

  constructor(private readonly options: SharedBinlogOptions) {
    this.maxBytes = options.maxBytes ?? 64 * 1024 * 1024;
    this.historyBytes = Math.min(options.historyBytes ?? 8 * 1024 * 1024, this.maxBytes / 2);
    this.aheadBytes = Math.min(options.aheadBytes ?? 4 * 1024 * 1024, this.maxBytes / 4);
  }

  /**
   * How many readers were given this rows event by the shared read, when more than one; 1 for any other event
   * (one a reader read on its own).
   */
  sharersOf(layout: RowsLayout): number {
    return Math.max(1, this.sharers.get(layout) ?? 1);
  }

  /** Whether the shared read is running. */
  get reading(): boolean {
    return this.running !== undefined;
  }

  /** Readers, attached or on their own. */
  get readerCount(): number {
    return this.readers.size;
  }

  /** Binlog bytes the store holds now (with a per-event overhead). */
  get storedBytes(): number {
    return this.heldBytes;
  }

  /** Readers taking events from the store. */
  get attachedCount(): number {
    let n = 0;
    for (const r of this.readers) if (r.attached) n++;
    return n;
  }

  /**
   * The events from `start` on, as a read of the binlog from `start` would give them (with `options.selects`, what
   * the reader needs of them: see SubscribeOptions); ends when `signal` aborts.
   */
  async *subscribe(start: Ts, signal: AbortSignal, options: SubscribeOptions): AsyncGenerator<ResumableEvent> {
    const noRows = options.noRows === true;
    const reader: Reader = { selects: noRows ? () => false : options.selects, cursor: 0, queue: [], queueAt: 0, inTransaction: false, time: 0, counted: 0, attached: false, detached: false, noRows, passed: false, wake: undefined };
    const onAbort = (): void => reader.wake?.();
    signal.addEventListener('abort', onAbort, { once: true });
    this.readers.add(reader);
    const stats = options.stats;
    /** The last commit or DDL given to the reader, and whether rows of a transaction followed it. */
    let pos = start;
    let posTime = 0;
    let inTransaction = false;
    const follow = (e: ResumableEvent): void => {
      if (e.kind === 'rows') inTransaction = true;
      else if (e.kind !== 'resolved') {
        pos = e.ts;
        if (e.kind !== 'reset') posTime = e.commitTime;
        inTransaction = false;
      }
    };
    /** After a wait for the shared read that did not bring it level, no other wait before this time. */
    const join = { noWaitUntil: 0 };
    try {
      while (!signal.aborted) {
        if (this.attach(reader, pos)) {
          while (!signal.aborted && !reader.detached) {
            const seq = this.nextFor(reader);
            if (seq !== undefined) {
              const i = seq - this.base;
              const e = this.events[i];
              if (e.kind === 'ddl' && reader.selects !== undefined) {
                const before = this.beforeDDL.get(seq);
                if (before !== undefined && before.ts > pos) {
                  pos = before.ts;
                  posTime = before.time;
                  yield { kind: 'resolved', ts: before.ts, time: before.time };
                  continue;
                }
              }
              if (stats !== undefined) stats.bytes += this.ends[i] - reader.counted;
              reader.counted = this.ends[i];
              if (reader.selects === undefined) reader.cursor++;
              else {
                reader.queueAt++;
                reader.cursor = seq + 1;
                if (e.kind === 'commit' || e.kind === 'ddl') reader.time = e.commitTime;
              }
              if (this.roomWaiter !== undefined) this.roomWaiter();
              follow(e);
              yield e;
              continue;
            }
            if (reader.selects !== undefined && !reader.inTransaction && (reader.cursor < this.headSeq || reader.time < this.headTime)) {
              // what it passed over since: the position the shared read reached
              const passed = this.headSeq - 1 - this.base;
              const counted = passed >= 0 ? this.ends[passed] : this.baseEnd;
              if (stats !== undefined && counted > reader.counted) stats.bytes += counted - reader.counted;
              if (counted > reader.counted) reader.counted = counted;
              this.roomWaiter?.();
              if (reader.cursor < this.headSeq) reader.cursor = this.headSeq;
              reader.time = this.headTime;
              if (this.headTs > pos) {
                pos = this.headTs;
                posTime = this.headTime;
              }
              yield { kind: 'resolved', ts: this.headTs, time: this.headTime };
              continue;
            }
            if (this.failed !== undefined) throw this.failed;
            await new Promise<void>((resolve) => (reader.wake = resolve));
            reader.wake = undefined;
          }
          this.release(reader);
          if (signal.aborted) return;
          if (reader.passed) this.options.logger.info('the shared binlog read starts again behind this reader for a reader of rows: reading on its own until it comes level', { reader: options.who, from: String(pos) });
          else this.options.logger.info('fell behind the shared binlog read: reading on its own until it catches up', { reader: options.who, from: String(pos) });
          reader.passed = false;
          if (inTransaction) {
            // rows of the unfinished transaction were given: the reader drops them, they come again
            yield { kind: 'reset', ts: pos, error: new TidemarkError('ErrAborted', 'the reader fell behind the shared binlog read and reads the transaction again on its own') };
            inTransaction = false;
          }
        }
        // behind what the store holds (or let go): read on its own until a commit the store has
        if (!reader.detached) this.options.logger.info('reads the binlog on its own until it reaches the shared read', { reader: options.who, from: String(pos), sharedAt: String(this.headTs) });
        reader.detached = false;
        const own = new AbortController();
        let joined = false;
        try {
          for await (const e of options.ownRead(pos, AbortSignal.any([signal, own.signal]))) {
            follow(e);
            yield e;
            if (!inTransaction && e.kind !== 'rows' && (await this.canJoin(pos, posTime, join, signal))) {
              this.options.logger.info('joins the shared binlog read', { reader: options.who, at: String(pos) });
              joined = true;
              break;
            }
          }
        } finally {
          own.abort();
        }
        if (!joined) return;
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      this.release(reader);
      this.readers.delete(reader);
      if (this.readers.size === 0) this.stop();
      else this.roomWaiter?.();
    }
  }

  /** The sequence number of the next event the reader takes from the store, if it has one. */
  private nextFor(reader: Reader): number | undefined {
    if (reader.selects === undefined) return reader.cursor < this.base + this.events.length ? reader.cursor : undefined;
    return reader.queueAt < reader.queue.length ? reader.queue[reader.queueAt] : undefined;
  }

  /** Where the reader still needs the store from (what is below can be dropped for it). */
  private floorOf(reader: Reader): number {
    if (reader.selects === undefined) return reader.cursor;
    return reader.queueAt < reader.queue.length ? reader.queue[reader.queueAt] : this.base + this.events.length;
  }

  /** Sets the reader's cursor at `pos` when the store has it (starting the shared read there if it is not running). */
  private attach(reader: Reader, pos: Ts): boolean {
    let seq: number;
    if (this.running === undefined || (this.failed !== undefined && this.attachedCount === 0)) {
      this.running?.abort();
      this.start(pos);
      seq = this.base + this.events.length;
    } else {
      const at = this.boundaryAt(pos);
      if (at !== undefined) seq = at;
      else if (!reader.noRows && pos < this.headTs && this.onlyNoRows()) {
        // the shared read serves only readers without rows (the owner's DDL readers, which start where the
        // changefeed's schema was taken): it starts again where this reader of rows needs it
        this.startBehind(pos);
        seq = this.base + this.events.length;
      } else return false;
    }
    reader.cursor = seq;
    reader.attached = true;
    reader.counted = seq > this.base ? this.ends[seq - 1 - this.base] : this.baseEnd;
    // a reader that joins may need what is read next (see farAhead)
    this.roomWaiter?.();
    if (reader.selects === undefined) {
      this.everyEvent.add(reader);
      return true;
    }
    // what the store holds after the join position, routed to this reader alone
    reader.queue = [];
    reader.queueAt = 0;
    reader.inTransaction = false;
    reader.time = 0;
    for (let s = seq; s < this.base + this.events.length; s++) {
      const e = this.events[s - this.base];
      if (e.kind === 'rows') {
        if (!reader.selects(e.layout.map.schema, e.layout.map.table)) continue;
        this.sharers.set(e.layout, (this.sharers.get(e.layout) ?? 1) + 1);
        reader.inTransaction = true;
      } else if (e.kind === 'commit') {
        if (!reader.inTransaction) continue;
        reader.inTransaction = false;
      } else if (e.kind === 'resolved') continue;
      else reader.inTransaction = false;
      reader.queue.push(s);
    }
    if (reader.inTransaction) this.txnReaders.push(reader);
    this.routeVersion++;
    this.selecting++;
    return true;
  }

  /** Whether every reader taking the shared read takes no rows (see SubscribeOptions.noRows). */
  private onlyNoRows(): boolean {
    for (const r of this.readers) if (r.attached && !r.noRows) return false;
    return true;
  }

  /** Starts the shared read again at `pos`, behind it: its readers (none with rows) read on their own meanwhile. */
  private startBehind(pos: Ts): void {
    for (const r of this.readers) {
      if (!r.attached) continue;
      r.detached = true;
      r.passed = true;
      this.release(r);
      this.wake(r);
    }
    this.running?.abort();
    this.restartsBehind++;
    this.start(pos);
  }

  /** The reader leaves the store (let go, or gone). */
  private release(reader: Reader): void {
    if (!reader.attached) return;
    reader.attached = false;
    if (reader.selects === undefined) this.everyEvent.delete(reader);
    else {
      reader.queue = [];
      reader.queueAt = 0;
      reader.inTransaction = false;
      this.routeVersion++;
      this.selecting--;
    }
  }

  /** The attached readers with `selects` that take the rows of `map`'s table. */
  private routeOf(map: TableMap): readonly Reader[] {
    const route = this.routes.get(map);
    if (route !== undefined && route.version === this.routeVersion) return route.readers;
    const readers: Reader[] = [];
    for (const r of this.readers) if (r.attached && r.selects !== undefined && r.selects(map.schema, map.table)) readers.push(r);
    this.routes.set(map, { version: this.routeVersion, readers });
    return readers;
  }

  /** Hands the event just stored (sequence number `seq`) to the readers with `selects` that need it. */
  private route(e: ResumableEvent, seq: number): void {
    if (this.selecting === 0) {
      // given to no reader of rows, or to several (readers without selects take every event): a reader that joins
      // later counts itself in (see attach), so none must be assumed
      if (e.kind === 'rows' && this.everyEvent.size !== 1) this.sharers.set(e.layout, this.everyEvent.size);
      return;
    }
    switch (e.kind) {
      case 'rows': {
        const readers = this.routeOf(e.layout.map);
        const given = readers.length + this.everyEvent.size;
        if (given !== 1) this.sharers.set(e.layout, given);
        for (const r of readers) {
          r.queue.push(seq);
          this.routed++;
          if (!r.inTransaction) {
            r.inTransaction = true;
            this.txnReaders.push(r);
          }
          this.wake(r);
        }
        return;
      }
      case 'commit':
        for (const r of this.txnReaders) {
          if (!r.attached || !r.inTransaction) continue;
          r.queue.push(seq);
          this.routed++;
          r.inTransaction = false;
          this.wake(r);
        }
        this.txnReaders = [];
        this.wakeInBatch();
        return;
      case 'resolved':
        this.wakeInBatch();
        return;
      default:
        // DDL and resets (rare): every reader
        for (const r of this.readers) {
          if (!r.attached || r.selects === undefined) continue;
          r.queue.push(seq);
          this.routed++;
          r.inTransaction = false;
          this.wake(r);
        }
        this.txnReaders = [];
    }
  }

  /**
   * Whether a reader on its own at `pos` (just after a commit at `time`) can take the store's events from here:
   * the store holds the position, or the shared read is just behind it (less than a second of commit time) and
   * reaches it within the join wait. A shared read that stopped, or failed with no reader left on it, starts
   * again here.
   */
  private async canJoin(pos: Ts, time: number, join: { noWaitUntil: number }, signal: AbortSignal): Promise<boolean> {
    if (this.running === undefined || (this.failed !== undefined && this.attachedCount === 0)) return true;
    if (this.boundaryAt(pos) !== undefined) return true;
    if (pos <= this.headTs || this.failed !== undefined) return false;
    const now = Date.now();
    if (now < join.noWaitUntil || this.headTime === 0 || this.headTime < time - 1000) return false;
    const deadline = now + (this.options.joinWaitMs ?? 2000);
    while (this.headTs < pos && this.running !== undefined && this.failed === undefined && !signal.aborted && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          signal.removeEventListener('abort', done);
          this.levelWaiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, Math.max(1, deadline - Date.now()));
        this.levelWaiters.add(done);
        signal.addEventListener('abort', done, { once: true });
      });
    }
    if (this.running === undefined || this.boundaryAt(pos) !== undefined) return true;
    join.noWaitUntil = Date.now() + 5000;
    return false;
  }

  /** The sequence number just after the join position `pos`, if the store holds it. */
  private boundaryAt(pos: Ts): number | undefined {
    const ts = this.boundaryTs;
    let lo = this.boundaryFirst;
    let hi = ts.length - 1;
    // the last boundary at or below pos (boundaries are in ts order; a reset repeats the last one)
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (ts[mid] <= pos) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (found < 0 || ts[found] !== pos) return undefined;
    const seq = this.boundarySeq[found];
    return seq >= this.base ? seq : undefined;
  }

  private start(pos: Ts): void {
    const controller = new AbortController();
    this.running = controller;
    this.failed = undefined;
    this.clear();
    this.boundaryTs = [pos];
    this.boundarySeq = [this.base];
    this.boundaryFirst = 0;
    this.headTs = pos;
    this.headTime = 0;
    this.headSeq = this.base;
    this.starts++;
    this.options.logger.info('shared binlog read starts', { from: String(pos) });
    void this.read(pos, controller).catch((error: unknown) => {
      if (controller.signal.aborted) return;
      if (this.running !== controller) return;
      this.failed = error instanceof Error ? error : new Error(String(error));
      this.options.logger.warn('shared binlog read failed', { error: this.failed });
      this.wakeAll();
    });
  }

  private stop(): void {
    const running = this.running;
    if (running === undefined) return;
    this.running = undefined;
    running.abort(new TidemarkError('ErrAborted', 'the last reader of the shared binlog left'));
    this.clear();
    if (this.batchWake !== undefined) clearImmediate(this.batchWake);
    this.batchWake = undefined;
    this.roomWaiter?.();
    for (const w of [...this.levelWaiters]) w();
    this.options.logger.info('shared binlog read stopped: no reader left');
  }

  /** Drops every event held (sequence numbers go on from where they were). */
  private clear(): void {
    this.base += this.events.length;
    this.events = [];
    this.sizes = [];
    this.ends = [];
    this.baseEnd = this.stats.bytes;
    this.heldBytes = 0;
    this.txnReaders = [];
    this.beforeDDL.clear();
  }

  private async read(start: Ts, controller: AbortController): Promise<void> {
    const signal = controller.signal;
    let counted = this.stats.bytes;
    let aheadCheckedAt = counted;
    for await (const e of this.options.source(start, signal, this.stats)) {
      if (signal.aborted) return;
      const size = this.stats.bytes - counted + ENTRY_OVERHEAD;
      counted = this.stats.bytes;
      this.events.push(e);
      this.sizes.push(size);
      this.ends.push(counted);
      this.heldBytes += size;
      const seq = this.base + this.events.length - 1;
      if (e.kind === 'commit' || e.kind === 'ddl' || e.kind === 'reset') {
        if (e.kind === 'ddl') this.beforeDDL.set(seq, { ts: this.headTs, time: this.headTime });
        this.boundaryTs.push(e.ts);
        this.boundarySeq.push(seq + 1);
        this.headSeq = seq + 1;
        if (e.kind !== 'reset') {
          this.headTs = e.ts;
          this.headTime = e.commitTime;
        }
        if (this.levelWaiters.size > 0) for (const w of [...this.levelWaiters]) w();
      } else if (e.kind === 'resolved' && e.time > this.headTime) this.headTime = e.time;
      for (const r of this.everyEvent) this.wake(r);
      this.route(e, seq);
      // what can be dropped is looked for every 256 events (it walks the readers), or at once when full
      if (++this.sinceTrim >= 256 || this.heldBytes > this.maxBytes) {
        this.sinceTrim = 0;
        this.trim();
      }
      while (this.heldBytes > this.maxBytes && !signal.aborted) {
        if (this.letGo()) continue;
        // every reader is busy with what it has: the shared read waits for them
        await new Promise<void>((resolve) => (this.roomWaiter = resolve));
        this.roomWaiter = undefined;
        this.trim();
      }
      // once far ahead, it reads on when the readers took half of it; looked at after each eighth of the lead read (it
      // walks the readers), so the work per event does not grow with them
      if (counted - aheadCheckedAt >= this.aheadBytes / 8 || counted < aheadCheckedAt) {
        aheadCheckedAt = counted;
        if (this.farAhead(counted, this.aheadBytes)) {
          while (!signal.aborted && this.farAhead(counted, this.aheadBytes / 2)) {
            await new Promise<void>((resolve) => (this.roomWaiter = resolve));
            this.roomWaiter = undefined;
          }
        }
      }
    }
  }

  /**
   * Whether the shared read, at `end` (binlog bytes as it counts them), is more than `ahead` bytes past the attached
   * reader of rows furthest ahead while every such reader has events held that it has not taken yet. A reader that
   * waits for new events (its next ones may be far on, past other tables' rows) never holds the shared read back,
   * nor do readers without rows.
   */
  private farAhead(end: number, ahead: number): boolean {
    let furthest = -1;
    for (const r of this.readers) {
      if (!r.attached || r.noRows) continue;
      if (this.nextFor(r) === undefined) return false;
      if (r.counted > furthest) furthest = r.counted;
    }
    return furthest >= 0 && end - furthest > ahead;
  }

  /** Drops what no attached reader needs, keeping up to `historyBytes` behind them for readers about to join. */
  private trim(): void {
    let floor = this.base + this.events.length;
    for (const r of this.readers) {
      if (!r.attached) continue;
      const f = this.floorOf(r);
      if (f < floor) floor = f;
    }
    let drop = 0;
    let held = this.heldBytes;
    while (this.base + drop < floor && held > this.historyBytes) held -= this.sizes[drop++];
    if (drop === 0) return;
    this.baseEnd = this.ends[drop - 1];
    this.events.splice(0, drop);
    this.sizes.splice(0, drop);
    this.ends.splice(0, drop);
    this.heldBytes = held;
    this.base += drop;
    for (const seq of this.beforeDDL.keys()) if (seq < this.base) this.beforeDDL.delete(seq);
    for (const r of this.readers) {
      // a reader's taken sequence numbers, compacted now and then
      if (r.queueAt > 1024 && r.queueAt * 2 > r.queue.length) {
        r.queue.splice(0, r.queueAt);
        r.queueAt = 0;
      }
    }
    while (this.boundaryFirst < this.boundarySeq.length && this.boundarySeq[this.boundaryFirst] < this.base) this.boundaryFirst++;
    if (this.boundaryFirst > 1024 && this.boundaryFirst * 2 > this.boundarySeq.length) {
      this.boundaryTs.splice(0, this.boundaryFirst);
      this.boundarySeq.splice(0, this.boundaryFirst);
      this.boundaryFirst = 0;
    }
  }

  /**
   * The store is full. If some reader waits for new events, the readers furthest behind are let go (they read
   * on their own and come back later); otherwise nothing is let go and the shared read waits.
   */
  private letGo(): boolean {
    const head = this.base + this.events.length;
    let waiting = false;
    let slowest = head;
    for (const r of this.readers) {
      if (!r.attached) continue;
      const f = this.floorOf(r);
      if (f >= head) waiting = true;
      if (f < slowest) slowest = f;
    }
    if (!waiting || slowest >= head) return false;
    for (const r of this.readers) {
      if (r.attached && this.floorOf(r) === slowest) {
        r.detached = true;
        this.release(r);
        this.detaches++;
        this.wake(r);
      }
    }
    this.trim();
    return true;
  }

  private wake(r: Reader): void {
    const wake = r.wake;
    if (wake !== undefined) {
      r.wake = undefined;
      wake();
    }
  }

  /** Wakes every reader once the events read in this turn are stored (readers with `selects` then pass over them). */
  private wakeInBatch(): void {
    if (this.batchWake !== undefined) return;
    this.batchWake = setImmediate(() => {
      this.batchWake = undefined;
      this.wakeAll();
    });
  }

  private wakeAll(): void {
    for (const r of this.readers) this.wake(r);
  }
}
