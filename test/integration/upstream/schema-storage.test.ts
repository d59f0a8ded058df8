import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { formatCoordinate, type Ts } from '../../../src/core/model/ts.js';
import { columnsOf } from '../../../src/core/pipeline/mounter/index.js';
import { SchemaStorage } from '../../../src/core/schema/schema-storage.js';
import { readDDLBetween, readFromTs, type ResumableReaderOptions } from '../../../src/core/upstream/resumable-reader.js';
import { decodeLocatedRows } from '../../../src/core/upstream/rows.js';
import { Upstream } from '../../../src/core/upstream/upstream.js';
import { MariaDBInstance } from '../../helpers/mariadb-instance.js';
import { mysqlUri, requireService, serviceAddress, uniqueName } from '../../helpers/services.js';
import { upstreamEndTs } from '../../helpers/upstream.js';

let serverId = 9000 + (process.pid % 1000) * 3;

/** The workload: DDL the storage must follow, rows of every kind around it. Runs in database `db`. */
function workload(db: string): { setup: string[]; changes: string[] } {
  return {
    setup: [
      `CREATE DATABASE ${db} CHARACTER SET latin1`,
      `CREATE TABLE ${db}.t1 (id INT PRIMARY KEY, big BIGINT UNSIGNED, small TINYINT UNSIGNED, s SMALLINT, name VARCHAR(20),
         e ENUM('a','b','c'), st SET('x','y','z'), u UUID, bin VARBINARY(8), note TEXT CHARACTER SET utf8mb4, m MEDIUMINT UNSIGNED)`,
    ],
    changes: [
      `INSERT INTO ${db}.t1 VALUES (1, 18446744073709551615, 255, -32768, 'café', 'b', 'x,z', '123e4567-e89b-42d3-a456-426614174000', x'00ff', '🐬 ok', 16777215)`,
      `INSERT INTO ${db}.t1 VALUES (2, 0, 0, 32767, '', 'a', '', NULL, '', NULL, 0)`,
      `ALTER TABLE ${db}.t1 ADD COLUMN added INT UNSIGNED NOT NULL DEFAULT 4294967295 AFTER id, RENAME COLUMN name TO title, MODIFY e ENUM('a','b','c','d')`,
      `INSERT INTO ${db}.t1 VALUES (3, 7, 9223372036854775808, 128, 1, 'ñ', 'd', 'y', NULL, x'01', 'x', 1)`,
      `UPDATE ${db}.t1 SET e = 'd', st = 'x,y,z', title = 'Ø' WHERE id = 1`,
      `DELETE FROM ${db}.t1 WHERE id = 2`,
      `CREATE TABLE ${db}.t2 (a INT UNSIGNED PRIMARY KEY, b SET('p','q') CHARACTER SET utf8mb4)`,
      `INSERT INTO ${db}.t2 VALUES (4294967295, 'p,q')`,
      `RENAME TABLE ${db}.t2 TO ${db}.t3`,
      `INSERT INTO ${db}.t3 VALUES (1, 'q')`,
      `ALTER TABLE ${db}.t1 DROP COLUMN st, CHANGE COLUMN big big2 DECIMAL(20,0) NOT NULL DEFAULT 0`,
      `INSERT INTO ${db}.t1 VALUES (4, 1, -9223372036854775808, 1, 1, 'b', 'c', NULL, NULL, NULL, 2)`,
      // not followable from the statement: the table is read again from the upstream when its rows come
      `CREATE TABLE ${db}.t4 LIKE ${db}.t1`,
      `INSERT INTO ${db}.t4 SELECT * FROM ${db}.t1`,
      `DROP TABLE ${db}.t3`,
    ],
  };
}

/** Every row change from `start` up to the `commits`-th commit, as comparable records (names from the TABLE_MAP). */
async function readRows(options: ResumableReaderOptions, start: Ts, commits: number): Promise<unknown[]> {
  const out: unknown[] = [];
  let seen = 0;
  for await (const e of readFromTs(options, start, AbortSignal.timeout(30_000))) {
    if (e.kind === 'rows') {
      for (const row of decodeLocatedRows(e.layout)) {
        out.push({
          table: e.layout.map.table,
          kind: e.layout.kind,
          columns: columnsOf(e.layout.map).map((c) => `${c.name} ${c.mysqlType}${c.primaryKey ? ' pk' : ''}`),
          before: row.before,
          after: row.after,
        });
      }
    }
    if ((e.kind === 'commit' || e.kind === 'ddl') && ++seen === commits) break;
  }
  return out;
}

async function run(conn: mysql.Connection, sql: readonly string[]): Promise<void> {
  for (const s of sql) await conn.query(s);
}

