import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { parseTimeForm, tsAtTime } from '../../../src/core/upstream/ts-at-time.js';
import { Upstream } from '../../../src/core/upstream/upstream.js';
import { mysqlUri, requireService, uniqueName } from '../../helpers/services.js';
import { upstreamEndTs } from '../../helpers/upstream.js';
import { waitFor } from '../../helpers/wait-for.js';

/** The time form of --start-ts, resolved against the real upstream's binlog. */
describe('--start-ts as a time (real upstream MariaDB)', () => {
  const db = uniqueName('tm_time');
  let conn: mysql.Connection;
  const endTs = (): Promise<bigint> => upstreamEndTs(conn);

  before(async () => {
    await requireService('upstream');
    conn = await mysql.createConnection({ uri: mysqlUri('upstream') });
    await conn.query(`CREATE DATABASE ${db}`);
    await conn.query(`CREATE TABLE ${db}.t (id INT PRIMARY KEY)`);
  });
  after(async () => {
    await conn.query(`DROP DATABASE IF EXISTS ${db}`);
    await conn.end();
  });

  it('parses ISO 8601 times, UTC when no zone is given, and nothing else', () => {
    assert.equal(parseTimeForm('2026-11-23T06:00:00Z'), Date.UTC(2026, 10, 23, 6, 0, 0));
    assert.equal(parseTimeForm('2026-11-23 06:00:00'), Date.UTC(2026, 10, 23, 6, 0, 0));
    assert.equal(parseTimeForm('2026-11-23T08:00:00+02:00'), Date.UTC(2026, 10, 23, 6, 0, 0));
    assert.equal(parseTimeForm('mysql-bin.000001:4'), undefined);
    assert.equal(parseTimeForm('12345'), undefined);
  });

  it('finds the last transaction committed at or before the time', async () => {
    // the upstream's own clock, in whole seconds like the binlog's commit times
    const upstreamSecond = async (): Promise<number> => Number((await conn.query<mysql.RowDataPacket[]>('SELECT UNIX_TIMESTAMP() AS s'))[0][0].s);
    // the first insert committed within one known second: its clock read the same second before and after
    let firstSecond = -1;
    for (let id = 1; firstSecond < 0; id++) {
      assert.ok(id <= 20, 'no insert fell within one second of the upstream clock');
      const before = await upstreamSecond();
      await conn.query(`INSERT INTO ${db}.t VALUES (${id})`);
      if ((await upstreamSecond()) === before) firstSecond = before;
    }
    const first = await endTs();
    // the second insert in a later second than the first
    await waitFor(async () => (await upstreamSecond()) > firstSecond, { what: 'the upstream clock to pass the first insert\'s second' });
    await conn.query(`INSERT INTO ${db}.t VALUES (1000)`);
    const second = await endTs();
    // (other writers to the shared upstream may commit in the same seconds: bounds, not equality)
    const atFirst = await tsAtTime(Upstream.of(mysqlUri('upstream')), firstSecond * 1000 + 500, AbortSignal.timeout(30_000));
    assert.ok(atFirst >= first && atFirst < second, `${atFirst} is the first insert (${first}) or a commit of the same second, before the second insert (${second})`);
    const atEnd = await tsAtTime(Upstream.of(mysqlUri('upstream')), Date.now() + 60_000, AbortSignal.timeout(30_000));
    assert.ok(atEnd >= second, 'a time after the last commit gives the end');
  });

  it('refuses a time before the oldest binlog: that history is purged', async () => {
    await assert.rejects(tsAtTime(Upstream.of(mysqlUri('upstream')), Date.UTC(1990, 0, 1), AbortSignal.timeout(30_000)), { code: 'ErrBinlogPurged', message: /before the oldest binary log/ });
  });
});
