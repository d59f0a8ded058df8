import type { ColumnInfo, ColumnValue, RowChangedEvent, Ts } from '../sink/api.js';
import type { Value } from '../upstream/rows.js';
import { TidemarkError } from '../errors/index.js';
import { decodeKey, explicitChunks, type TableSnapshotRecord } from './progress.js';

/** A range of key tuples: above `lower` (null: from the start of the table), up to `upper` included (null: to its end). */
export interface KeyRange {
  readonly lower: Value[] | null;
  readonly upper: Value[] | null;
}

/** Rows read from the table at one ts, handed to the sink together (a chunk is one or more pieces). */
export interface SnapshotPiece {
  /** The binlog position the rows were read at (MariaDB's binlog_snapshot_position of their transaction). */
  readonly ts: Ts;
  readonly rows: readonly RowChangedEvent[];
  /** Memory-quota bytes the rows hold until the sink has them. */
  readonly bytes: number;
  /** Set on the last piece of a chunk: the key range the chunk's rows cover, whole. */
  readonly chunkEnd?: KeyRange;
  /** The table's last piece: every key range is read and written with it (set by TableSnapshot.begin). */
  readonly final: boolean;
}

/** How the snapshot tells which chunk a row's key belongs to. */
export interface SnapshotKey {
  /** The key's column names, in key order (undefined: one pass, every key is in the one chunk). */
  readonly names: readonly string[] | undefined;
  /** Orders two key tuples as the server does. */
  readonly compare: (a: readonly Value[], b: readonly Value[]) => number;
}

interface CompletedChunk extends KeyRange {
  readonly ts: Ts;
}

/**
 * One chunk being read: its range, the position its rows are read at once the read's transaction has it, and its
 * pieces waiting for the sink. Until its position is known the table is written no further than `floor` (how far
 * the table was written, or was being written, when the read began): the changes of the chunk's keys up to there
 * were dropped, so its rows must be read at `floor` or later. A snapshot taken after the read began can still be
 * below it: MariaDB writes a commit group to the binlog (and the binlog reader may have it) before the storage
 * engine makes it visible; the reader then takes its snapshot again (openSnapshotAtOrAbove in snapshot-reader.ts).
 */
export class ChunkRead {
  ts: Ts | undefined;
  readonly pieces: SnapshotPiece[] = [];
  bytes = 0;
  spaceWaiter: (() => void) | undefined;
  constructor(
    readonly range: KeyRange,
    readonly floor: Ts,
  ) {}

  /** How far the table may be written while this chunk is not written whole. */
  get bound(): Ts {
    return this.ts ?? this.floor;
  }
}

/** Pieces a chunk's read runs ahead of the sink at most (and its bytes, below), so a slow sink slows the reads. */
const MAX_QUEUED_PIECES = 8;

/**
 * One table's initial snapshot on the capture that copies it: the key ranges still to read, the chunks being read
 * (several at once, finishing in any order) with their pieces waiting for the sink, the chunks already written, and
 * the rule that reconciles the binlog with them (DBLog's and Flink CDC's idea, with MariaDB's exact snapshot
 * position instead of watermarks):
 *
 * - each chunk's rows are read in one transaction WITH CONSISTENT SNAPSHOT, whose binlog position P is known;
 *   the rows are the keys' state at P, so they are written at P, after the table's binlog changes up to P;
 * - a binlog change of a key at ts t is written only when the key's chunk is written and t > its P (what
 *   happened before P is in the chunk's rows); changes of keys whose chunk is not written yet are dropped while
 *   the table is written no further than the lowest P of the chunks being read, since every chunk not read yet
 *   is read at a later P.
 *
 * So the table sink stage writes a snapshotting table up to `cap` (the lowest position of the chunks being read; a
 * read announced before its snapshot holds the table where it was until its position is known), passes its binlog
 * changes through `keep`, and writes the pieces read at the position it has reached (`front`, `begin`, `written`).
 */
