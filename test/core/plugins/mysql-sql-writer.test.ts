import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SqlWriter } from '../../../plugins/sink-mysql/src/sql-writer.js';
import { insertValues, literal, renderInserts } from '../../../plugins/sink-mysql/src/sql.js';
import type { ColumnInfo, ColumnValue, RowChangedEvent, TableName } from '../../../src/core/sink/api.js';

/** A deterministic generator (the same values every run). */
function random(seed: number): () => number {
  return () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
}

/** A statement's text as the downstream gets it: mysql2 sends UTF-8, where a lone surrogate is U+FFFD. */
const sent = (sql: string): string => Buffer.from(sql).toString();

describe('mysql sink: SQL written as bytes', () => {
  it('writes every value as literal() does, byte for byte as sent: integers, bigints, floats, escaped and non-ASCII text, binary, NULL', () => {
    const values: ColumnValue[] = [null, 0, -0, 1, -1, 9, 10, 99, 100, 2147483647, 2147483648, -2147483649, 2 ** 53 - 1, -(2 ** 53 - 1), 2 ** 53, 1.5, -0.25, 1e21, 1e-7, NaN, Infinity, -Infinity];
    values.push(0n, -5n, 2n ** 53n - 1n, 2n ** 53n, -(2n ** 53n), -(2n ** 63n), 18446744073709551615n, true, false);
    values.push('', 'abc', "it's", 'a\\b', 'q"q', 'nl\n', '\0\b\t\r\x1a', '\x01\x1f\x7f', 'héllo', '日本語', '😀', "mixé'd\\", '\ud800 lone');
    values.push(Buffer.from([0, 1, 255, 16, 39, 92]), Buffer.alloc(0));
    const next = random(17);
    for (let i = 0; i < 5_000; i++) {
      const chars = Array.from({ length: Math.floor(next() * 14) }, () => (next() < 0.8 ? 32 + Math.floor(next() * 95) : next() < 0.5 ? Math.floor(next() * 32) : 0x80 + Math.floor(next() * 0xd000)));
      values.push(String.fromCharCode(...chars), Math.floor((next() - 0.5) * 2 ** 54), BigInt(Math.floor(next() * 2 ** 50)) * 100_003n, (next() - 0.5) * 1e6);
    }
    const writer = new SqlWriter();
    for (const value of values) {
      writer.literal(value);
      assert.equal(sent(writer.take()), sent(literal(value)), `${typeof value} ${String(value)}`);
    }
    // one string for a whole list, ASCII or not
    writer.tuple(values.slice(0, 60));
    writer.comma();
    writer.text('`tëst`');
    assert.equal(sent(writer.take()), sent(`(${values.slice(0, 60).map(literal).join(', ')}), \`tëst\``));
  });

  it('begin drops what a write cut short left', () => {
    const writer = new SqlWriter();
    assert.throws(() => writer.tuple(null as unknown as ColumnValue[]));
    writer.begin().text('x');
    assert.equal(writer.take(), 'x');
  });

  it('writes a row image\'s key in the key\'s order', () => {
    const writer = new SqlWriter();
    writer.key([1, 'a', "b'"], [2, 0]);
    assert.equal(writer.take(), "('b\\'', 1)");
  });

  it('grows for a big value and starts small again after it', () => {
    const writer = new SqlWriter();
    const big = Buffer.alloc(3 << 20, 0xab);
    writer.literal(big);
    assert.equal(writer.take(), `X'${big.toString('hex')}'`);
    writer.literal('after');
    assert.equal(writer.take(), "'after'");
  });

  const columns: ColumnInfo[] = [
    { name: 'id', mysqlType: 'int', primaryKey: true, nullable: false },
    { name: 's', mysqlType: 'varchar(20)', primaryKey: false, nullable: true },
  ];
  const table: TableName = { schema: 'db', table: 't', tableId: 1 };
  const insert = (id: number, s: string | null, commitTs = 5n): RowChangedEvent => ({ table, commitTs, commitTime: 0, seq: id, kind: 'insert', columns, before: null, after: [id, s] });

  it('value lists stop at a row of another kind, and hold one row without batching', () => {
    const rows = [insert(1, 'a'), insert(2, "b'"), { ...insert(3, 'c'), kind: 'delete' as const, before: [3, 'c'], after: null }, insert(4, null)];
    assert.deepEqual(insertValues(rows, 0, true), { values: "(1, 'a'), (2, 'b\\'')", end: 2 });
    assert.deepEqual(insertValues(rows, 0, false), { values: "(1, 'a')", end: 1 });
    assert.deepEqual(insertValues(rows, 3, true), { values: '(4, NULL)', end: 4 });
  });

  it('a transaction of inserts is rendered in lists of about a megabyte; one with another kind of row is not', () => {
    const rows = Array.from({ length: 40_000 }, (_, i) => insert(i, 'x'.repeat(40), i < 20_000 ? 7n : 8n));
    const rendered = renderInserts(rows);
    assert.ok(rendered !== undefined);
    assert.equal(rendered.rows, 40_000);
    assert.equal(rendered.firstCommitTs, 7n);
    assert.equal(rendered.lastCommitTs, 8n);
    assert.ok(rendered.values.length >= 2, `${rendered.values.length} lists`);
    for (const list of rendered.values) assert.ok(list.length < (1 << 20) + 100, `a list of ${list.length} characters`);
    assert.equal(rendered.values.join(', '), rows.map((r) => `(${r.after!.map(literal).join(', ')})`).join(', '));
    assert.equal(rendered.bytes, rendered.values.reduce((n, v) => n + v.length, 0));
    assert.equal(renderInserts([insert(1, 'a'), { ...insert(2, 'b'), kind: 'update', before: [2, 'a'] }]), undefined);
  });
});
