import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { charsetMaxLength, columnsOf, inet4Text, inet6Text, mountRow, mysqlTypeOf, uuidText } from '../../../src/core/pipeline/mounter/index.js';
import { ColumnType, decodeTableMap, hasFixedBinaryCandidates, withDataTypes, type TableMap } from '../../../src/core/upstream/events.js';
import { EventType } from '../../../src/core/upstream/binlog-reader.js';
import { locateRows } from '../../../src/core/upstream/rows.js';
import { rowOf } from '../../../src/core/pipeline/row-codec.js';

function tableMap(columns: [type: number, meta: number, unsigned?: boolean, charset?: number][], extra: Partial<TableMap> = {}): TableMap {
  return {
    tableId: 1n, schema: 's', table: 't', columnCount: columns.length,
    types: Uint8Array.from(columns.map((c) => c[0])), meta: Uint16Array.from(columns.map((c) => c[1])),
    nullable: columns.map(() => true), names: columns.map((_, i) => `c${i}`), unsigned: columns.map((c) => c[2] === true),
    primaryKey: [0], enumValues: new Map(), setValues: new Map(),
    charsets: new Map(columns.flatMap((c, i) => (c[3] === undefined ? [] : [[i, c[3]] as const]))),
    ...extra,
  };
}

describe('mounter: MySQL types from the TABLE_MAP', () => {
  const cases: [string, [number, number, boolean?, number?], string][] = [
    ['signed int', [ColumnType.LONG, 0], 'int'],
    ['bigint unsigned', [ColumnType.LONGLONG, 0, true], 'bigint unsigned'],
    ['decimal(65,30)', [ColumnType.NEWDECIMAL, (65 << 8) | 30], 'decimal(65,30)'],
    ['time(3)', [ColumnType.TIME2, 3], 'time(3)'],
    ['datetime without fsp', [ColumnType.DATETIME2, 0], 'datetime'],
    ['timestamp(6)', [ColumnType.TIMESTAMP2, 6], 'timestamp(6)'],
    ['bit(9)', [ColumnType.BIT, (1 << 8) | 1], 'bit(9)'],
    ['varbinary(20)', [ColumnType.VARCHAR, 20, false, 63], 'varbinary(20)'],
    // CHAR/VARCHAR lengths: the binlog has bytes (characters × the charset's most bytes per character)
    ['varchar(300) utf8mb4 (1200 bytes)', [ColumnType.VARCHAR, 1200, false, 45], 'varchar(300)'],
    ['varchar(40) utf8mb4_uca1400_ai_ci (id 2304)', [ColumnType.VARCHAR, 160, false, 2304], 'varchar(40)'],
    ['varchar(40) utf8mb3', [ColumnType.VARCHAR, 120, false, 33], 'varchar(40)'],
    ['varchar(300) latin1 (2-byte length)', [ColumnType.VARCHAR, 300, false, 8], 'varchar(300)'],
    ['varchar(5) utf16', [ColumnType.VARCHAR, 20, false, 54], 'varchar(5)'],
    ['varchar(7) utf8mb4_nopad_bin (id 1070)', [ColumnType.VARCHAR, 28, false, 1070], 'varchar(7)'],
    ['char(10) utf8mb4', [ColumnType.STRING, (ColumnType.STRING << 8) | 40, false, 45], 'char(10)'],
    ['char(3) ucs2', [ColumnType.STRING, (ColumnType.STRING << 8) | 6, false, 35], 'char(3)'],
    ['char(2) latin1', [ColumnType.STRING, (ColumnType.STRING << 8) | 2, false, 8], 'char(2)'],
    // 1020 bytes: the length's high bits travel in the real-type byte (0xce instead of 0xfe), as MariaDB sent it
    ['char(255) utf8mb4', [ColumnType.STRING, 0xcefc, false, 45], 'char(255)'],
    ['binary(4)', [ColumnType.STRING, (ColumnType.STRING << 8) | 4, false, 63], 'binary(4)'],
    ['binary(16) without a definition', [ColumnType.STRING, (ColumnType.STRING << 8) | 16, false, 63], 'binary(16)'],
    ['decimal(5,2) unsigned', [ColumnType.NEWDECIMAL, (5 << 8) | 2, true], 'decimal(5,2) unsigned'],
    ['float unsigned', [ColumnType.FLOAT, 4, true], 'float unsigned'],
    ['tinyint unsigned (no display width)', [ColumnType.TINY, 0, true], 'tinyint unsigned'],
    ['year (no display width; the binlog flags it unsigned)', [ColumnType.YEAR, 0, true], 'year'],
    ['time(0) is time', [ColumnType.TIME2, 0], 'time'],
    ['bit(8)', [ColumnType.BIT, 1 << 8], 'bit(8)'],
    ['tinytext', [ColumnType.BLOB, 1, false, 45], 'tinytext'],
    ['mediumtext latin1', [ColumnType.BLOB, 3, false, 8], 'mediumtext'],
    ['longblob', [ColumnType.BLOB, 4, false, 63], 'longblob'],
    ['geometry without a subtype', [ColumnType.GEOMETRY, 4], 'geometry'],
    ['longtext (MariaDB JSON)', [ColumnType.BLOB, 4, false, 45], 'longtext'],
    ['blob', [ColumnType.BLOB, 2, false, 63], 'blob'],
    ['MySQL json', [ColumnType.JSON, 4], 'json'],
  ];
  for (const [name, column, type] of cases) {
    it(name, () => assert.equal(mysqlTypeOf(tableMap([column]), 0), type));
  }
  it('ENUM and SET carry their values', () => {
    const map = tableMap([[ColumnType.STRING, (ColumnType.ENUM << 8) | 1], [ColumnType.STRING, (ColumnType.SET << 8) | 1]], {
      enumValues: new Map([[0, ['a', "it's"]]]),
      setValues: new Map([[1, ['x', 'y']]]),
    });
    assert.deepEqual([mysqlTypeOf(map, 0), mysqlTypeOf(map, 1)], ["enum('a','it''s')", "set('x','y')"]);
  });
  it('ENUM members quoted as COLUMN_TYPE writes them: backslash escaped, quote doubled', () => {
    // MariaDB: ENUM('a\\b', 'it''s', 'q"') → COLUMN_TYPE enum('a\\b','it''s','q"')
    const map = tableMap([[ColumnType.STRING, (ColumnType.ENUM << 8) | 1]], { enumValues: new Map([[0, ['a\\b', "it's", 'q"']]]) });
    assert.equal(mysqlTypeOf(map, 0), "enum('a\\\\b','it''s','q\"')");
  });
  it('UUID, INET6, INET4 by the definition (dataTypes)', () => {
    const map = tableMap([[ColumnType.STRING, (ColumnType.STRING << 8) | 16, false, 63], [ColumnType.STRING, (ColumnType.STRING << 8) | 16, false, 63], [ColumnType.STRING, (ColumnType.STRING << 8) | 4, false, 63]], {
      dataTypes: new Map([[0, 'uuid'], [1, 'inet6'], [2, 'inet4']]),
    });
    assert.deepEqual(columnsOf(map).map((c) => c.mysqlType), ['uuid', 'inet6', 'inet4']);
  });
});