export class TableSnapshot {
  /** Chunks whose rows are all written (or were acknowledged by an earlier run), in key order. */
  private readonly completed: CompletedChunk[] = [];
  /** Chunks being read, in the order their reads began. */
  private readonly reads: ChunkRead[] = [];
  /** Key ranges no read has taken yet (the gaps between completed chunks; the rest of a read that failed). */
  private readonly unread: KeyRange[] = [];
  private key: SnapshotKey | undefined;
  private readonly keyIndexes = new WeakMap<readonly ColumnInfo[], number[] | null>();
  /** Every chunk was acknowledged by an earlier run: only this piece is left (the table written past the last one). */
  private closing: SnapshotPiece | undefined;
  /** The next row written is the copy's first (marked 'first'): no row was acknowledged before, or a pass starts over. */
  private markFirst: boolean;
  /**
   * An earlier run began this copy (the record said copying): it may have written rows of chunks it did not get
   * acknowledged, and changes after them, which this run reads again at a later position. So the binlog changes
   * of keys not copied yet are written, not dropped (those after the table's checkpoint: the rest are not read
   * again), and the chunk's rows follow them: the sink ends with each row as the upstream has it, but may see a
   * change twice, as after any failure.
   */
  resumed: boolean;
  /**
   * A one-pass copy an earlier run began: rows without a key cannot be replaced, so the pass starts over behind a
   * TRUNCATE of the table in the sink (written before the first piece), and changes before the pass are dropped.
   */
  truncateFirst = false;
  /** Every piece is written (the reconciliation is over once the table is written past the last one). */
  finished = false;
  /** Rows handed to the sink this run, and chunks completed. */
  rowsWritten = 0;
  chunksWritten = 0;
  /** Rows and chunks acknowledged, over every run (from the record, then this run's acknowledgements). */
  rowsAcknowledged: number;
  /** The server's row estimate when the copy began, for progress. */
  estimatedRows: number | undefined;
  method: 'chunks' | 'one-pass' | undefined;
  /** When this run's reader began (undefined: queued for a reader). */
  copyStartedAt: number | undefined;
  /** Rows and chunks acknowledged by earlier runs. */
  readonly rowsAtStart: number;
  readonly chunksAtStart: number;

  /**
   * @param record the progress so far (acknowledged chunks), from etcd
   * @param startTs the table's checkpoint: binlog changes at or before it are not read again
   * @param onPiece called when the table may have something new to write (a piece came, a read's position is known)
   * @param maxQueuedBytes how many bytes of read rows each chunk's read may have waiting for the sink
   * @param ready resolves once the record says the copy began (state copying, in etcd): no piece is queued before
   * @param writtenTs how far the table sink stage wrote the table, or is writing it now (a read that begins takes it
   * as its floor)
   */
  constructor(
    record: TableSnapshotRecord,
    startTs: Ts,
    private readonly onPiece: () => void,
    private readonly maxQueuedBytes: number,
    private readonly ready: Promise<void> = Promise.resolve(),
    private readonly writtenTs: () => Ts = () => startTs,
  ) {
    this.resumed = record.state !== 'pending';
    this.rowsAcknowledged = record.rows;
    this.markFirst = record.rows === 0;
    this.rowsAtStart = record.rows;
    this.chunksAtStart = record.chunks.length;
    this.estimatedRows = record['estimated-rows'];
    this.method = record.method;
    let lastTs = 0n;
    for (const c of explicitChunks(record.chunks)) {
      this.completed.push({ lower: c.lower === null ? null : decodeKey(c.lower), upper: c.upper === null ? null : decodeKey(c.upper), ts: BigInt(c.ts) });
      if (BigInt(c.ts) > lastTs) lastTs = BigInt(c.ts);
    }
    this.unread.push(...this.gaps());
    if (this.completed.length > 0 && this.unread.length === 0) {
      // every chunk was acknowledged, not the end of the copy: the table is written past the last chunk's ts, then done
      this.closing = { ts: lastTs > startTs ? lastTs : startTs, rows: [], bytes: 0, final: true };
    }
  }

