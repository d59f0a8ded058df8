import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { factory } from '../../../plugins/sink-mysql/src/index.js';
import type { ColumnInfo, RowChangedEvent, Sink, TableName } from '../../../src/core/sink/api.js';
import { leakCheck } from '../../helpers/leak-check.js';
import { mysqlUri, requireService, serviceAddress, uniqueName } from '../../helpers/services.js';
import { waitFor } from '../../helpers/wait-for.js';

/** Rows of 1 MiB: what the mysql sink holds and sends is bounded by bytes, not only by rows. */
const WIDE = 1 << 20;
const leaks = leakCheck();
const ctx = () => ({ signal: new AbortController().signal, changefeedId: 'mysql-wide-test', logger: { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined } });
const open = async (query: string): Promise<Sink> => {
  const uri = new URL(`mysql://root@${serviceAddress('downstream').addr}/${query}`);
  return factory.create(uri, factory.parseConfig(uri), ctx());
};
const columns: ColumnInfo[] = [
  { name: 'id', mysqlType: 'int', primaryKey: true, nullable: false },
  { name: 'b', mysqlType: 'longblob', primaryKey: false, nullable: true },
];
const wideRow = (table: TableName, id: number, commitTs: bigint): RowChangedEvent => ({ table, commitTs, commitTime: 0, seq: id, kind: 'insert', columns, before: null, after: [id, Buffer.alloc(WIDE, 65 + (id % 26))] });

describe('mysql sink: rows of 1 MiB (real downstream)', () => {
  let conn: mysql.Connection;
  const db = uniqueName('tm_mysink_wide');

  before(async () => {
    await requireService('downstream');
    conn = await mysql.createConnection({ uri: mysqlUri('downstream') });
    await conn.query(`CREATE DATABASE ${db}`);
    await conn.query(`CREATE TABLE ${db}.wide (id INT PRIMARY KEY, b LONGBLOB)`);
    await conn.query(`CREATE TABLE ${db}.locked (id INT PRIMARY KEY, v VARCHAR(16))`);
    await conn.query(`INSERT INTO ${db}.locked VALUES (1, 'first')`);
  });
  after(async () => {
    await conn.query('SET GLOBAL max_allowed_packet = 1073741824');
    await conn.query(`DROP DATABASE IF EXISTS ${db}`);
    await conn.end();
    await leaks.check();
  });

  const stored = async (): Promise<{ n: number; bytes: number; ok: number }> => {
    const [rows] = await conn.query<mysql.RowDataPacket[]>(`SELECT COUNT(*) AS n, SUM(LENGTH(b)) AS bytes, SUM(b = REPEAT(CHAR(65 + id % 26), ${WIDE})) AS ok FROM ${db}.wide`);
    return { n: Number(rows[0]['n']), bytes: Number(rows[0]['bytes']), ok: Number(rows[0]['ok']) };
  };

  it('a slow downstream holds writeRows back once 16 MiB of rows wait, not only at 32,768 rows', async () => {
    await conn.query(`DELETE FROM ${db}.wide`);
    const sink = await open('?worker-count=1&safe-mode-duration=0');
    const blocker = await mysql.createConnection({ uri: mysqlUri('downstream') });
    const locked: TableName = { schema: db, table: 'locked', tableId: 1 };
    const wide: TableName = { schema: db, table: 'wide', tableId: 2 };
    try {
      await blocker.query('BEGIN');
      await blocker.query(`SELECT * FROM ${db}.locked WHERE id = 1 FOR UPDATE`);
      const lockedColumns: ColumnInfo[] = [columns[0], { name: 'v', mysqlType: 'varchar(16)', primaryKey: false, nullable: true }];
      await sink.writeRows(locked, [{ table: locked, commitTs: 2n, commitTime: 0, seq: 0, kind: 'update', columns: lockedColumns, before: [1, 'first'], after: [1, 'second'] }]);
      await waitFor(async () => {
        const [waits] = await conn.query<mysql.RowDataPacket[]>('SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND INFO LIKE ?', [`%\`${db}\`.\`locked\`%`]);
        return Number(waits[0]['n']) > 0;
      }, { what: "the sink's update waiting for the row lock", timeoutMs: 20_000 });
      // the one worker waits for the lock: the wide rows queue behind it until writeRows holds back
      let accepted = 0;
      let pending: Promise<void> | undefined;
      for (let id = 1; id <= 200; id++) {
        const write = sink.writeRows(wide, [wideRow(wide, id, 2n + BigInt(id))]);
        const settled = await Promise.race([write.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 300))]);
        if (!settled) {
          pending = write;
          break;
        }
        accepted++;
      }
      assert.ok(pending !== undefined, 'writeRows held back before 200 rows of 1 MiB');
      console.log(`# accepted ${accepted} rows of 1 MiB while held`);
      assert.ok(accepted >= 8 && accepted <= 20, `${accepted} rows of 1 MiB accepted while the downstream was held`);
      await blocker.query('COMMIT');
      await pending;
      for (let id = accepted + 2; id <= 200; id++) await sink.writeRows(wide, [wideRow(wide, id, 2n + BigInt(id))]);
      await sink.flush(300n);
      assert.deepEqual(await stored(), { n: 200, bytes: 200 * WIDE, ok: 200 });
      const [v] = await conn.query<mysql.RowDataPacket[]>(`SELECT v FROM ${db}.locked`);
      assert.deepEqual(v.map((r) => r['v']), ['second']);
    } finally {
      await blocker.end();
      await sink.close();
    }
  });

  it('a transaction of 40 rows of 1 MiB reaches a downstream whose max_allowed_packet is 4 MiB', async () => {
    await conn.query(`DELETE FROM ${db}.wide`);
    await conn.query('SET GLOBAL max_allowed_packet = 4194304');
    const sink = await open('?worker-count=2&safe-mode-duration=0');
    const wide: TableName = { schema: db, table: 'wide', tableId: 2 };
    try {
      await sink.writeRows(wide, Array.from({ length: 40 }, (_, i) => wideRow(wide, i + 1, 500n)));
      await sink.flush(500n);
      assert.deepEqual(await stored(), { n: 40, bytes: 40 * WIDE, ok: 40 });
    } finally {
      await sink.close();
      await conn.query('SET GLOBAL max_allowed_packet = 1073741824');
    }
  });
});