describe('charsetMaxLength: bytes per character by collation id (checked against all 1242 collations of MariaDB 10.11)', () => {
  // a sample of information_schema.COLLATION_CHARACTER_SET_APPLICABILITY ⋈ CHARACTER_SETS.MAXLEN on the upstream
  const cases: [id: number, name: string, maxLength: number][] = [
    [8, 'latin1_swedish_ci', 1], [11, 'ascii_general_ci', 1], [63, 'binary', 1], [1, 'big5_chinese_ci', 2], [12, 'ujis_japanese_ci', 3],
    [33, 'utf8mb3_general_ci', 3], [35, 'ucs2_general_ci', 2], [45, 'utf8mb4_general_ci', 4], [46, 'utf8mb4_bin', 4], [54, 'utf16_general_ci', 4],
    [56, 'utf16le_general_ci', 4], [60, 'utf32_general_ci', 4], [83, 'utf8mb3_bin', 3], [95, 'cp932_japanese_ci', 2], [97, 'eucjpms_japanese_ci', 3],
    [128, 'ucs2_unicode_ci', 2], [192, 'utf8mb3_unicode_ci', 3], [224, 'utf8mb4_unicode_ci', 4], [246, 'utf8mb4_unicode_520_ci', 4],
    [576, 'utf8mb3_croatian_ci', 3], [608, 'utf8mb4_croatian_ci', 4], [1032, 'latin1_swedish_nopad_ci', 1], [1057, 'utf8mb3_general_nopad_ci', 3],
    [1069, 'utf8mb4_general_nopad_ci', 4], [1070, 'utf8mb4_nopad_bin', 4], [1248, 'utf8mb4_unicode_nopad_ci', 4], [2048, 'utf8mb3_uca1400_ai_ci', 3],
    [2304, 'utf8mb4_uca1400_ai_ci', 4], [2560, 'ucs2_uca1400_ai_ci', 2], [2816, 'utf16_uca1400_ai_ci', 4], [3072, 'utf32_uca1400_ai_ci', 4],
    [255, 'MySQL 8 utf8mb4_0900_ai_ci', 4], [5, 'latin1_german1_ci', 1], [48, 'latin1_general_ci', 1], [57, 'cp1256_general_ci', 1],
  ];
  for (const [id, name, maxLength] of cases) it(`${id} ${name}: ${maxLength}`, () => assert.equal(charsetMaxLength(id), maxLength));
  it('an unknown or missing collation counts bytes (1)', () => assert.deepEqual([charsetMaxLength(undefined), charsetMaxLength(999)], [1, 1]));
});

