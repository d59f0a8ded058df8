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
import { clusterDiagnosis } from '../../helpers/cluster-diagnosis.js';
import { etcdEndpoint, mysqlUri, requireService, uniqueName } from '../../helpers/services.js';
import { upstreamEndTs } from '../../helpers/upstream.js';
import { waitFor } from '../../helpers/wait-for.js';

const run = promisify(execFile);

/**
 * The log service (#23 item 1) against real services: three changefeeds of one upstream on one capture read the
 * binlog through one dump, one of them started far behind the others; each ends equal to the upstream; a paused
 * one does not stall the others; removing the last stops the read.
 */
describe('log service: one binlog dump per upstream on a capture, shared by its changefeeds (real cdc server, MariaDB)', { timeout: 600_000 }, () => {
  const clusterId = uniqueName('logsvc').replaceAll('_', '-');
  const statusKey = (id: string): string => `/tidb/cdc/${clusterId}/default/changefeed/status/${id}`;
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-logsvc-'));
  const cluster = new CdcServerGroup({ pd: etcdEndpoint(), clusterId, extraArgs: ['--upstream', mysqlUri('upstream')] });
  const base = uniqueName('ls');
  const dbs = { a: `${base}_a`, b: `${base}_b`, c: `${base}_c` };
  /** The tables two changefeeds replicate together (the last test). */
  const sharedDb = `${base}_d`;
  let etcd: Etcd3;
  let up: mysql.Connection;
  let down: mysql.Connection;

  const checkpoint = async (id: string): Promise<bigint> => BigInt(JSON.parse((await etcd.get(statusKey(id)).string()) ?? '{"checkpoint-ts":"0"}')['checkpoint-ts'] as string);
  const caughtUp = async (id: string, ts: bigint, timeoutMs = 120_000): Promise<void> => {
    await waitFor(async () => (await checkpoint(id)) >= ts, { timeoutMs, intervalMs: 200, what: `${id}'s checkpoint to reach ${ts}` }).catch(async (error: unknown) => {
      throw new Error(`${(error as Error).message}\n${await clusterDiagnosis(etcd, clusterId, cluster.newest().output.join(''))}`);
    });
  };
  /** Binlog dumps the upstream serves now (every reader of every changefeed and owner, of every test server). */
  const dumps = async (): Promise<number> => {
    const [rows] = await up.query<mysql.RowDataPacket[]>("SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'");
    return Number(rows[0]['n']);
  };
  const cdc = (...args: string[]): Promise<{ stdout: string }> => run(process.execPath, [CDC_BIN, ...args, '--server', cluster.newest().url]);
  const create = async (id: string, db: string, from: { startTs: bigint } | { snapshot: 'initial' }, sinkUri = mysqlUri('downstream')): Promise<void> => {
    const config = join(dir, `${id}.toml`);
    writeFileSync(config, `[filter]\nrules = ["${db}.*"]\n`);
    await cdc('changefeed', 'create', '--sink-uri', sinkUri, '-c', id, '--config', config, ...('startTs' in from ? ['--start-ts', String(from.startTs)] : ['--snapshot', from.snapshot]));
    await waitFor(async () => (await checkpoint(id)) > 0n, { what: `${id}'s status` });
  };
  /** Inserts, updates and deletes in every table of `db`, in 500-row transactions. */
  const workload = async (db: string, from: number, rows: number): Promise<void> => {
    for (let at = from; at < from + rows; at += 500) {
      const values = Array.from({ length: 500 }, (_, i) => `(${at + i}, ${(at + i) % 97}, 'row ${at + i}')`).join(',');
      for (const t of ['t1', 't2']) {
        await up.query(`INSERT INTO \`${db}\`.${t} (id, v, note) VALUES ${values}`);
        await up.query(`UPDATE \`${db}\`.${t} SET v = v + 1 WHERE id BETWEEN ${at} AND ${at + 499} AND id % 3 = 0`);
        await up.query(`DELETE FROM \`${db}\`.${t} WHERE id BETWEEN ${at} AND ${at + 499} AND id % 5 = 0`);
      }
    }
  };
  /** The log service's gauges of the server, as `name{labels}` → value. */
  const logServiceMetrics = async (): Promise<Map<string, number>> => {
    const text = await (await fetch(`${cluster.newest().url}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    const out = new Map<string, number>();
    for (const m of text.matchAll(/^(tidemark_log_service_\w+)\{upstream="[0-9a-f]{16}"(,(?:mode|decode)="(\w+)")?\} (\S+)$/gm)) out.set(m[3] === undefined ? m[1] : `${m[1]}/${m[3]}`, Number(m[4]));
    return out;
  };
  const equal = async (db: string): Promise<void> => {
    for (const t of ['t1', 't2']) {
      const sql = `SELECT COUNT(*) AS n, COALESCE(SUM(CRC32(CONCAT_WS('|', id, v, note))), 0) AS sum FROM \`${db}\`.${t}`;
      const [u] = await up.query<mysql.RowDataPacket[]>(sql);
      const [d] = await down.query<mysql.RowDataPacket[]>(sql);
      assert.deepEqual({ n: Number(d[0]['n']), sum: String(d[0]['sum']) }, { n: Number(u[0]['n']), sum: String(u[0]['sum']) }, `${db}.${t}: downstream equals upstream`);
      assert.ok(Number(u[0]['n']) > 0, `${db}.${t} has rows`);
    }
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
    for (const db of [...Object.values(dbs), sharedDb]) {
      await up.query(`DROP DATABASE IF EXISTS \`${db}\``).catch(() => undefined);
      await down.query(`DROP DATABASE IF EXISTS \`${db}\``).catch(() => undefined);
    }
    await up.end();
    await down.end();
    await etcd.delete().prefix(`/tidb/cdc/${clusterId}/`);
    etcd.close();
  });

  it('three changefeeds, one far behind: one dump once caught up, all equal to the upstream; pause does not stall the others; removing the last stops the read', async () => {
    const idle = await dumps();
    const behindFrom = await upstreamEndTs(up);
    for (const db of Object.values(dbs)) {
      await up.query(`CREATE DATABASE \`${db}\``);
      for (const t of ['t1', 't2']) await up.query(`CREATE TABLE \`${db}\`.${t} (id INT PRIMARY KEY, v INT NOT NULL, note VARCHAR(40))`);
    }
    for (const db of Object.values(dbs)) await workload(db, 1, 10_000);
    // two changefeeds from here, with the rows so far copied first; the shared read starts with them
    await create('cf-a', dbs.a, { snapshot: 'initial' });
    await create('cf-b', dbs.b, { snapshot: 'initial' });
    for (const db of Object.values(dbs)) await workload(db, 10_001, 2_000);
    let end = await upstreamEndTs(up);
    await caughtUp('cf-a', end);
    await caughtUp('cf-b', end);
    await waitFor(async () => (await dumps()) === idle + 1, { timeoutMs: 30_000, what: 'two changefeeds (processors and DDL readers) on one binlog dump' });

    // the third starts before the databases were made: all of the workload behind the shared read, which it
    // reads on its own until it reaches what the shared read holds
    await create('cf-c', dbs.c, { startTs: behindFrom });
    for (const db of Object.values(dbs)) await workload(db, 12_001, 2_000);
    end = await upstreamEndTs(up);
    for (const id of ['cf-a', 'cf-b', 'cf-c']) await caughtUp(id, end);
    await waitFor(async () => (await dumps()) === idle + 1, { timeoutMs: 30_000, what: 'the third changefeed, caught up, on the same binlog dump' });
    for (const db of Object.values(dbs)) await equal(db);
    // the metrics say so too: one read, its six readers (three processors, three owner DDL readers) all on it
    const metrics = await logServiceMetrics();
    assert.deepEqual(
      [metrics.get('tidemark_log_service_reading'), metrics.get('tidemark_log_service_readers/shared'), metrics.get('tidemark_log_service_readers/own')],
      [1, 6, 0],
      JSON.stringify([...metrics]),
    );

    // a paused changefeed holds nobody back
    await cdc('changefeed', 'pause', '-c', 'cf-a');
    const pausedAt = await checkpoint('cf-a');
    for (const db of Object.values(dbs)) await workload(db, 14_001, 2_000);
    end = await upstreamEndTs(up);
    await caughtUp('cf-b', end);
    await caughtUp('cf-c', end);
    assert.equal(await checkpoint('cf-a'), pausedAt, 'the paused changefeed stayed where it was');
    assert.ok(pausedAt < end);
    await cdc('changefeed', 'resume', '-c', 'cf-a');
    await caughtUp('cf-a', end);
    for (const db of Object.values(dbs)) await equal(db);
    await waitFor(async () => (await dumps()) === idle + 1, { timeoutMs: 30_000, what: 'the resumed changefeed back on the one binlog dump' });

    for (const id of ['cf-a', 'cf-b', 'cf-c']) await cdc('changefeed', 'remove', '-c', id);
    await waitFor(async () => (await dumps()) === idle, { timeoutMs: 30_000, what: 'the binlog dump to stop once the last changefeed is removed' });
    assert.equal((await logServiceMetrics()).get('tidemark_log_service_reading'), 0, 'the metrics show the read stopped');
  });

  it('two changefeeds of the same tables: each row built and decoded once for both, the downstream equal to the upstream', async () => {
    const db = sharedDb;
    await up.query(`CREATE DATABASE \`${db}\``);
    for (const t of ['t1', 't2']) await up.query(`CREATE TABLE \`${db}\`.${t} (id INT PRIMARY KEY, v INT NOT NULL, note VARCHAR(40))`);
    await down.query(`CREATE DATABASE \`${db}\``);
    for (const t of ['t1', 't2']) await down.query(`CREATE TABLE \`${db}\`.${t} (id INT PRIMARY KEY, v INT NOT NULL, note VARCHAR(40))`);
    const from = await upstreamEndTs(up);
    await create('cf-d-mysql', db, { startTs: from });
    await create('cf-d-blackhole', db, { startTs: from }, 'blackhole://');
    const decodes = async (): Promise<{ own: number; shared: number }> => {
      const m = await logServiceMetrics();
      return { own: m.get('tidemark_log_service_rows_decoded_total/own') ?? 0, shared: m.get('tidemark_log_service_rows_decoded_total/shared') ?? 0 };
    };
    // both processors running and on the shared read before the workload: create answers before a processor
    // starts, and rows read while only one of them was there are that one's alone (a row written past both
    // checkpoints shows both are reading; the readers' gauge that neither reads on its own)
    await up.query(`INSERT INTO \`${db}\`.t1 (id, v, note) VALUES (0, 0, 'both reading')`);
    const warm = await upstreamEndTs(up);
    await caughtUp('cf-d-mysql', warm);
    await caughtUp('cf-d-blackhole', warm);
    await waitFor(async () => (await logServiceMetrics()).get('tidemark_log_service_readers/own') === 0, { timeoutMs: 30_000, what: 'both changefeeds on the shared read' });
    const before = await decodes(); // the row above is counted: it was mounted before the checkpoints passed it
    await workload(db, 1, 3_000);
    const end = await upstreamEndTs(up);
    await caughtUp('cf-d-mysql', end);
    await caughtUp('cf-d-blackhole', end);
    await equal(db);
    // every row change of the workload mounted by both changefeeds: decoded by one, taken by the other
    const ids = Array.from({ length: 3_000 }, (_, i) => i + 1);
    const changes = 2 * (ids.length + ids.filter((id) => id % 3 === 0).length + ids.filter((id) => id % 5 === 0).length);
    let after = await decodes();
    await waitFor(async () => (after = await decodes()).own + after.shared - before.own - before.shared >= 2 * changes, { timeoutMs: 10_000, what: `the metrics to count ${2 * changes} rows mounted` });
    const own = after.own - before.own;
    const shared = after.shared - before.shared;
    assert.equal(own + shared, 2 * changes, `rows mounted: ${own} decoded, ${shared} shared`);
    assert.ok(shared > changes / 2, `most rows decoded once for both changefeeds: ${own} decoded, ${shared} shared`);
    for (const id of ['cf-d-mysql', 'cf-d-blackhole']) await cdc('changefeed', 'remove', '-c', id);
  });
});
