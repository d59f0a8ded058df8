import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { makeTs, type Ts } from '../../../src/core/model/ts.js';
import { readFromTs, type ResumableEvent } from '../../../src/core/upstream/resumable-reader.js';
import { decodeLocatedRows } from '../../../src/core/upstream/rows.js';
import { BinlogReader } from '../../../src/core/upstream/binlog-reader.js';
import { mysqlUri, requireService, serviceAddress, uniqueName } from '../../helpers/services.js';

let serverId = 9000 + (process.pid % 1000) * 3;

function options() {
  const { host, port } = serviceAddress('upstream');
  return { host, port, user: 'root', password: '', serverId: serverId++, heartbeatMs: 100, basename: 'mysql-bin', highWaterMark: 16, retryDelayMs: 50 };
}

/** Committed transactions as lines: the rows of each, then its commit ts. Rows after a reset's ts are dropped. */
function committed(events: ResumableEvent[]): string[] {
  const out: string[] = [];
  let pending: string[] = [];
  for (const e of events) {
    if (e.kind === 'rows') for (const row of decodeLocatedRows(e.layout)) pending.push(`${e.layout.kind} ${JSON.stringify(row.after ?? row.before)}`);
    else if (e.kind === 'commit') {
      out.push(...pending, `commit ${e.ts}`);
      pending = [];
    } else if (e.kind === 'reset') pending = [];
  }
  return out;
}

describe('connection lost mid-stream on the real upstream', () => {
  const db = uniqueName('tm_lost');
  let conn: mysql.Connection;
  let start: Ts;

  before(async () => {
    await requireService('upstream');
    conn = await mysql.createConnection({ uri: mysqlUri('upstream'), multipleStatements: true });
    await conn.query(`CREATE DATABASE ${db}; CREATE TABLE ${db}.t (id INT PRIMARY KEY, v VARCHAR(20))`);
    const [status] = await conn.query<mysql.RowDataPacket[]>('SHOW MASTER STATUS');
    start = makeTs(Number(/\.(\d+)$/.exec(String(status[0]['File']))?.[1]), Number(status[0]['Position']));
  });

  async function insert(t: number): Promise<void> {
    await conn.query(`INSERT INTO ${db}.t VALUES ${Array.from({ length: 200 }, (_, i) => `(${t * 1000 + i}, 'r${t}-${i}')`).join(',')}`);
  }
  after(async () => {
    await conn.query(`DROP DATABASE IF EXISTS ${db}`);
    await conn.end();
  });

  it('fails with a retryable ErrConnectionLost and resumes from the last complete transaction: no loss, no duplicate', async () => {
    const total = 10;
    for (let t = 0; t < 5; t++) await insert(t);
    const readers: BinlogReader[] = [];
    const opened = BinlogReader.open.bind(BinlogReader);
    BinlogReader.open = async (...args) => {
      const r = await opened(...args);
      readers.push(r);
      return r;
    };
    const interrupted: ResumableEvent[] = [];
    try {
      let commits = 0;
      for await (const e of readFromTs(options(), start, AbortSignal.timeout(30_000))) {
        interrupted.push(e);
        if (e.kind !== 'commit') continue;
        if (++commits === 3) {
          // the server kills the dump thread; the rest of the workload is written while the reader is cut off
          await conn.query(`KILL CONNECTION ${readers[0].connectionId}`);
          for (let t = 5; t < total; t++) await insert(t);
        }
        if (committed(interrupted).filter((l) => l.startsWith('commit')).length === total) break;
      }
    } finally {
      BinlogReader.open = opened;
    }
    assert.equal(readers.length, 2, 'one reconnection');

    const whole: ResumableEvent[] = [];
    let commits = 0;
    for await (const e of readFromTs(options(), start, AbortSignal.timeout(30_000))) {
      whole.push(e);
      if (e.kind === 'commit' && ++commits === total) break;
    }

    const resets = interrupted.filter((e) => e.kind === 'reset');
    assert.equal(resets.length, 1, 'exactly one reset');
    const reset = resets[0];
    assert.equal(reset.error.code, 'ErrConnectionLost');
    assert.equal(reset.error.retryable, true);
    const commitTs = whole.filter((e) => e.kind === 'commit').map((e) => e.ts);
    assert.ok(commitTs.slice(2, 5).includes(reset.ts), `resumed at a commit already read before the kill (${reset.ts})`);
    assert.deepEqual(committed(interrupted), committed(whole));
    assert.equal(committed(whole).filter((l) => l.startsWith('insert')).length, 200 * total);
  });
});