/** A TABLE_MAP event body as the server writes it (table id 5, schema s, table t), with optional metadata TLVs. */
function tableMapBody(types: number[], meta: number[], optional: [kind: number, value: number[]][]): Buffer {
  const parts: number[] = [5, 0, 0, 0, 0, 0, 0, 0, 1, 0x73, 0, 1, 0x74, 0, types.length, ...types, meta.length, ...meta];
  parts.push(...Array.from({ length: (types.length + 7) >> 3 }, () => 0xff));
  for (const [kind, value] of optional) parts.push(kind, value.length, ...value);
  return Buffer.from(parts);
}

describe('TABLE_MAP: the charset metadata lists GEOMETRY columns on MariaDB, not on MySQL', () => {
  // id INT, g GEOMETRY, t TEXT utf8mb4 (BLOB, 2 length bytes)
  const types = [ColumnType.LONG, ColumnType.GEOMETRY, ColumnType.BLOB];
  it('MariaDB: COLUMN_CHARSET has one entry per GEOMETRY and string column, so the TEXT after a GEOMETRY keeps its charset', () => {
    const map = decodeTableMap(tableMapBody(types, [4, 2], [[3, [63, 45]]]));
    assert.equal(map.charsets.get(2), 45);
    assert.equal(columnsOf(map)[2].mysqlType, 'text');
    // and DEFAULT_CHARSET's (index, charset) pairs count the GEOMETRY column too: default 45, column 0 of them binary
    const withDefault = decodeTableMap(tableMapBody(types, [4, 2], [[2, [45, 0, 63]]]));
    assert.deepEqual([withDefault.charsets.get(1), withDefault.charsets.get(2)], [63, 45]);
  });
  it('MySQL: the same metadata without the GEOMETRY entry', () => {
    const map = decodeTableMap(tableMapBody(types, [4, 2], [[3, [45]]]), { mariadb: false });
    assert.equal(map.charsets.get(2), 45);
    assert.equal(map.charsets.get(1), undefined);
  });
});

