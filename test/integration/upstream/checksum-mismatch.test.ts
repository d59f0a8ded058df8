import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { makeTs, tsFile, tsPosition, type Ts } from '../../../src/core/model/ts.js';
import { BinlogReader } from '../../../src/core/upstream/binlog-reader.js';
import { readFromTs, type ResumableEvent } from '../../../src/core/upstream/resumable-reader.js';
import { decodeLocatedRows } from '../../../src/core/upstream/rows.js';
import type { TidemarkError } from '../../../src/core/errors/index.js';
import { mysqlUri, requireService, serviceAddress, uniqueName } from '../../helpers/services.js';
import { TcpProxy } from '../../helpers/tcp-proxy.js';

let serverId = 9500 + (process.pid % 1000) * 3;
const MARKER = Buffer.from('Q'.repeat(32));
const VALUE = 'Q'.repeat(2000);

/** A proxy to the upstream that flips one byte inside the first run of Q's the server sends (row data, never a header). */
async function corruptingProxy(): Promise<TcpProxy> {
  const { host, port } = serviceAddress('upstream');
  let done = false;
  return TcpProxy.start(host, port, {
    mutate: (chunk) => {
      if (done) return;
      const at = chunk.indexOf(MARKER);
      if (at < 0) return;
      chunk[at + 16] = 'R'.charCodeAt(0);
      done = true;
    },
  });
}

/**
 * CRC32 checksums on the real upstream (the puller issue's typed errors): one byte of an event flipped on the
 * wire (a TCP proxy between the reader and MariaDB) is ErrBinlogChecksumMismatch, never a misread row; the
 * resumable reader treats it as retryable and reads the transaction again, intact, from the last commit.
 */
describe('a binlog event corrupted on the wire (real upstream behind a corrupting proxy)', () => {
  const db = uniqueName('tm_crc');
  let conn: mysql.Connection;
  let start: Ts;
  const proxies: TcpProxy[] = [];

  before(async () => {
    await requireService('upstream');
    conn = await mysql.createConnection({ uri: mysqlUri('upstream'), multipleStatements: true });
    await conn.query(`CREATE DATABASE ${db}; CREATE TABLE ${db}.t (id INT PRIMARY KEY, v VARCHAR(2000))`);
    const [status] = await conn.query<mysql.RowDataPacket[]>('SHOW MASTER STATUS');
    start = makeTs(Number(/\.(\d+)$/.exec(String(status[0]['File']))?.[1]), Number(status[0]['Position']));
    await conn.query(`INSERT INTO ${db}.t VALUES (1, 'before')`);
    await conn.query(`INSERT INTO ${db}.t VALUES (2, ?)`, [VALUE]);
    await conn.query(`INSERT INTO ${db}.t VALUES (3, 'after')`);
  });
  after(async () => {
    for (const p of proxies) await p.close();
    await conn.query(`DROP DATABASE IF EXISTS ${db}`);
    await conn.end();
  });

  const options = (port: number) => ({ host: '127.0.0.1', port, user: 'root', password: '', serverId: serverId++, heartbeatMs: 200, basename: 'mysql-bin', retryDelayMs: 50 });

  it('the reader fails with ErrBinlogChecksumMismatch (retryable), naming the position', async () => {
    const proxy = await corruptingProxy();
    proxies.push(proxy);
    const reader = await BinlogReader.open(options(proxy.port), tsFile(start, 'mysql-bin'), tsPosition(start), AbortSignal.timeout(20_000));
    await assert.rejects(
      (async () => {
        for await (const e of reader) void e;
      })(),
      (e: TidemarkError) => e.code === 'ErrBinlogChecksumMismatch' && e.retryable && /CRC32 mismatch in the event of type \d+ at mysql-bin\.\d+:\d+/.test(e.message),
    );
    reader.close();
  });

  it('the resumable reader reads the transaction again from the last commit: every row once, intact', async () => {
    const proxy = await corruptingProxy();
    proxies.push(proxy);
    const events: ResumableEvent[] = [];
    let rows: string[] = [];
    const committed: string[] = [];
    for await (const e of readFromTs(options(proxy.port), start, AbortSignal.timeout(20_000))) {
      events.push(e);
      if (e.kind === 'rows') {
        if (e.layout.map.schema === db) for (const row of decodeLocatedRows(e.layout)) rows.push(`${String(row.after![0])}:${String(row.after![1])}`);
      } else if (e.kind === 'reset') rows = [];
      else if (e.kind === 'commit') {
        committed.push(...rows);
        rows = [];
        if (committed.length === 3) break;
      }
    }
    const reset = events.find((e) => e.kind === 'reset');
    assert.ok(reset !== undefined && reset.kind === 'reset', 'the reader started again');
    assert.equal(reset.error.code, 'ErrBinlogChecksumMismatch');
    assert.deepEqual(committed, ['1:before', `2:${VALUE}`, '3:after']);
  });
});
