import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { mysqlUri, requireService, uniqueName } from '../../helpers/services.js';
import { leakCheck } from '../../helpers/leak-check.js';

describe('downstream MariaDB (real server)', () => {
  const leaks = leakCheck();
  const database = uniqueName('tm_down');
  let conn: mysql.Connection;

  before(async () => {
    await requireService('downstream');
    conn = await mysql.createConnection({ uri: mysqlUri('downstream'), multipleStatements: true });
    await conn.query(`CREATE DATABASE \`${database}\``);
  });
  after(async () => {
    await conn.query(`DROP DATABASE IF EXISTS \`${database}\``);
    await conn.end();
    await leaks.check();
  });

  it('writes rows and reads them back exactly', async () => {
    await conn.query(
      `CREATE TABLE \`${database}\`.t (id BIGINT UNSIGNED PRIMARY KEY, name VARCHAR(64) CHARACTER SET utf8mb4, amount DECIMAL(65,30))`,
    );
    const rows: [string, string, string][] = [
      ['18446744073709551615', 'max unsigned 🌊', '12345678901234567890123456789012345.123456789012345678901234567890'],
      ['1', '', '-0.000000000000000000000000000001'],
    ];
    await conn.query(`INSERT INTO \`${database}\`.t VALUES ?`, [rows]);
    const [result] = await conn.query<mysql.RowDataPacket[]>({
      sql: `SELECT CAST(id AS CHAR) AS id, name, CAST(amount AS CHAR) AS amount FROM \`${database}\`.t ORDER BY id DESC`,
    });
    assert.deepEqual(
      result.map((r) => [String(r['id']), String(r['name']), String(r['amount'])]),
      rows,
    );
  });
});