describe('TABLE_MAP: geometry subtypes and MariaDB\'s UUID/INET6/INET4', () => {
  it('GEOMETRY_TYPE (optional metadata 7) gives point/geometry/linestring, as MariaDB sends it for (POINT, GEOMETRY, LINESTRING)', () => {
    const map = decodeTableMap(tableMapBody([ColumnType.LONG, ColumnType.GEOMETRY, ColumnType.GEOMETRY, ColumnType.GEOMETRY], [4, 4, 4], [[7, [1, 0, 2]]]));
    assert.deepEqual([...map.geometryTypes!], [[1, 1], [2, 0], [3, 2]]);
    assert.deepEqual(columnsOf(map).map((c) => c.mysqlType), ['int', 'point', 'geometry', 'linestring']);
  });
  it('the binlog shows UUID/INET6 as BINARY(16), INET4 as BINARY(4): only the definition tells them apart', () => {
    // id INT, u UUID, ip INET6, ip4 INET4, b16 BINARY(16), c16 CHAR(4) utf8mb4 (16 bytes), as MariaDB 10.11 sent them
    const body = tableMapBody(
      [ColumnType.LONG, ColumnType.STRING, ColumnType.STRING, ColumnType.STRING, ColumnType.STRING, ColumnType.STRING],
      [0xfe, 0x10, 0xfe, 0x10, 0xfe, 0x04, 0xfe, 0x10, 0xfe, 0x10],
      [[3, [63, 63, 63, 63, 45]], [4, [2, 0x69, 0x64, 1, 0x75, 2, 0x69, 0x70, 3, 0x69, 0x70, 0x34, 3, 0x62, 0x31, 0x36, 3, 0x63, 0x31, 0x36]]],
    );
    const map = decodeTableMap(body);
    assert.equal(map.dataTypes, undefined);
    assert.deepEqual(columnsOf(map).map((c) => c.mysqlType), ['int', 'binary(16)', 'binary(16)', 'binary(4)', 'binary(16)', 'char(4)']);
    assert.equal(hasFixedBinaryCandidates(map), true);
    const definition = [['id', 'int'], ['u', 'uuid'], ['ip', 'inet6'], ['ip4', 'inet4'], ['b16', 'binary'], ['c16', 'char']].map(([name, dataType]) => ({ name, dataType }));
    const typed = withDataTypes(map, definition);
    assert.deepEqual([...typed.dataTypes!], [[1, 'uuid'], [2, 'inet6'], [3, 'inet4']]);
    assert.deepEqual(columnsOf(typed).map((c) => c.mysqlType), ['int', 'uuid', 'inet6', 'inet4', 'binary(16)', 'char(4)']);
    // a definition that does not match the binlog (another column by that name, another length, another count) is not used
    assert.equal(withDataTypes(map, definition.map((c) => (c.name === 'u' ? { ...c, name: 'v' } : c))).dataTypes?.has(1), false);
    assert.equal(withDataTypes(map, definition.map((c) => (c.name === 'ip4' ? { ...c, dataType: 'inet6' } : c))).dataTypes?.has(3), false);
    assert.equal(withDataTypes(map, definition.slice(1)), map);
    assert.equal(withDataTypes(map, undefined), map);
    assert.equal(hasFixedBinaryCandidates(decodeTableMap(tableMapBody([ColumnType.LONG, ColumnType.STRING], [0xfe, 0x10], [[3, [45]]]))), false, 'CHAR(4) utf8mb4 is 16 bytes but not binary');
  });
});