  /** The key ranges no completed chunk covers, in key order. */
  private gaps(): KeyRange[] {
    const gaps: KeyRange[] = [];
    // where the last completed chunk ends (null before the first: the start of the table)
    let from: Value[] | null = null;
    for (const c of this.completed) {
      const touches = from === null ? c.lower === null : c.lower !== null && sameTuple(from, c.lower);
      if (!touches) gaps.push({ lower: from, upper: c.lower });
      if (c.upper === null) return gaps;
      from = c.upper;
    }
    gaps.push({ lower: from, upper: null });
    return gaps;
  }

  /** The key ranges no read has taken yet, the next one first. */
  get toRead(): readonly KeyRange[] {
    return this.unread;
  }

  /** The reader read the table's definition: how keys fall into chunks. A one-pass read starts over. */
  setKey(key: SnapshotKey, method: 'chunks' | 'one-pass'): void {
    this.key = key;
    this.copyStartedAt ??= Date.now();
    if (this.closing === undefined && (method === 'one-pass' || this.method === 'one-pass')) {
      this.completed.length = 0;
      this.unread.length = 0;
      this.unread.push({ lower: null, upper: null });
    }
    if (this.closing === undefined && method === 'one-pass' && this.resumed) {
      this.resumed = false;
      this.truncateFirst = true;
      this.markFirst = true;
    }
    this.method = method;
  }

  // ------------------------------------------------------------------------------------------------ reader side

  /**
   * A read takes the start of the range `from` (one of `toRead`) up to `upper` (null: the whole range): the rest
   * stays to be read. Returns the chunk's read, which queues pieces once its position is known.
   */
  open(from: KeyRange, upper: Value[] | null): ChunkRead {
    const at = this.unread.indexOf(from);
    if (at < 0) throw new TidemarkError('ErrInvariantBroken', 'snapshot: a read took a key range that is not waiting to be read');
    const range: KeyRange = { lower: from.lower, upper: upper ?? from.upper };
    if (upper === null || (from.upper !== null && this.key!.compare(upper, from.upper) >= 0)) this.unread.splice(at, 1);
    else this.unread[at] = { lower: upper, upper: from.upper };
    // the table is written no further than this now (and no further than `cap` from now on)
    const written = this.writtenTs();
    const cap = this.cap;
    const read = new ChunkRead(range, cap !== undefined && cap < written ? cap : written);
    this.reads.push(read);
    return read;
  }

  /**
   * The read's transaction has its consistent snapshot at `ts` (at or above the read's floor, else changes of its
   * keys between the two were dropped and its rows do not have them): the table may be written up to there.
   */
  positioned(read: ChunkRead, ts: Ts): void {
    if (ts < read.floor) throw new TidemarkError('ErrInvariantBroken', `snapshot: a chunk read at ${ts}, below the position ${read.floor} the table may already be written to`);
    read.ts = ts;
    this.onPiece();
  }

  /**
   * Queues a piece of the read's chunk for the sink; waits while its read has too much queued (the sink is slower).
   * False when the read was dropped meanwhile (the table went away, or a one-pass read starts over): the piece is not
   * queued, and its quota is the caller's to give back.
   */
  async push(read: ChunkRead, piece: SnapshotPiece, signal: AbortSignal): Promise<boolean> {
    await this.ready;
    while ((read.pieces.length >= MAX_QUEUED_PIECES || read.bytes >= this.maxQueuedBytes) && read.pieces.length > 0) await this.change(read, signal);
    signal.throwIfAborted();
    if (!this.reads.includes(read)) return false;
    read.pieces.push(piece);
    read.bytes += piece.bytes;
    this.onPiece();
    return true;
  }

  /**
   * Resolves once the read's chunk is written whole (or dropped): a read holds its ReadSlot until then, so the
   * chunks read ahead of the sink, and their bytes, are bounded by the slots.
   */
  async chunkWritten(read: ChunkRead, signal: AbortSignal): Promise<void> {
    while (this.reads.includes(read)) await this.change(read, signal);
  }

