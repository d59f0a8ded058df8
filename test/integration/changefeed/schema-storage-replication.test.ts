import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { Etcd3 } from 'etcd3';
import mysql from 'mysql2/promise';
import { CDC_BIN, CdcServerGroup } from '../../helpers/cdc-process.js';
import { MariaDBInstance } from '../../helpers/mariadb-instance.js';
import { etcdEndpoint, mysqlUri, requireService, uniqueName } from '../../helpers/services.js';
import { upstreamEndTs } from '../../helpers/upstream.js';
import { waitFor } from '../../helpers/wait-for.js';

const run = promisify(execFile);

/** MariaDB's default: row events carry no column names, signedness, charsets or ENUM/SET members. */
const NO_LOG = ['--server-id=1', '--log-bin=mysql-bin', '--binlog-format=ROW', '--binlog-row-image=FULL', '--binlog-row-metadata=NO_LOG', '--binlog-checksum=CRC32'];

/**
 * A changefeed from an upstream without binlog_row_metadata=FULL (DESIGN §5: the mounter uses the schema
 * storage): real private MariaDB upstream, real `cdc server` processes, the mysql sink into the shared
 * downstream, `cdc diff` as the judge. The changefeed is paused, the upstream runs rows, an ALTER and more
 * rows, and a new server process resumes it: the rows before the ALTER can only be mounted with the old
 * definition, which the new process finds in etcd (a snapshot taken now would not know it).
 */
