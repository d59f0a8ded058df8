import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import type { Value } from '../../../src/core/upstream/rows.js';
import { roundTrip } from '../../helpers/binlog.js';
import { mysqlUri, requireService, uniqueName } from '../../helpers/services.js';

describe('row decoding of the real upstream binlog (type matrix, first part)', () => {
  const db = uniqueName('tm_types');
  let conn: mysql.Connection;

  before(async () => {
    await requireService('upstream');
    conn = await mysql.createConnection({ uri: mysqlUri('upstream'), multipleStatements: true, timezone: 'Z' });
    await conn.query("SET time_zone = '+00:00'");
    await conn.query(`CREATE DATABASE ${db}`);
    await conn.query(`CREATE TABLE ${db}.m (
      id INT PRIMARY KEY,
      ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, mi MEDIUMINT UNSIGNED, i INT, bi BIGINT, biu BIGINT UNSIGNED,
      d1 DECIMAL(65,30), d2 DECIMAL(10,2), f FLOAT, dbl DOUBLE, y YEAR, dt DATE,
      t0 TIME, t3 TIME(3), t6 TIME(6), dt6 DATETIME(6), dt1 DATETIME(1), ts6 TIMESTAMP(6) NULL,
      v VARCHAR(300) CHARACTER SET utf8mb4, c CHAR(10) CHARACTER SET latin1, vb VARBINARY(20), bl BLOB, tx TEXT CHARACTER SET utf8mb4,
      e ENUM('small','medium','large'), st SET('a','b','c'), b1 BIT(1), b64 BIT(64), n INT
    )`);
  });
  after(async () => {
    await conn.query(`DROP DATABASE IF EXISTS ${db}`);
    await conn.end();
  });

  it('decodes edge values of every column exactly, with names from the full row metadata', async () => {
    const insert = `INSERT INTO ${db}.m VALUES (
      1, -128, 255, -32768, 16777215, -2147483648, -9223372036854775808, 18446744073709551615,
      '-12345678901234567890123456789012345.123456789012345678901234567890', '-0.01', 1.5, -2.2250738585072014e-308, 2155, '1000-01-01',
      '-838:59:59', '-00:00:00.001', '838:59:58.999999', '9999-12-31 23:59:59.999999', '2024-02-29 12:00:00.5', '2038-01-19 03:14:07.000001',
      'emoji 🌊 and ünïcode', 'latin1 é', 0x00ff10, 0xdeadbeef, '', 'medium', 'a,c', b'1', b'1111111111111111111111111111111111111111111111111111111111111111', NULL
    )`;
    const { events, maps } = await roundTrip(conn, [insert]);
    const map = maps.at(-1)!;
    assert.deepEqual(map.names, ['id', 'ti', 'tiu', 'si', 'mi', 'i', 'bi', 'biu', 'd1', 'd2', 'f', 'dbl', 'y', 'dt', 't0', 't3', 't6', 'dt6', 'dt1', 'ts6', 'v', 'c', 'vb', 'bl', 'tx', 'e', 'st', 'b1', 'b64', 'n']);
    assert.deepEqual(map.primaryKey, [0]);
    const after = events[0].rows[0].after!;
    const expected: Value[] = [
      1, -128, 255, -32768, 16777215, -2147483648, -9223372036854775808n, 18446744073709551615n,
      '-12345678901234567890123456789012345.123456789012345678901234567890', '-0.01', 1.5, -2.2250738585072014e-308, 2155, '1000-01-01',
      '-838:59:59', '-00:00:00.001', '838:59:58.999999', '9999-12-31 23:59:59.999999', '2024-02-29 12:00:00.5', '2038-01-19 03:14:07.000001',
      'emoji 🌊 and ünïcode', 'latin1 é', Buffer.from([0x00, 0xff, 0x10]), Buffer.from([0xde, 0xad, 0xbe, 0xef]), '', 'medium', 'a,c', 1n, 18446744073709551615n, null,
    ];
    assert.equal(events[0].kind, 'insert');
    assert.deepEqual(after, expected);
  });

  it('decodes updates with both images and deletes with the pre-image; empty string is not NULL', async () => {
    const { events } = await roundTrip(conn, [
      `UPDATE ${db}.m SET v = NULL, tx = 'now text', d2 = '99999999.99', n = 0 WHERE id = 1`,
      `DELETE FROM ${db}.m WHERE id = 1`,
    ]);
    const [update, del] = events;
    assert.equal(update.kind, 'update');
    const { before: b, after: a } = update.rows[0];
    assert.equal(b![20], 'emoji 🌊 and ünïcode');
    assert.equal(a![20], null);
    assert.equal(b![24], '');
    assert.equal(a![24], 'now text');
    assert.equal(a![9], '99999999.99');
    assert.equal(b![29], null);
    assert.equal(a![29], 0);
    assert.equal(del.kind, 'delete');
    assert.equal(del.rows[0].after, null);
    assert.equal(del.rows[0].before![0], 1);
  });

  it('a TEXT after a GEOMETRY column keeps its character set (MariaDB lists GEOMETRY in the charset metadata)', async () => {
    await conn.query(`CREATE TABLE ${db}.g (id INT PRIMARY KEY, g GEOMETRY, t TEXT CHARACTER SET utf8mb4, v VARCHAR(10) CHARACTER SET latin1, b BLOB)`);
    const { events, maps } = await roundTrip(conn, [`INSERT INTO ${db}.g VALUES (1, ST_GeomFromText('POINT(1 2)'), 'ü text', 'é', 0x01)`]);
    const map = maps.at(-1)!;
    assert.deepEqual([map.charsets.get(2), map.charsets.get(3), map.charsets.get(4)], [45, 8, 63], 'utf8mb4_general_ci, latin1_swedish_ci, binary')
    const after = events[0].rows[0].after!;
    assert.equal(after[2], 'ü text', 'the TEXT decodes as text, not bytes');
    assert.equal(after[3], 'é');
    assert.deepEqual(after[4], Buffer.from([0x01]));
    assert.ok(Buffer.isBuffer(after[1]), 'the GEOMETRY stays bytes');
  });
});
