import { TidemarkError } from '../errors/index.js';
import { ProtocolConnection, ServerError, checksumMatches, parseErrPacket, type ConnectionOptions } from './protocol/connection.js';

/** Binlog event type codes used by the reader itself. */
export const EventType = {
  QUERY: 2,
  ROTATE: 4,
  FORMAT_DESCRIPTION: 15,
  XID: 16,
  TABLE_MAP: 19,
  WRITE_ROWS_V1: 23,
  UPDATE_ROWS_V1: 24,
  DELETE_ROWS_V1: 25,
  HEARTBEAT: 27,
  WRITE_ROWS_V2: 30,
  UPDATE_ROWS_V2: 31,
  DELETE_ROWS_V2: 32,
  GTID: 33,
  ANNOTATE_ROWS: 160,
  BINLOG_CHECKPOINT: 161,
  MARIADB_GTID: 162,
  MARIADB_GTID_LIST: 163,
} as const;

const LOG_EVENT_ARTIFICIAL_F = 0x20;
const HEADER = 19;
/** COM_BINLOG_DUMP flags: BINLOG_SEND_ANNOTATE_ROWS_EVENT (MariaDB). */
const DUMP_SEND_ANNOTATE_ROWS = 0x02;

/** One binlog event with the position it occupies, computed from the stream. */
export interface RawBinlogEvent {
  readonly type: number;
  /** Seconds since the epoch (header timestamp). */
  readonly timestamp: number;
  readonly serverId: number;
  readonly flags: number;
  readonly file: string;
  /** File sequence number (mysql-bin.000042 → 42). */
  readonly fileSeq: number;
  readonly startPos: number;
  /** The position after this event: start + size (the header's log_pos when the server sets it). */
  readonly endPos: number;
  /** The event body without header and checksum; a view into the packet, valid until the next read. */
  readonly body: Buffer;
}

export interface BinlogReaderOptions extends ConnectionOptions {
  readonly serverId: number;
  /** Heartbeat period the server is asked for when idle. */
  readonly heartbeatMs?: number;
  /** Events buffered before the socket is paused (backpressure). */
  readonly highWaterMark?: number;
  /** Bytes of events buffered before the socket is paused (backpressure), whatever their number (default 4 MiB). */
  readonly highWaterBytes?: number;
  /** Bytes read, added to across readers (a processor's binlog read metric, read when scraped). */
  readonly readStats?: { bytes: number };
}

export function fileSeqOf(file: string): number {
  const m = /\.(\d+)$/.exec(file);
  if (m === null) throw new TidemarkError('ErrBinlogCorrupt', `binlog file name "${file}" has no sequence number`);
  return Number(m[1]);
}

/**
 * Reads the binlog over a replication connection from `file:position` (DESIGN §2, §5). Positions come from
 * the stream (the start position plus the sizes of the events), CRC32 checksums are verified, and reading
 * pauses while the consumer has `highWaterMark` events, or `highWaterBytes` of them, unread, so memory stays
 * bounded (a backlog's rows events are tens of KiB each). Iterate it with
 * `for await`; `close()` (or the signal) ends the iteration.
 */
export class BinlogReader implements AsyncIterable<RawBinlogEvent> {
  private readonly queue: RawBinlogEvent[] = [];
  private head = 0;
  private waiter: (() => void) | undefined;
  private ended: Error | null | undefined;
  private paused = false;
  /** Body bytes of the events queued (from `head` on). */
  private queuedBytes = 0;
  private file: string;
  private position: number;
  private checksums = true;
  readonly stats = { events: 0, bytes: 0, heartbeats: 0, pauses: 0 };
  private totals: { bytes: number } | undefined;

  /** The server said it is MariaDB in its handshake (some metadata differs from MySQL's: see decodeTableMap). */
  get mariadb(): boolean {
    return /mariadb/i.test(this.conn.serverVersion);
  }

  private constructor(
    private readonly conn: ProtocolConnection,
    file: string,
    position: number,
    private readonly highWaterMark: number,
    private readonly highWaterBytes: number,
  ) {
    this.file = file;
    this.position = position;
  }

  static async open(options: BinlogReaderOptions, file: string, position: number, signal?: AbortSignal): Promise<BinlogReader> {
    const conn = await ProtocolConnection.open(options);
    try {
      await conn.execute('SET @master_binlog_checksum = @@global.binlog_checksum');
      await conn.execute('SET @mariadb_slave_capability = 4');
      await conn.execute(`SET @master_heartbeat_period = ${BigInt(options.heartbeatMs ?? 1000) * 1_000_000n}`);
      await conn.registerReplica(options.serverId);
    } catch (error) {
      conn.close();
      if (error instanceof ServerError) {
        // MariaDB answers COM_REGISTER_SLAVE from a user without REPLICATION SLAVE with 1045 "Access denied", MySQL with 1227.
        if (error.errno === 1045 || error.errno === 1044 || error.errno === 1227) {
          throw new TidemarkError('ErrReplicationPrivilege', `the upstream user "${options.user}" lacks REPLICATION SLAVE: ${error.message}`, { details: { errno: error.errno } });
        }
        throw new TidemarkError('ErrConnectionLost', `the upstream refused to start replication: ${error.message} (errno ${error.errno})`, { cause: error });
      }
      throw error;
    }
    const reader = new BinlogReader(conn, file, position, options.highWaterMark ?? 4096, options.highWaterBytes ?? 4 << 20);
    reader.totals = options.readStats;
    conn.startDump(file, position, options.serverId, DUMP_SEND_ANNOTATE_ROWS, (p) => reader.onPacket(p), (e) => reader.finish(e));
    // aborted while connecting: no 'abort' event will come any more, so close now (a reader that went on would
    // ignore the abort, e.g. a processor's restart for a table added behind it, and never feed that table)
    if (signal?.aborted === true) reader.close();
    else signal?.addEventListener('abort', () => reader.close(), { once: true });
    return reader;
  }

