import type mysql from 'mysql2/promise';
import type { Readable } from 'node:stream';
import type { Connection as CallbackConnection } from 'mysql2';
import { TidemarkError, isAbortError } from '../errors/index.js';
import type { Upstream } from '../upstream/upstream.js';
import type { Logger } from '../logger/logger.js';
import { makeTs, tsFileSeq, tsPosition } from '../model/ts.js';
import { setTimeout as sleep } from 'node:timers/promises';
import type { MemoryQuota } from '../pipeline/sorter/memory-quota.js';
import type { RowChangedEvent, TableName, Ts } from '../sink/api.js';
import type { Value } from '../upstream/rows.js';
import { CONNECTION_OPTIONS, QUERY_OPTIONS, compareKeys, readTableShape, type TableShape } from './table-shape.js';
import type { ChunkRead, KeyRange, SnapshotPiece, TableSnapshot } from './table-snapshot.js';
import type { ReadSlots } from './read-slots.js';

/** Rows per piece handed to the sink at most (a chunk is read as one or more pieces). */
const PIECE_ROWS = 1024;
/**
 * Bytes per piece at most (the row that passes it ends the piece), as a share of the changefeed's memory quota
 * within these bounds: wide rows come in smaller pieces, so what is read ahead stays within the quota.
 */
const PIECE_BYTES_MIN = 64 << 10;
const PIECE_BYTES_MAX = 4 << 20;
/**
 * Rows the query stream takes in while a piece is being handed on (its read-ahead before the socket pauses): about
 * a piece's bytes, by the rows read so far, within these bounds (16 rows until rows were seen; fewer than 1,024 for
 * narrow rows cost a tenth of the Kafka copy's throughput in pauses and resumes of the socket).
 */
const STREAM_ROWS_MIN = 16;
/** Rough bytes of a snapshot row beyond its values (the event object, its arrays). */
const ROW_OVERHEAD = 120;
/** Errors after which a chunk is read again (the table changed under the read, a deadlock, a lost connection). */
const RETRIES = 5;

export interface SnapshotReaderOptions {
  readonly upstream: Upstream;
  readonly table: TableName;
  readonly snapshot: TableSnapshot;
  readonly chunkRows: number;
  readonly quota: MemoryQuota;
  readonly logger: Logger;
  /** The chunk reads this capture runs at once for the changefeed, shared by the tables it copies. */
  readonly readers: ReadSlots;
}

const quote = (ident: string): string => `\`${ident.replaceAll('`', '``')}\``;

/** The binlog position of the open transaction's consistent snapshot, as a ts (MariaDB's binlog_snapshot_*). */
async function snapshotPosition(conn: mysql.Connection, upstream: Upstream): Promise<Ts> {
  const [rows] = await conn.query<mysql.RowDataPacket[]>("SHOW STATUS LIKE 'binlog_snapshot_%'");
  const status = new Map(rows.map((r) => [String(r['Variable_name']).toLowerCase(), String(r['Value'])]));
  const file = status.get('binlog_snapshot_file');
  const position = status.get('binlog_snapshot_position');
  const seq = file === undefined ? Number.NaN : Number(file.slice(file.lastIndexOf('.') + 1));
  if (file === undefined || position === undefined || !Number.isInteger(seq) || file === '') {
    throw new TidemarkError('ErrSnapshotUnsupported', `the upstream ${upstream.shown} does not tell the binlog position of a consistent snapshot (status binlog_snapshot_file/binlog_snapshot_position, MariaDB's): --snapshot initial needs a MariaDB upstream with the binlog enabled`);
  }
  return makeTs(seq, Number(position));
}

/** How many times a read takes its snapshot again while it is below the read's floor (waits of 5 ms, doubling up to 100 ms: about 4 s in all). */
const BEHIND_RETRIES = 45;

/**
 * Opens a transaction WITH CONSISTENT SNAPSHOT at `floor` or later and returns its position. MariaDB writes a
 * commit group to the binlog, and lets the binlog readers have it, before the storage engine makes it visible; a
 * snapshot taken in that moment is below a commit the table may already be written past (its changes to keys
 * not copied yet were dropped). A moment later the commit is visible, so the snapshot is taken again.
 */
