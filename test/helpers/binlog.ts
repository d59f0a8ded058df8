import type mysql from 'mysql2/promise';
import { BinlogReader, EventType } from '../../src/core/upstream/binlog-reader.js';
import { decodeTableMap, type TableMap } from '../../src/core/upstream/events.js';
import { decodeRows, type RowsEvent } from '../../src/core/upstream/rows.js';
import { serviceAddress } from './services.js';

let nextServerId = 7000 + (process.pid % 1000) * 2;

function isRowsEvent(type: number): boolean {
  return (type >= EventType.WRITE_ROWS_V1 && type <= EventType.DELETE_ROWS_V1) || (type >= EventType.WRITE_ROWS_V2 && type <= EventType.DELETE_ROWS_V2);
}

/**
 * Runs `sql` on the real upstream (one transaction per statement), then reads those transactions back over
 * Tidemark's replication connection and returns the decoded row events (only `table`'s, when given) and
 * the table maps seen, latest last.
 */
export async function roundTrip(conn: mysql.Connection, sql: readonly string[], table?: string): Promise<{ events: RowsEvent[]; maps: TableMap[] }> {
  const [status] = await conn.query<mysql.RowDataPacket[]>('SHOW MASTER STATUS');
  const file = String(status[0]['File']);
  const pos = Number(status[0]['Position']);
  for (const statement of sql) await conn.query(statement);
  const { host, port } = serviceAddress('upstream');
  const reader = await BinlogReader.open({ host, port, user: 'root', password: '', serverId: nextServerId++ }, file, pos, AbortSignal.timeout(20_000));
  const maps = new Map<bigint, TableMap>();
  const events: RowsEvent[] = [];
  let xids = 0;
  try {
    for await (const e of reader) {
      if (e.type === EventType.TABLE_MAP) {
        const m = decodeTableMap(e.body);
        maps.set(m.tableId, m);
      } else if (isRowsEvent(e.type)) {
        const rows = decodeRows(e.type, e.body, maps);
        if (table === undefined || maps.get(rows.tableId)?.table === table) events.push(rows);
      } else if (e.type === EventType.XID && ++xids === sql.length) break;
    }
  } finally {
    reader.close();
  }
  return { events, maps: [...maps.values()] };
}
