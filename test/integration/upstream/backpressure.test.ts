import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { makeTs, tsFileSeq, tsPosition, type Ts } from '../../../src/core/model/ts.js';
import { readFromTs } from '../../../src/core/upstream/resumable-reader.js';
import { decodeLocatedRows } from '../../../src/core/upstream/rows.js';
import { mysqlUri, requireService, serviceAddress, uniqueName } from '../../helpers/services.js';

const ROWS = 1_000_000;
const MiB = 1024 * 1024;

describe('backpressure: a 1M-row single transaction on the real upstream', () => {
  const db = uniqueName('tm_bp');
  let conn: mysql.Connection;
  let start: Ts;

  before(async () => {
    await requireService('upstream');
    conn = await mysql.createConnection({ uri: mysqlUri('upstream'), multipleStatements: true });
    await conn.query(`CREATE DATABASE ${db}; CREATE TABLE ${db}.t (id INT PRIMARY KEY, pad CHAR(255) CHARACTER SET latin1)`);
    const [status] = await conn.query<mysql.RowDataPacket[]>('SHOW MASTER STATUS');
    start = makeTs(Number(/\.(\d+)$/.exec(String(status[0]['File']))?.[1]), Number(status[0]['Position']));
    await conn.query(`INSERT INTO ${db}.t SELECT seq, REPEAT(CHAR(97 + seq % 26), 255) FROM ${db}.seq_1_to_${ROWS}`);
  });
  after(async () => {
    await conn.query(`DROP DATABASE IF EXISTS ${db}`);
    await conn.end();
  });

  it('streams with bounded memory while the consumer is slow, and delivers every row before the commit', async () => {
    global.gc?.();
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    let peakLive = 0;
    let rows = 0;
    let commitTs: Ts | undefined;
    let idSum = 0;
    const { host, port } = serviceAddress('upstream');
    const options = { host, port, user: 'root', password: '', serverId: 9500 + (process.pid % 400), heartbeatMs: 200, basename: 'mysql-bin', highWaterMark: 256 };
    for await (const e of readFromTs(options, start, AbortSignal.timeout(300_000))) {
      if (e.kind === 'rows' && e.layout.kind === 'insert' && e.layout.map.table === 't') {
        const decoded = decodeLocatedRows(e.layout);
        const before = rows;
        for (const row of decoded) idSum += row.after![0] as number;
        rows += decoded.length;
        if (Math.floor(rows / 20_000) > Math.floor(before / 20_000)) {
          const m = process.memoryUsage();
          peak = Math.max(peak, m.rss);
          peakLive = Math.max(peakLive, m.heapUsed + m.arrayBuffers);
          // the slow consumer: a pause of 20 ms every 20,000 rows (a full second over the transaction)
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      } else if (e.kind === 'commit' && rows > 0) {
        commitTs = e.ts;
        break;
      }
    }
    const growth = (peak - baseline) / MiB;
    const binlogBytes = commitTs === undefined ? 0 : tsPosition(commitTs) - tsPosition(start);
    console.log(`1M-row transaction: ${(binlogBytes / MiB).toFixed(0)} MiB of binlog, peak RSS ${(peak / MiB).toFixed(0)} MiB (+${growth.toFixed(0)} MiB over ${(baseline / MiB).toFixed(0)} MiB; live heap + buffers at most ${(peakLive / MiB).toFixed(0)} MiB)`);
    assert.equal(rows, ROWS);
    assert.equal(idSum, (ROWS * (ROWS + 1)) / 2);
    assert.ok(commitTs !== undefined && tsFileSeq(commitTs) === tsFileSeq(start));
    assert.ok(binlogBytes > 200 * MiB, `the transaction is larger than the memory bound (${binlogBytes} bytes)`);
    // memory stays well below the transaction (holding it would take the 250 MiB plus 1M row objects);
    // heapUsed also counts garbage not yet collected, so the bounds leave room for the GC's timing
    assert.ok(peakLive < 160 * MiB, `live memory reached ${(peakLive / MiB).toFixed(0)} MiB while reading ${(binlogBytes / MiB).toFixed(0)} MiB`);
    assert.ok(growth * MiB < binlogBytes * 0.75, `RSS grew by ${growth.toFixed(0)} MiB while reading ${(binlogBytes / MiB).toFixed(0)} MiB`);
  });
});
