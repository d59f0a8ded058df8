import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { columnsOf, mountRow } from '../../../src/core/pipeline/mounter/index.js';
import type { ColumnInfo } from '../../../src/core/sink/api.js';
import { BinlogReader, EventType, fileSeqOf } from '../../../src/core/upstream/binlog-reader.js';
import { decodeTableMap, withDataTypes, type TableMap } from '../../../src/core/upstream/events.js';
import { decodeRows, type Value } from '../../../src/core/upstream/rows.js';
import { CONNECTION_OPTIONS, QUERY_OPTIONS, compareKeys, readTableShape, type TableShape } from '../../../src/core/snapshot/table-shape.js';
import { mountedValues, typeFamilies } from '../../helpers/type-matrix.js';
import { mysqlUri, requireService, serviceAddress, uniqueName } from '../../helpers/services.js';

/** A row as text that keeps bigint and Buffer distinct from number and string (for sorting and messages). */
function text(row: unknown): string {
  return JSON.stringify(row, function (this: unknown, k: string, v: unknown) {
    const raw = (this as Record<string, unknown>)[k];
    if (typeof raw === 'bigint') return `${raw}n`;
    if (Buffer.isBuffer(raw)) return `0x${raw.toString('hex')}`;
    return v;
  });
}

const byText = (rows: readonly (readonly Value[])[]): (readonly Value[])[] => [...rows].sort((a, b) => (text(a) < text(b) ? -1 : text(a) > text(b) ? 1 : 0));

let nextServerId = 20_000 + (process.pid % 1000) * 8;

function isRowsEvent(type: number): boolean {
  return (type >= EventType.WRITE_ROWS_V1 && type <= EventType.DELETE_ROWS_V1) || (type >= EventType.WRITE_ROWS_V2 && type <= EventType.DELETE_ROWS_V2);
}

/**
 * Runs the INSERTs, then reads the binlog from before them to after them (positions, not a count of transactions:
 * other sessions may write to the upstream meanwhile) and returns the TABLE_MAP and inserted rows of `db.table`.
 */
async function binlogInserts(writer: mysql.Connection, statements: readonly string[], db: string, table: string): Promise<{ map: TableMap; rows: Value[][] }> {
  const status = async (): Promise<{ file: string; pos: number }> => {
    const [rows] = await writer.query<mysql.RowDataPacket[]>('SHOW MASTER STATUS');
    return { file: String(rows[0]['File']), pos: Number(rows[0]['Position']) };
  };
  const start = await status();
  for (const statement of statements) await writer.query(statement);
  const end = await status();
  const { host, port } = serviceAddress('upstream');
  const reader = await BinlogReader.open({ host, port, user: 'root', password: '', serverId: nextServerId++ }, start.file, start.pos, AbortSignal.timeout(20_000));
  const maps = new Map<bigint, TableMap>();
  let map: TableMap | undefined;
  const rows: Value[][] = [];
  try {
    for await (const e of reader) {
      if (e.type === EventType.TABLE_MAP) {
        const m = decodeTableMap(e.body);
        maps.set(m.tableId, m);
      } else if (isRowsEvent(e.type)) {
        const decoded = decodeRows(e.type, e.body, maps);
        const m = maps.get(decoded.tableId);
        if (m?.schema === db && m.table === table && decoded.kind === 'insert') {
          map = m;
          for (const r of decoded.rows) rows.push(r.after!);
        }
      }
      if (fileSeqOf(e.file) > fileSeqOf(end.file) || (e.file === end.file && e.endPos >= end.pos)) break;
    }
  } finally {
    reader.close();
  }
  assert.ok(map !== undefined, `the binlog has rows of ${db}.${table}`);
  return { map, rows };
}

/**
 * MariaDB keeps definitions in utf8mb3: an ENUM/SET member's 4-byte character reads as '?' in information_schema
 * (and SHOW CREATE TABLE), while the binlog's TABLE_MAP has it. The one departure in a column's type.
 */
