import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { BinlogReader } from '../../../src/core/upstream/binlog-reader.js';
import { readTransactions, type UpstreamEvent } from '../../../src/core/upstream/transaction-reader.js';
import { decodeLocatedRows } from '../../../src/core/upstream/rows.js';
import { formatCoordinate, makeTs, tsFile, tsPosition, type Ts } from '../../../src/core/model/ts.js';
import { mysqlUri, requireService, serviceAddress, uniqueName } from '../../helpers/services.js';

let serverId = 8000 + (process.pid % 1000) * 3;

/** A readable line per event, for comparing whole streams. */
function describeEvent(e: UpstreamEvent): string {
  switch (e.kind) {
    case 'rows': return decodeLocatedRows(e.layout).map((row, i) => `row ${e.seq + i} ${e.layout.map.table} ${e.layout.kind} ${JSON.stringify(row.after ?? row.before, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))}`).join('\n');
    case 'commit': return `commit ${e.ts} rows=${e.rows}`;
    case 'ddl': return `ddl ${e.ts} ${e.query}`;
    case 'resolved': return 'resolved';
  }
}

async function read(fromFile: string, fromPos: number, until: (e: UpstreamEvent) => boolean): Promise<string[]> {
  const { host, port } = serviceAddress('upstream');
  const reader = await BinlogReader.open({ host, port, user: 'root', password: '', serverId: serverId++, heartbeatMs: 100 }, fromFile, fromPos, AbortSignal.timeout(20_000));
  const out: string[] = [];
  try {
    for await (const e of readTransactions(reader)) {
      if (e.kind === 'resolved') continue;
      out.push(...describeEvent(e).split('\n'));
      if (until(e)) break;
    }
  } finally {
    reader.close();
  }
  return out;
}

describe('resumable ts on the real upstream', () => {
  const db = uniqueName('tm_resume');
  let conn: mysql.Connection;

  before(async () => {
    await requireService('upstream');
    conn = await mysql.createConnection({ uri: mysqlUri('upstream'), multipleStatements: true });
    await conn.query(`CREATE DATABASE ${db}; CREATE TABLE ${db}.t (id INT PRIMARY KEY, v BIGINT UNSIGNED)`);
  });
  after(async () => {
    await conn.query(`DROP DATABASE IF EXISTS ${db}`);
    await conn.end();
  });

  it('stopping at a ts and resuming there equals one uninterrupted read, across a rotate', async () => {
    const [status] = await conn.query<mysql.RowDataPacket[]>('SHOW MASTER STATUS');
    const startFile = String(status[0]['File']);
    const startPos = Number(status[0]['Position']);
    const basename = startFile.replace(/\.\d+$/, '');
    for (let t = 0; t < 6; t++) {
      await conn.query(`INSERT INTO ${db}.t VALUES ${Array.from({ length: 50 }, (_, i) => `(${t * 100 + i}, ${18446744073709551615n - BigInt(i)})`).join(',')}`);
      await conn.query(`UPDATE ${db}.t SET v = v - 1 WHERE id = ${t * 100}`);
      if (t === 2) await conn.query('FLUSH BINARY LOGS');
    }
    await conn.query(`DELETE FROM ${db}.t WHERE id < 10`);
    const total = 13; // 6 inserts + 6 updates + 1 delete

    let commits = 0;
    const whole = await read(startFile, startPos, (e) => e.kind === 'commit' && ++commits === total);
    const commitTs = whole.filter((l) => l.startsWith('commit')).map((l) => BigInt(l.split(' ')[1]));
    assert.equal(commitTs.length, total);
    assert.ok(commitTs.every((ts, i) => i === 0 || ts > commitTs[i - 1]), 'ts grows in commit order, across the rotate');
    assert.ok(new Set(commitTs.map((ts) => Number(ts >> 32n))).size === 2, 'the workload spans two binlog files');

    // stop in the middle (after the 7th commit, which lies after the rotate), resume at its ts
    const middle: Ts = commitTs[6];
    commits = 0;
    const firstPart = await read(startFile, startPos, (e) => e.kind === 'commit' && ++commits === 7);
    commits = 0;
    const secondPart = await read(tsFile(middle, basename), tsPosition(middle), (e) => e.kind === 'commit' && ++commits === total - 7);
    assert.deepEqual([...firstPart, ...secondPart], whole, `resuming at ${formatCoordinate(middle, basename)} lost or repeated something`);
    assert.equal(whole.filter((l) => l.startsWith('row')).length, 6 * 50 + 6 + 10);
    assert.ok(whole.some((l) => l.includes('"18446744073709551615"')), 'unsigned 64-bit values survive exactly');
    assert.equal(makeTs(Number(middle >> 32n), tsPosition(middle)), middle);
  });
});