async function openSnapshotAtOrAbove(conn: mysql.Connection, upstream: Upstream, floor: Ts, signal: AbortSignal): Promise<Ts> {
  for (let attempt = 0; ; attempt++) {
    await conn.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
    const ts = await snapshotPosition(conn, upstream);
    if (ts >= floor) return ts;
    await conn.query('COMMIT');
    if (attempt === BEHIND_RETRIES) {
      throw new TidemarkError('ErrSnapshotBehind', `snapshot: ${upstream.shown} gives consistent snapshots at ${shownTs(ts)}, below ${shownTs(floor)}, the binlog position the table was already written to (has the binlog gone back, or was the upstream replaced?)`);
    }
    await sleep(Math.min(100, 5 * 2 ** attempt), undefined, { signal });
  }
}

const shownTs = (ts: Ts): string => `${ts} (binlog file ${tsFileSeq(ts)}, position ${tsPosition(ts)})`;

/** Refuses `--snapshot initial` at create when the upstream cannot give a consistent snapshot's binlog position. */
export async function checkSnapshotSupport(upstream: Upstream): Promise<void> {
  await upstream.with('open a consistent snapshot (for --snapshot initial)', async (conn) => {
    await conn.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
    await snapshotPosition(conn, upstream);
    await conn.query('COMMIT');
  });
}

/**
 * The WHERE clause of the rows in `range` by key: `k1 > ? OR (k1 = ? AND k2 > ?) OR …` above its lower end, and
 * `k1 < ? OR (k1 = ? AND k2 < ?) OR … OR (k1 = ? AND … AND kn = ?)` up to its upper end.
 */
function within(shape: TableShape, range: KeyRange): { sql: string; values: unknown[] } {
  const names = shape.key!.map((i) => quote(shape.columns[i].name));
  const param = (v: Value): unknown => (typeof v === 'bigint' ? v.toString() : v);
  const values: unknown[] = [];
  const side = (key: readonly Value[], op: '>' | '<', orEqual: boolean): string => {
    const terms: string[] = [];
    for (let i = 0; i < names.length; i++) {
      const parts: string[] = [];
      for (let j = 0; j < i; j++) {
        parts.push(`${names[j]} = ?`);
        values.push(param(key[j]));
      }
      parts.push(`${names[i]} ${op} ?`);
      values.push(param(key[i]));
      terms.push(parts.length === 1 ? parts[0] : `(${parts.join(' AND ')})`);
    }
    if (orEqual) {
      terms.push(`(${names.map((n) => `${n} = ?`).join(' AND ')})`);
      for (const v of key) values.push(param(v));
    }
    return terms.length === 1 ? terms[0] : `(${terms.join(' OR ')})`;
  };
  const conditions: string[] = [];
  if (range.lower !== null) conditions.push(side(range.lower, '>', false));
  if (range.upper !== null) conditions.push(side(range.upper, '<', true));
  return { sql: conditions.length === 0 ? '' : ` WHERE ${conditions.join(' AND ')}`, values };
}

function rowBytes(values: readonly unknown[]): number {
  let bytes = ROW_OVERHEAD;
  for (const v of values) {
    if (typeof v === 'string') bytes += 16 + 2 * v.length;
    else if (Buffer.isBuffer(v)) bytes += 32 + v.length;
    else bytes += 16;
  }
  return bytes;
}

/**
 * A query stream's rows in batches of up to `size` rows or the row that passes `maxBytes` (rowBytes of the rows
 * as mysql2 gives them), one promise per batch, not per row; the stream is paused while a batch is being handled,
 * so a slow consumer slows the server's sending (TCP backpressure).
 */
