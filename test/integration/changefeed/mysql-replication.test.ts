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
import { etcdEndpoint, mysqlUri, requireService, serviceAddress, uniqueName } from '../../helpers/services.js';
import { TcpProxy } from '../../helpers/tcp-proxy.js';
import { typeFamilies } from '../../helpers/type-matrix.js';
import { waitFor } from '../../helpers/wait-for.js';
import { clusterDiagnosis } from '../../helpers/cluster-diagnosis.js';
import { upstreamEndTs } from '../../helpers/upstream.js';
import { decodeReference, readTopicRecords, type ReferenceRow } from '../../helpers/kafka-reference-decoders.js';

const run = promisify(execFile);

interface DiffReport {
  equal: boolean;
  tables: { table: string; equal: boolean; upstreamRows?: number; differences?: { kind: string; key: unknown[] }[]; problem?: string }[];
}

/**
 * MySQL replication end to end (the MySQL sink issue's acceptance): real upstream and downstream MariaDB,
 * real `cdc server` processes, the mysql sink plugin, and `cdc diff` as the judge. The downstream is reached
 * through a TCP proxy, so an outage can be simulated without stopping the shared server.
 */
describe('MySQL replication end to end (real cdc server, upstream and downstream MariaDB)', { timeout: 900_000 }, () => {
  const clusterId = uniqueName('mysqlrep').replaceAll('_', '-');
  const statusKey = (id: string): string => `/tidb/cdc/${clusterId}/default/changefeed/status/${id}`;
  const infoKey = (id: string): string => `/tidb/cdc/${clusterId}/default/changefeed/info/${id}`;
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-mysqlrep-'));
  const cluster = new CdcServerGroup({ pd: etcdEndpoint(), clusterId, extraArgs: ['--upstream', mysqlUri('upstream')] });
  let etcd: Etcd3;
  let up: mysql.Connection;
  let down: mysql.Connection;
  let proxy: TcpProxy;

  const endTs = (): Promise<bigint> => upstreamEndTs(up);
  const info = async (id: string): Promise<any> => JSON.parse((await etcd.get(infoKey(id)).string()) ?? 'null');
  const checkpoint = async (id: string): Promise<bigint> => BigInt(JSON.parse((await etcd.get(statusKey(id)).string()) ?? '{"checkpoint-ts":"0"}')['checkpoint-ts'] as string);
  const caughtUp = (id: string, ts: bigint, timeoutMs = 180_000) =>
    waitFor(async () => (await checkpoint(id)) >= ts, { timeoutMs, intervalMs: 200, what: `${id}'s checkpoint to reach ${ts}` }).catch(async (error: unknown) => {
      const log = cluster.newest().output.join('');
      console.log(`# ${id} did not catch up; server log tail:\n${log.slice(-5000)}`);
      // the state goes into the error itself: CI shows a failing test's error whole, not always what it printed
      throw new Error(`${(error as Error).message}\n${await clusterDiagnosis(etcd, clusterId, log)}`);
    });
  const create = async (id: string, db: string, sinkUri = `mysql://root@127.0.0.1:${proxy.port}/`): Promise<void> => {
    const config = join(dir, `${id}.toml`);
    writeFileSync(config, `[filter]\nrules = ["${db}.*"]\n`);
    await run(process.execPath, [CDC_BIN, 'changefeed', 'create', '--server', cluster.newest().url, '--sink-uri', sinkUri, '-c', id, '--config', config]);
    await waitFor(async () => (await checkpoint(id)) > 0n, { what: `${id}'s status` });
  };
  const diff = async (db: string): Promise<{ code: number; report: DiffReport }> => {
    try {
      const { stdout } = await run(process.execPath, [CDC_BIN, 'diff', '--upstream', mysqlUri('upstream'), '--downstream', mysqlUri('downstream'), '--tables', `${db}.*`, '--json'], { maxBuffer: 64 * 1024 * 1024 });
      return { code: 0, report: JSON.parse(stdout) as DiffReport };
    } catch (error) {
      const e = error as { code: number; stdout: string };
      return { code: e.code, report: JSON.parse(e.stdout) as DiffReport };
    }
  };
  /** A mixed workload: per table inserts, then updates and deletes of some of them, in 1,000-row transactions. */
  const workload = async (db: string, tables: readonly string[], rowsPerTable: number, middle?: () => Promise<void>): Promise<number> => {
    let changes = 0;
    const affected = (r: unknown): number => (r as mysql.ResultSetHeader).affectedRows;
    for (let from = 1; from <= rowsPerTable; from += 1000) {
      const to = Math.min(rowsPerTable, from + 999);
      for (const t of tables) {
        const [ins] = await up.query(`INSERT INTO \`${db}\`.${t} (id, v, note) SELECT seq, seq % 1000, CONCAT('row ', seq) FROM \`${db}\`.seq_${from}_to_${to}`);
        changes += affected(ins);
        const [upd] = await up.query(`UPDATE \`${db}\`.${t} SET v = v + 1, note = CONCAT(note, ' u') WHERE id BETWEEN ${from} AND ${to} AND id % 3 = 0`);
        changes += affected(upd);
        const [del] = await up.query(`DELETE FROM \`${db}\`.${t} WHERE id BETWEEN ${from} AND ${to} AND id % 3 = 1`);
        changes += affected(del);
      }
      if (middle !== undefined && from <= rowsPerTable / 2 && from + 1000 > rowsPerTable / 2) await middle();
    }
    return changes;
  };

  before(async () => {
    await requireService('etcd');
    await requireService('upstream');
    await requireService('downstream');
    await requireService('kafka');
    etcd = new Etcd3({ hosts: etcdEndpoint() });
    up = await mysql.createConnection({ uri: mysqlUri('upstream'), multipleStatements: true, timezone: 'Z' });
    await up.query("SET time_zone = '+00:00', sql_mode = ''");
    down = await mysql.createConnection({ uri: mysqlUri('downstream') });
    const { host, port } = serviceAddress('downstream');
    proxy = await TcpProxy.start(host, port);
    await cluster.start();
  });
  after(async () => {
    await cluster.stopAll();
    await proxy.close();
    await up.end();
    await down.end();
    await etcd.delete().prefix(`/tidb/cdc/${clusterId}/`);
    etcd.close();
  });

  it('500k mixed changes over 20 tables with ALTER TABLE in the middle: cdc diff equal; a hand edit downstream is reported', async () => {
    const db = uniqueName('myrep');
    await create('bulk', db);
    await up.query(`CREATE DATABASE \`${db}\``);
    const tables = Array.from({ length: 20 }, (_, i) => `t${i}`);
    for (const t of tables) await up.query(`CREATE TABLE \`${db}\`.${t} (id INT PRIMARY KEY, v INT NOT NULL, note VARCHAR(60))`);
    const started = Date.now();
    const changes = await workload(db, tables, 15_000, async () => {
      await up.query(`ALTER TABLE \`${db}\`.t0 ADD COLUMN extra INT NOT NULL DEFAULT 7`);
      await up.query(`UPDATE \`${db}\`.t0 SET extra = id % 13 WHERE id % 2 = 0`);
    });
    assert.ok(changes >= 500_000, `the workload made ${changes} row changes`);
    const end = await endTs();
    await caughtUp('bulk', end);
    console.log(`# mysql bulk: ${changes} row changes replicated in ${((Date.now() - started) / 1000).toFixed(1)} s (workload included)`);
    const { code, report } = await diff(db);
    assert.equal(code, 0, JSON.stringify(report.tables.filter((t) => !t.equal)).slice(0, 2000));
    assert.equal(report.equal, true);
    assert.equal(report.tables.length, 20);
    const [cols] = await down.query<mysql.RowDataPacket[]>(`SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 't0' ORDER BY ORDINAL_POSITION`, [db]);
    assert.deepEqual(cols.map((c) => c['COLUMN_NAME']), ['id', 'v', 'note', 'extra'], 'the ALTER reached the downstream');

    await down.query(`UPDATE \`${db}\`.t5 SET note = 'edited by hand' WHERE id = 3000`);
    const edited = await diff(db);
    assert.equal(edited.code, 1);
    const t5 = edited.report.tables.find((t) => t.table === `${db}.t5`)!;
    assert.deepEqual(t5.differences, [{ kind: 'changed', key: [3000] }]);
  });

  it('a 20,000-row upstream transaction lands downstream as one transaction: a reader never sees part of it', async () => {
    const db = uniqueName('myrep');
    await create('atomic', db);
    await up.query(`CREATE DATABASE \`${db}\``);
    await up.query(`CREATE TABLE \`${db}\`.t (id INT PRIMARY KEY, v INT NOT NULL, note VARCHAR(60))`);
    await caughtUp('atomic', await endTs());
    const reader = await mysql.createConnection({ uri: mysqlUri('downstream') });
    const seen = new Set<string>();
    let reading = true;
    const poller = (async () => {
      while (reading) {
        const [[row]] = await reader.query<mysql.RowDataPacket[]>(`SELECT COUNT(*) AS n, COALESCE(SUM(v), 0) AS s FROM \`${db}\`.t`);
        seen.add(`${Number(row['n'])}/${Number(row['s'])}`);
        if (seen.has('20000/40000')) break;
      }
    })();
    try {
      await up.query(`INSERT INTO \`${db}\`.t (id, v, note) SELECT seq, 1, CONCAT('row ', seq) FROM \`${db}\`.seq_1_to_20000`);
      await up.query(`UPDATE \`${db}\`.t SET v = 2`);
      await caughtUp('atomic', await endTs());
      await waitFor(() => seen.has('20000/40000'), { timeoutMs: 10_000, what: 'the reader to see the update' });
    } finally {
      reading = false;
      await poller;
      await reader.end();
    }
    // states a reader may see: nothing, all 20,000 inserted (v = 1), all updated (v = 2); never a part of either
    for (const state of seen) assert.ok(['0/0', '20000/20000', '20000/40000'].includes(state), `a reader saw ${state} (rows/sum of v): part of a transaction`);
    assert.ok(seen.size >= 2, `the reader saw the table change (${[...seen].join(', ')})`);
    console.log(`# atomic: states seen downstream ${JSON.stringify([...seen])}`);
    // every row as upstream, the ones past the first 16,384 too (they reach the sorter packed, as one piece)
    const { code, report } = await diff(db);
    assert.equal(code, 0, JSON.stringify(report.tables.filter((t) => !t.equal)));
  });

  it('the type matrix round-trips into the downstream exactly (cdc diff equal)', async () => {
    const db = uniqueName('mytypes');
    await create('types', db);
    await up.query(`CREATE DATABASE \`${db}\``);
    for (const [f, family] of typeFamilies.entries()) {
      const table = `\`${db}\`.f${f}`;
      await up.query(`CREATE TABLE ${table} (id INT PRIMARY KEY, ${family.columns})`);
      const width = family.rows[0][1].length;
      for (const [r, [sql]] of family.rows.entries()) await up.query(`INSERT INTO ${table} VALUES (${r + 1}, ${sql})`);
      await up.query(`INSERT INTO ${table} VALUES (0, ${Array.from({ length: width }, () => 'NULL').join(', ')})`);
      await up.query(`UPDATE ${table} SET id = id + 100 WHERE id = 1`);
    }
    await caughtUp('types', await endTs());
    const { code, report } = await diff(db);
    assert.equal(code, 0, JSON.stringify(report.tables.filter((t) => !t.equal)));
    assert.equal(report.tables.length, typeFamilies.length);
  });

  it('a table renamed while the changefeed is paused keeps the rows written before the RENAME (tables as of the checkpoint)', async () => {
    const db = uniqueName('myren');
    await create('rename', db);
    // runs beside it over the same tables and is never paused: once it has caught up with the writes below,
    // the paused changefeed would have moved too, if it could
    await create('rename-witness', db, 'blackhole://');
    await up.query(`CREATE DATABASE \`${db}\``);
    await up.query(`CREATE TABLE \`${db}\`.t (id INT PRIMARY KEY, v INT NOT NULL)`);
    await up.query(`INSERT INTO \`${db}\`.t VALUES (1, 1), (2, 2)`);
    await caughtUp('rename', await endTs());
    await run(process.execPath, [CDC_BIN, 'changefeed', 'pause', '--server', cluster.newest().url, '-c', 'rename']);
    const pausedAt = await checkpoint('rename');
    // while paused: rows under the old name, the RENAME, rows under the new name
    await up.query(`INSERT INTO \`${db}\`.t VALUES (3, 3), (4, 4)`);
    await up.query(`UPDATE \`${db}\`.t SET v = 20 WHERE id = 2`);
    await up.query(`RENAME TABLE \`${db}\`.t TO \`${db}\`.t2`);
    await up.query(`INSERT INTO \`${db}\`.t2 VALUES (5, 5)`);
    await caughtUp('rename-witness', await endTs());
    assert.equal(await checkpoint('rename'), pausedAt, 'a paused changefeed does not move');
    await run(process.execPath, [CDC_BIN, 'changefeed', 'remove', '--server', cluster.newest().url, '-c', 'rename-witness']);
    await run(process.execPath, [CDC_BIN, 'changefeed', 'resume', '--server', cluster.newest().url, '-c', 'rename']);
    await caughtUp('rename', await endTs());
    // the owner must schedule `t` (the name at the checkpoint), not only `t2` (the name now): otherwise the rows
    // written under the old name while paused are never read, and the RENAME carries the table over without them
    const [rows] = await down.query<mysql.RowDataPacket[]>(`SELECT id, v FROM \`${db}\`.t2 ORDER BY id`);
    assert.deepEqual(rows.map((r) => [r['id'], r['v']]), [[1, 1], [2, 20], [3, 3], [4, 4], [5, 5]]);
    const { code, report } = await diff(db);
    assert.equal(code, 0, JSON.stringify(report.tables.filter((t) => !t.equal)));
    assert.deepEqual(report.tables.map((t) => t.table), [`${db}.t2`]);
  });

  it('kill -9 of the capture during a saturating run into MySQL and Kafka at once: cdc diff equal, the topic rebuilds the upstream, no duplicate-key errors', async () => {
    const db = uniqueName('mykill');
    const topic = uniqueName('tm-kill').replaceAll('_', '-');
    const { host, port } = serviceAddress('kafka');
    await create('kill', db);
    await create('killkafka', db, `kafka://${host}:${port}/${topic}?protocol=canal-json&partition-num=3&enable-tidb-extension=true`);
    await up.query(`CREATE DATABASE \`${db}\``);
    const tables = ['a', 'b', 'c', 'd'];
    for (const t of tables) await up.query(`CREATE TABLE \`${db}\`.${t} (id INT PRIMARY KEY, v INT NOT NULL, note VARCHAR(60))`);
    let killed = false;
    // the workload writes as fast as the upstream takes it (1,000-row transactions), both changefeeds reading it
    await workload(db, tables, 40_000, async () => {
      const victim = cluster.newest();
      victim.kill('SIGKILL');
      await victim.exited;
      killed = true;
      await cluster.start();
    });
    assert.ok(killed);
    const end = await endTs();
    await caughtUp('kill', end);
    await caughtUp('killkafka', end);
    const { code, report } = await diff(db);
    assert.equal(code, 0, JSON.stringify(report.tables.filter((t) => !t.equal)).slice(0, 2000));
    assert.equal((await info('kill')).state, 'normal');
    assert.doesNotMatch(cluster.newest().output.join(''), /Duplicate entry/, 'the replay after the restart caused no duplicate-key error');
    // Kafka: replayed from the checkpoint after the kill, a key's changes may come twice, never out of order; applied
    // in partition order, the messages rebuild every table as the upstream has it
    const columns = [
      { name: 'id', mysqlType: 'int', primaryKey: true, nullable: false },
      { name: 'v', mysqlType: 'int', primaryKey: false, nullable: false },
      { name: 'note', mysqlType: 'varchar(60)', primaryKey: false, nullable: true },
    ];
    const states = new Map<string, Map<string, ReferenceRow>>();
    for (const m of await readTopicRecords([`${host}:${port}`], topic, 60_000)) {
      for (const e of decodeReference('canal-json', m.key, m.value, { columnTypes: () => columns })) {
        if (e.kind !== 'row' || e.schema !== db) continue;
        let state = states.get(e.table);
        if (state === undefined) states.set(e.table, (state = new Map()));
        if (e.before) state.delete(e.before['id']!);
        if (e.after) state.set(e.after['id']!, e.after);
      }
    }
    for (const t of tables) {
      const [rows] = await up.query<mysql.RowDataPacket[]>(`SELECT id, v, note FROM \`${db}\`.${t} ORDER BY id`);
      const want = new Map(rows.map((r) => [String(r['id']), { id: String(r['id']), v: String(r['v']), note: r['note'] === null ? null : String(r['note']) }]));
      const got = states.get(t) ?? new Map<string, ReferenceRow>();
      assert.equal(got.size, want.size, `kafka: ${t} rebuilt has ${got.size} rows, the upstream ${want.size}`);
      assert.deepEqual(new Map([...got].sort()), new Map([...want].sort()), `kafka: ${t} rebuilt from the messages equals the upstream`);
    }
  });

  it('the downstream unreachable for 60 s mid-workload: warning, retries, catches up; cdc diff equal', async () => {
    const db = uniqueName('myout');
    await create('outage', db);
    await up.query(`CREATE DATABASE \`${db}\``);
    const tables = ['a', 'b'];
    for (const t of tables) await up.query(`CREATE TABLE \`${db}\`.${t} (id INT PRIMARY KEY, v INT NOT NULL, note VARCHAR(60))`);
    const states = new Set<string>();
    await workload(db, tables, 20_000, async () => {
      proxy.cut();
      // the outage's length is this test's subject: 60 s of writes with the downstream unreachable
      const cutAt = Date.now();
      while (Date.now() - cutAt < 60_000) {
        await up.query(`UPDATE \`${db}\`.a SET v = v + 1 WHERE id % 10 = 0`);
        states.add((await info('outage')).state as string);
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
      proxy.restore();
    });
    assert.ok(states.has('pending') || states.has('warning'), `the changefeed showed the outage (states seen: ${[...states].join(', ')})`);
    await caughtUp('outage', await endTs(), 240_000);
    const { code, report } = await diff(db);
    assert.equal(code, 0, JSON.stringify(report.tables.filter((t) => !t.equal)).slice(0, 2000));
    await waitFor(async () => (await info('outage')).state === 'normal', { timeoutMs: 60_000, what: 'normal again' });
  });
});
