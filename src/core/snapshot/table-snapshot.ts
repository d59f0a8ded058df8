import type { ColumnInfo, ColumnValue, RowChangedEvent, Ts } from '../sink/api.js';
import type { Value } from '../upstream/rows.js';
import { decodeKey, type TableSnapshotRecord } from './progress.js';

/** Rows read from the table at one ts, handed to the sink together (a chunk is one or more pieces). */
export interface SnapshotPiece {
  /** The binlog position the rows were read at (MariaDB's binlog_snapshot_position of their transaction). */
  readonly ts: Ts;
  readonly rows: readonly RowChangedEvent[];
  /** Memory-quota bytes the rows hold until the sink has them. */
  readonly bytes: number;
  /** Set on the last piece of a chunk: the upper end of the chunk's key range (null: to the end of the table). */
  readonly chunkEnd?: { readonly upper: Value[] | null };
  /** The table's last piece. */
  readonly final: boolean;
}

/** How the snapshot tells which chunk a row's key belongs to. */
export interface SnapshotKey {
  /** The key's column names, in key order (undefined: one pass, every key is in the one chunk). */
  readonly names: readonly string[] | undefined;
  /** Orders two key tuples as the server does. */
  readonly compare: (a: readonly Value[], b: readonly Value[]) => number;
}

interface CompletedChunk {
  readonly upper: Value[] | null;
  readonly ts: Ts;
}

/** Pieces read ahead of the sink at most (and their bytes, below), so a slow sink slows the reads. */
const MAX_QUEUED_PIECES = 8;

/**
 * One table's initial snapshot on the capture that copies it: the pieces read from the table waiting for the
 * sink, the chunks already written, and the rule that reconciles the binlog with them (DBLog's and Flink CDC's
 * idea, with MariaDB's exact snapshot position instead of watermarks):
 *
 * - each chunk's rows are read in one transaction WITH CONSISTENT SNAPSHOT, whose binlog position P is known;
 *   the rows are the keys' state at P, so they are written at P, after the table's binlog changes up to P;
 * - a binlog change of a key at ts t is written only when the key's chunk is written and t > its P (what
 *   happened before P is in the chunk's rows); changes of keys whose chunk is not read yet are dropped while
 *   the table is written no further than the next chunk's P, since that chunk is read at a later P.
 *
 * So the table sink stage writes a snapshotting table up to `cap` (the front piece's P, or the last written
 * one's while the reader reads on), passes its binlog changes through `keep`, then writes the piece.
 */
export class TableSnapshot {
  /** Chunks whose rows are all written (or were acknowledged by an earlier run), in key order. */
  private readonly completed: CompletedChunk[] = [];
  private readonly pieces: SnapshotPiece[] = [];
  private queuedBytes = 0;
  private heldTs: Ts;
  private key: SnapshotKey | undefined;
  private readonly keyIndexes = new WeakMap<readonly ColumnInfo[], number[] | null>();
  private spaceWaiter: (() => void) | undefined;
  /** Every chunk was acknowledged by an earlier run: nothing is left to read. */
  private allRead = false;
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
   * @param onPiece called when a piece arrives (the stage looks at the table)
   * @param maxQueuedBytes how many bytes of read rows may wait for the sink
   * @param ready resolves once the record says the copy began (state copying, in etcd): no piece is queued before
   */
  constructor(
    record: TableSnapshotRecord,
    startTs: Ts,
    private readonly onPiece: () => void,
    private readonly maxQueuedBytes: number,
    private readonly ready: Promise<void> = Promise.resolve(),
  ) {
    this.heldTs = startTs;
    this.resumed = record.state !== 'pending';
    this.rowsAcknowledged = record.rows;
    this.rowsAtStart = record.rows;
    this.chunksAtStart = record.chunks.length;
    this.estimatedRows = record['estimated-rows'];
    this.method = record.method;
    for (const c of record.chunks) this.completed.push({ upper: c.upper === null ? null : decodeKey(c.upper), ts: BigInt(c.ts) });
    const last = this.completed[this.completed.length - 1];
    if (last !== undefined && last.upper === null) {
      // every chunk was acknowledged, not the end of the copy: the table is written past the last chunk's ts, then done
      this.completed.pop();
      this.allRead = true;
      this.pieces.push({ ts: last.ts > startTs ? last.ts : startTs, rows: [], bytes: 0, final: true, chunkEnd: { upper: null } });
    }
  }

