import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mysqlUri, requireService, serviceAddress, uniqueName } from '../../helpers/services.js';
import { leakCheck } from '../../helpers/leak-check.js';

/**
 * Reads the binlog from `file:pos` to its current end over a replication connection, with MariaDB's own
 * client (`mariadb-binlog --read-from-remote-server`), and returns the decoded row images it printed.
 * Tidemark's own puller is tested against the same server in test/integration/upstream/.
 */
async function readRowEvents(file: string, pos: number): Promise<string> {
  const { host, port } = serviceAddress('upstream');
  const { stdout } = await promisify(execFile)(
    'mariadb-binlog',
    ['--no-defaults', '--read-from-remote-server', `--host=${host}`, `--port=${port}`, '--user=root',
      `--start-position=${pos}`, '--base64-output=decode-rows', '--verbose', file],
    { maxBuffer: 64 * 1024 * 1024 },
  );
  return stdout;
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\`]/g, '\\$&');
}

describe('upstream MariaDB (real server, binlog on)', () => {
  const leaks = leakCheck();
  const database = uniqueName('tm_up');
  let conn: mysql.Connection;

  before(async () => {
    await requireService('upstream');
    conn = await mysql.createConnection({ uri: mysqlUri('upstream') });
  });
  after(async () => {
    await conn.query(`DROP DATABASE IF EXISTS \`${database}\``);
    await conn.end();
    await leaks.check();
  });

  it('is configured for row-based CDC', async () => {
    const [rows] = await conn.query<mysql.RowDataPacket[]>(
      `SELECT @@log_bin AS log_bin, @@binlog_format AS format, @@binlog_row_image AS image,
              @@binlog_row_metadata AS metadata, @@binlog_checksum AS checksum`,
    );
    assert.deepEqual({ ...rows[0] }, { log_bin: 1, format: 'ROW', image: 'FULL', metadata: 'FULL', checksum: 'CRC32' });
  });

  it('shows an INSERT as a row event on a binlog connection', async () => {
    await conn.query(`CREATE DATABASE \`${database}\``);
    await conn.query(`CREATE TABLE \`${database}\`.t (id INT PRIMARY KEY, v VARCHAR(20))`);
    const [status] = await conn.query<mysql.RowDataPacket[]>('SHOW MASTER STATUS');
    const { File: file, Position: pos } = status[0] as { File: string; Position: number };

    await conn.query(`INSERT INTO \`${database}\`.t VALUES (1, 'one'), (2, 'two'), (3, 'three')`);
    const dump = await readRowEvents(file, pos);

    const table = `\`${database}\`.\`t\``;
    assert.match(dump, new RegExp(`Table_map: ${escape(table)} mapped to number`), 'a TABLE_MAP event names the table');
    const inserts = [...dump.matchAll(/### INSERT INTO (\S+)\n### SET\n### {3}@1=(\d+)\n### {3}@2='([^']*)'/g)].map((m) => [m[1], m[2], m[3]]);
    assert.deepEqual(inserts, [
      [table, '1', 'one'],
      [table, '2', 'two'],
      [table, '3', 'three'],
    ]);
    assert.match(dump, /Write_rows(_v1)?: table id/, 'the rows travel in a WRITE_ROWS event');
    assert.match(dump, /Xid = \d+/, 'the transaction ends with its XID');
  });
});
