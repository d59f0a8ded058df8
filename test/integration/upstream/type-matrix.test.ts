import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import type { RowsEvent, Value } from '../../../src/core/upstream/rows.js';
import { roundTrip } from '../../helpers/binlog.js';
import { typeFamilies } from '../../helpers/type-matrix.js';
import { mysqlUri, requireService, uniqueName } from '../../helpers/services.js';

async function roundTripRows(conn: mysql.Connection, table: string, sql: string[]): Promise<RowsEvent[]> {
  return (await roundTrip(conn, sql, table)).events;
}

/** A row as text that keeps bigint and Buffer distinct from number and string. */
function key(row: readonly Value[] | null): string {
  return JSON.stringify(row, function (this: unknown, k: string, v: unknown) {
    const raw = (this as Record<string, unknown>)[k];
    if (typeof raw === 'bigint') return `${raw}n`;
    if (Buffer.isBuffer(raw)) return `0x${raw.toString('hex')}`;
    return v;
  });
}

const families = typeFamilies;

describe('type matrix on the real upstream MariaDB: insert, update, delete, NULL in every column', () => {
  const db = uniqueName('tm_matrix');
  let conn: mysql.Connection;

  before(async () => {
    await requireService('upstream');
    conn = await mysql.createConnection({ uri: mysqlUri('upstream'), multipleStatements: true, timezone: 'Z' });
    await conn.query("SET time_zone = '+00:00', sql_mode = ''");
    await conn.query(`CREATE DATABASE ${db}`);
  });
  after(async () => {
    await conn.query(`DROP DATABASE IF EXISTS ${db}`);
    await conn.end();
  });

  families.forEach((family, f) => {
    it(family.name, async () => {
      const table = `${db}.f${f}`;
      await conn.query(`CREATE TABLE ${table} (id INT PRIMARY KEY, ${family.columns})`);
      const width = family.rows[0][1].length;
      const nulls = Array.from({ length: width }, () => 'NULL').join(', ');
      const statements = [
        ...family.rows.map(([sql], r) => `INSERT INTO ${table} VALUES (${r + 1}, ${sql})`),
        `INSERT INTO ${table} VALUES (0, ${nulls})`,
        `UPDATE ${table} SET id = id + 100`,
        `DELETE FROM ${table}`,
      ];
      const events = await roundTripRows(conn, `f${f}`, statements);
      const got = events.map((e) => ({ kind: e.kind, rows: e.rows.map((r) => ({ before: r.before, after: r.after })) }));
      const golden = family.rows.map(([, values], r) => [r + 1, ...values]);
      const nullRow = [0, ...Array.from({ length: width }, () => null)];
      assert.deepEqual(got.slice(0, family.rows.length + 1), [
        ...golden.map((row) => ({ kind: 'insert', rows: [{ before: null, after: row }] })),
        { kind: 'insert', rows: [{ before: null, after: nullRow }] },
      ]);
      const updates = got.filter((e) => e.kind === 'update').flatMap((e) => e.rows);
      assert.deepEqual(
        new Set(updates.map((r) => key(r.before))),
        new Set([...golden, nullRow].map(key)),
        'the pre-images of the update are the golden rows',
      );
      assert.deepEqual(
        new Set(updates.map((r) => key(r.after))),
        new Set([...golden, nullRow].map((row) => key([(row[0] as number) + 100, ...row.slice(1)]))),
        'the post-images of the update are the golden rows with the new id',
      );
      const deleted = got.filter((e) => e.kind === 'delete').flatMap((e) => e.rows.map((r) => r.before));
      assert.deepEqual(new Set(deleted.map(key)), new Set([...golden, nullRow].map((row) => key([(row[0] as number) + 100, ...row.slice(1)]))));
    });
  });
});