async function* batches(stream: Readable, size: number, maxBytes: number): AsyncGenerator<{ rows: unknown[][]; bytes: number }> {
  let batch: unknown[][] = [];
  let bytes = 0;
  let ended = false;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  stream.on('data', (row: unknown[]) => {
    batch.push(row);
    bytes += rowBytes(row);
    if (batch.length >= size || bytes >= maxBytes) {
      stream.pause();
      wake?.();
    }
  });
  stream.once('end', () => {
    ended = true;
    wake?.();
  });
  stream.once('error', (error: Error) => {
    failure = error;
    wake?.();
  });
  try {
    for (;;) {
      if (failure !== undefined) throw failure;
      if (batch.length >= size || bytes >= maxBytes || (ended && batch.length > 0)) {
        const out = { rows: batch, bytes };
        batch = [];
        bytes = 0;
        yield out;
        stream.resume();
        continue;
      }
      if (ended) return;
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
  } finally {
    stream.removeAllListeners('data');
    stream.destroy();
  }
}

/**
 * Copies one table for its initial snapshot (see TableSnapshot): its key ranges still to read are split into chunks
 * of `chunkRows` rows by key (the key at that offset, read from the index), and the chunks are read several at once
 * (as many as the capture's ReadSlots give), each in its own transaction WITH CONSISTENT SNAPSHOT (no lock, no
 * write to the upstream) together with the binlog position of that snapshot, and handed on as pieces of up to
 * PIECE_ROWS rows marked as snapshot reads. A table without a key that orders in JS as on the server is read in
 * one such transaction. Resolves when every piece is queued; a chunk whose read fails is read again on a new
 * connection, and the copy fails after RETRIES failures in a row.
 */
export async function readTableSnapshot(options: SnapshotReaderOptions, signal: AbortSignal): Promise<void> {
  await new TableCopy(options).run(signal);
}

class TableCopy {
  /** Rows read so far and their bytes (rowBytes): how many rows the query stream may read ahead. */
  private rowsSeen = 0;
  private bytesSeen = 0;
  /** Reads and splits that failed in a row. */
  private failures = 0;
  private readonly name: string;
  /** Every connection open, and the ones no read uses now. */
  private readonly connections = new Set<mysql.Connection>();
  private readonly idle: mysql.Connection[] = [];

  constructor(private readonly options: SnapshotReaderOptions) {
    this.name = `${options.table.schema}.${options.table.table}`;
  }

  async run(outer: AbortSignal): Promise<void> {
    const { snapshot, readers } = this.options;
    const controller = new AbortController();
    const signal = AbortSignal.any([outer, controller.signal]);
    const onAbort = (): void => {
      for (const conn of this.connections) conn.destroy();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    const reading = new Set<Promise<void>>();
    let failure: Error | undefined;
    try {
      const shape = await this.retrying(signal, (conn) => this.describe(conn));
      for (;;) {
        if (failure !== undefined) throw failure;
        signal.throwIfAborted();
        if (snapshot.toRead.length === 0) {
          if (reading.size === 0) return;
          await Promise.race(reading);
          continue;
        }
        const release = await readers.acquire(signal);
        let read: ChunkRead | undefined;
        try {
          read = await this.retrying(signal, (conn) => this.take(conn, shape));
        } catch (error) {
          release();
          throw error;
        }
        if (read === undefined) {
          release();
          continue;
        }
        const done: Promise<void> = this.readChunk(read, shape, signal)
          .catch((error: unknown) => {
            failure ??= error instanceof Error ? error : new TidemarkError('ErrSnapshotFailed', `snapshot of ${this.name} failed: ${String(error)}`);
            controller.abort();
          })
          .finally(() => {
            release();
            reading.delete(done);
          });
        reading.add(done);
      }
    } catch (error) {
      if (outer.aborted) throw isAbortError(error) ? error : new TidemarkError('ErrAborted', 'snapshot stopped', { cause: error });
      throw failure ?? error;
    } finally {
      // reads still running (a read failed, or the copy stopped) are cut off; a copy that ended quits its sessions
      if (reading.size > 0) controller.abort();
      await Promise.allSettled([...reading]);
      signal.removeEventListener('abort', onAbort);
      await Promise.all([...this.connections].map((conn) => conn.end().catch(() => undefined)));
    }
  }

  private async connect(): Promise<mysql.Connection> {
    const idle = this.idle.pop();
    if (idle !== undefined) return idle;
    const conn = await this.options.upstream.connect({ connectTimeout: 10_000, ...CONNECTION_OPTIONS });
    this.connections.add(conn);
    try {
      await conn.query("SET SESSION time_zone = '+00:00', SESSION sql_mode = ''");
      // WITH CONSISTENT SNAPSHOT holds only under REPEATABLE READ: under a server default of READ COMMITTED
      // each SELECT would read later than the position the snapshot reports (rows there twice)
      await conn.query('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
    } catch (error) {
      this.drop(conn);
      throw error;
    }
    return conn;
  }

  private drop(conn: mysql.Connection): void {
    this.connections.delete(conn);
    conn.destroy();
  }

  /**
   * Runs `work` on a connection, again on a new one after a retryable failure (up to RETRIES in a row, counted with
   * the reads' failures).
   */
  private async retrying<T>(signal: AbortSignal, work: (conn: mysql.Connection) => Promise<T>): Promise<T> {
    for (;;) {
      let conn: mysql.Connection | undefined;
      try {
        conn = await this.connect();
        const result = await work(conn);
        this.idle.push(conn);
        return result;
      } catch (error) {
        if (conn !== undefined) this.drop(conn);
        await this.failed(error, signal);
      }
    }
  }

  /** A read or split failed: rethrows what cannot be retried; otherwise waits a little before the next try. */
  private async failed(error: unknown, signal: AbortSignal): Promise<void> {
    if (signal.aborted) throw isAbortError(error) ? error : new TidemarkError('ErrAborted', 'snapshot stopped', { cause: error });
    if (error instanceof TidemarkError && !error.retryable) throw error;
    if (++this.failures > RETRIES) {
      throw new TidemarkError('ErrSnapshotFailed', `snapshot of ${this.name} failed ${RETRIES + 1} times in a row reading from ${this.options.upstream.shown}: ${(error as Error).message}`, { cause: error });
    }
    this.options.logger.warn('snapshot: reading a chunk failed; reading it again', { table: this.name, error, attempt: this.failures });
    await new Promise((resolve) => setTimeout(resolve, 200 * this.failures));
  }

  /** Reads the table's definition: how it is copied (by key ranges, or in one pass). */
  private async describe(conn: mysql.Connection): Promise<TableShape> {
    const { table, snapshot, chunkRows, logger } = this.options;
    const shape = await readTableShape(conn, table.schema, table.table);
    const chunked = shape.key !== undefined && shape.orderable;
    const names = chunked ? shape.key.map((i) => shape.columns[i].name) : undefined;
    const resuming = snapshot.rowsAcknowledged > 0;
    snapshot.setKey({ names, compare: compareKeys }, chunked ? 'chunks' : 'one-pass');
    if (snapshot.estimatedRows === undefined) {
      const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [table.schema, table.table]);
      snapshot.estimatedRows = Number(rows[0]?.['TABLE_ROWS'] ?? 0);
    }
    logger.info(chunked ? 'snapshot: copying the table in chunks by key' : 'snapshot: copying the table in one consistent pass (no primary or NOT NULL unique key whose order is known here)', {
      table: this.name,
      key: names,
      chunkRows: chunked ? chunkRows : undefined,
      estimatedRows: snapshot.estimatedRows,
      resuming: chunked && resuming,
    });
    return shape;
  }

  /**
   * Takes the next chunk: the start of the first range to read, up to the key `chunkRows` rows in (the whole range
   * when fewer rows follow that key; a one-pass table's whole range). Undefined when nothing is left to take.
   */
  private async take(conn: mysql.Connection, shape: TableShape): Promise<ChunkRead | undefined> {
    const { snapshot, chunkRows } = this.options;
    const range = snapshot.toRead[0];
    if (range === undefined) return undefined;
    if (snapshot.method !== 'chunks') return snapshot.open(range, null);
    const where = within(shape, range);
    const order = shape.key!.map((i) => quote(shape.columns[i].name)).join(', ');
    // two rows: the chunk's upper end, and one after it (else the range's rest is one chunk, not an empty one)
    const [rows] = await conn.query<mysql.RowDataPacket[]>({ sql: `SELECT ${shape.keySelectList} FROM ${shape.qualified}${where.sql} ORDER BY ${order} LIMIT 2 OFFSET ${chunkRows - 1}`, values: where.values, ...QUERY_OPTIONS });
    const upper = rows.length === 2 ? shape.keyValues(rows[0] as unknown as unknown[]) : null;
    return snapshot.open(range, upper);
  }

  /**
   * Reads one chunk and queues its pieces, each held until the next read shows whether rows follow, so that the
   * chunk's last piece carries its end. A failure after pieces were handed over keeps them as a chunk of their own
   * (see keepWhatWasRead); before that, the chunk's range is read again.
   */
  private async readChunk(read: ChunkRead, shape: TableShape, signal: AbortSignal): Promise<void> {
    const { table, snapshot, quota, upstream } = this.options;
    const chunked = snapshot.method === 'chunks';
    let conn: mysql.Connection | undefined;
    let held: { piece: SnapshotPiece; last: RowChangedEvent } | undefined;
    let handed = 0;
    try {
      conn = await this.connect();
      const ts = await openSnapshotAtOrAbove(conn, upstream, read.floor, signal);
      try {
        snapshot.positioned(read, ts);
        const where = chunked ? within(shape, read.range) : { sql: '', values: [] };
        const order = chunked ? ` ORDER BY ${shape.key!.map((i) => quote(shape.columns[i].name)).join(', ')}` : '';
        const pieceBytes = Math.min(PIECE_BYTES_MAX, Math.max(PIECE_BYTES_MIN, Math.floor(quota.limitBytes / 32)));
        const streamRows = this.rowsSeen === 0 ? STREAM_ROWS_MIN : Math.min(PIECE_ROWS, Math.max(STREAM_ROWS_MIN, Math.floor((pieceBytes * this.rowsSeen) / this.bytesSeen)));
        // the callback connection under the promise one streams (and pauses while the sink catches up)
        const stream = (conn as unknown as { connection: CallbackConnection }).connection.query({ sql: `SELECT ${shape.selectList} FROM ${shape.qualified}${where.sql}${order}`, values: where.values, ...QUERY_OPTIONS }).stream({ highWaterMark: streamRows });
        const commitTime = Date.now();
        let seq = 0;
        for await (const { rows: batch, bytes } of batches(stream, PIECE_ROWS, pieceBytes)) {
          this.rowsSeen += batch.length;
          this.bytesSeen += bytes;
          const rows: RowChangedEvent[] = new Array<RowChangedEvent>(batch.length);
          for (let i = 0; i < batch.length; i++) {
            rows[i] = { table, commitTs: ts, commitTime, seq: seq++, kind: 'insert', columns: shape.columns, before: null, after: shape.toValues(batch[i]), snapshot: 'row' };
          }
          if (held !== undefined) {
            await this.queue(read, held.piece, signal);
            held = undefined;
          }
          // the held piece's bytes are its own until it is queued (given back if the read fails)
          quota.forceSnapshot(bytes);
          held = { piece: { ts, rows, bytes, final: false }, last: rows[rows.length - 1] };
          handed += rows.length;
        }
        // the chunk's last piece carries its range (an empty chunk: a piece without rows)
        const end: SnapshotPiece = held === undefined ? { ts, rows: [], bytes: 0, final: false, chunkEnd: read.range } : { ...held.piece, chunkEnd: read.range };
        await this.queue(read, end, signal);
        held = undefined;
        this.failures = 0;
      } finally {
        await conn.query('COMMIT').catch(() => undefined);
      }
      this.idle.push(conn);
      conn = undefined;
      // the read keeps its slot until the sink has the chunk: what is read ahead stays within the slots' queues
      await snapshot.chunkWritten(read, signal);
    } catch (error) {
      if (conn !== undefined) this.drop(conn);
      if (signal.aborted) {
        this.options.quota.releaseSnapshot(held?.piece.bytes ?? 0);
        throw isAbortError(error) ? error : new TidemarkError('ErrAborted', 'snapshot stopped', { cause: error });
      }
      await this.keepWhatWasRead(read, held, handed, chunked, shape, signal);
      await this.failed(error, signal);
    }
  }

  /**
   * A chunk read failed after some of its rows were handed over (queued, or held): read again at a later position,
   * those rows would be written twice at two positions, and a row deleted in between would stay in the sink (its
   * delete falls before the re-read chunk's position and is dropped). So a chunked read keeps what it handed over
   * as a chunk of its own, ending at the last row held, and the rest of its range is read again; a one-pass read
   * cannot be split, so what it queued is dropped, and the pass starts over behind a TRUNCATE of the table in the
   * sink. A read that handed nothing over is simply read again.
   */
  private async keepWhatWasRead(read: ChunkRead, held: { piece: SnapshotPiece; last: RowChangedEvent } | undefined, handed: number, chunked: boolean, shape: TableShape, signal: AbortSignal): Promise<void> {
    const { snapshot, quota } = this.options;
    if (held === undefined) {
      // nothing handed over: read again; else the chunk's last piece is queued, and the read ended as it should
      if (handed === 0) quota.releaseSnapshot(snapshot.abandon(read));
      return;
    }
    if (!chunked) {
      quota.releaseSnapshot(held.piece.bytes + snapshot.restartPass(read));
      return;
    }
    // a snapshot row's image is the reader's own values (ColumnValue allows booleans for plugins)
    const upper = shape.key!.map((i) => (held.last.after as readonly Value[])[i]);
    snapshot.readAgain({ lower: upper, upper: read.range.upper });
    await this.queue(read, { ...held.piece, chunkEnd: { lower: read.range.lower, upper } }, signal);
  }

  /** Queues a piece of the read; its quota goes back when the read was dropped meanwhile (the table went away). */
  private async queue(read: ChunkRead, piece: SnapshotPiece, signal: AbortSignal): Promise<void> {
    if (!(await this.options.snapshot.push(read, piece, signal))) this.options.quota.releaseSnapshot(piece.bytes);
  }
}
