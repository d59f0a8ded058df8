import { TidemarkError } from '../errors/index.js';

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

/** Whether the grants allow reading the binlog: REPLICATION SLAVE (MariaDB also: REPLICATION REPLICA) or ALL. */
export function checkReplicationGrants(user: string, grants: Grants): void {
  const ok = grants.some((g) => {
    const head = /^GRANT\s+(.*?)\s+ON\s+\*\.\*/i.exec(g);
    return head !== null && /\b(ALL PRIVILEGES|REPLICATION SLAVE|REPLICATION REPLICA)\b/i.test(head[1] ?? '');
  });
  if (!ok) throw new TidemarkError('ErrReplicationPrivilege', `the upstream user ${user} lacks REPLICATION SLAVE on *.*; run GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO ${user}`);
}
