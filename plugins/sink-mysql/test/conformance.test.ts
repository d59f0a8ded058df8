import mysql from 'mysql2/promise';
import { after, before } from 'node:test';
import { factory } from '../../../plugins/sink-mysql/src/index.js';
import type { ColumnValue } from '../../../src/core/sink/api.js';
import { canonical, describeSinkConformance, pkKey, type TableState } from '../../../src/core/sink/testkit.js';
import { mysqlUri, requireService, serviceAddress } from '../../helpers/services.js';

// The sink testkit against the real downstream MariaDB; the state is read back with SELECT, exactly.
let conn: mysql.Connection;
before(async () => {
  await requireService('downstream');
  conn = await mysql.createConnection({ uri: mysqlUri('downstream'), supportBigNumbers: true, bigNumberStrings: true, dateStrings: true });
});
after(async () => {
  const [dbs] = await conn.query<mysql.RowDataPacket[]>("SHOW DATABASES LIKE 'tm\\_conf\\_%'");
  for (const row of dbs) await conn.query(`DROP DATABASE \`${String(Object.values(row)[0])}\``);
  await conn.end();
});

describeSinkConformance('mysql', {
  factory,
  uri: () => new URL(`mysql://root@${serviceAddress('downstream').addr}/?worker-count=4`),
  readBack: async (table) => {
    const names = table.columns.map((c) => `\`${c.name}\``).join(', ');
    const [rows] = await conn.query<mysql.RowDataPacket[]>(`SELECT ${names} FROM \`${table.name.schema}\`.\`${table.name.table}\``);
    const state: TableState = new Map();
    for (const row of rows) {
      const values = table.columns.map((c) => row[c.name] as ColumnValue);
      state.set(pkKey(table.columns, values), values.map(canonical));
    }
    return state;
  },
});
