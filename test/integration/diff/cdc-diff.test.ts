import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { CDC_BIN, freePort } from '../../helpers/cdc-process.js';
import { mysqlUri, requireService, uniqueName } from '../../helpers/services.js';

const run = promisify(execFile);

async function diff(args: string[]): Promise<{ code: number; report: any; stderr: string }> {
  try {
    const { stdout } = await run(process.execPath, [CDC_BIN, 'diff', ...args, '--json']);
    return { code: 0, report: JSON.parse(stdout), stderr: '' };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    let report: unknown;
    try {
      report = JSON.parse(e.stdout);
    } catch {
      report = undefined;
    }
    return { code: e.code, report, stderr: e.stderr };
  }
}

/** `cdc diff` between the real upstream and downstream MariaDB. */
describe('cdc diff (real upstream and downstream MariaDB)', () => {
  const db = uniqueName('tm_diff');
  let up: mysql.Connection;
  let down: mysql.Connection;
  const args = (): string[] => ['--upstream', mysqlUri('upstream'), '--downstream', mysqlUri('downstream'), '--tables', `${db}.*`, '--chunk-size', '1000'];

  before(async () => {
    await requireService('upstream');
    await requireService('downstream');
    up = await mysql.createConnection({ uri: mysqlUri('upstream'), multipleStatements: true });
    down = await mysql.createConnection({ uri: mysqlUri('downstream'), multipleStatements: true });
    const ddl = `CREATE DATABASE ${db};
      CREATE TABLE ${db}.orders (id INT PRIMARY KEY, amount DECIMAL(20,6), note VARCHAR(50) CHARACTER SET utf8mb4, at DATETIME(6), raw BLOB);
      CREATE TABLE ${db}.lines (order_id INT, line INT, qty INT, PRIMARY KEY (order_id, line));
      CREATE TABLE ${db}.nokey (a INT, b VARCHAR(10));`;
    for (const conn of [up, down]) {
      await conn.query(ddl);
      const orders = Array.from({ length: 2500 }, (_, i) => [i + 1, i % 7 === 0 ? null : `${i}.123456`, i % 5 === 0 ? null : `n${i} 🌊`, `2024-01-02 03:04:05.${String(i).padStart(6, '0')}`, Buffer.from([i % 256, 0, 255])]);
      await conn.query(`INSERT INTO ${db}.orders VALUES ?`, [orders]);
      await conn.query(`INSERT INTO ${db}.lines VALUES ?`, [Array.from({ length: 1200 }, (_, i) => [Math.floor(i / 3), i % 3, i])]);
      await conn.query(`INSERT INTO ${db}.nokey VALUES (1, 'x'), (2, NULL), (NULL, 'y')`);
    }
  });
  after(async () => {
    await up.query(`DROP DATABASE IF EXISTS ${db}`);
    await down.query(`DROP DATABASE IF EXISTS ${db}`);
    await up.end();
    await down.end();
  });

  it('reports equal tables as equal, chunk by chunk', async () => {
    const { code, report } = await diff(args());
    assert.equal(code, 0);
    assert.equal(report.equal, true);
    const orders = report.tables.find((t: any) => t.table === `${db}.orders`);
    assert.deepEqual({ rows: orders.upstreamRows, down: orders.downstreamRows, chunks: orders.chunks }, { rows: 2500, down: 2500, chunks: 3 });
    assert.deepEqual(report.tables.map((t: any) => t.table).sort(), [`${db}.lines`, `${db}.nokey`, `${db}.orders`]);
  });

  it('names rows changed, missing and extra downstream, and exits 1', async () => {
    await down.query(`UPDATE ${db}.orders SET note = 'hand-edited' WHERE id = 1500`);
    await down.query(`UPDATE ${db}.orders SET amount = NULL WHERE id = 2`);
    await down.query(`DELETE FROM ${db}.lines WHERE order_id = 7 AND line = 1`);
    await down.query(`INSERT INTO ${db}.orders VALUES (9999, 1, 'extra', NULL, NULL)`);
    const { code, report } = await diff(args());
    assert.equal(code, 1);
    assert.equal(report.equal, false);
    const orders = report.tables.find((t: any) => t.table === `${db}.orders`);
    assert.equal(orders.equal, false);
    assert.deepEqual(
      orders.differences.map((d: any) => `${d.kind} ${d.key.join(',')}`).sort(),
      ['changed 1500', 'changed 2', 'extra-downstream 9999'],
    );
    const lines = report.tables.find((t: any) => t.table === `${db}.lines`);
    assert.deepEqual(lines.differences, [{ kind: 'missing-downstream', key: [7, 1] }]);
    assert.equal(report.tables.find((t: any) => t.table === `${db}.nokey`).equal, true);
  });

  it('reports a table missing downstream, and an unreachable database clearly', async () => {
    await up.query(`CREATE TABLE ${db}.only_up (id INT PRIMARY KEY)`);
    const { report } = await diff(args());
    const onlyUp = report.tables.find((t: any) => t.table === `${db}.only_up`);
    assert.equal(onlyUp.equal, false);
    assert.equal(onlyUp.problem, 'the table does not exist downstream');

    const port = await freePort();
    const bad = await diff(['--upstream', mysqlUri('upstream'), '--downstream', `mysql://root:secret@127.0.0.1:${port}/`]);
    assert.notEqual(bad.code, 0);
    assert.equal(bad.report.error.code, 'ErrServiceUnreachable');
    assert.match(bad.report.error.message, new RegExp(`cannot connect to the downstream mysql://root:xxxxx@127\\.0\\.0\\.1:${port}/`));
    assert.doesNotMatch(JSON.stringify(bad.report), /secret/, 'the password is never shown');
  });
});