  /** Where the copy goes on: the upper end of the last completed chunk (undefined: from the start; null: nothing left). */
  get resumeAfter(): Value[] | null | undefined {
    if (this.allRead) return null;
    return this.completed.length === 0 ? undefined : this.completed[this.completed.length - 1].upper;
  }

  /** The reader read the table's definition: how keys fall into chunks. A one-pass read starts over. */
  setKey(key: SnapshotKey, method: 'chunks' | 'one-pass'): void {
    this.key = key;
    this.copyStartedAt ??= Date.now();
    if (!this.allRead && (method === 'one-pass' || this.method === 'one-pass')) this.completed.length = 0;
    if (!this.allRead && method === 'one-pass' && this.resumed) {
      this.resumed = false;
      this.truncateFirst = true;
    }
    this.method = method;
  }

  // ------------------------------------------------------------------------------------------------ reader side

  /** Queues a piece for the sink; waits while too much is queued (the sink is slower than the reads). */
  async push(piece: SnapshotPiece, signal: AbortSignal): Promise<void> {
    await this.ready;
    while ((this.pieces.length >= MAX_QUEUED_PIECES || this.queuedBytes >= this.maxQueuedBytes) && this.pieces.length > 0) {
      signal.throwIfAborted();
      await new Promise<void>((resolve) => {
        const done = (): void => {
          signal.removeEventListener('abort', done);
          this.spaceWaiter = undefined;
          resolve();
        };
        this.spaceWaiter = done;
        signal.addEventListener('abort', done, { once: true });
      });
    }
    signal.throwIfAborted();
    this.pieces.push(piece);
    this.queuedBytes += piece.bytes;
    this.onPiece();
  }

  // ------------------------------------------------------------------------------------------------ stage side

  /** How far the table may be written now: the next piece's ts, or the last written one's (undefined: no limit). */
  get cap(): Ts | undefined {
    if (this.finished) return undefined;
    return this.pieces.length > 0 ? this.pieces[0].ts : this.heldTs;
  }

  /** The piece to write once the table is written up to its ts. */
  front(): SnapshotPiece | undefined {
    return this.pieces[0];
  }

  /** The front piece was handed to the sink. */
  written(piece: SnapshotPiece): void {
    if (this.pieces[0] !== piece) return;
    this.pieces.shift();
    this.queuedBytes -= piece.bytes;
    this.heldTs = piece.ts;
    this.rowsWritten += piece.rows.length;
    if (piece.chunkEnd !== undefined) {
      this.completed.push({ upper: piece.chunkEnd.upper, ts: piece.ts });
      this.chunksWritten++;
    }
    if (piece.final) this.finished = true;
    this.spaceWaiter?.();
  }

  /** Bytes of pieces not written yet (given back to the quota when the table goes away). */
  get pendingBytes(): number {
    return this.queuedBytes;
  }

  /**
   * A one-pass read failed after it handed rows over and starts over at a later position: the rows it queued are
   * dropped, and the sink's table is emptied before the new pass's first piece (some of the old pass may be written).
   * Returns the dropped pieces' quota bytes.
   */
  restartPass(): number {
    this.truncateFirst = true;
    return this.discard();
  }

  /** Drops the queued pieces (the table was removed); returns their quota bytes. */
  discard(): number {
    const bytes = this.queuedBytes;
    this.pieces.length = 0;
    this.queuedBytes = 0;
    this.spaceWaiter?.();
    return bytes;
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

  private chunkOf(indexes: number[] | null, image: readonly ColumnValue[]): CompletedChunk | undefined {
    const { completed } = this;
    if (indexes === null || this.key === undefined) return completed[completed.length - 1].upper === null ? completed[completed.length - 1] : undefined;
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
    return completed[lo];
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
