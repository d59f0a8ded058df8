import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { factory } from '../../../plugins/sink-mysql/src/index.js';
import { CONNECTION_OPTIONS, QUERY_OPTIONS, readTableShape } from '../../../src/core/snapshot/table-shape.js';
import type { RowChangedEvent, Sink, TableName } from '../../../src/core/sink/api.js';
import { leakCheck } from '../../helpers/leak-check.js';
import { mysqlUri, requireService, serviceAddress, uniqueName } from '../../helpers/services.js';
import { typeFamilies } from '../../helpers/type-matrix.js';

/**
 * Snapshot rows reach the mysql sink as inserts marked `snapshot`; it writes them with LOAD DATA LOCAL INFILE where
 * every column has an exact text form, and with INSERT otherwise. These tests read the rows from the real upstream
 * the way the snapshot reader does (its table shape and SELECT), write them through the sink into the real
 * downstream and compare the downstream's rows with the upstream's, value for value.
 */
const leaks = leakCheck();
const logged: string[] = [];
const log = (message: string): void => {
  logged.push(message);
};
const ctx = () => ({ signal: new AbortController().signal, changefeedId: 'mysql-load-test', logger: { debug: log, info: log, warn: log, error: log } });
const open = async (query = ''): Promise<Sink> => {
  const uri = new URL(`mysql://root@${serviceAddress('downstream').addr}/${query}`);
  return factory.create(uri, factory.parseConfig(uri), ctx());
};
const stats = (sink: Sink): { loadedRows: number; loadsRedone: number; rows: number } => sink.stats!() as { loadedRows: number; loadsRedone: number; rows: number };

let up: mysql.Connection;
let reader: mysql.Connection;
let down: mysql.Connection;
const db = uniqueName('tm_mysink_load');

/** Rows of the upstream table read as the snapshot reader reads them, as snapshot rows at ts 5. */
async function snapshotRows(table: string, tableId: number): Promise<{ name: TableName; rows: RowChangedEvent[] }> {
  const shape = await readTableShape(reader, db, table);
  const [read] = await reader.query<mysql.RowDataPacket[]>({ sql: `SELECT ${shape.selectList} FROM ${shape.qualified} ORDER BY 1`, ...QUERY_OPTIONS });
  const name: TableName = { schema: db, table, tableId };
  const rows = (read as unknown as unknown[][]).map((r, seq): RowChangedEvent => ({ table: name, commitTs: 5n, commitTime: 0, seq, kind: 'insert', columns: shape.columns, before: null, after: shape.toValues(r), snapshot: seq === 0 ? 'first' : 'row' }));
  return { name, rows };
}

const readAll = async (c: mysql.Connection, table: string): Promise<unknown[]> => (await c.query<mysql.RowDataPacket[]>({ sql: `SELECT * FROM ${db}.${table} ORDER BY 1`, rowsAsArray: true }))[0];

/** Creates `table` upstream and downstream, fills it upstream, and returns its rows as snapshot rows. */
async function table(name: string, tableId: number, columns: string, values: readonly string[]): Promise<{ name: TableName; rows: RowChangedEvent[] }> {
  await up.query(`CREATE TABLE ${db}.${name} (${columns})`);
  await down.query(`CREATE TABLE ${db}.${name} (${columns})`);
  for (const v of values) await up.query(`INSERT INTO ${db}.${name} VALUES (${v})`);
  return snapshotRows(name, tableId);
}