describe('MariaDB UUID/INET6/INET4 text', () => {
  it('UUID and INET4 as MariaDB prints them', () => {
    assert.equal(uuidText(Buffer.from('123e4567e89b12d3a456426614174000', 'hex')), '123e4567-e89b-12d3-a456-426614174000');
    assert.equal(uuidText(Buffer.alloc(16, 0xff)), 'ffffffff-ffff-ffff-ffff-ffffffffffff');
    assert.deepEqual([inet4Text(Buffer.from([10, 0, 0, 1])), inet4Text(Buffer.alloc(4)), inet4Text(Buffer.alloc(4, 255))], ['10.0.0.1', '0.0.0.0', '255.255.255.255']);
  });
  // MariaDB 10.11: SELECT CAST(CAST(X'…' AS BINARY(16)) AS INET6) (3,010 addresses compared, these among them)
  const inet6: [hex: string, text: string][] = [
    ['20010db8000000000000ff0000428329', '2001:db8::ff00:42:8329'],
    ['00000000000000000000000000000000', '::'],
    ['00000000000000000000000000000001', '::1'],
    ['00000000000000000000ffff0a000001', '::ffff:10.0.0.1'],
    ['00000000000000000000000001020304', '::1.2.3.4'],
    ['0000000000000000000000000000ffff', '::ffff'],
    ['0000000000000000000000010000ffff', '::1:0:ffff'],
    ['00000000000000000000ffff00000000', '::ffff:0.0.0.0'],
    ['00010000000200000003000000040000', '1::2:0:3:0:4:0'],
    ['20010db8000000000001000000000001', '2001:db8::1:0:0:1'],
    ['fe800000000000000000000000000001', 'fe80::1'],
    ['00010002000300040005000600070008', '1:2:3:4:5:6:7:8'],
    ['00010002000300040005000600070000', '1:2:3:4:5:6:7::'],
    ['000100000000000000000abc00100000', '1::abc:10:0'],
  ];
  for (const [hex, text] of inet6) it(`INET6 ${text}`, () => assert.equal(inet6Text(Buffer.from(hex, 'hex')), text));
});

describe('mounter: typed rows', () => {
  it('mounts a raw update with both images, names, primary key and the commit ts; columns are shared per table', () => {
    const map = tableMap([[ColumnType.LONG, 0], [ColumnType.LONGLONG, 0, true]]);
    const table = { schema: 's', table: 't', tableId: 7 };
    const row = mountRow({ table: map, change: 'update', before: [1, 18446744073709551615n], after: [1, 0n], seq: 3 }, table, (42n << 32n) | 1234n, 1_700_000_000_000);
    assert.deepEqual(row, {
      table, commitTs: 180388627666n, commitTime: 1_700_000_000_000, seq: 3, kind: 'update',
      columns: [
        { name: 'c0', mysqlType: 'int', primaryKey: true, nullable: true },
        { name: 'c1', mysqlType: 'bigint unsigned', primaryKey: false, nullable: true },
      ],
      before: [1, 18446744073709551615n], after: [1, 0n],
    });
    assert.equal(columnsOf(map), row.columns);
  });
  it('UUID/INET6/INET4 values become their text; the raw images are left as they were', () => {
    const map = tableMap([[ColumnType.LONG, 0], [ColumnType.STRING, (ColumnType.STRING << 8) | 16, false, 63], [ColumnType.STRING, (ColumnType.STRING << 8) | 16, false, 63], [ColumnType.STRING, (ColumnType.STRING << 8) | 4, false, 63], [ColumnType.STRING, (ColumnType.STRING << 8) | 16, false, 63]], {
      dataTypes: new Map([[1, 'uuid'], [2, 'inet6'], [3, 'inet4']]),
    });
    const bytes = [1, Buffer.from('123e4567e89b12d3a456426614174000', 'hex'), Buffer.from('20010db8000000000000ff0000428329', 'hex'), Buffer.from([10, 0, 0, 1]), Buffer.alloc(16, 1)];
    const raw = { table: map, change: 'update' as const, before: [...bytes], after: [2, null, null, null, null], seq: 0 };
    const row = mountRow(raw, { schema: 's', table: 't', tableId: 1 }, 1n, 0);
    assert.deepEqual(row.before, [1, '123e4567-e89b-12d3-a456-426614174000', '2001:db8::ff00:42:8329', '10.0.0.1', Buffer.alloc(16, 1)], 'a BINARY(16) column stays bytes');
    assert.deepEqual(row.after, [2, null, null, null, null]);
    assert.deepEqual(raw.before, bytes);
  });
  it('names columns @1, @2 when the binlog has no row metadata', () => {
    const map = tableMap([[ColumnType.LONG, 0], [ColumnType.LONG, 0]], { names: undefined });
    assert.deepEqual(columnsOf(map).map((c) => c.name), ['@1', '@2']);
  });
});

