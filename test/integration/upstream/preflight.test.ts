import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { BinlogReader } from '../../../src/core/upstream/binlog-reader.js';
import { Upstream } from '../../../src/core/upstream/upstream.js';
import { freePort } from '../../helpers/cdc-process.js';
import { mysqlUri, requireService, serviceAddress, uniqueName } from '../../helpers/services.js';

describe('upstream preflight against the real upstream MariaDB', () => {
  const user = uniqueName('tm_nopriv').slice(0, 32);
  let conn: mysql.Connection;
  let file = '';

  before(async () => {
    await requireService('upstream');
    conn = await mysql.createConnection({ uri: mysqlUri('upstream') });
    await conn.query(`CREATE USER '${user}'@'%' IDENTIFIED BY 'pw'`);
    await conn.query(`GRANT SELECT ON *.* TO '${user}'@'%'`);
    const [rows] = await conn.query<mysql.RowDataPacket[]>('SHOW MASTER STATUS');
    file = String(rows[0]?.File);
  });

  after(async () => {
    await conn.query(`DROP USER IF EXISTS '${user}'@'%'`);
    await conn.end();
  });

  it('accepts the upstream as configured (log_bin on, ROW, FULL, root has every privilege)', async () => {
    const settings = await Upstream.of(mysqlUri('upstream')).preflight();
    assert.deepEqual(
      { logBin: Number(settings.logBin), format: settings.binlogFormat, image: settings.binlogRowImage },
      { logBin: 1, format: 'ROW', image: 'FULL' },
    );
  });

  it('names a user without REPLICATION SLAVE, in the preflight and in the binlog dump itself', async () => {
    const { host, port, addr } = serviceAddress('upstream');
    await assert.rejects(Upstream.of(`mysql://${user}:pw@${addr}/`).preflight(), {
      code: 'ErrReplicationPrivilege',
      message: new RegExp(`the upstream user ${user}@% lacks REPLICATION SLAVE`),
    });
    await assert.rejects(
      (async () => {
        const reader = await BinlogReader.open({ host, port, user, password: 'pw', serverId: 7000 + (process.pid % 1000) }, file, 4);
        try {
          for await (const _ of reader) void _;
        } finally {
          reader.close();
        }
      })(),
      { code: 'ErrReplicationPrivilege', message: new RegExp(`the upstream user "${user}" lacks REPLICATION SLAVE`) },
    );
  });

  it('names an unreachable upstream and a wrong password', async () => {
    const port = await freePort();
    await assert.rejects(Upstream.of(`mysql://root@127.0.0.1:${port}/`).preflight(2000), { code: 'ErrUpstreamUnreachable', message: /ECONNREFUSED/ });
    await assert.rejects(Upstream.of(`mysql://${user}:wrong@${serviceAddress('upstream').addr}/`).preflight(), { code: 'ErrReplicationPrivilege', message: /Access denied/ });
  });
});