describe('schema storage: rows of an upstream without binlog_row_metadata=FULL mount as on one with it (real MariaDB)', () => {
  const db = uniqueName('schemastore');
  let shared: mysql.Connection;
  let golden: unknown[];
  let privateServer: MariaDBInstance;
  const readerOptions = (port: number): ResumableReaderOptions => ({ host: '127.0.0.1', port, user: 'root', password: '', serverId: serverId++, heartbeatMs: 200, basename: 'mysql-bin' });

  before(async () => {
    await requireService('upstream');
    shared = await mysql.createConnection({ uri: mysqlUri('upstream'), supportBigNumbers: true, bigNumberStrings: true });
    const w = workload(db);
    await run(shared, w.setup);
    const start = await upstreamEndTs(shared);
    await run(shared, w.changes);
    // the golden rows: the shared upstream sends FULL row metadata, so names, signedness and members are the server's own
    golden = await readRows(readerOptions(serviceAddress('upstream').port), start, w.changes.length);
    assert.equal(golden.length, 11, `golden read has ${golden.length} rows`);
    privateServer = await MariaDBInstance.create(['--server-id=1', '--log-bin=mysql-bin', '--binlog-format=ROW', '--binlog-row-image=FULL', '--binlog-checksum=CRC32']);
  });
  after(async () => {
    await shared?.query(`DROP DATABASE IF EXISTS ${db}`);
    await shared?.end();
    await privateServer?.destroy();
  });

  for (const metadata of ['NO_LOG', 'MINIMAL']) {
    it(`binlog_row_metadata=${metadata}: same names, types, keys and values as the golden read, across ADD/DROP/CHANGE/RENAME COLUMN, RENAME TABLE and CREATE … LIKE`, async () => {
      const conn = await privateServer.connect();
      try {
        await conn.query(`SET GLOBAL binlog_row_metadata = '${metadata}'`);
        await conn.query(`DROP DATABASE IF EXISTS ${db}`);
        const w = workload(db);
        await run(conn, w.setup);
        const options = readerOptions(privateServer.port);
        const storage = await SchemaStorage.snapshot(Upstream.of(privateServer.uri), (from, to) => readDDLBetween(options, from, to));
        const start = await upstreamEndTs(conn);
        assert.equal(storage.coveredFrom, start, 'snapshot of an idle upstream is at its end of binlog');
        assert.deepEqual(storage.tableAt(db, 't1', start + 1n) !== undefined, true);
        await run(conn, w.changes);

        // without the storage the binlog has no names: the reader cannot mount
        const bare = await readRows(options, start, 1);
        assert.deepEqual((bare[0] as { columns: string[] }).columns.slice(0, 2), ['@1 int', `@2 bigint${metadata === 'MINIMAL' ? ' unsigned' : ''}`]);

        const rows = await readRows({ ...options, serverId: serverId++, schema: storage }, start, w.changes.length);
        assert.deepEqual(rows, golden);
        // spot checks of what only the definition gives
        const first = rows[0] as { columns: string[]; after: unknown[] };
        assert.equal(first.after[1], 18446744073709551615n);
        assert.equal(first.after[4], 'café');
        assert.equal(first.after[6], 'x,z');
        const afterAlter = rows[3] as { columns: string[] };
        assert.deepEqual(afterAlter.columns.slice(0, 3), ['id int pk', 'added int unsigned', 'big bigint unsigned']);
        assert.ok(afterAlter.columns.includes("e enum('a','b','c','d')"));
        assert.ok(rows.some((r) => (r as { table: string }).table === 't4'), 't4 (CREATE … LIKE) was mounted after reading it again from the upstream');
      } finally {
        await conn.end();
      }
    });
  }

  it('refuses rows it cannot know: before a DDL that precedes the snapshot, or a definition that does not match the binlog', async () => {
    const conn = await privateServer.connect();
    try {
      await conn.query("SET GLOBAL binlog_row_metadata = 'NO_LOG'");
      await conn.query(`DROP DATABASE IF EXISTS ${db}`);
      const w = workload(db);
      await run(conn, w.setup);
      const start = await upstreamEndTs(conn);
      await run(conn, w.changes);
      const options = readerOptions(privateServer.port);
      // a snapshot taken after the workload, extended back to its start: t1 was altered in between
      const late = await SchemaStorage.snapshot(Upstream.of(privateServer.uri), (from, to) => readDDLBetween(options, from, to));
      late.extendBack(start, await readDDLBetween({ ...options, serverId: serverId++ }, start, late.coveredFrom));
      await assert.rejects(readRows({ ...options, serverId: serverId++, schema: late }, start, w.changes.length), (error: Error & { code?: string }) => {
        assert.equal(error.code, 'ErrSchemaUnknown');
        assert.match(error.message, new RegExp(`the definition of ${db}\\.t1 before mysql-bin\\.\\d+:\\d+ is unknown`));
        return true;
      });
      // a definition with a column too few
      const wrong = SchemaStorage.fromTables(start, [{ schema: db, table: 't1', charset: 'latin1', primaryKey: ['id'], columns: [{ name: 'id', dataType: 'int', columnType: 'int', unsigned: false, nullable: false, charset: null }] }]);
      await assert.rejects(readRows({ ...options, serverId: serverId++, schema: wrong }, start, 1), (error: Error & { code?: string }) => {
        assert.equal(error.code, 'ErrSchemaMismatch');
        assert.match(error.message, /the binlog has 11 columns, the definition 1 \(id\)/);
        assert.match(error.message, new RegExp(formatCoordinate(start).replace('.', '\\.').split(':')[0]));
        return true;
      });
    } finally {
      await conn.end();
    }
  });
});
