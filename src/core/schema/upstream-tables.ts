import type mysql from 'mysql2/promise';
import type { Upstream } from '../upstream/upstream.js';
import { SYSTEM_SCHEMAS, type TableFilter } from '../config/table-filter.js';
import type { QualifiedName } from './ddl.js';

/**
 * The upstream's base tables that the changefeed's filter selects, from information_schema: the table set a
 * processor starts with (TiCDC takes it from the schema snapshot at start-ts; a MySQL upstream has no
 * snapshot, so the current schema is read and DDL after start-ts keeps it current as it is replayed).
 */
export function listUpstreamTables(upstream: Upstream, filter: TableFilter): Promise<QualifiedName[]> {
  return upstream.with('list the tables', async (conn) => {
    const [rows] = await conn.query<mysql.RowDataPacket[]>(
      `SELECT TABLE_SCHEMA AS s, TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA NOT IN (${SYSTEM_SCHEMAS.map(() => '?').join(', ')}) ORDER BY 1, 2`,
      SYSTEM_SCHEMAS,
    );
    return rows.map((r) => ({ schema: String(r['s']), table: String(r['t']) })).filter((t) => filter.match(t.schema, t.table));
  });
}
