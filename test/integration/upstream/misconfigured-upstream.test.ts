import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import type mysql from 'mysql2/promise';
import { Upstream } from '../../../src/core/upstream/upstream.js';
import { CDC_BIN, CdcServerProcess } from '../../helpers/cdc-process.js';
import { MariaDBInstance } from '../../helpers/mariadb-instance.js';
import { etcdEndpoint, requireService, uniqueName } from '../../helpers/services.js';

const run = promisify(execFile);

const GOOD = ['--server-id=1', '--log-bin=mysql-bin', '--binlog-format=ROW', '--binlog-row-image=FULL', '--binlog-row-metadata=FULL', '--binlog-checksum=CRC32'];

/**
 * A real MariaDB with a setting a ROW-based capture cannot work with: the preflight and `cdc changefeed
 * create` refuse it, naming the variable, its value and the fix. A private server (its own data dir and
 * port), so the shared upstream's settings never change under other tests.
 */
describe('a misconfigured upstream is refused with the setting that fixes it (real MariaDB)', () => {
  const clusterId = uniqueName('misconf').replaceAll('_', '-');
  let upstream: MariaDBInstance;
  let conn: mysql.Connection;
  let server: CdcServerProcess;
  let original: Record<string, string>;

  const refusedCreate = async (id: string): Promise<{ code: string; message: string }> => {
    const created = await run(process.execPath, [CDC_BIN, 'changefeed', 'create', '--server', server.url, '--sink-uri', 'blackhole://', '-c', id, '--json']).then(
      () => undefined,
      (error: { stdout: string }) => JSON.parse(error.stdout) as { error: { code: string; message: string } },
    );
    assert.ok(created !== undefined, 'the changefeed was refused');
    return created.error;
  };

  before(async () => {
    await requireService('etcd');
    upstream = await MariaDBInstance.create(GOOD);
    conn = await upstream.connect();
    const [rows] = await conn.query<mysql.RowDataPacket[]>("SHOW GLOBAL VARIABLES WHERE Variable_name IN ('binlog_format', 'binlog_row_image', 'binlog_row_metadata')");
    original = Object.fromEntries(rows.map((r) => [String(r['Variable_name']), String(r['Value'])]));
    server = await CdcServerProcess.start({ pd: etcdEndpoint(), clusterId, extraArgs: ['--upstream', upstream.uri] });
    await server.waitHealthy();
  });
  after(async () => {
    await conn?.end().catch(() => undefined);
    await server?.stop();
    await upstream?.destroy();
  });

  it('binary log off (log_bin=OFF)', async () => {
    await conn.end();
    await upstream.restart(['--server-id=1', '--skip-log-bin']);
    try {
      await assert.rejects(Upstream.of(upstream.uri).preflight(), { code: 'ErrBinlogDisabled', message: /the upstream has no binary log \(log_bin is 0\); start it with --log-bin/ });
      const refused = await refusedCreate('mis-log-bin');
      assert.equal(refused.code, 'ErrBinlogDisabled');
      assert.match(refused.message, /no binary log.*--log-bin/);
    } finally {
      await upstream.restart(GOOD);
      conn = await upstream.connect();
    }
    await Upstream.of(upstream.uri).preflight();
  });

  const cases: [string, string, string, RegExp][] = [
    ['binlog_format', 'STATEMENT', 'ErrBinlogFormatNotRow', /binlog_format is STATEMENT, not ROW; set binlog_format=ROW/],
    ['binlog_row_image', 'MINIMAL', 'ErrBinlogRowImageNotFull', /binlog_row_image is MINIMAL, not FULL; set binlog_row_image=FULL/],
  ];
  for (const [variable, value, code, message] of cases) {
    it(`${variable}=${value}`, async () => {
      await conn.query(`SET GLOBAL ${variable} = ?`, [value]);
      try {
        await assert.rejects(Upstream.of(upstream.uri).preflight(), { code, message });
        const refused = await refusedCreate(`mis-${variable.replaceAll('_', '-')}`);
        assert.equal(refused.code, code);
        assert.match(refused.message, message);
      } finally {
        await conn.query(`SET GLOBAL ${variable} = ?`, [original[variable]]);
      }
      await Upstream.of(upstream.uri).preflight();
    });
  }

  it('binlog_row_metadata=MINIMAL is accepted (rows are mounted through the schema storage) and reported', async () => {
    await conn.query("SET GLOBAL binlog_row_metadata = 'MINIMAL'");
    try {
      const settings = await Upstream.of(upstream.uri).preflight();
      assert.equal(settings.binlogRowMetadata, 'MINIMAL');
      assert.equal(await Upstream.of(upstream.uri).hasFullRowMetadata(), false);
    } finally {
      await conn.query('SET GLOBAL binlog_row_metadata = ?', [original['binlog_row_metadata']]);
    }
    assert.equal(await Upstream.of(upstream.uri).hasFullRowMetadata(), true);
  });
});
