import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { columnsOf, mountRow, mysqlTypeOf } from '../../../src/core/pipeline/mounter/index.js';
import { ColumnType, type TableMap } from '../../../src/core/upstream/events.js';

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
    ['utf8mb4 varchar', [ColumnType.VARCHAR, 1200, false, 45], 'varchar'],
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
});