function utf8mb3Definition(columns: readonly ColumnInfo[]): ColumnInfo[] {
  return columns.map((c) => (/^(enum|set)\(/.test(c.mysqlType) ? { ...c, mysqlType: c.mysqlType.replace(/[\u{10000}-\u{10FFFF}]/gu, '?') } : c));
}

describe('snapshot rows read with SELECT equal the binlog rows (real upstream MariaDB)', () => {
  const db = uniqueName('tm_shape');
  let writer: mysql.Connection;
  let reader: mysql.Connection;

  before(async () => {
    await requireService('upstream');
    writer = await mysql.createConnection({ uri: mysqlUri('upstream'), multipleStatements: true, timezone: 'Z' });
    await writer.query("SET time_zone = '+00:00', sql_mode = ''");
    await writer.query(`CREATE DATABASE ${db}`);
    // as the snapshot reader connects
    reader = await mysql.createConnection({ uri: mysqlUri('upstream'), ...CONNECTION_OPTIONS });
    await reader.query("SET SESSION time_zone = '+00:00', SESSION sql_mode = ''");
  });
  after(async () => {
    await writer.query(`DROP DATABASE IF EXISTS ${db}`);
    await writer.end();
    await reader.end();
  });

  /** The rows of the table read with SELECT as the snapshot reads them. */
  async function select(shape: TableShape, orderBy = ''): Promise<Value[][]> {
    const [rows] = await reader.query<mysql.RowDataPacket[]>({ sql: `SELECT ${shape.selectList} FROM ${shape.qualified}${orderBy}`, ...QUERY_OPTIONS });
    return (rows as unknown as unknown[][]).map((r) => shape.toValues(r));
  }

  interface Both {
    readonly shape: TableShape;
    /** columnsOf(TABLE_MAP), as the mounter gives them. */
    readonly binlogColumns: readonly ColumnInfo[];
    /** The inserted rows as the mounter gives them, in insert order. */
    readonly binlog: readonly (readonly Value[])[];
    /** The rows read with SELECT, in the order of `binlog` (matched by value). */
    readonly selected: readonly (readonly Value[])[];
  }

  /**
   * Creates the table, inserts `values` (one INSERT each), and reads the rows both ways: from the binlog, mounted as
   * a changefeed mounts them (UUID/INET6/INET4 known from the definition), and with SELECT via the table's shape.
   * Asserts the columns and every row equal (deepStrictEqual: bigint ≠ number, Buffer ≠ string, -0 ≠ 0).
   */
  async function readBoth(table: string, columns: string, values: readonly string[], options: { columnList?: string; departure?: (binlog: Both) => { columns: readonly ColumnInfo[]; rows: readonly (readonly Value[])[] } } = {}): Promise<Both> {
    await writer.query(`CREATE TABLE ${db}.${table} (${columns})`);
    const statements = values.map((v) => `INSERT INTO ${db}.${table}${options.columnList ?? ''} VALUES (${v})`);
    const { map: raw, rows } = await binlogInserts(writer, statements, db, table);
    const [definition] = await writer.query<mysql.RowDataPacket[]>('SELECT COLUMN_NAME AS name, DATA_TYPE AS dataType FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION', [db, table]);
    const map = withDataTypes(raw, definition as { name: string; dataType: string }[]);
    // the mounter's values are Values (RowChangedEvent types them as the wider ColumnValue)
    const binlog = rows.map((r) => mountRow({ table: map, change: 'insert', before: null, after: r, seq: 0 }, { schema: db, table, tableId: 1 }, 1n, 0).after as readonly Value[]);
    assert.equal(binlog.length, values.length, `${table}: every insert is in the binlog`);
    const shape = await readTableShape(reader, db, table);
    const selectedRows = await select(shape);
    assert.equal(selectedRows.length, values.length, `${table}: every row is read with SELECT`);
    // match the SELECT's rows to the binlog's by their text (no key needed); the comparison itself is deepStrictEqual
    const byRow = new Map<string, (readonly Value[])[]>();
    for (const r of selectedRows) byRow.set(text(r), [...(byRow.get(text(r)) ?? []), r]);
    const binlogColumns = columnsOf(map);
    const both = { shape, binlogColumns, binlog, selected: [] as (readonly Value[])[] };
    const expected = options.departure?.(both) ?? { columns: binlogColumns, rows: binlog };
    const selected = expected.rows.map((r) => byRow.get(text(r))?.shift() ?? selectedRows[0]);
    both.selected = selected;
    assert.deepEqual(shape.columns, expected.columns, `${table}: the columns are the mounter's`);
    expected.rows.forEach((row, r) => assert.deepEqual(selected[r], row, `${table}: row ${r} read with SELECT is the binlog's: ${text(selected[r])} vs ${text(row)}`));
    assert.deepEqual(byText(selectedRows), byText(expected.rows), `${table}: the same rows`);
    return both;
  }

  typeFamilies.forEach((family, f) => {
    it(`type matrix: ${family.name}`, async () => {
      const width = family.rows[0][1].length;
      const nulls = Array.from({ length: width }, () => 'NULL').join(', ');
      const { selected } = await readBoth(`f${f}`, `id INT PRIMARY KEY, ${family.columns}`, [...family.rows.map(([sql], r) => `${r + 1}, ${sql}`), `0, ${nulls}`], {
        departure: ({ binlogColumns, binlog }) => ({ columns: utf8mb3Definition(binlogColumns), rows: binlog }),
      });
      // both ways equal and equal to the matrix's golden values (so that both cannot be wrong alike)
      const golden = [...family.rows.map((row, r) => [r + 1, ...mountedValues(row)]), [0, ...Array.from({ length: width }, () => null)]];
      assert.deepEqual(selected, golden, 'SELECT gives the golden values');
    });
  });

  it('text in other character sets reads as the binlog decodes it: the server\'s own text (latin1 is cp1252)', async () => {
    const { selected, shape } = await readBoth(
      'charsets',
      `id INT PRIMARY KEY, l VARCHAR(10) CHARACTER SET latin1, ln TEXT CHARACTER SET latin1 COLLATE latin1_swedish_nopad_ci, lb CHAR(4) CHARACTER SET latin1 COLLATE latin1_bin,
       cp CHAR(5) CHARACTER SET cp1250, u2 VARCHAR(4) CHARACTER SET ucs2, a VARCHAR(8) CHARACTER SET ascii, m3 VARCHAR(6) CHARACTER SET utf8mb3,
       el ENUM('é','€','a''b','x') CHARACTER SET latin1, sl SET('é','ü') CHARACTER SET latin1, t4 TINYTEXT CHARACTER SET utf8mb4`,
      [
        `1, CONVERT(UNHEX('80E98120') USING latin1), '€ÿ', 'é  ', 'ščř ', 'ab', 'a b ', 'ĳ€', 'é', 'é,ü', '𝄞'`,
        `2, '', '', '', '', '', '', '', '€', 'ü', ''`,
        `3, 'a b', 'x', ' ', 'a', '€', 'z', 'ab c', 'a''b', '', ' '`,
        '4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL',
      ],
    );
    // both ways give the server's own text: latin1 is cp1252 (0x80 '€', 0x81 undefined there, kept as U+0081),
    // latin1_swedish_nopad_ci (id 1032) is latin1 too, cp1250 is cp1250
    assert.equal(selected[0][1], '€é\u0081 ');
    assert.equal(selected[0][2], '€ÿ');
    assert.equal(selected[0][4], 'ščř');
    assert.equal(selected[0][5], 'ab', 'ucs2');
    assert.ok(shape.selectList.includes('CAST(`l` AS BINARY)'));
  });

  it('numbers: ZEROFILL, FLOAT/DOUBLE(M,D), unsigned floats, bounds, bits', async () => {
    await readBoth(
      'numbers',
      `id INT PRIMARY KEY, dz DECIMAL(8,2) ZEROFILL, iz INT ZEROFILL, bz BIGINT(5) ZEROFILL, dd DOUBLE(10,3), fd FLOAT(7,3), fu FLOAT UNSIGNED, du DOUBLE UNSIGNED ZEROFILL,
       d DOUBLE, f FLOAT, b1 BIT(1), b64 BIT(64), bo BOOL, si SMALLINT, bi BIGINT, y YEAR, d0 DECIMAL(1,0), dneg DECIMAL(5,2), dm DOUBLE(20,2)`,
      [
        `1, 0.5, 0, 0, -12345.6789, 1.0005, 3.1415927, 1.5, -1.7976931348623157e308, 16777217, b'1', 0xffffffffffffffff, TRUE, -32768, -9223372036854775808, 2155, 9, -0.001, 0`,
        `2, 123456.78, 4294967295, 18446744073709551615, 0.1, -0.0005, 0, 0, 5e-324, 1e-45, b'0', 0, FALSE, 32767, 9223372036854775807, 1901, -9, -999.99, -0.005`,
        `3, 0, 42, 42, 1.0005, 9999.999, 3.4028235e38, 1e16, 0.1 + 0.2, -3.4028235e38, NULL, 9223372036854775808, 2, 0, 0, 0, 0, 0.004, 1.005`,
        `4, 0.01, 7, 9007199254740993, 999999.999, 0.0001, 1e-38, 2.2250738585072014e-308, -2.2250738585072014e-308, 0.1, NULL, 1, -128, -1, -1, NULL, NULL, -0, 1e17`,
        // mysql2 reads numbers of up to 17 characters digit by digit: off by one unit in the last place beyond 2^53
        `6, NULL, NULL, NULL, 9876543.21, 9.1, 9.1, 98765432109876.55, 98765432109876.55, 9.1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 98765432109876.55`,
        `7, NULL, NULL, NULL, NULL, NULL, 0.9876543, 9.100000381469727, 9.100000381469727, 98765.43, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, -9876543210987.65`,
        '5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL',
      ],
    );
  });

  it('ENUM and SET members with quotes, backslashes and control characters', async () => {
    await readBoth(
      'members',
      "id INT PRIMARY KEY, e ENUM('a\\nb', 'c\\td', 'q''s', 'b\\\\s', 'z\\Zz', 'r\\rr', 'n\\0n', '', 'x,y', 'é') CHARACTER SET utf8mb4, s SET('a\\nb', 'q''s', 'b\\\\s', 'n\\0n', 'é')",
      ["1, 'a\\nb', 'a\\nb,n\\0n'", "2, 'q''s', 'q''s,b\\\\s,é'", "3, 'n\\0n', ''", "4, '', 'b\\\\s'", "5, 'x,y', NULL", "6, 'b\\\\s', 'é'", "7, 'z\\Zz', NULL", "8, 'r\\rr', NULL"],
    );
  });

  it('generated, invisible and oddly named columns, geometry subtypes', async () => {
    await readBoth(
      'generated',
      'id INT PRIMARY KEY, `we``ird col` INT, v INT AS (id * 2) VIRTUAL, s VARCHAR(12) AS (CONCAT(\'s\', id)) STORED, h INT INVISIBLE DEFAULT 7, p POINT, l LINESTRING, g GEOMETRYCOLLECTION',
      ["1, 5, DEFAULT, DEFAULT, ST_GeomFromText('POINT(1 2)'), ST_GeomFromText('LINESTRING(0 0, 1 1)'), ST_GeomFromText('GEOMETRYCOLLECTION(POINT(1 1))')", '2, NULL, DEFAULT, DEFAULT, NULL, NULL, NULL'],
      { columnList: ' (id, `we``ird col`, v, s, p, l, g)' },
    );
  });

  it('system-versioned tables: the implicit ROW_START and ROW_END the binlog has', async () => {
    const keyed = await readBoth('versioned', 'id INT PRIMARY KEY, b VARCHAR(4)) WITH SYSTEM VERSIONING -- ', ["1, 'x'", '2, NULL']);
    assert.deepEqual(keyed.shape.columns.map((c) => [c.name, c.primaryKey]), [['id', true], ['b', false], ['row_start', false], ['row_end', true]]);
    assert.deepEqual(keyed.shape.key, [0]);
    await readBoth('versioned_nokey', 'a INT, b INT) WITH SYSTEM VERSIONING -- ', ['1, 2', '1, 2']);
    await readBoth('versioned_explicit', 'id INT PRIMARY KEY, rs TIMESTAMP(6) AS ROW START INVISIBLE, re TIMESTAMP(6) AS ROW END INVISIBLE, PERIOD FOR SYSTEM_TIME(rs, re)) WITH SYSTEM VERSIONING -- ', ['1']);
  });

  it('MariaDB UUID, INET6 and INET4: every form of their text', async () => {
    const { shape } = await readBoth('inet', 'u UUID PRIMARY KEY, ip INET6, ip4 INET4', [
      "'123e4567-e89b-12d3-a456-426655440000', '::', '0.0.0.0'",
      "'6ccd780c-baba-4026-9564-5b8c656024db', '::1', '255.255.255.255'",
      "'00000000-0000-0000-0000-000000000000', '::1.2.3.4', '10.0.0.1'",
      "'ffffffff-ffff-1fff-bfff-ffffffffffff', '::ffff:1.2.3.4', NULL",
      "'00000001-0002-1003-8004-000000000005', '1:0:0:2:0:0:0:3', '127.0.0.1'",
      "'00000001-0002-1003-8004-000000000006', '2001:db8:0:0:1:0:0:1', '1.2.3.4'",
      "'00000001-0002-1003-8004-000000000007', 'fe80::1', '8.8.8.8'",
      "'00000001-0002-1003-8004-000000000008', '1::', '9.9.9.9'",
      "'00000001-0002-1003-8004-000000000009', '::ffff:0:0', '192.168.1.1'",
      "'00000001-0002-1003-8004-00000000000a', NULL, '172.16.0.1'",
    ]);
    assert.deepEqual(shape.key, [0]);
    assert.equal(shape.orderable, false, 'MariaDB orders UUIDs by their swapped segments, not their text');
  });

  it('a long UNIQUE (hash) key: the binlog has its hidden DB_ROW_HASH_1 column, which SELECT cannot read', async () => {
    const { shape } = await readBoth('long_unique', 'id INT, t TEXT NOT NULL, UNIQUE KEY (t)', ["1, 'x'", "2, 'y'"], {
      departure: ({ binlogColumns, binlog }) => {
        const hidden = binlogColumns.findIndex((c) => /^DB_ROW_HASH_\d+$/.test(c.name));
        assert.ok(hidden >= 0, 'the binlog has the hidden hash column (if not anymore, drop this departure)');
        return { columns: binlogColumns.filter((_, i) => i !== hidden), rows: binlog.map((r) => r.filter((_, i) => i !== hidden)) };
      },
    });
    assert.equal(shape.key, undefined);
  });

  it('finds the key to chunk by, and whether it orders here as on the server', async () => {
    const cases: [table: string, columns: string, values: string[], key: readonly string[] | undefined, orderable: boolean][] = [
      ['k_composite', 'v INT, a INT NOT NULL, b VARBINARY(8) NOT NULL, PRIMARY KEY (b, a)', ['1, -5, 0xff', '2, -5, 0x00'], ['b', 'a'], true],
      ['k_unique', 'n INT NULL, u DATETIME(3) NOT NULL, v INT, w INT NOT NULL, UNIQUE KEY un (n), UNIQUE KEY uu (u), UNIQUE KEY uw (w)', ["NULL, '2024-01-01 00:00:00.001', 1, 1", "1, '2024-01-01 00:00:00', 2, 2"], ['u'], true],
      ['k_unique_multi', 'a INT NOT NULL, b INT NOT NULL, c INT, UNIQUE KEY zz (b, a), UNIQUE KEY aa (a)', ['1, 2, 3', '2, 2, 3'], ['b', 'a'], true],
      ['k_none', 'x INT, v INT, KEY (x)', ['1, 1', '1, 1'], undefined, false],
      ['k_prefix', 's VARCHAR(20) NOT NULL, UNIQUE KEY (s(3))', ["'abc'", "'abd'"], undefined, false],
      ['k_prefix_pk', 's VARCHAR(20) NOT NULL, n INT NOT NULL, PRIMARY KEY (s(3)), UNIQUE KEY (n)', ["'abc', 1", "'abd', 2"], ['n'], true],
      ['k_bigint', 'id BIGINT UNSIGNED PRIMARY KEY', ['18446744073709551615', '0'], ['id'], true],
      ['k_binary', 'b BINARY(4) PRIMARY KEY', ['0x01', '0x0001'], ['b'], true],
      ['k_year_bit', 'y YEAR NOT NULL, b BIT(9) NOT NULL, PRIMARY KEY (y, b)', ["2000, b'1'", "1999, b'100000000'"], ['y', 'b'], true],
      ['k_ts', 't TIMESTAMP(6) NOT NULL DEFAULT 0, d DATE NOT NULL, PRIMARY KEY (t, d)', ["'1970-01-01 00:00:01', '2024-01-01'", "'2038-01-19 03:14:07.999999', '0000-00-00'"], ['t', 'd'], true],
      ['k_bin', "s VARCHAR(10) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin PRIMARY KEY", ["'a'", "'a\\t'"], ['s'], true],
      ['k_bin3', "s CHAR(10) CHARACTER SET utf8mb3 COLLATE utf8mb3_bin PRIMARY KEY", ["'a'", "'b'"], ['s'], true],
      ['k_ascii', "s VARCHAR(10) CHARACTER SET ascii COLLATE ascii_bin PRIMARY KEY", ["'a'", "'B'"], ['s'], true],
      ['k_ci', 's VARCHAR(10) PRIMARY KEY', ["'a'", "'B'"], ['s'], false],
      ['k_nopad', "s VARCHAR(10) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin PRIMARY KEY", ["'a'", "'a '"], ['s'], false],
      ['k_latin1', "s VARCHAR(10) CHARACTER SET latin1 COLLATE latin1_bin PRIMARY KEY", ["'a'", "'é'"], ['s'], false],
      ['k_decimal', 'd DECIMAL(10,2) PRIMARY KEY', ['1.5', '-1.5'], ['d'], false],
      ['k_double', 'd DOUBLE PRIMARY KEY', ['1.5', '-1.5'], ['d'], false],
      ['k_time', 't TIME PRIMARY KEY', ["'-01:00:00'", "'100:00:00'"], ['t'], false],
      ['k_enum', "e ENUM('b', 'a') PRIMARY KEY", ["'a'", "'b'"], ['e'], false],
      ['k_inet6', 'i INET6 PRIMARY KEY', ["'::1'", "'1::'"], ['i'], false],
      ['k_mixed', 'a INT NOT NULL, s VARCHAR(5) NOT NULL, PRIMARY KEY (a, s)', ["1, 'a'", "1, 'B'"], ['a', 's'], false],
    ];
    for (const [table, columns, values, key, orderable] of cases) {
      const { shape } = await readBoth(table, columns, values);
      assert.deepEqual(shape.key?.map((i) => shape.columns[i].name), key, `${table}: the key`);
      assert.equal(shape.orderable, orderable, `${table}: orderable`);
    }
  });

  it('compareKeys orders as the server\'s ORDER BY (negative, beyond 2^53, bytes, PAD SPACE, characters above U+FFFF)', async () => {
    const cases: [table: string, columns: string, values: string[]][] = [
      ['o_int', 'k INT PRIMARY KEY', ['-2147483648', '-5', '-1', '0', '1', '10', '9', '2147483647', '-10']],
      ['o_bigint', 'k BIGINT UNSIGNED PRIMARY KEY', ['18446744073709551615', '9007199254740993', '9007199254740992', '9007199254740994', '0', '1', '9223372036854775808', '9223372036854775807']],
      ['o_bigint_signed', 'k BIGINT PRIMARY KEY', ['-9223372036854775808', '-9007199254740993', '-9007199254740992', '9007199254740993', '9007199254740992', '-1', '0']],
      ['o_composite', 'a INT NOT NULL, b VARBINARY(8) NOT NULL, PRIMARY KEY (a, b)', ['-5, 0xff', '-5, 0x00ff', '-5, 0x00', "-5, ''", '3, 0x01', '-100, 0x7f', '-5, 0x0000', '3, 0x80']],
      ['o_binary', 'b BINARY(4) PRIMARY KEY', ['0x00000001', '0x01000000', '0xff', '0x7f', '0x80', '0x0000ff', '0xffffffff', "''"]],
      ['o_datetime', 'd DATETIME(3) NOT NULL, t TIMESTAMP NOT NULL DEFAULT 0, PRIMARY KEY (d, t)', ["'2024-01-01 00:00:00.001', '2000-01-01 00:00:00'", "'2024-01-01 00:00:00', '2000-01-01 00:00:00'", "'0000-00-00 00:00:00', '1970-01-01 00:00:01'", "'9999-12-31 23:59:59.999', '2038-01-19 03:14:07'", "'2024-01-01 00:00:00', '1999-12-31 23:59:59'"]],
      [
        'o_text',
        'k VARCHAR(10) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin PRIMARY KEY',
        ["'a'", "'a\\t'", "'a  \\t'", "'a\\0'", "'ab'", "'b '", "'b!'", "'b\\t'", "'\u{E000}'", "'\u{FFFD}'", "'😀'", "'𝄞'", "''", "' x'", "'ÿ'", "'Z'", "'z'", "'a😀'", "'a\u{FFFF}'"],
      ],
      ['o_char', 'k CHAR(6) CHARACTER SET utf8mb3 COLLATE utf8mb3_bin NOT NULL, n INT NOT NULL, PRIMARY KEY (k, n)', ["'a', 2", "'a\\t', 1", "'a b', 1", "'', 5", "'\u{FFFD}', 1", "'\u{E000}', 1", "'A', 1", "'a', 1"]],
      ['o_ascii', 'k VARCHAR(6) CHARACTER SET ascii COLLATE ascii_bin PRIMARY KEY', ["'a'", "'a\\t'", "'A'", "'~'", "' '", "'a\\0'"]],
    ];
    for (const [table, columns, values] of cases) {
      await writer.query(`CREATE TABLE ${db}.${table} (${columns})`);
      await writer.query(`INSERT INTO ${db}.${table} VALUES ${values.map((v) => `(${v})`).join(', ')}`);
      const shape = await readTableShape(reader, db, table);
      assert.ok(shape.key !== undefined && shape.orderable, `${table}: an orderable key`);
      const keyColumns = shape.key.map((i) => `\`${shape.columns[i].name}\``).join(', ');
      const server = (await select(shape, ` ORDER BY ${keyColumns}`)).map((r) => shape.key!.map((i) => r[i]));
      assert.equal(server.length, values.length);
      // sort a reversed and a shuffled copy: a comparator that returns 0 or the input order cannot pass
      const reversed = [...server].reverse().sort(compareKeys);
      assert.deepEqual(reversed, server, `${table}: compareKeys orders as the server: ${text(reversed)} vs ${text(server)}`);
      const shuffled = [...server].sort((a, b) => (text(a).length * 7919 + text(a).charCodeAt(2)) % 13 - (text(b).length * 7919 + text(b).charCodeAt(2)) % 13).sort(compareKeys);
      assert.deepEqual(shuffled, server, `${table}: compareKeys orders as the server (shuffled)`);
      for (let i = 1; i < server.length; i++) {
        assert.ok(compareKeys(server[i - 1], server[i]) < 0 && compareKeys(server[i], server[i - 1]) > 0, `${table}: ${text(server[i - 1])} < ${text(server[i])}`);
        assert.equal(compareKeys(server[i], server[i]), 0);
      }
    }
    // the traps are real: JS's own comparison orders these strings otherwise than the server (PAD SPACE, surrogates)
    const shape = await readTableShape(reader, db, 'o_text');
    const server = (await select(shape, ' ORDER BY `k`')).map((r) => r[0] as string);
    assert.notDeepEqual([...server].sort(), server, 'JS string order differs from utf8mb4_bin');
    assert.ok(server.indexOf('a\t') < server.indexOf('a'), 'PAD SPACE: a TAB sorts below the padding');
    assert.ok(server.indexOf('\u{FFFD}') < server.indexOf('😀'), 'by code point, not UTF-16 unit');
  });

  it('compareKeys: NULL first, equal tuples 0', () => {
    assert.equal(compareKeys([1, null], [1, null]), 0);
    assert.ok(compareKeys([null], [0]) < 0 && compareKeys([0], [null]) > 0);
    assert.ok(compareKeys([1n, 'a'], [1n, 'b']) < 0);
    assert.equal(compareKeys(['a '], ['a']), 0, 'PAD SPACE: trailing spaces are not significant');
    assert.equal(compareKeys([Buffer.from('ab')], [Buffer.from('ab')]), 0);
  });

  it('a table that does not exist is an error naming it', async () => {
    await assert.rejects(readTableShape(reader, db, 'no_such_table'), (error: Error & { code?: string }) => {
      assert.equal(error.name, 'TidemarkError');
      assert.equal(error.code, 'ErrSnapshotFailed');
      assert.match(error.message, new RegExp(`${db}\\.no_such_table`));
      return true;
    });
  });

  it('refuses a connection that would not read rows as the binlog gives them', async () => {
    await writer.query(`CREATE TABLE ${db}.conn_check (id INT PRIMARY KEY)`);
    const plain = await mysql.createConnection({ uri: mysqlUri('upstream') });
    try {
      await assert.rejects(readTableShape(plain, db, 'conn_check'), /jsonStrings.*time_zone/s);
      const set = await mysql.createConnection({ uri: mysqlUri('upstream'), ...CONNECTION_OPTIONS });
      try {
        await set.query("SET SESSION time_zone = '+00:00', SESSION sql_mode = 'PAD_CHAR_TO_FULL_LENGTH'");
        await assert.rejects(readTableShape(set, db, 'conn_check'), /PAD_CHAR_TO_FULL_LENGTH/);
        await set.query("SET SESSION sql_mode = ''");
        assert.deepEqual((await readTableShape(set, db, 'conn_check')).key, [0]);
      } finally {
        await set.end();
      }
    } finally {
      await plain.end();
    }
  });
});