describe('replication from an upstream without binlog_row_metadata=FULL (schema storage in etcd, real servers)', { timeout: 600_000 }, () => {
  const clusterId = uniqueName('schemarep').replaceAll('_', '-');
  const id = 'no-log-feed';
  const db = uniqueName('schemarep');
  const statusKey = (feed: string): string => `/tidb/cdc/${clusterId}/default/changefeed/status/${feed}`;
  const schemaKey = `/tidb/cdc/${clusterId}/default/changefeed/schema/${id}`;
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-schemarep-'));
  let cluster: CdcServerGroup;
  let upstream: MariaDBInstance;
  let up: mysql.Connection;
  let down: mysql.Connection;
  let etcd: Etcd3;

  const cdc = (args: readonly string[]) => run(process.execPath, [CDC_BIN, ...args], { maxBuffer: 16 * 1024 * 1024 });
  const checkpoint = async (feed = id): Promise<bigint> => BigInt(JSON.parse((await etcd.get(statusKey(feed)).string()) ?? '{"checkpoint-ts":"0"}')['checkpoint-ts'] as string);
  const caughtUp = async (): Promise<void> => {
    const end = await upstreamEndTs(up);
    await waitFor(async () => (await checkpoint()) >= end, { timeoutMs: 120_000, intervalMs: 200, what: `the checkpoint to reach ${end}` }).catch((error: unknown) => {
      console.log(`# not caught up; server log tail:\n${cluster.newest().output.join('').slice(-6000)}`);
      throw error;
    });
  };
  const diff = async (): Promise<{ equal: boolean; tables: { table: string; equal: boolean }[] }> => {
    const args = ['diff', '--upstream', upstream.uri, '--downstream', mysqlUri('downstream'), '--tables', `${db}.*`, '--json'];
    try {
      return JSON.parse((await cdc(args)).stdout) as { equal: boolean; tables: { table: string; equal: boolean }[] };
    } catch (error) {
      return JSON.parse((error as { stdout: string }).stdout) as { equal: boolean; tables: { table: string; equal: boolean }[] };
    }
  };
  const row = async (sql: string): Promise<Record<string, unknown> | undefined> => (await down.query<mysql.RowDataPacket[]>(sql))[0][0];

  before(async () => {
    await requireService('etcd');
    await requireService('downstream');
    upstream = await MariaDBInstance.create(NO_LOG);
    up = await upstream.connect();
    await up.query("SET time_zone = '+00:00'");
    down = await mysql.createConnection({ uri: mysqlUri('downstream') });
    etcd = new Etcd3({ hosts: etcdEndpoint() });
    cluster = new CdcServerGroup({ pd: etcdEndpoint(), clusterId, extraArgs: ['--upstream', upstream.uri] });
    await cluster.start();
  });
  after(async () => {
    await cluster?.stopAll();
    await up?.end().catch(() => undefined);
    await upstream?.destroy();
    await down?.query(`DROP DATABASE IF EXISTS \`${db}\``).catch(() => undefined);
    await down?.end().catch(() => undefined);
    await etcd?.delete().prefix(`/tidb/cdc/${clusterId}/`);
    etcd?.close();
  });

  it('names, unsigned values, latin1 text and ENUM/SET arrive exact; a new server resumes behind an ALTER with the definition from etcd; remove deletes it', async () => {
    const [[metadata]] = await up.query<mysql.RowDataPacket[]>('SELECT @@global.binlog_row_metadata AS m');
    assert.equal(metadata?.['m'], 'NO_LOG');

    const config = join(dir, `${id}.toml`);
    writeFileSync(config, `[filter]\nrules = ["${db}.*"]\n`);
    await cdc(['changefeed', 'create', '--server', cluster.newest().url, '--sink-uri', `mysql://root@${new URL(mysqlUri('downstream')).host}/`, '-c', id, '--config', config]);
    await waitFor(async () => (await checkpoint()) > 0n, { what: 'the changefeed status' });
    // runs beside it over the same tables and is never paused: once it has caught up with the writes made while
    // the other is paused, that one would have moved too, if it could
    await cdc(['changefeed', 'create', '--server', cluster.newest().url, '--sink-uri', 'blackhole://', '-c', 'witness', '--config', config]);

    await up.query(`CREATE DATABASE \`${db}\``);
    await up.query(`CREATE TABLE \`${db}\`.t (id INT PRIMARY KEY, big BIGINT UNSIGNED, level ENUM('low','mid','high'), flags SET('a','b','c'), name VARCHAR(40) CHARACTER SET latin1, note TEXT)`);
    await up.query(`CREATE TABLE \`${db}\`.u (k VARCHAR(10) PRIMARY KEY, v INT UNSIGNED)`);
    await up.query(`INSERT INTO \`${db}\`.t VALUES (1, 18446744073709551615, 'high', 'a,c', 'Müller', 'first'), (2, 0, 'low', '', 'Ångström', NULL), (3, 9007199254740993, 'mid', 'b', 'Zoë', 'x')`);
    await up.query(`INSERT INTO \`${db}\`.u VALUES ('k1', 4294967295), ('k2', 0)`);
    await up.query(`UPDATE \`${db}\`.t SET note = 'updated', level = 'low' WHERE id = 3`);
    await up.query(`DELETE FROM \`${db}\`.u WHERE k = 'k2'`);
    await caughtUp();
    let report = await diff();
    assert.equal(report.equal, true, JSON.stringify(report));
    const first = await row(`SELECT CAST(big AS CHAR) AS big, level, flags, name FROM \`${db}\`.t WHERE id = 1`);
    assert.deepEqual({ ...first }, { big: '18446744073709551615', level: 'high', flags: 'a,c', name: 'Müller' });
    const manifest = JSON.parse((await etcd.get(schemaKey).string()) ?? 'null') as { parts: number; generation: string } | null;
    assert.ok(manifest !== null && manifest.parts >= 1, 'the owner keeps the schema storage in etcd');
    assert.ok((await etcd.get(`${schemaKey}/${manifest.generation}/0`).buffer()) !== null, 'its first part is there');

    // paused: rows, an ALTER that adds a column and renames one, more rows; the changefeed is behind all of it
    await cdc(['changefeed', 'pause', '--server', cluster.newest().url, '-c', id]);
    const pausedAt = await checkpoint();
    await up.query(`INSERT INTO \`${db}\`.t VALUES (4, 18446744073709551614, 'mid', 'a,b,c', 'Øre', 'before the alter')`);
    await up.query(`UPDATE \`${db}\`.t SET name = 'Ærø' WHERE id = 2`);
    await up.query(`ALTER TABLE \`${db}\`.t ADD COLUMN score INT NOT NULL DEFAULT 5 AFTER big, CHANGE COLUMN name full_name VARCHAR(60) CHARACTER SET latin1`);
    await up.query(`INSERT INTO \`${db}\`.t VALUES (5, 42, -7, 'high', 'b', 'Çà', 'after the alter')`);
    await up.query(`UPDATE \`${db}\`.t SET score = 9, full_name = 'Müller-Lüdenscheidt' WHERE id = 1`);
    await up.query(`INSERT INTO \`${db}\`.u VALUES ('k3', 7)`);
    const written = await upstreamEndTs(up);
    await waitFor(async () => (await checkpoint('witness')) >= written, { timeoutMs: 120_000, intervalMs: 200, what: `the witness changefeed to reach ${written}` });
    assert.equal(await checkpoint(), pausedAt, 'nothing moved while paused');
    await cdc(['changefeed', 'remove', '--server', cluster.newest().url, '-c', 'witness']);

    // a new server process: everything it knows about the old definition comes from etcd
    await cluster.newest().stop();
    await cluster.start();
    await cdc(['changefeed', 'resume', '--server', cluster.newest().url, '-c', id]);
    await caughtUp();
    report = await diff();
    assert.equal(report.equal, true, JSON.stringify(report));
    assert.deepEqual(report.tables.map((t) => t.table).sort(), [`${db}.t`, `${db}.u`]);
    const fourth = await row(`SELECT CAST(big AS CHAR) AS big, score, flags, full_name FROM \`${db}\`.t WHERE id = 4`);
    assert.deepEqual({ ...fourth }, { big: '18446744073709551614', score: 5, flags: 'a,b,c', full_name: 'Øre' });
    const fifth = await row(`SELECT score, full_name FROM \`${db}\`.t WHERE id = 5`);
    assert.deepEqual({ ...fifth }, { score: -7, full_name: 'Çà' });

    await cdc(['changefeed', 'remove', '--server', cluster.newest().url, '-c', id]);
    await waitFor(async () => (await etcd.getAll().prefix(schemaKey).keys()).length === 0, { timeoutMs: 30_000, what: 'the schema storage to be deleted from etcd' });

    // a changefeed that would start before the ALTER: its rows of t could not be mounted, so create refuses,
    // naming the table, the DDL's coordinate and the fix
    const refused = await cdc(['changefeed', 'create', '--server', cluster.newest().url, '--sink-uri', 'blackhole://', '-c', 'too-early', '--start-ts', String(pausedAt), '--config', config, '--json']).then(
      () => undefined,
      (error: { stdout: string }) => (JSON.parse(error.stdout) as { error: { code: string; message: string } }).error,
    );
    assert.ok(refused !== undefined, 'a start-ts before the ALTER is refused');
    assert.equal(refused.code, 'ErrInvalidTs');
    assert.match(refused.message, new RegExp(`is before DDL that changed ${db}\\.t \\(at mysql-bin\\.\\d+:\\d+\\).*binlog_row_metadata is NO_LOG.*start at or after mysql-bin\\.\\d+:\\d+, or set binlog_row_metadata=FULL`));
    assert.equal(await etcd.get(`/tidb/cdc/${clusterId}/default/changefeed/info/too-early`).string(), null);
  });
});
