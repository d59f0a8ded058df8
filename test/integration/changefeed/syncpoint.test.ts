import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { Etcd3 } from 'etcd3';
import mysql from 'mysql2/promise';
import { CDC_BIN, CdcServerProcess, listCaptures } from '../../helpers/cdc-process.js';
import { etcdEndpoint, mysqlUri, requireService, uniqueName } from '../../helpers/services.js';
import { waitFor } from '../../helpers/wait-for.js';
import { upstreamEndTs } from '../../helpers/upstream.js';

const run = promisify(execFile);
const FIXTURE = new URL('../../fixtures/plugins/sink-file', import.meta.url).pathname;
const TABLES = 6;

interface SyncpointLine {
  ts: string;
  time: number;
  lines: Record<string, number>;
}

/**
 * Syncpoints are barriers across captures (the changefeeds issue, DESIGN §1): with `enable-sync-point`, every
 * table on every capture stops at the last commit before a multiple of `sync-point-interval`, and only then
 * does the owner write the syncpoint. The file sink records, at each syncpoint, how many lines each table
 * file holds (whichever capture wrote them): exactly the rows up to the syncpoint's ts must be there, none
 * after. A second changefeed into the real downstream MariaDB writes its syncpoints to tidb_cdc.syncpoint_v1.
 */
