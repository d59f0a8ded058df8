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
import { etcdEndpoint, mysqlUri, requireService, uniqueName } from '../../helpers/services.js';
import { waitFor } from '../../helpers/wait-for.js';
import { upstreamEndTs } from '../../helpers/upstream.js';

const run = promisify(execFile);

/**
 * `changefeed create --snapshot schema` (the snapshot issue, its first part): the databases and tables the filter
 * selects are created in the sink from their upstream definitions before the changefeed exists, and the binlog
 * streams from that point. Real cdc server, upstream and downstream MariaDB; the downstream starts without them.
 */
describe('changefeed create --snapshot schema (real cdc server, upstream and downstream MariaDB)', { timeout: 300_000 }, () => {
  const clusterId = uniqueName('snapschema').replaceAll('_', '-');
  const statusKey = (id: string): string => `/tidb/cdc/${clusterId}/default/changefeed/status/${id}`;
  const infoKey = (id: string): string => `/tidb/cdc/${clusterId}/default/changefeed/info/${id}`;
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-snapschema-'));
  const cluster = new CdcServerGroup({ pd: etcdEndpoint(), clusterId, extraArgs: ['--upstream', mysqlUri('upstream')] });
  let etcd: Etcd3;
  let up: mysql.Connection;
  let down: mysql.Connection;
  const dbs: string[] = [];

  const checkpoint = async (id: string): Promise<bigint> => BigInt(JSON.parse((await etcd.get(statusKey(id)).string()) ?? '{"checkpoint-ts":"0"}')['checkpoint-ts'] as string);
  const caughtUp = async (id: string): Promise<void> => {
    const end = await upstreamEndTs(up);
    await waitFor(async () => (await checkpoint(id)) >= end, { timeoutMs: 120_000, intervalMs: 200, what: `${id}'s checkpoint to reach ${end}` }).catch(async (error: unknown) => {
      console.log(`# ${id}: ${await etcd.get(infoKey(id)).string()}\n# server log tail:\n${cluster.newest().output.join('').slice(-4000)}`);
      throw error;
    });
  };
  /** `cdc changefeed create`; the failure's exit code and stderr when it fails. */
  const create = async (id: string, rules: readonly string[], extra: readonly string[] = [], configText = ''): Promise<{ ok: boolean; stderr: string }> => {
    const config = join(dir, `${id}.toml`);
    writeFileSync(config, `${configText}[filter]\nrules = ${JSON.stringify(rules)}\n`);
    try {
      await run(process.execPath, [CDC_BIN, 'changefeed', 'create', '--server', cluster.newest().url, '--sink-uri', mysqlUri('downstream'), '-c', id, '--config', config, ...extra]);
      return { ok: true, stderr: '' };
    } catch (error) {
      return { ok: false, stderr: (error as { stderr: string }).stderr };
    }
  };
  const showCreate = async (conn: mysql.Connection, db: string, table: string): Promise<string | undefined> => {
    const [rows] = await conn.query<mysql.RowDataPacket[]>(`SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`, [db, table]);
    if (Number(rows[0]['n']) === 0) return undefined;
    const [def] = await conn.query<mysql.RowDataPacket[]>(`SHOW CREATE TABLE \`${db}\`.\`${table}\``);
    return String(def[0]['Create Table']).replace(/ AUTO_INCREMENT=\d+/, '');
  };
  const rowsOf = async (conn: mysql.Connection, sql: string): Promise<unknown[]> => {
    const [rows] = await conn.query<mysql.RowDataPacket[]>({ sql, rowsAsArray: true, dateStrings: true, bigNumberStrings: true, supportBigNumbers: true });
    return rows;
  };

  before(async () => {
    await requireService('etcd');
    await requireService('upstream');
    await requireService('downstream');
    etcd = new Etcd3({ hosts: etcdEndpoint() });
    up = await mysql.createConnection({ uri: mysqlUri('upstream') });
    down = await mysql.createConnection({ uri: mysqlUri('downstream') });
    await cluster.start();
  });
  after(async () => {
    await cluster.stopAll();
    for (const db of dbs) {
      await up.query(`DROP DATABASE IF EXISTS \`${db}\``);
      await down.query(`DROP DATABASE IF EXISTS \`${db}\``);
    }
    await up.end();
    await down.end();
    await etcd.delete().prefix(`/tidb/cdc/${clusterId}/`);
    etcd.close();
  });

  it('creates the selected tables downstream as the upstream defines them, then streams the changes after that point', async () => {
    const db = uniqueName('snap');
    dbs.push(db);
    await up.query(`CREATE DATABASE \`${db}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
    await up.query(`CREATE TABLE \`${db}\`.a (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(40) NOT NULL DEFAULT 'x', amount DECIMAL(12,2) COMMENT 'money', UNIQUE KEY uk_name (name), KEY idx_amount (amount)) ENGINE=InnoDB`);
    await up.query(`CREATE TABLE \`${db}\`.b (k1 INT NOT NULL, k2 VARCHAR(10) CHARACTER SET latin1 NOT NULL, v TEXT, PRIMARY KEY (k1, k2))`);
    await up.query(`CREATE TABLE \`${db}\`.c (x INT NOT NULL, y DATETIME(3), UNIQUE KEY uk_x (x))`);
    await up.query(`CREATE TABLE \`${db}\`.skip_me (id INT PRIMARY KEY)`);
    await up.query(`INSERT INTO \`${db}\`.a (name, amount) VALUES ('old1', 1.5), ('old2', 2.5)`);
    assert.equal(await showCreate(down, db, 'a'), undefined, 'the downstream starts without the tables');

    const created = await create('schema', [`${db}.*`, `!${db}.skip_me`], ['--snapshot', 'schema']);
    assert.ok(created.ok, created.stderr);
    // the definitions are there when create returns, before any row
    for (const t of ['a', 'b', 'c']) assert.equal(await showCreate(down, db, t), await showCreate(up, db, t), `${db}.${t} downstream is defined as upstream`);
    assert.equal(await showCreate(down, db, 'skip_me'), undefined, 'a table the filter leaves out is not created');
    const [charset] = await down.query<mysql.RowDataPacket[]>(`SELECT DEFAULT_CHARACTER_SET_NAME AS cs, DEFAULT_COLLATION_NAME AS co FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?`, [db]);
    assert.deepEqual([charset[0]['cs'], charset[0]['co']], ['utf8mb4', 'utf8mb4_unicode_ci'], 'the database is created with the upstream\'s character set');

    // changes after the snapshot point stream into the new tables
    await up.query(`INSERT INTO \`${db}\`.a (name, amount) VALUES ('new1', 10.25), ('new2', NULL)`);
    await up.query(`INSERT INTO \`${db}\`.b VALUES (1, 'x', 'text ü'), (2, 'y', NULL)`);
    await up.query(`INSERT INTO \`${db}\`.c VALUES (7, '2026-12-04 10:11:12.345'), (8, NULL)`);
    await up.query(`UPDATE \`${db}\`.b SET v = 'changed' WHERE k1 = 2`);
    await caughtUp('schema');
    assert.deepEqual(await rowsOf(down, `SELECT * FROM \`${db}\`.a ORDER BY id`), await rowsOf(up, `SELECT * FROM \`${db}\`.a WHERE name LIKE 'new%' ORDER BY id`), 'a: the rows written after the snapshot, not the ones before it');
    assert.deepEqual(await rowsOf(down, `SELECT * FROM \`${db}\`.b ORDER BY k1`), await rowsOf(up, `SELECT * FROM \`${db}\`.b ORDER BY k1`));
    assert.deepEqual(await rowsOf(down, `SELECT * FROM \`${db}\`.c ORDER BY x`), await rowsOf(up, `SELECT * FROM \`${db}\`.c ORDER BY x`));
  });

  it('leaves a table that exists downstream as it is, and says so', async () => {
    const db = uniqueName('snapkeep');
    dbs.push(db);
    await up.query(`CREATE DATABASE \`${db}\``);
    await up.query(`CREATE TABLE \`${db}\`.t (id INT PRIMARY KEY, v INT)`);
    await down.query(`CREATE DATABASE \`${db}\``);
    await down.query(`CREATE TABLE \`${db}\`.t (id INT PRIMARY KEY, v INT, extra INT NOT NULL DEFAULT 7)`);
    await down.query(`INSERT INTO \`${db}\`.t VALUES (100, 1, 1)`);
    const created = await create('keep', [`${db}.*`], ['--snapshot', 'schema']);
    assert.ok(created.ok, created.stderr);
    assert.match((await showCreate(down, db, 't'))!, /`extra` int\(11\) NOT NULL DEFAULT 7/, 'the downstream definition is kept');
    await up.query(`INSERT INTO \`${db}\`.t VALUES (1, 10)`);
    await caughtUp('keep');
    assert.deepEqual(await rowsOf(down, `SELECT id, v, extra FROM \`${db}\`.t ORDER BY id`), [[1, 10, 7], [100, 1, 1]]);
    assert.match(cluster.newest().output.join(''), /DDL already applied downstream \(a replay after a restart, or a schema snapshot of a table that exists there\): left as it is/);
  });

  it('refuses bad input with an error that names the value, and creates nothing', async () => {
    const db = uniqueName('snapbad');
    dbs.push(db);
    await up.query(`CREATE DATABASE \`${db}\``);
    await up.query(`CREATE TABLE \`${db}\`.t (id INT PRIMARY KEY)`);
    const cases: [string, readonly string[], readonly string[], string, RegExp][] = [
      ['bad-mode', [`${db}.*`], ['--snapshot', 'everything'], '', /Expected --snapshot=everything to be one of: never, schema, initial/],
      ['bad-toml-mode', [`${db}.*`], [], '[snapshot]\nmode = "all"\n', /ErrConfigInvalid: invalid value for "snapshot.mode" in the changefeed config: "all" is not a snapshot mode; allowed: never, schema, initial/],
      ['bad-chunk', [`${db}.*`], ['--snapshot', 'initial'], '[snapshot]\nchunk-rows = 0\n', /ErrConfigInvalid: invalid value for "snapshot.chunk-rows" in the changefeed config: must be at least 1 row per chunk/],
      ['bad-initial-filter', [`${db}_nothing.*`], ['--snapshot', 'initial'], '', new RegExp(`ErrInvalidArgument: --snapshot initial: the filter rules \\["${db}_nothing\\.\\*"\\] select no table of the upstream`)],
      ['bad-start', [`${db}.*`], ['--snapshot', 'schema', '--start-ts', '1'], '', /ErrInvalidArgument: --snapshot schema starts the changefeed where the schema is copied \(the upstream's end of binlog\); it cannot be combined with --start-ts 1/],
      ['bad-filter', [`${db}_nothing.*`], ['--snapshot', 'schema'], '', new RegExp(`ErrInvalidArgument: --snapshot schema: the filter rules \\["${db}_nothing\\.\\*"\\] select no table of the upstream`)],
    ];
    for (const [id, rules, extra, configText, pattern] of cases) {
      const result = await create(id, rules, extra, configText);
      assert.equal(result.ok, false, `${id} was accepted`);
      assert.match(result.stderr, pattern, id);
      assert.equal(await etcd.get(infoKey(id)).string(), null, `${id}: no changefeed was created`);
    }
    assert.equal(await showCreate(down, db, 't'), undefined, 'nothing was written downstream');
  });
});
