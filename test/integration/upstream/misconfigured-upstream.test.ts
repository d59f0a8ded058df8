import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { checkUpstream } from '../../../src/core/upstream/preflight.js';
import { CDC_BIN, CdcServerProcess } from '../../helpers/cdc-process.js';
import { etcdEndpoint, mysqlUri, requireService, uniqueName } from '../../helpers/services.js';

const run = promisify(execFile);

/**
 * The real upstream with a setting a ROW-based capture cannot work with (set globally for a moment, then
 * restored): the preflight and `cdc changefeed create` refuse it, naming the variable, its value and the fix.
 */
describe('a misconfigured upstream is refused with the setting that fixes it (real MariaDB)', () => {
  const clusterId = uniqueName('misconf').replaceAll('_', '-');
  let conn: mysql.Connection;
  let server: CdcServerProcess;
  let original: Record<string, string>;

  before(async () => {
    await requireService('etcd');
    await requireService('upstream');
    conn = await mysql.createConnection({ uri: mysqlUri('upstream') });
    const [rows] = await conn.query<mysql.RowDataPacket[]>("SHOW GLOBAL VARIABLES WHERE Variable_name IN ('binlog_format', 'binlog_row_image', 'binlog_row_metadata')");
    original = Object.fromEntries(rows.map((r) => [String(r['Variable_name']), String(r['Value'])]));
    server = await CdcServerProcess.start({ pd: etcdEndpoint(), clusterId, extraArgs: ['--upstream', mysqlUri('upstream')] });
    await server.waitHealthy();
  });
  after(async () => {
    for (const [name, value] of Object.entries(original)) await conn.query(`SET GLOBAL ${name} = ?`, [value]);
    await conn.end();
    await server.stop();
  });

  const cases: [string, string, string, RegExp][] = [
    ['binlog_format', 'STATEMENT', 'ErrBinlogFormatNotRow', /binlog_format is STATEMENT, not ROW; set binlog_format=ROW/],
    ['binlog_row_image', 'MINIMAL', 'ErrBinlogRowImageNotFull', /binlog_row_image is MINIMAL, not FULL; set binlog_row_image=FULL/],
    ['binlog_row_metadata', 'MINIMAL', 'ErrBinlogRowImageNotFull', /binlog_row_metadata is MINIMAL, not FULL; set binlog_row_metadata=FULL/],
  ];
  for (const [variable, value, code, message] of cases) {
    it(`${variable}=${value}`, async () => {
      await conn.query(`SET GLOBAL ${variable} = ?`, [value]);
      try {
        await assert.rejects(checkUpstream(mysqlUri('upstream')), { code, message });
        const created = await run(process.execPath, [CDC_BIN, 'changefeed', 'create', '--server', server.url, '--sink-uri', 'blackhole://', '-c', `mis-${variable.replaceAll('_', '-')}`, '--json']).then(
          () => undefined,
          (error: { stdout: string }) => JSON.parse(error.stdout) as { error: { code: string; message: string } },
        );
        assert.ok(created !== undefined, 'the changefeed was refused');
        assert.equal(created.error.code, code);
        assert.match(created.error.message, message);
      } finally {
        await conn.query(`SET GLOBAL ${variable} = ?`, [original[variable]]);
      }
      await checkUpstream(mysqlUri('upstream'));
    });
  }
});