describe('syncpoints: a barrier across captures, written by the owner (real cdc servers)', { timeout: 240_000 }, () => {
  const home = mkdtempSync(join(tmpdir(), 'tidemark-syncpoint-'));
  const env = { ...process.env, XDG_DATA_HOME: join(home, 'data'), XDG_CACHE_HOME: join(home, 'cache'), XDG_CONFIG_HOME: join(home, 'config') };
  const clusterId = uniqueName('syncpoint').replaceAll('_', '-');
  const statusKey = (id: string): string => `/tidb/cdc/${clusterId}/default/changefeed/status/${id}`;
  const db = uniqueName('syncpoint');
  const out = join(home, 'out');
  const servers: CdcServerProcess[] = [];
  const mysqlFeed = `${clusterId}-mysql`.slice(0, 60);
  let etcd: Etcd3;
  let upstream: mysql.Connection;
  let downstream: mysql.Connection;

  const checkpoint = async (id: string): Promise<bigint> => BigInt(JSON.parse((await etcd.get(statusKey(id)).string()) ?? '{"checkpoint-ts":"0"}')['checkpoint-ts'] as string);
  const syncpoints = (): SyncpointLine[] => {
    const file = join(out, '_syncpoints.jsonl');
    return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as SyncpointLine) : [];
  };
  const downstreamSyncpoints = async (): Promise<mysql.RowDataPacket[]> => {
    try {
      const [rows] = await downstream.query<mysql.RowDataPacket[]>('SELECT primary_ts, secondary_ts FROM tidb_cdc.syncpoint_v1 WHERE changefeed = ?', [mysqlFeed]);
      return rows;
    } catch {
      return []; // the table is created with the first syncpoint
    }
  };

  before(async () => {
    await requireService('etcd');
    await requireService('upstream');
    await requireService('downstream');
    etcd = new Etcd3({ hosts: etcdEndpoint() });
    upstream = await mysql.createConnection({ uri: mysqlUri('upstream') });
    downstream = await mysql.createConnection({ uri: mysqlUri('downstream') });
    await run(process.execPath, [CDC_BIN, 'plugins', 'link', '--no-install', FIXTURE], { env });
    for (let i = 0; i < 2; i++) {
      const server = await CdcServerProcess.start({ pd: etcdEndpoint(), clusterId, extraArgs: ['--upstream', mysqlUri('upstream')], env });
      servers.push(server);
      await server.waitHealthy();
    }
  });
  after(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    await upstream.query(`DROP DATABASE IF EXISTS \`${db}\``);
    await upstream.end();
    await downstream.query(`DROP DATABASE IF EXISTS \`${db}\``);
    await downstream.query('DELETE FROM tidb_cdc.syncpoint_v1 WHERE changefeed = ?', [mysqlFeed]).catch(() => undefined);
    await downstream.end();
    await etcd.delete().prefix(`/tidb/cdc/${clusterId}/`);
    etcd.close();
  });

  it('at every syncpoint each table holds exactly its rows up to the syncpoint ts, though its tables run on two captures', async () => {
    const config = join(home, 'cf.toml');
    writeFileSync(config, `enable-sync-point = true\nsync-point-interval = "30s"\n[filter]\nrules = ["${db}.*"]\n`);
    for (const [id, sink] of [['cf', `file://${out}`], [mysqlFeed, `mysql://root@${new URL(mysqlUri('downstream')).host}/`]]) {
      await run(process.execPath, [CDC_BIN, 'changefeed', 'create', '--server', servers[0].url, '--sink-uri', sink, '-c', id, '--config', config], { env });
    }
    // created after the changefeeds: the CREATE statements reach both sinks as DDL
    await upstream.query(`CREATE DATABASE \`${db}\``);
    for (let i = 0; i < TABLES; i++) await upstream.query(`CREATE TABLE \`${db}\`.t${i} (id INT PRIMARY KEY, v INT NOT NULL)`);

    // rows keep coming until both changefeeds passed a syncpoint (at most two intervals)
    let n = 0;
    let writing = true;
    /** The end of binlog after the first row: a syncpoint at or past it has rows before it. */
    let firstRowTs: bigint | undefined;
    const writer = (async () => {
      while (writing) {
        await upstream.query(`INSERT INTO \`${db}\`.t${n % TABLES} VALUES (?, ?)`, [n, n]);
        if (n === 0) firstRowTs = await upstreamEndTs(upstream);
        n++;
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    // syncpoints fall on multiples of the interval by the clock: one may come before the first row is written
    const pastFirstRow = (ts: unknown): boolean => firstRowTs !== undefined && BigInt(String(ts)) >= firstRowTs;
    try {
      await waitFor(async () => syncpoints().some((sp) => pastFirstRow(sp.ts)) && (await downstreamSyncpoints()).some((r) => pastFirstRow(r['primary_ts'])), {
        timeoutMs: 100_000,
        intervalMs: 500,
        what: 'a syncpoint after the first row in both sinks',
      });
      // some rows after the syncpoint, so "nothing after it was written before it" is tested
      const after = n + 50;
      await waitFor(() => n >= after, { what: 'rows after the syncpoint' });
    } finally {
      writing = false;
      await writer;
    }
    const end = await upstreamEndTs(upstream);
    await waitFor(async () => (await checkpoint('cf')) >= end && (await checkpoint(mysqlFeed)) >= end, { timeoutMs: 60_000, what: 'both checkpoints to pass the writes' });

    // the file changefeed's tables were on both captures
    const [{ items }, captures] = await Promise.all([servers[0].api<{ items: { table: string; capture_id: string }[] }>('/api/v2/changefeeds/cf/tables'), listCaptures(servers[0])]);
    assert.equal(captures.length, 2);
    assert.equal(new Set(items.map((t) => t.capture_id)).size, 2, `tables on both captures: ${JSON.stringify(items)}`);

    let checked = 0;
    let bothSides = 0;
    const sides: string[] = [];
    for (const sp of syncpoints()) {
      const ts = BigInt(sp.ts);
      let before = 0;
      let afterRows = 0;
      for (let i = 0; i < TABLES; i++) {
        const name = `${db}.t${i}.jsonl`;
        const lines = readFileSync(join(out, name), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { ts: string; kind?: string });
        const held = sp.lines[name] ?? 0;
        lines.forEach((line, at) => {
          if (line.kind === undefined) return; // the CREATE TABLE line
          if (at < held) assert.ok(BigInt(line.ts) <= ts, `t${i}: a row at ts ${line.ts} was written before the syncpoint at ${ts}`);
          else assert.ok(BigInt(line.ts) > ts, `t${i}: a row at ts ${line.ts} came after the syncpoint at ${ts} (line ${at}, ${held} held)`);
        });
        before += lines.slice(0, held).filter((l) => l.kind !== undefined).length;
        afterRows += lines.slice(held).filter((l) => l.kind !== undefined).length;
      }
      sides.push(`${ts}: ${before} before, ${afterRows} after`);
      if (before > 0 && afterRows > 0) bothSides++;
      checked++;
    }
    assert.ok(bothSides > 0, `a syncpoint with rows on both sides of it: ${sides.join('; ')}`);
    const rows = await downstreamSyncpoints();
    for (const r of rows) {
      assert.ok(BigInt(r['primary_ts'] as string) <= (await checkpoint(mysqlFeed)), `syncpoint ${r['primary_ts']} within the checkpoint`);
      assert.notEqual(String(r['secondary_ts']), '', 'the downstream position at the syncpoint');
    }
    const [[count]] = await downstream.query<mysql.RowDataPacket[]>(`SELECT COUNT(*) AS c FROM \`${db}\`.t0`);
    assert.equal(Number(count['c']), Math.ceil(n / TABLES), 'every row of t0 reached the downstream');
    console.log(`# syncpoints: ${checked} in the file sink (${syncpoints().map((s) => s.ts).join(', ')}), ${rows.length} in tidb_cdc.syncpoint_v1, ${n} rows written`);
  });
});
