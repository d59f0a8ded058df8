import type mysql from 'mysql2/promise';
import { TidemarkError } from '../errors/index.js';
import { connectUpstream, withUpstream } from './connect.js';

/** The server settings a ROW-based change capture depends on, as the server reports them. */
export interface BinlogSettings {
  readonly logBin: string | number | null;
  readonly binlogFormat: string | null;
  readonly binlogRowImage: string | null;
  /** binlog_row_metadata (MariaDB 10.5+, MySQL 8.0.1+); undefined on servers without it. */
  readonly binlogRowMetadata?: string | null;
}

/** The grants of the replication user, one `GRANT ...` line each (SHOW GRANTS). */
export type Grants = readonly string[];

/**
 * Checks the binlog settings: the binary log is on, the format is ROW and the row image FULL.
 * Anything else would lose or truncate row images, so each is a fatal, non-retryable error that names
 * the variable, its value and the setting that fixes it. binlog_row_metadata may be anything: below FULL,
 * the changefeed keeps a schema storage (see hasFullRowMetadata).
 */
export function checkBinlogSettings(s: BinlogSettings): void {
  const on = s.logBin === 1 || s.logBin === '1' || (typeof s.logBin === 'string' && s.logBin.toUpperCase() === 'ON');
  if (!on) throw new TidemarkError('ErrBinlogDisabled', `the upstream has no binary log (log_bin is ${String(s.logBin ?? 'OFF')}); start it with --log-bin`);
  if ((s.binlogFormat ?? '').toUpperCase() !== 'ROW') {
    throw new TidemarkError('ErrBinlogFormatNotRow', `the upstream's binlog_format is ${String(s.binlogFormat)}, not ROW; set binlog_format=ROW`);
  }
  if ((s.binlogRowImage ?? '').toUpperCase() !== 'FULL') {
    throw new TidemarkError('ErrBinlogRowImageNotFull', `the upstream's binlog_row_image is ${String(s.binlogRowImage)}, not FULL; set binlog_row_image=FULL`);
  }
}

/**
 * Whether row events carry column names, signedness and charsets (binlog_row_metadata=FULL). Without it
 * (MINIMAL, NO_LOG, or a server without the variable) rows are mounted through the schema storage.
 */
export function hasFullRowMetadata(s: Pick<BinlogSettings, 'binlogRowMetadata'>): boolean {
  return (s.binlogRowMetadata ?? '').toUpperCase() === 'FULL';
}

/** Reads of upstreamHasFullRowMetadata under way, per URI: processors starting together share one. */
const rowMetadataReads = new Map<string, Promise<boolean>>();

/**
 * Reads binlog_row_metadata from the upstream at `uri` (see hasFullRowMetadata). Callers asking while a read is
 * under way share it; an answer is not kept after (the setting can change, and a processor start must see it).
 */
export function upstreamHasFullRowMetadata(uri: string): Promise<boolean> {
  const reading = rowMetadataReads.get(uri);
  if (reading !== undefined) return reading;
  const full = withUpstream(uri, 'read binlog_row_metadata', async (conn) => {
    const [metadata] = await conn.query<mysql.RowDataPacket[]>("SHOW GLOBAL VARIABLES LIKE 'binlog_row_metadata'");
    return hasFullRowMetadata({ binlogRowMetadata: metadata[0] === undefined ? null : String(metadata[0]['Value']) });
  }).finally(() => rowMetadataReads.delete(uri));
  rowMetadataReads.set(uri, full);
  return full;
}

/** Whether the grants allow reading the binlog: REPLICATION SLAVE (MariaDB also: REPLICATION REPLICA) or ALL. */
export function checkReplicationGrants(user: string, grants: Grants): void {
  const ok = grants.some((g) => {
    const head = /^GRANT\s+(.*?)\s+ON\s+\*\.\*/i.exec(g);
    return head !== null && /\b(ALL PRIVILEGES|REPLICATION SLAVE|REPLICATION REPLICA)\b/i.test(head[1] ?? '');
  });
  if (!ok) throw new TidemarkError('ErrReplicationPrivilege', `the upstream user ${user} lacks REPLICATION SLAVE on *.*; run GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO ${user}`);
}

/**
 * Connects with an ordinary (mysql2) connection and checks everything a binlog reader needs before it
 * starts: reachable, binary log on, ROW format, FULL row image, replication privileges. The settings it
 * read come back (binlog_row_metadata included).
 */
export async function checkUpstream(uri: string, connectTimeoutMs = 5000): Promise<BinlogSettings> {
  let conn: mysql.Connection;
  try {
    conn = await connectUpstream(uri, { connectTimeout: connectTimeoutMs });
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
    const [metadata] = await conn.query<mysql.RowDataPacket[]>("SHOW GLOBAL VARIABLES LIKE 'binlog_row_metadata'");
    const settings: BinlogSettings = {
      logBin: row.logBin,
      binlogFormat: row.binlogFormat,
      binlogRowImage: row.binlogRowImage,
      ...(metadata[0] === undefined ? {} : { binlogRowMetadata: String(metadata[0]['Value']) }),
    };
    checkBinlogSettings(settings);
    const [grants] = await conn.query<mysql.RowDataPacket[]>('SHOW GRANTS');
    checkReplicationGrants(row.user, grants.map((g) => String(Object.values(g)[0])));
    return settings;
  } finally {
    await conn.end().catch(() => undefined);
  }
}
