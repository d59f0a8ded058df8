import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { parseTimeForm, tsAtTime } from '../../../src/core/upstream/ts-at-time.js';
import { mysqlUri, requireService, uniqueName } from '../../helpers/services.js';
import { upstreamEndTs } from '../../helpers/upstream.js';

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
    // start at the beginning of a second, so that the two commits fall in different seconds
    await new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000) + 50));
    await conn.query(`INSERT INTO ${db}.t VALUES (1)`);
    const first = await endTs();
    const firstSecond = Math.floor(Date.now() / 1000) * 1000;
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await conn.query(`INSERT INTO ${db}.t VALUES (2)`);
    const second = await endTs();
    // (other writers to the shared upstream may commit in the same seconds: bounds, not equality)
    const atFirst = await tsAtTime(mysqlUri('upstream'), firstSecond + 500, AbortSignal.timeout(30_000));
    assert.ok(atFirst >= first && atFirst < second, `${atFirst} is the first insert (${first}) or a commit of the same second, before the second insert (${second})`);
    const atEnd = await tsAtTime(mysqlUri('upstream'), Date.now() + 60_000, AbortSignal.timeout(30_000));
    assert.ok(atEnd >= second, 'a time after the last commit gives the end');
  });

  it('refuses a time before the oldest binlog: that history is purged', async () => {
    await assert.rejects(tsAtTime(mysqlUri('upstream'), Date.UTC(1990, 0, 1), AbortSignal.timeout(30_000)), { code: 'ErrBinlogPurged', message: /before the oldest binary log/ });
  });
});
