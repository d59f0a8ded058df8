import type mysql from 'mysql2/promise';
import { TidemarkError } from '../errors/index.js';
import { makeTs } from '../model/ts.js';

/** The end of binlog of the server behind `conn` as a ts, and the binlog basename (SHOW MASTER STATUS). */
export async function endOfBinlog(conn: Pick<mysql.Connection, 'query'>, what = 'the upstream'): Promise<{ ts: bigint; basename: string }> {
  const [rows] = await conn.query<mysql.RowDataPacket[]>('SHOW MASTER STATUS');
  const row = rows[0] as { File?: string; Position?: number | string } | undefined;
  if (row?.File === undefined) throw new TidemarkError('ErrBinlogDisabled', `${what} has no binary log (log_bin is OFF)`);
  const m = /^(.*)\.(\d+)$/.exec(row.File);
  if (m === null) throw new TidemarkError('ErrBinlogCorrupt', `unexpected binlog file name "${row.File}"`);
  return { ts: makeTs(Number(m[2]), Number(row.Position ?? 0)), basename: m[1] };
}