  /** The server's id of the replication connection (its thread in SHOW PROCESSLIST). */
  get connectionId(): number {
    return this.conn.connectionId;
  }

  /** The position after the last event delivered. */
  get current(): { file: string; position: number } {
    return { file: this.file, position: this.position };
  }

  close(): void {
    this.finish(null);
    this.conn.close();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<RawBinlogEvent> {
    for (;;) {
      if (this.head < this.queue.length) {
        const event = this.queue[this.head++];
        this.queuedBytes -= event.body.length;
        if (this.head > 1024 && this.head * 2 > this.queue.length) {
          this.queue.splice(0, this.head);
          this.head = 0;
        }
        if (this.paused && this.queue.length - this.head < this.highWaterMark / 2 && this.queuedBytes < this.highWaterBytes / 2) {
          this.paused = false;
          this.conn.resume();
        }
        yield event;
        continue;
      }
      if (this.ended !== undefined) {
        if (this.ended === null) return;
        throw this.ended;
      }
      await new Promise<void>((resolve) => (this.waiter = resolve));
      this.waiter = undefined;
    }
  }

  private finish(error: Error | null): void {
    if (this.ended !== undefined) return;
    this.ended = error;
    this.waiter?.();
  }

  private onPacket(payload: Buffer): void {
    if (this.ended !== undefined) return;
    if (payload[0] === 0xff) {
      const error = parseErrPacket(payload);
      const purged = error.errno === 1236 && /could not find|purged|first log file/i.test(error.message);
      this.finish(
        purged
          ? new TidemarkError('ErrBinlogPurged', `binlog position ${this.file}:${this.position} is no longer on the upstream: ${error.message}`)
          : error.errno === 1227 || error.errno === 1045
            ? new TidemarkError('ErrReplicationPrivilege', `the upstream user lacks REPLICATION SLAVE: ${error.message}`)
            : new TidemarkError('ErrConnectionLost', `the upstream ended the binlog dump: ${error.message} (errno ${error.errno})`),
      );
      this.conn.close();
      return;
    }
    if (payload[0] === 0xfe && payload.length < 9) {
      this.finish(null);
      return;
    }
    const event = payload.subarray(1);
    const type = event[4];
    const size = event.readUInt32LE(9);
    const logPos = event.readUInt32LE(13);
    const flags = event.readUInt16LE(17);
    if (size !== event.length) {
      this.finish(new TidemarkError('ErrBinlogCorrupt', `event of type ${type} at ${this.file}:${this.position} says ${size} bytes but has ${event.length}`));
      return;
    }
    if (type === EventType.FORMAT_DESCRIPTION) {
      // the checksum algorithm byte precedes the 4-byte checksum at the end of the FDE
      this.checksums = event[event.length - 5] === 1;
    }
    if (this.checksums && !checksumMatches(event)) {
      this.finish(new TidemarkError('ErrBinlogChecksumMismatch', `CRC32 mismatch in the event of type ${type} at ${this.file}:${this.position}`));
      this.conn.close();
      return;
    }
    const body = event.subarray(HEADER, this.checksums ? event.length - 4 : event.length);
    const artificial = (flags & LOG_EVENT_ARTIFICIAL_F) !== 0 || logPos === 0;
    if (type === EventType.ROTATE) {
      const position = Number(body.readBigUInt64LE(0));
      const file = body.toString('latin1', 8);
      this.file = file;
      this.position = position;
      return;
    }
    if (type === EventType.HEARTBEAT) {
      this.stats.heartbeats++;
      this.push({ type, timestamp: 0, serverId: event.readUInt32LE(5), flags, file: this.file, fileSeq: fileSeqOf(this.file), startPos: this.position, endPos: this.position, body });
      return;
    }
    if (artificial && type === EventType.FORMAT_DESCRIPTION) return;
    const startPos = this.position;
    const endPos = startPos + size;
    if (logPos !== 0 && logPos !== endPos) {
      this.finish(new TidemarkError('ErrBinlogCorrupt', `event of type ${type} ends at ${logPos} per its header but at ${endPos} by the stream (${this.file})`));
      return;
    }
    this.position = endPos;
    this.stats.events++;
    this.stats.bytes += size;
    if (this.totals !== undefined) this.totals.bytes += size;
    this.push({ type, timestamp: event.readUInt32LE(0), serverId: event.readUInt32LE(5), flags, file: this.file, fileSeq: fileSeqOf(this.file), startPos, endPos, body });
  }

  private push(event: RawBinlogEvent): void {
    this.queue.push(event);
    this.queuedBytes += event.body.length;
    if (!this.paused && (this.queue.length - this.head >= this.highWaterMark || this.queuedBytes >= this.highWaterBytes)) {
      this.paused = true;
      this.stats.pauses++;
      this.conn.pause();
    }
    this.waiter?.();
  }
}
