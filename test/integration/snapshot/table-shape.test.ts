import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { columnsOf, mountRow } from '../../../src/core/pipeline/mounter/index.js';
import { withDataTypes } from '../../../src/core/upstream/events.js';
import { QUERY_OPTIONS, compareKeys, readTableShape } from '../../../src/core/snapshot/table-shape.js';
import { roundTrip } from '../../helpers/binlog.js';
import { mountedValues, typeFamilies } from '../../helpers/type-matrix.js';
import { mysqlUri, requireService, uniqueName } from '../../helpers/services.js';

/** A row as text that keeps bigint and Buffer distinct from number and string. */
function text(row: readonly unknown[] | null): string {
  return JSON.stringify(row, function (this: unknown, k: string, v: unknown) {
    const raw = (this as Record<string, unknown>)[k];
    if (typeof raw === 'bigint') return `${raw}n`;
    if (Buffer.isBuffer(raw)) return `0x${raw.toString('hex')}`;
    return v;
  });
}

/**
 * The initial snapshot reads rows with SELECT; a sink must not be able to tell them from the binlog's rows of the
 * same table. For every family of the type matrix, on the real upstream: the columns equal the mounter's for the
 * table's binlog rows, and every value equals the value the binlog gives (the matrix's golden, mounted values).
 */
describe('snapshot rows read with SELECT equal the binlog rows (real upstream MariaDB, the type matrix)', () => {
  const db = uniqueName('tm_shape');
  let conn: mysql.Connection;
  let reader: mysql.Connection;

  before(async () => {
    await requireService('upstream');
    conn = await mysql.createConnection({ uri: mysqlUri('upstream'), multipleStatements: true, timezone: 'Z' });
    await conn.query("SET time_zone = '+00:00', sql_mode = ''");
    await conn.query(`CREATE DATABASE ${db}`);
    // as the snapshot reader connects
    reader = await mysql.createConnection({ uri: mysqlUri('upstream'), timezone: 'Z', supportBigNumbers: true, bigNumberStrings: true, dateStrings: true, decimalNumbers: false, jsonStrings: true });
    await reader.query("SET SESSION time_zone = '+00:00'");
  });
  after(async () => {
    await conn.query(`DROP DATABASE IF EXISTS ${db}`);
    await conn.end();
    await reader.end();
  });

  typeFamilies.forEach((family, f) => {
    it(family.name, async () => {
      const table = `f${f}`;
      await conn.query(`CREATE TABLE ${db}.${table} (id INT PRIMARY KEY, ${family.columns})`);
      const width = family.rows[0][1].length;
      const nulls = Array.from({ length: width }, () => 'NULL').join(', ');
      const statements = [...family.rows.map(([sql], r) => `INSERT INTO ${db}.${table} VALUES (${r + 1}, ${sql})`), `INSERT INTO ${db}.${table} VALUES (0, ${nulls})`];
      const { events, maps } = await roundTrip(conn, statements, table);
      const shape = await readTableShape(reader, db, table);
      // the binlog's rows, mounted as a changefeed mounts them (MariaDB's UUID/INET6/INET4 known from the definition)
      const [definition] = await reader.query<mysql.RowDataPacket[]>('SELECT COLUMN_NAME AS name, DATA_TYPE AS dataType FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION', [db, table]);
      const map = withDataTypes(maps.filter((m) => m.table === table).at(-1)!, definition as { name: string; dataType: string }[]);
      // one departure: MariaDB keeps definitions in utf8mb3, so an ENUM/SET member's 4-byte character reads as '?'
      const expected = columnsOf(map).map((c) => (/^(enum|set)\(/.test(c.mysqlType) ? { ...c, mysqlType: c.mysqlType.replace(/[\u{10000}-\u{10FFFF}]/gu, '?') } : c));
      assert.deepEqual(shape.columns, expected, 'the columns are the mounter\'s');
      const mounted = events.flatMap((e) => e.rows.map((r) => mountRow({ table: map, change: 'insert', before: null, after: r.after, seq: 0 }, { schema: db, table, tableId: 1 }, 1n, 0).after));
      const [rows] = await reader.query<mysql.RowDataPacket[]>({ sql: `SELECT ${shape.selectList} FROM ${shape.qualified} ORDER BY id`, ...QUERY_OPTIONS });
      const selected = (rows as unknown as unknown[][]).map((r) => shape.toValues(r));
      const golden = [[0, ...Array.from({ length: width }, () => null)], ...family.rows.map((row, r) => [r + 1, ...mountedValues(row)])];
      assert.equal(text(selected), text(golden), 'SELECT gives the golden values');
      const byId = [...mounted].sort((a, b) => (a![0] as number) - (b![0] as number));
      assert.equal(text(selected), text(byId), 'SELECT gives what the binlog gives');
    });
  });

  it('finds the key to chunk by, and whether it orders here as on the server', async () => {
    const cases: [string, string, readonly string[] | undefined, boolean][] = [
      ['k_int', 'id BIGINT UNSIGNED PRIMARY KEY, v INT', ['id'], true],
      ['k_composite', 'a INT NOT NULL, b VARBINARY(8) NOT NULL, v INT, PRIMARY KEY (a, b)', ['a', 'b'], true],
      ['k_unique', 'u DATETIME(3) NOT NULL, n INT NULL, v INT, UNIQUE KEY un (n), UNIQUE KEY uu (u)', ['u'], true],
      ['k_none', 'x INT, v INT, KEY (x)', undefined, false],
      ['k_text', 's VARCHAR(10) PRIMARY KEY', ['s'], false],
      ['k_decimal', 'd DECIMAL(10,2) PRIMARY KEY', ['d'], false],
    ];
    for (const [table, columns, key, orderable] of cases) {
      await conn.query(`CREATE TABLE ${db}.${table} (${columns})`);
      const shape = await readTableShape(reader, db, table);
      assert.deepEqual(shape.key?.map((i) => shape.columns[i].name), key, table);
      assert.equal(shape.orderable, orderable, table);
    }
    // compareKeys orders as the server's ORDER BY: unsigned BIGINT beyond 2^53, negative, bytes
    await conn.query(`INSERT INTO ${db}.k_int VALUES (18446744073709551615, 1), (9007199254740993, 2), (9007199254740992, 3), (0, 4), (1, 5)`);
    await conn.query(`INSERT INTO ${db}.k_composite VALUES (-5, 0xff, 1), (-5, 0x00ff, 2), (-5, 0x00, 3), (-5, '', 4), (3, 0x01, 5), (-100, 0x7f, 6)`);
    for (const [table, keyColumns] of [['k_int', 'id'], ['k_composite', 'a, b']] as const) {
      const shape = await readTableShape(reader, db, table);
      const [rows] = await reader.query<mysql.RowDataPacket[]>({ sql: `SELECT ${shape.selectList} FROM ${shape.qualified} ORDER BY ${keyColumns}`, ...QUERY_OPTIONS });
      const keys = (rows as unknown as unknown[][]).map((r) => shape.key!.map((i) => shape.toValues(r)[i]));
      const sorted = [...keys].sort((a, b) => compareKeys(a, b));
      assert.equal(text(sorted), text(keys), `${table}: compareKeys orders as the server`);
    }
  });
});