describe('Mounter: a sorted row change becomes the sink\'s RowChangedEvent', () => {
  it('decodes with the TABLE_MAP the row was read with (not the newest), through a spill round trip too', async () => {
    const { Mounter } = await import('../../../src/core/pipeline/mounter/index.js');
    const { SORTED_ROW_CODEC } = await import('../../../src/core/pipeline/row-codec.js');
    const { sortedRow, testTableMap } = await import('../../helpers/binlog-rows.js');
    const mounter = new Mounter();
    const before = testTableMap('t', ['int', 'bigint']);
    const after = testTableMap('t', ['int', 'bigint', 'text']);
    const v1 = mounter.versionOf(before);
    const v2 = mounter.versionOf(after);
    assert.deepEqual([v1, v2, mounter.versionOf(before)], [1, 2, 1], 'one version per TABLE_MAP, stable');
    const table = { schema: 's', table: 't', tableId: 3 };
    const values = [7, -9007199254740993n];
    const row = sortedRow(before, 'insert', null, values, v1, 1_700_000_000_123);
    const event = mounter.mount(table, 99n, 4, row);
    assert.deepEqual(event, { table, commitTs: 99n, commitTime: 1_700_000_000_123, seq: 4, kind: 'insert', columns: columnsOf(before), before: null, after: values });
    const newer = mounter.mount(table, 100n, 0, sortedRow(after, 'update', [7, 1n, 'a'], [7, 2n, 'b'], v2));
    assert.deepEqual([newer.columns.length, newer.before, newer.after], [3, [7, 1n, 'a'], [7, 2n, 'b']]);
    // spilled and read back: the same event
    const back = SORTED_ROW_CODEC.decode(Buffer.from(SORTED_ROW_CODEC.encode(row)));
    assert.deepEqual(mounter.mount(table, 99n, 4, back), event);
    assert.throws(() => mounter.mount(table, 99n, 5, sortedRow(before, 'insert', null, values, 9)), /no TABLE_MAP version 9/);
  });
  it('renders UUID/INET6/INET4 from the binlog bytes (trailing zeros dropped by the server) as text', async () => {
    const { Mounter } = await import('../../../src/core/pipeline/mounter/index.js');
    // id INT, u UUID, ip INET6, ip4 INET4, b BINARY(4); the binlog drops the trailing 0x00 of BINARY(n) values
    const map = withDataTypes(
      tableMap([[ColumnType.LONG, 0], [ColumnType.STRING, 0xfe10, false, 63], [ColumnType.STRING, 0xfe10, false, 63], [ColumnType.STRING, 0xfe04, false, 63], [ColumnType.STRING, 0xfe04, false, 63]]),
      [['id', 'int'], ['u', 'uuid'], ['ip', 'inet6'], ['ip4', 'inet4'], ['b', 'binary']].map(([name, dataType]) => ({ name, dataType })),
    );
    const named = { ...map, names: ['id', 'u', 'ip', 'ip4', 'b'] };
    const typed = withDataTypes(named, [['id', 'int'], ['u', 'uuid'], ['ip', 'inet6'], ['ip4', 'inet4'], ['b', 'binary']].map(([name, dataType]) => ({ name, dataType })));
    assert.equal(map.dataTypes, undefined, 'names c0… are not the definition\'s');
    const value = (hex: string): number[] => [hex.length / 2, ...Buffer.from(hex, 'hex')];
    const image = [0x00, 7, 0, 0, 0, ...value('123e4567e89b12d3a4564266141740'), ...value('20010db8000000000000ff0000428329'), ...value(''), ...value('0a')];
    const body = Buffer.from([1, 0, 0, 0, 0, 0, 0, 0, 5, 0x1f, ...image]);
    const mounter = new Mounter();
    const row = rowOf(locateRows(EventType.WRITE_ROWS_V1, body, new Map([[1n, typed]])), 0, mounter.versionOf(typed));
    const event = mounter.mount({ schema: 's', table: 't', tableId: 1 }, 1n, 0, row);
    assert.deepEqual(event.after, [7, '123e4567-e89b-12d3-a456-426614174000', '2001:db8::ff00:42:8329', '0.0.0.0', Buffer.from([10, 0, 0, 0])]);
    assert.deepEqual(event.columns.map((c) => c.mysqlType), ['int', 'uuid', 'inet6', 'inet4', 'binary(4)']);
  });
});
