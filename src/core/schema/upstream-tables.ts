import type mysql from 'mysql2/promise';
import { TidemarkError } from '../errors/index.js';
import { redactUri } from '../config/uri.js';
import { connectUpstream } from '../upstream/connect.js';
import { SYSTEM_SCHEMAS, type TableFilter } from '../config/table-filter.js';
import type { QualifiedName } from './ddl.js';

/**
 * The upstream's base tables that the changefeed's filter selects, from information_schema: the table set a
 * processor starts with (TiCDC takes it from the schema snapshot at start-ts; a MySQL upstream has no
 * snapshot, so the current schema is read and DDL after start-ts keeps it current as it is replayed).
 */
export async function listUpstreamTables(uri: string, filter: TableFilter): Promise<QualifiedName[]> {
  let conn: mysql.Connection | undefined;
  try {
    conn = await connectUpstream(uri, { connectTimeout: 5000 });
    const [rows] = await conn.query<mysql.RowDataPacket[]>(
      `SELECT TABLE_SCHEMA AS s, TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA NOT IN (${SYSTEM_SCHEMAS.map(() => '?').join(', ')}) ORDER BY 1, 2`,
      SYSTEM_SCHEMAS,
    );
    return rows.map((r) => ({ schema: String(r['s']), table: String(r['t']) })).filter((t) => filter.match(t.schema, t.table));
  } catch (error) {
    if (error instanceof TidemarkError) throw error;
    throw new TidemarkError('ErrUpstreamUnreachable', `cannot list the tables of the upstream ${redactUri(uri)}: ${(error as Error).message}`, { cause: error });
  } finally {
    await conn?.end().catch(() => undefined);
  }
}
