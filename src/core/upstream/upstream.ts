import { createHash } from 'node:crypto';
import type mysql from 'mysql2/promise';
import { TidemarkError } from '../errors/index.js';
import { parseMySqlUri, redactUri, type MySqlConnectionOptions } from '../config/uri.js';
import { endOfBinlog } from './binlog-position.js';
import { connectMySql, type ExtraConnectionOptions } from './connect.js';
import { checkBinlogSettings, checkReplicationGrants, hasFullRowMetadata, type BinlogSettings } from './preflight.js';
import type { ResumableReaderOptions } from './resumable-reader.js';

/** The server's binlog_row_metadata, or undefined on a server without the variable. */
async function readRowMetadata(conn: mysql.Connection): Promise<string | undefined> {
  const [metadata] = await conn.query<mysql.RowDataPacket[]>("SHOW GLOBAL VARIABLES LIKE 'binlog_row_metadata'");
  return metadata[0] === undefined ? undefined : String(metadata[0]['Value']);
}

/**
 * One upstream MySQL/MariaDB server as every part of a capture reaches it (TiCDC's pkg/upstream): its URI parsed
 * once (unknown parameters refused, ErrUpstreamURIInvalid), the id the cluster files it under, the options of a
 * binlog reader, and the one place where an upstream connection is made and its failure turned into a typed error
 * naming the URI without its password. The owner, the processors, the schema storage, the snapshot, the preflight
 * and `cdc diff` share the object of a URI (`Upstream.of`). It holds no connection between uses.
 */
export class Upstream {
  private static readonly known = new Map<string, Upstream>();

  /** The Upstream of `uri`, made on first use and shared after. */
  static of(uri: string): Upstream {
    let upstream = Upstream.known.get(uri);
    if (upstream === undefined) {
      upstream = new Upstream(uri);
      Upstream.known.set(uri, upstream);
    }
    return upstream;
  }

  /** Where and who: host, port, user, password, TLS (ssl-mode and its files). */
  readonly target: MySqlConnectionOptions;
  /** The URI without its password, for messages and logs. */
  readonly shown: string;
  /** The upstream's id in etcd (`upstream/{namespace}/{id}`): derived from its address, so changefeeds of one server share it. */
  readonly id: string;
  /** A read of binlog_row_metadata under way: callers asking meanwhile share it; no answer is kept after. */
  private rowMetadataRead: Promise<boolean> | undefined;

  private constructor(readonly uri: string) {
    this.target = parseMySqlUri(uri);
    this.shown = redactUri(uri);
    this.id = createHash('sha1').update(new URL(uri).host).digest('hex').slice(0, 16);
  }

  /**
   * A new mysql2 connection (TLS as the URI says). A TLS failure is a typed TLS error; any other failure is
   * mysql2's own error, for callers that tell them apart (the preflight's privilege check).
   */
  connect(extra: ExtraConnectionOptions = {}): Promise<mysql.Connection> {
    return connectMySql(this.target, extra);
  }

  /**
   * Runs `fn` on a new connection and closes it after. A TidemarkError passes as it is; anything else becomes
   * ErrUpstreamUnreachable, "cannot <what> of the upstream <URI without its password>: <the cause>".
   */
  async with<T>(what: string, fn: (conn: mysql.Connection) => Promise<T>, extra: ExtraConnectionOptions = { connectTimeout: 5000 }): Promise<T> {
    let conn: mysql.Connection | undefined;
    try {
      conn = await this.connect(extra);
      return await fn(conn);
    } catch (error) {
      throw this.unreachable(what, error);
    } finally {
      await conn?.end().catch(() => undefined);
    }
  }

  /** `error` as the typed error of a failed `what` on this upstream (a TidemarkError passes as it is). */
  unreachable(what: string, error: unknown): TidemarkError {
    if (error instanceof TidemarkError) return error;
    const e = error as { code?: string; message?: string };
    return new TidemarkError('ErrUpstreamUnreachable', `cannot ${what} of the upstream ${this.shown}: ${e.message ?? e.code ?? String(error)}`, { cause: error });
  }

  /**
   * The preflight (`changefeed create`): reachable, binary log on, ROW format, FULL row image, replication
   * privileges, each failure a typed error naming the setting that fixes it. The settings read come back
   * (binlog_row_metadata included).
   */
  async preflight(connectTimeoutMs = 5000): Promise<BinlogSettings> {
    let conn: mysql.Connection;
    try {
      conn = await this.connect({ connectTimeout: connectTimeoutMs });
    } catch (error) {
      if (error instanceof TidemarkError) throw error;
      const e = error as { errno?: number; code?: string; message: string };
      if (e.errno === 1045) throw new TidemarkError('ErrReplicationPrivilege', `the upstream refused the user: ${e.message}`, { cause: error });
      throw new TidemarkError('ErrUpstreamUnreachable', `cannot connect to the upstream: ${e.code ?? e.message}`, { cause: error });
    }
    try {
      const [rows] = await conn.query<mysql.RowDataPacket[]>(
        'SELECT @@global.log_bin AS logBin, @@global.binlog_format AS binlogFormat, @@global.binlog_row_image AS binlogRowImage, CURRENT_USER() AS user',
      );
      const row = rows[0] as BinlogSettings & { user: string };
      const binlogRowMetadata = await readRowMetadata(conn);
      const settings: BinlogSettings = {
        logBin: row.logBin,
        binlogFormat: row.binlogFormat,
        binlogRowImage: row.binlogRowImage,
        ...(binlogRowMetadata === undefined ? {} : { binlogRowMetadata }),
      };
      checkBinlogSettings(settings);
      const [grants] = await conn.query<mysql.RowDataPacket[]>('SHOW GRANTS');
      checkReplicationGrants(row.user, grants.map((g) => String(Object.values(g)[0])));
      return settings;
    } finally {
      await conn.end().catch(() => undefined);
    }
  }

  /** Options to read this upstream's binlog as replica `serverId` (unique per reader on the server). */
  readerOptions(basename: string, serverId: number): ResumableReaderOptions {
    const { host, port, user, password, tls } = this.target;
    return { host, port, user, password, tls, serverId, basename };
  }

  /** Whether row events carry column names and types (binlog_row_metadata=FULL), read from the server at each ask. */
  hasFullRowMetadata(): Promise<boolean> {
    if (this.rowMetadataRead !== undefined) return this.rowMetadataRead;
    const read = this.with('read binlog_row_metadata', async (conn) => hasFullRowMetadata({ binlogRowMetadata: (await readRowMetadata(conn)) ?? null })).finally(() => {
      this.rowMetadataRead = undefined;
    });
    this.rowMetadataRead = read;
    return read;
  }

  /** The current end of binlog as a ts, and the binlog basename. */
  endTs(): Promise<{ ts: bigint; basename: string }> {
    return this.with('read the binlog position', (conn) => endOfBinlog(conn, `the upstream ${this.shown}`));
  }
}
