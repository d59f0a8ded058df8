import type mysql from 'mysql2/promise';
import type { Readable } from 'node:stream';
import type { Connection as CallbackConnection } from 'mysql2';
import { TidemarkError, isAbortError } from '../errors/index.js';
import type { Upstream } from '../upstream/upstream.js';
import type { Logger } from '../logger/logger.js';
import { makeTs } from '../model/ts.js';
import type { MemoryQuota } from '../pipeline/sorter/memory-quota.js';
import type { RowChangedEvent, TableName, Ts } from '../sink/api.js';
import type { Value } from '../upstream/rows.js';
import { QUERY_OPTIONS, compareKeys, readTableShape, type TableShape } from './table-shape.js';
import type { SnapshotPiece, TableSnapshot } from './table-snapshot.js';

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

/** Refuses `--snapshot initial` at create when the upstream cannot give a consistent snapshot's binlog position. */
export async function checkSnapshotSupport(upstream: Upstream): Promise<void> {
  await upstream.with('open a consistent snapshot (for --snapshot initial)', async (conn) => {
    await conn.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
    await snapshotPosition(conn, upstream);
    await conn.query('COMMIT');
  });
}

/** The WHERE clause of the rows after `after` in key order: `k1 > ? OR (k1 = ? AND k2 > ?) OR …`. */
function after(shape: TableShape, key: readonly Value[]): { sql: string; values: unknown[] } {
  const names = shape.key!.map((i) => quote(shape.columns[i].name));
  const param = (v: Value): unknown => (typeof v === 'bigint' ? v.toString() : v);
  const terms: string[] = [];
  const values: unknown[] = [];
  for (let i = 0; i < names.length; i++) {
    const parts: string[] = [];
    for (let j = 0; j < i; j++) {
      parts.push(`${names[j]} = ?`);
      values.push(param(key[j]));
    }
    parts.push(`${names[i]} > ?`);
    values.push(param(key[i]));
    terms.push(parts.length === 1 ? parts[0] : `(${parts.join(' AND ')})`);
  }
  return { sql: ` WHERE ${terms.join(' OR ')}`, values };
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

type MutableRow = { -readonly [K in keyof RowChangedEvent]: RowChangedEvent[K] };

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
 * Copies one table for its initial snapshot (see TableSnapshot): chunk after chunk in key order, each read in
 * its own transaction WITH CONSISTENT SNAPSHOT (no lock, no write to the upstream) together with the binlog
 * position of that snapshot, and handed on as pieces of PIECE_ROWS rows marked as snapshot reads. A table
 * without a key that orders in JS as on the server is read in one such transaction. Resolves when the last
 * piece is queued; a chunk whose read fails is read again on a new connection, up to RETRIES times in a row.
 */
export async function readTableSnapshot(options: SnapshotReaderOptions, signal: AbortSignal): Promise<void> {
  await new SnapshotReader(options).run(signal);
}

class SnapshotReader {
  /** The upper end of the last chunk read whole (undefined: from the start; null: nothing left). */
  private cursor: Value[] | null | undefined;
  /** Rows read so far and their bytes (rowBytes): how many rows the query stream may read ahead. */
  private rowsSeen = 0;
  private bytesSeen = 0;
  /** The last piece read, held until the next read shows whether rows follow (so the last row is marked). */
  private held: { piece: SnapshotPiece; last: MutableRow } | undefined;
  private first: boolean;
  /** Quota taken by rows read but not queued yet (given back when their read fails). */
  private unqueuedBytes = 0;
  private readonly name: string;

  constructor(private readonly options: SnapshotReaderOptions) {
    this.cursor = options.snapshot.resumeAfter;
    this.first = options.snapshot.rowsAcknowledged === 0;
    this.name = `${options.table.schema}.${options.table.table}`;
  }

  async run(signal: AbortSignal): Promise<void> {
    const { upstream, table, snapshot, chunkRows, logger } = this.options;
    let conn: mysql.Connection | undefined;
    const onAbort = (): void => conn?.destroy();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      let failures = 0;
      let shape: TableShape | undefined;
      for (;;) {
        try {
          if (conn === undefined) {
            conn = await upstream.connect({ connectTimeout: 10_000, timezone: 'Z', supportBigNumbers: true, bigNumberStrings: true, dateStrings: true, decimalNumbers: false, jsonStrings: true });
            await conn.query("SET SESSION time_zone = '+00:00', SESSION sql_mode = ''");
            // WITH CONSISTENT SNAPSHOT holds only under REPEATABLE READ: under a server default of READ COMMITTED
            // each SELECT would read later than the position the snapshot reports (rows there twice)
            await conn.query('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
          }
          if (shape === undefined) {
            shape = await readTableShape(conn, table.schema, table.table);
            const chunked = shape.key !== undefined && shape.orderable;
            const names = chunked ? shape.key!.map((i) => shape!.columns[i].name) : undefined;
            if (!chunked && this.cursor !== null) this.cursor = undefined; // a pass that did not finish starts over
            snapshot.setKey({ names, compare: compareKeys }, chunked ? 'chunks' : 'one-pass');
            // a pass that starts over behind a TRUNCATE is a new copy: its first row is marked again
            if (snapshot.truncateFirst) this.first = true;
            if (snapshot.estimatedRows === undefined) {
              const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [table.schema, table.table]);
              snapshot.estimatedRows = Number(rows[0]?.['TABLE_ROWS'] ?? 0);
            }
            logger.info(chunked ? 'snapshot: copying the table in chunks by key' : 'snapshot: copying the table in one consistent pass (no primary or NOT NULL unique key whose order is known here)', {
              table: this.name,
              key: names,
              chunkRows: chunked ? chunkRows : undefined,
              estimatedRows: snapshot.estimatedRows,
              resuming: this.cursor !== undefined,
            });
          }
          if (await this.readChunk(conn, shape, signal)) return;
          failures = 0;
        } catch (error) {
          this.options.quota.release(this.unqueuedBytes);
          this.unqueuedBytes = 0;
          if (signal.aborted) throw isAbortError(error) ? error : new TidemarkError('ErrAborted', 'snapshot stopped', { cause: error });
          if (error instanceof TidemarkError && !error.retryable) throw error;
          await conn?.end().catch(() => undefined);
          conn = undefined;
          shape = undefined;
          if (++failures > RETRIES) {
            throw new TidemarkError('ErrSnapshotFailed', `snapshot of ${this.name} failed ${RETRIES + 1} times in a row reading from ${upstream.shown}: ${(error as Error).message}`, { cause: error });
          }
          logger.warn('snapshot: reading a chunk failed; reading it again', { table: this.name, error, attempt: failures });
          await new Promise((resolve) => setTimeout(resolve, 200 * failures));
        }
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      this.options.quota.release(this.unqueuedBytes + (this.held?.piece.bytes ?? 0));
      await conn?.end().catch(() => undefined);
    }
  }

  /**
   * Queues the held piece. `lastRow`: no row follows it (its last row is marked as the table's last); `final`: it
   * also ends the table's key range (its chunk reaches the end of the table).
   */
  private async release(lastRow: boolean, final: boolean, signal: AbortSignal): Promise<void> {
    const held = this.held;
    if (held === undefined) return;
    let { piece } = held;
    if (lastRow) held.last.snapshot = held.last.snapshot === 'first' ? 'only' : 'last';
    if (final) piece = { ...piece, final: true, chunkEnd: { upper: null } };
    await this.options.snapshot.push(piece, signal);
    this.held = undefined;
  }

  /** Holds a piece read now, queuing the one held before it. */
  private async hold(piece: SnapshotPiece, last: MutableRow, signal: AbortSignal): Promise<void> {
    await this.release(false, false, signal);
    this.held = { piece, last };
    this.unqueuedBytes -= piece.bytes;
  }

  /**
   * A chunk read failed after some of its rows were handed over (queued, or held): read again at a later position,
   * those rows would be written twice at two positions, and a row deleted in between would stay in the sink (its
   * delete falls before the re-read chunk's position and is dropped). So a chunked read keeps what it handed over
   * as a chunk of its own, ending at the last row held, and reads on after it; a one-pass read cannot be split,
   * so what it queued is dropped, and the pass starts over behind a TRUNCATE of the table in the sink.
   */
  private keepWhatWasRead(chunked: boolean, shape: TableShape): void {
    const held = this.held;
    if (held === undefined) return;
    if (chunked) {
      // a snapshot row's image is the reader's own values (ColumnValue allows booleans for plugins)
      const upper = shape.key!.map((i) => (held.last.after as readonly Value[])[i]);
      this.held = { ...held, piece: { ...held.piece, chunkEnd: { upper } } };
      this.cursor = upper;
      return;
    }
    this.options.quota.release(held.piece.bytes + this.options.snapshot.restartPass());
    this.held = undefined;
    this.first = true;
  }

  /** Reads the chunk after the cursor; resolves true once the table's last piece is queued. */
  private async readChunk(conn: mysql.Connection, shape: TableShape, signal: AbortSignal): Promise<boolean> {
    const { table, snapshot, chunkRows, quota, upstream } = this.options;
    const chunked = snapshot.method === 'chunks';
    if (this.cursor === null) return true; // every chunk was acknowledged by an earlier run
    await conn.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
    let rowsInChunk = 0;
    let lastRow: MutableRow | undefined;
    let lastValues: Value[] | undefined;
    let ts: Ts;
    try {
      ts = await snapshotPosition(conn, upstream);
      const where = chunked && this.cursor !== undefined ? after(shape, this.cursor) : { sql: '', values: [] };
      const order = chunked ? ` ORDER BY ${shape.key!.map((i) => quote(shape.columns[i].name)).join(', ')} LIMIT ${chunkRows}` : '';
      // the callback connection under the promise one streams (and pauses while the sink catches up)
      const pieceBytes = Math.min(PIECE_BYTES_MAX, Math.max(PIECE_BYTES_MIN, Math.floor(quota.limitBytes / 32)));
      const streamRows = this.rowsSeen === 0 ? STREAM_ROWS_MIN : Math.min(PIECE_ROWS, Math.max(STREAM_ROWS_MIN, Math.floor((pieceBytes * this.rowsSeen) / this.bytesSeen)));
      const stream = (conn as unknown as { connection: CallbackConnection }).connection.query({ sql: `SELECT ${shape.selectList} FROM ${shape.qualified}${where.sql}${order}`, values: where.values, ...QUERY_OPTIONS }).stream({ highWaterMark: streamRows });
      const commitTime = Date.now();
      let handed = 0;
      try {
        for await (const { rows: batch, bytes } of batches(stream, PIECE_ROWS, pieceBytes)) {
          this.rowsSeen += batch.length;
          this.bytesSeen += bytes;
          const rows: RowChangedEvent[] = new Array<RowChangedEvent>(batch.length);
          for (let i = 0; i < batch.length; i++) {
            const values = shape.toValues(batch[i]);
            const row: MutableRow = { table, commitTs: ts, commitTime, seq: rowsInChunk++, kind: 'insert', columns: shape.columns, before: null, after: values, snapshot: this.first ? 'first' : 'row' };
            this.first = false;
            rows[i] = row;
            lastRow = row;
            lastValues = values;
          }
          quota.force(bytes);
          this.unqueuedBytes += bytes;
          await this.hold({ ts, rows, bytes, final: false }, lastRow!, signal);
          handed += rows.length;
        }
      } catch (error) {
        if (handed > 0 && !signal.aborted) this.keepWhatWasRead(chunked, shape);
        throw error;
      }
      const end = !chunked || rowsInChunk < chunkRows;
      const upper = end || lastValues === undefined ? null : shape.key!.map((i) => lastValues![i]);
      if (this.held !== undefined && this.held.piece.ts === ts) {
        // the chunk's last piece carries its upper end
        this.held = { ...this.held, piece: { ...this.held.piece, chunkEnd: { upper } } };
        if (end) await this.release(true, true, signal);
      } else if (end) {
        // no rows after the previous chunk: the rest of the key range is empty at ts
        await this.release(true, false, signal);
        await snapshot.push({ ts, rows: [], bytes: 0, final: true, chunkEnd: { upper: null } }, signal);
      }
      this.cursor = upper;
      return end;
    } finally {
      await conn.query('COMMIT').catch(() => undefined);
    }
  }
}