describe('mysql sink: snapshot rows with LOAD DATA LOCAL INFILE', () => {
  before(async () => {
    await requireService('upstream');
    await requireService('downstream');
    const read = { multipleStatements: true, timezone: 'Z', supportBigNumbers: true, bigNumberStrings: true, dateStrings: true } as const;
    up = await mysql.createConnection({ uri: mysqlUri('upstream'), ...read });
    await up.query("SET time_zone = '+00:00', sql_mode = ''");
    down = await mysql.createConnection({ uri: mysqlUri('downstream'), ...read });
    await down.query("SET time_zone = '+00:00'");
    reader = await mysql.createConnection({ uri: mysqlUri('upstream'), ...CONNECTION_OPTIONS });
    await reader.query("SET SESSION time_zone = '+00:00', SESSION sql_mode = ''");
    await up.query(`CREATE DATABASE ${db}`);
    await down.query(`CREATE DATABASE ${db}`);
  });
  after(async () => {
    await up.query(`DROP DATABASE IF EXISTS ${db}`);
    await down.query(`DROP DATABASE IF EXISTS ${db}`);
    await down.query('SET GLOBAL local_infile = 1');
    await Promise.all([up.end(), down.end(), reader.end()]);
    await leaks.check();
  });

  it('the type matrix and text full of separators arrive exactly as the upstream has them; tables with BIT, spatial or UUID columns go as INSERT', async () => {
    const sink = await open('?worker-count=4&safe-mode-duration=0');
    try {
      const tables: { name: TableName; rows: RowChangedEvent[]; loaded: boolean }[] = [];
      for (const [f, family] of typeFamilies.entries()) {
        const width = family.rows[0][1].length;
        const values = [...family.rows.map(([sql], r) => `${r + 1}, ${sql}`), `0, ${Array.from({ length: width }, () => 'NULL').join(', ')}`];
        const loaded = !/\bBIT\b|GEOMETRY|POINT|UUID|INET/i.test(family.columns);
        tables.push({ ...(await table(`f${f}`, f + 1, `id INT PRIMARY KEY, ${family.columns}`, values)), loaded });
      }
      const specials = ["'a\\tb'", "'line\\nnext\\r'", "'back\\\\slash \\\\N'", "'nul\\0byte'", "'\\\\'", "''", "'tab at end\\t'", "'😀 ünï'"];
      tables.push({
        ...(await table(
          'specials',
          100,
          'id INT PRIMARY KEY, v VARCHAR(64), t TEXT, l VARCHAR(64) CHARACTER SET latin1, b VARBINARY(64), j JSON',
          specials.map((s, i) => `${i + 1}, ${s}, ${s}, ${s === "'😀 ünï'" ? "'ünï'" : s}, ${s}, JSON_OBJECT('k', ${s})`),
        )),
        loaded: true,
      });
      const before = stats(sink);
      for (const { name, rows } of tables) await sink.writeRows(name, rows);
      await sink.flush(5n);
      for (const { name } of tables) assert.deepEqual(await readAll(down, name.table), await readAll(up, name.table), `${name.table}: downstream rows equal the upstream's`);
      const after = stats(sink);
      const loadable = tables.filter((t) => t.loaded).reduce((n, t) => n + t.rows.length, 0);
      assert.ok(tables.some((t) => !t.loaded) && loadable > 0);
      assert.equal(after.loadedRows - before.loadedRows, loadable, 'the rows of every table without BIT, spatial or UUID/INET columns went through LOAD DATA, the others through INSERT');
      assert.equal(after.loadsRedone - before.loadsRedone, 0, 'the downstream took every loaded value without a warning');
    } finally {
      await sink.close();
    }
  });

  it('rows already downstream (a chunk copied again after a failure) end as the snapshot has them: the load is written again with REPLACE', async () => {
    const sink = await open('?safe-mode-duration=0');
    try {
      const { name, rows } = await table('again', 200, 'id INT PRIMARY KEY, v VARCHAR(16)', Array.from({ length: 50 }, (_, i) => `${i + 1}, 'new-${i + 1}'`));
      await down.query(`INSERT INTO ${db}.again VALUES (3, 'old-3'), (40, 'old-40')`);
      const before = stats(sink);
      await sink.writeRows(name, rows);
      await sink.flush(5n);
      assert.deepEqual(await readAll(down, 'again'), await readAll(up, 'again'));
      assert.equal(stats(sink).loadsRedone - before.loadsRedone, 1, 'the load skipped two keys and was written again');
    } finally {
      await sink.close();
    }
  });

  it('a downstream with local_infile off gets the rows with INSERT, and the sink says why once', async () => {
    await down.query('SET GLOBAL local_infile = 0');
    const sink = await open('?safe-mode-duration=0');
    try {
      const { name, rows } = await table('refused', 300, 'id INT PRIMARY KEY, v VARCHAR(16)', Array.from({ length: 3000 }, (_, i) => `${i + 1}, 'v-${i + 1}'`));
      logged.length = 0;
      await sink.writeRows(name, rows.slice(0, 1000));
      await sink.writeRows(name, rows.slice(1000));
      await sink.flush(5n);
      assert.deepEqual(await readAll(down, 'refused'), await readAll(up, 'refused'));
      assert.equal(stats(sink).loadedRows, 0);
      assert.equal(logged.filter((m) => /refuses LOAD DATA LOCAL INFILE/.test(m)).length, 1, logged.join('\n'));
    } finally {
      await sink.close();
      await down.query('SET GLOBAL local_infile = 1');
    }
  });
});
