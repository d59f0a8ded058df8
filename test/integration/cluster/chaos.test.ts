import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { Etcd3 } from 'etcd3';
import mysql from 'mysql2/promise';
import { CDC_BIN, CdcServerGroup, listCaptures } from '../../helpers/cdc-process.js';
import { etcdEndpoint, mysqlUri, requireService, uniqueName } from '../../helpers/services.js';
import { waitFor } from '../../helpers/wait-for.js';
import { readFileSinkRows, type FileSinkLine } from '../../helpers/file-sink.js';
import { upstreamEndTs } from '../../helpers/upstream.js';

const run = promisify(execFile);
const FIXTURE = new URL('../../fixtures/plugins/sink-file', import.meta.url).pathname;
/** The workload's length; the issue asks for 3 minutes (TIDEMARK_CHAOS_SECONDS shortens it for a quick local run). */
const SECONDS = Number(process.env['TIDEMARK_CHAOS_SECONDS'] ?? 180);
const TABLES = 30;

/**
 * Chaos (the scheduling issue): a mixed workload over 30 tables while every 30 s a random capture (sometimes the
 * owner) is killed with SIGKILL and a new one started. Two changefeeds replicate the tables, sharing each capture's
 * binlog read (the log service). At the end each one's recording file sink, replayed, must equal the upstream's
 * final state, every change must be there, and the first one's checkpoint must never have gone back.
 */
