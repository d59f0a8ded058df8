import mysql from 'mysql2/promise';
import { after, before } from 'node:test';
import type { ColumnValue } from 'tidemark/sink';
import { canonical, describeSinkConformance, pkKey, type TableState } from 'tidemark/testkit';
import { factory } from '../src/index.js';

// The sink testkit against a real MariaDB or MySQL (the project's downstream service unless
// TIDEMARK_DOWNSTREAM_ADDR names another); the state is read back with SELECT, exactly.
const downstream = process.env['TIDEMARK_DOWNSTREAM_ADDR'] ?? '127.0.0.1:3308';
let conn: mysql.Connection;
before(async () => {
  try {
    conn = await mysql.createConnection({ uri: `mysql://root@${downstream}/`, supportBigNumbers: true, bigNumberStrings: true, dateStrings: true });
  } catch (error) {
    throw new Error(`the mysql sink's conformance suite needs a MySQL server at ${downstream} (TIDEMARK_DOWNSTREAM_ADDR; \`bash scripts/services.sh up downstream\` starts one): ${(error as Error).message}`);
  }
});
after(async () => {
  const [dbs] = await conn.query<mysql.RowDataPacket[]>("SHOW DATABASES LIKE 'tm\\_conf\\_%'");
  for (const row of dbs) await conn.query(`DROP DATABASE \`${String(Object.values(row)[0])}\``);
  await conn.end();
});

describeSinkConformance('mysql', {
  factory,
  uri: () => new URL(`mysql://root@${downstream}/?worker-count=4`),
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