  /** Waits until a piece of the read is written, or the read is dropped. */
  private async change(read: ChunkRead, signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    await new Promise<void>((resolve) => {
      const done = (): void => {
        signal.removeEventListener('abort', done);
        read.spaceWaiter = undefined;
        resolve();
      };
      read.spaceWaiter = done;
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /** A read that failed leaves this range to be read again (before its own last piece is queued). */
  readAgain(range: KeyRange): void {
    this.unread.unshift(range);
  }

  /**
   * A read that failed before it queued any piece: its range is read again; returns the quota bytes of what it had
   * queued (none unless a one-pass read is dropped whole, see restartPass).
   */
  abandon(read: ChunkRead): number {
    const at = this.reads.indexOf(read);
    if (at < 0) return 0;
    this.reads.splice(at, 1);
    this.unread.unshift(read.range);
    const bytes = read.bytes;
    read.pieces.length = 0;
    read.bytes = 0;
    read.spaceWaiter?.();
    this.onPiece();
    return bytes;
  }

  // ------------------------------------------------------------------------------------------------ stage side

  /**
   * How far the table may be written now: the lowest position of the chunks being read (undefined: no limit; while
   * no chunk is being read, every chunk still to read is read at a later position than the table can reach).
   */
  get cap(): Ts | undefined {
    if (this.finished) return undefined;
    if (this.closing !== undefined) return this.closing.ts;
    let cap: Ts | undefined;
    for (const r of this.reads) if (cap === undefined || r.bound < cap) cap = r.bound;
    return cap;
  }

  /** The piece to write once the table is written up to its ts (a piece of a chunk read at `cap`). */
  front(): SnapshotPiece | undefined {
    if (this.closing !== undefined) return this.closing;
    const cap = this.cap;
    for (const r of this.reads) if (r.ts === cap && r.pieces.length > 0) return r.pieces[0];
    return undefined;
  }

  /**
   * The stage is about to hand `piece` (from front) to the sink: the piece as it is written, with the copy's first
   * row marked 'first' and, when it ends the copy (its chunk is the last one being read and no range is left), its
   * last row marked 'last' and the piece `final`.
   */
  begin(piece: SnapshotPiece): SnapshotPiece {
    if (piece === this.closing) return piece;
    const read = this.reads.find((r) => r.pieces[0] === piece);
    if (read === undefined) throw new TidemarkError('ErrInvariantBroken', 'snapshot: the piece to write is not at the front of its chunk');
    const rows = piece.rows as MutableRow[];
    if (this.markFirst && rows.length > 0) {
      rows[0].snapshot = 'first';
      this.markFirst = false;
    }
    if (piece.chunkEnd === undefined || this.unread.length > 0 || this.reads.length > 1) return piece;
    const last = rows[rows.length - 1] as MutableRow | undefined;
    // a copy whose last chunk came back empty (its rows were deleted after the split) has no row to mark
    if (last !== undefined) last.snapshot = last.snapshot === 'first' ? 'only' : 'last';
    const final: SnapshotPiece = { ...piece, final: true };
    read.pieces[0] = final;
    return final;
  }

  /** The piece (from begin) was handed to the sink. */
  written(piece: SnapshotPiece): void {
    if (piece === this.closing) {
      this.closing = undefined;
      this.finished = true;
      return;
    }
    const at = this.reads.findIndex((r) => r.pieces[0] === piece);
    if (at < 0) return;
    const read = this.reads[at];
    read.pieces.shift();
    read.bytes -= piece.bytes;
    this.rowsWritten += piece.rows.length;
    if (piece.chunkEnd !== undefined) {
      this.complete({ ...piece.chunkEnd, ts: piece.ts });
      this.chunksWritten++;
      this.reads.splice(at, 1);
    }
    if (piece.final) this.finished = true;
    read.spaceWaiter?.();
  }

  /** Bytes of pieces not written yet (given back to the quota when the table goes away). */
  get pendingBytes(): number {
    let bytes = 0;
    for (const r of this.reads) bytes += r.bytes;
    return bytes;
  }

  /**
   * A one-pass read failed after it handed rows over and starts over at a later position: the rows it queued are
   * dropped, the read is abandoned, and the sink's table is emptied before the new pass's first piece (some of the
   * old pass may be written). Returns the dropped pieces' quota bytes.
   */
  restartPass(read: ChunkRead): number {
    this.truncateFirst = true;
    this.markFirst = true;
    return this.abandon(read);
  }

  /** Drops the queued pieces (the table was removed); returns their quota bytes. */
  discard(): number {
    let bytes = 0;
    for (const r of this.reads) {
      bytes += r.bytes;
      r.pieces.length = 0;
      r.bytes = 0;
      r.spaceWaiter?.();
    }
    this.reads.length = 0;
    return bytes;
  }

  private complete(chunk: CompletedChunk): void {
    const { completed } = this;
    let at = completed.length;
    while (at > 0 && chunk.upper !== null && (completed[at - 1].upper === null || this.key!.compare(completed[at - 1].upper!, chunk.upper) > 0)) at--;
    completed.splice(at, 0, chunk);
  }

  /**
   * A binlog change of the table, written at most up to `cap`: the change as it goes to the sink, undefined
   * when the snapshot's rows hold it already (or will), or the part of an update that moves a key from one
   * side of that line to the other (a delete or an insert).
   */
  keep(row: RowChangedEvent): RowChangedEvent | undefined {
    if (this.completed.length === 0) return this.resumed ? row : undefined;
    const ts = row.commitTs;
    const image = row.after ?? row.before!;
    const indexes = this.indexesOf(row.columns);
    const chunk = this.chunkOf(indexes, image);
    const keepImage = chunk === undefined ? this.resumed : ts > chunk.ts;
    if (row.kind !== 'update') return keepImage ? row : undefined;
    const other = this.chunkOf(indexes, row.before!);
    const keepBefore = other === undefined ? this.resumed : ts > other.ts;
    if (keepImage === keepBefore) return keepImage ? row : undefined;
    // the key moved across the copied line: the side that is not in the chunks' rows yet goes as delete or insert
    return keepImage ? { ...row, kind: 'insert', before: null } : { ...row, kind: 'delete', after: null };
  }

  /** The completed chunk whose range holds the key (undefined: its chunk is not written yet). */
  private chunkOf(indexes: number[] | null, image: readonly ColumnValue[]): CompletedChunk | undefined {
    const { completed } = this;
    if (indexes === null || this.key === undefined) {
      const only = completed[0];
      return completed.length === 1 && only.lower === null && only.upper === null ? only : undefined;
    }
    // mounted values are never booleans (ColumnValue allows them for plugins)
    const key = indexes.map((i) => (image[i] ?? null) as Value);
    const compare = this.key.compare;
    // the first chunk whose upper end is at or above the key
    let lo = 0;
    let hi = completed.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const upper = completed[mid].upper;
      if (upper === null || compare(key, upper) <= 0) hi = mid;
      else lo = mid + 1;
    }
    const chunk = completed[lo] as CompletedChunk | undefined;
    return chunk === undefined || (chunk.lower !== null && compare(key, chunk.lower) <= 0) ? undefined : chunk;
  }

  /** The key columns' positions in a row with these columns (null: one pass, or a key column is missing). */
  private indexesOf(columns: readonly ColumnInfo[]): number[] | null {
    let indexes = this.keyIndexes.get(columns);
    if (indexes === undefined) {
      const names = this.key?.names;
      if (names === undefined) indexes = null;
      else {
        const found = names.map((n) => columns.findIndex((c) => c.name === n));
        indexes = found.includes(-1) ? null : found;
      }
      this.keyIndexes.set(columns, indexes);
    }
    return indexes;
  }
}

type MutableRow = { -readonly [K in keyof RowChangedEvent]: RowChangedEvent[K] };

function sameTuple(a: readonly Value[], b: readonly Value[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (x === y) continue;
    if (x instanceof Buffer && y instanceof Buffer && x.equals(y)) continue;
    return false;
  }
  return true;
}