describe(`chaos: kill -9 a random capture every 30 s during a ${SECONDS} s workload (real cdc servers)`, { timeout: (SECONDS + 240) * 1000 }, () => {
  const home = mkdtempSync(join(tmpdir(), 'tidemark-chaos-'));
  const env = { ...process.env, XDG_DATA_HOME: join(home, 'data'), XDG_CACHE_HOME: join(home, 'cache'), XDG_CONFIG_HOME: join(home, 'config') };
  const clusterId = uniqueName('chaos').replaceAll('_', '-');
  const statusKey = `/tidb/cdc/${clusterId}/default/changefeed/status/chaos`;
  // a second changefeed of the same tables: on each capture both read the binlog through its one shared read
  const statusKey2 = `/tidb/cdc/${clusterId}/default/changefeed/status/chaos2`;
  const db = uniqueName('chaos');
  const out = join(home, 'out');
  const out2 = join(home, 'out2');
  const cluster = new CdcServerGroup({ pd: etcdEndpoint(), clusterId, extraArgs: ['--upstream', mysqlUri('upstream'), '--log-level', process.env.TIDEMARK_TEST_LOG_LEVEL ?? 'info'], env, healthyTimeoutMs: 30_000 });
  let etcd: Etcd3;
  let upstream: mysql.Pool;
  const observed: { ts: bigint; at: number }[] = [];
  let watcher: { cancel(): Promise<void> } | undefined;

  const endTs = (): Promise<bigint> => upstreamEndTs(upstream);
  const lines = (dir: string, table: string): FileSinkLine[] => readFileSinkRows(dir, db, table);

  before(async () => {
    await requireService('etcd');
    await requireService('upstream');
    etcd = new Etcd3({ hosts: etcdEndpoint() });
    upstream = mysql.createPool({ uri: mysqlUri('upstream'), connectionLimit: 4 });
    await upstream.query(`CREATE DATABASE \`${db}\``);
    for (let i = 0; i < TABLES; i++) await upstream.query(`CREATE TABLE \`${db}\`.t${i} (id INT PRIMARY KEY, v INT NOT NULL)`);
    await run(process.execPath, [CDC_BIN, 'plugins', 'link', '--no-install', FIXTURE], { env });
    for (let i = 0; i < 3; i++) await cluster.start();
    const w = await etcd.watch().key(statusKey).create();
    w.on('put', (kv) => observed.push({ ts: BigInt(JSON.parse(kv.value.toString())['checkpoint-ts'] as string), at: Date.now() }));
    watcher = w;
  });
  after(async () => {
    await watcher?.cancel();
    await cluster.stopAll();
    await upstream.query(`DROP DATABASE IF EXISTS \`${db}\``);
    await upstream.end();
    await etcd.delete().prefix(`/tidb/cdc/${clusterId}/`);
    etcd.close();
  });

  it('every change arrives, the replayed state equals the upstream, the checkpoint never goes back', async () => {
    const config = join(home, 'chaos.toml');
    writeFileSync(config, `[filter]\nrules = ["${db}.*"]\n`);
    await run(process.execPath, [CDC_BIN, 'changefeed', 'create', '--server', cluster.servers[0].url, '--sink-uri', `file://${out}`, '-c', 'chaos', '--config', config], { env });
    await run(process.execPath, [CDC_BIN, 'changefeed', 'create', '--server', cluster.servers[0].url, '--sink-uri', `file://${out2}`, '-c', 'chaos2', '--config', config], { env });

    // the workload: random inserts, updates and deletes, counted per table
    const changes = new Map<string, number>();
    const nextId = new Array<number>(TABLES).fill(1);
    let writing = true;
    const workload = (async () => {
      while (writing) {
        const t = Math.floor(Math.random() * TABLES);
        const op = Math.random();
        let affected = 0;
        if (op < 0.6 || nextId[t] < 5) {
          const [r] = await upstream.query(`INSERT INTO \`${db}\`.t${t} VALUES (?, ?)`, [nextId[t], Math.floor(Math.random() * 1e6)]);
          nextId[t]++;
          affected = (r as mysql.ResultSetHeader).affectedRows;
        } else if (op < 0.9) {
          const [r] = await upstream.query(`UPDATE \`${db}\`.t${t} SET v = v + 1 WHERE id = ?`, [1 + Math.floor(Math.random() * (nextId[t] - 1))]);
          affected = (r as mysql.ResultSetHeader).affectedRows;
        } else {
          const [r] = await upstream.query(`DELETE FROM \`${db}\`.t${t} WHERE id = ?`, [1 + Math.floor(Math.random() * (nextId[t] - 1))]);
          affected = (r as mysql.ResultSetHeader).affectedRows;
        }
        changes.set(`t${t}`, (changes.get(`t${t}`) ?? 0) + affected);
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    })();

    const kills: string[] = [];
    const started = Date.now();
    while (Date.now() - started < SECONDS * 1000) {
      // a kill every 30 s is the test's subject, not a wait for something to happen
      await new Promise((resolve) => setTimeout(resolve, Math.min(30_000, SECONDS * 1000 - (Date.now() - started))));
      if (Date.now() - started >= SECONDS * 1000) break;
      const candidates = cluster.alive();
      const rows = await listCaptures(candidates[0]).catch(() => []);
      const victim = candidates[Math.floor(Math.random() * candidates.length)];
      const wasOwner = rows.some((r) => r.is_owner && r.address === victim.addr);
      victim.kill('SIGKILL');
      await victim.exited;
      kills.push(wasOwner ? 'owner' : 'capture');
      await cluster.start();
    }
    writing = false;
    await workload;
    const end = await endTs();
    const endAt = Date.now();
    await waitFor(async () => BigInt(JSON.parse((await etcd.get(statusKey).string()) ?? '{"checkpoint-ts":"0"}')['checkpoint-ts'] as string) >= end, {
      timeoutMs: 120_000,
      intervalMs: 200,
      what: 'the checkpoint to reach the upstream end after the chaos',
    }).catch((error: unknown) => {
      // the stuck run's evidence for the next session: what each capture said last, and its whole log in a file
      for (const s of cluster.servers) {
        const file = join(home, `cdc-${s.addr.replace(':', '-')}.log`);
        writeFileSync(file, s.output.join(''));
        console.log(`# ${s.addr} (exit ${String(s.exitCode)}), whole log in ${file}:\n${s.output.join('').split('\n').filter((l) => /WARN|ERROR|added|removed|promoted|owner|restarts/.test(l)).slice(-30).join('\n')}`);
      }
      throw error;
    });
    const catchUpMs = Date.now() - endAt;
    await waitFor(async () => BigInt(JSON.parse((await etcd.get(statusKey2).string()) ?? '{"checkpoint-ts":"0"}')['checkpoint-ts'] as string) >= end, {
      timeoutMs: 60_000,
      intervalMs: 200,
      what: "the second changefeed's checkpoint to reach the upstream end after the chaos",
    });
    // the status watch saw the checkpoint through the whole run, so "never goes back" below is checked on data
    await waitFor(() => observed.length > kills.length && observed[observed.length - 1].ts >= end, { timeoutMs: 30_000, what: 'the status watch to see the checkpoint reach the upstream end' });

    let total = 0;
    let recorded = 0;
    let duplicates = 0;
    for (const [dir, i] of [out, out2].flatMap((d) => Array.from({ length: TABLES }, (_, k) => [d, k] as const))) {
      const all = lines(dir, `t${i}`);
      recorded += all.length;
      total += changes.get(`t${i}`) ?? 0;
      const seen = new Set<string>();
      for (const l of all) {
        const key = `${l.ts}/${l.kind}/${JSON.stringify(l.before)}/${JSON.stringify(l.after)}`;
        if (seen.has(key)) duplicates++;
        seen.add(key);
      }
      assert.ok(seen.size >= (changes.get(`t${i}`) ?? 0), `${dir} t${i}: ${seen.size} distinct changes recorded, the upstream made ${changes.get(`t${i}`)}`);
      const state = new Map<number, unknown[]>();
      const ordered = [...all].sort((a, b) => (BigInt(a.ts) < BigInt(b.ts) ? -1 : BigInt(a.ts) > BigInt(b.ts) ? 1 : 0));
      for (const l of ordered) {
        if (l.before) state.delete((l.before as number[])[0]);
        if (l.after) state.set((l.after as number[])[0], l.after);
      }
      const [rows] = await upstream.query<mysql.RowDataPacket[]>(`SELECT id, v FROM \`${db}\`.t${i} ORDER BY id`);
      assert.deepEqual([...state.values()].sort((a, b) => (a[0] as number) - (b[0] as number)), rows.map((r) => [r['id'], r['v']]), `${dir} t${i}: the replayed rows equal the upstream`);
    }
    for (let i = 1; i < observed.length; i++) assert.ok(observed[i].ts >= observed[i - 1].ts, `the checkpoint went back from ${observed[i - 1].ts} to ${observed[i].ts}`);
    let stall = 0;
    let lastMove = observed[0]?.at ?? started;
    for (let i = 1; i < observed.length; i++) {
      if (observed[i].ts > observed[i - 1].ts) {
        stall = Math.max(stall, observed[i].at - lastMove);
        lastMove = observed[i].at;
      }
    }
    console.log(
      `# chaos (two changefeeds): ${SECONDS} s, kills: ${kills.join(', ')}; ${total} upstream row changes (both changefeeds), ${recorded} recorded (${duplicates} duplicates); longest checkpoint stall ${(stall / 1000).toFixed(1)} s; caught up ${catchUpMs} ms after the workload; ${observed.length} status writes, never backwards`,
    );
  });
});
