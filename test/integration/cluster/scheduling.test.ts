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

/**
 * Tables across captures (the scheduling issue): real cdc servers on real etcd and the real upstream, a
 * changefeed into the file sink (it records every row it is given, from every capture, in one folder).
 */
describe('tables scheduled across captures: balance, join, graceful stop, failover (real cdc servers)', () => {
  const home = mkdtempSync(join(tmpdir(), 'tidemark-sched-'));
  const env = { ...process.env, XDG_DATA_HOME: join(home, 'data'), XDG_CACHE_HOME: join(home, 'cache'), XDG_CONFIG_HOME: join(home, 'config') };
  const clusterId = uniqueName('sched').replaceAll('_', '-');
  const statusKey = (id: string): string => `/tidb/cdc/${clusterId}/default/changefeed/status/${id}`;
  const db = uniqueName('sched');
  const out = join(home, 'out');
  const cluster = new CdcServerGroup({ pd: etcdEndpoint(), clusterId, extraArgs: ['--upstream', mysqlUri('upstream'), '--log-level', process.env.TIDEMARK_TEST_LOG_LEVEL ?? 'info'], env });
  let etcd: Etcd3;
  let upstream: mysql.Connection;
  const checkpoints: bigint[] = [];
  let watcher: { cancel(): Promise<void> } | undefined;

  const endTs = (): Promise<bigint> => upstreamEndTs(upstream);
  const checkpoint = async (): Promise<bigint> => BigInt(JSON.parse((await etcd.get(statusKey('cf')).string()) ?? '{"checkpoint-ts":"0"}')['checkpoint-ts'] as string);
  /** The capture address of every replicating table, from the per-table progress API. */
  const tablePlaces = async (changefeed = 'cf'): Promise<{ places: Map<string, string>; addresses: string[] }> => {
    const server = cluster.alive()[0];
    const [{ items }, captures] = await Promise.all([server.api<{ items: { table: string; capture_id: string; state?: string }[] }>(`/api/v2/changefeeds/${changefeed}/tables`), listCaptures(server)]);
    const byId = new Map(captures.map((c) => [c.id, c.address]));
    const places = new Map<string, string>();
    for (const t of items) if (t.state === undefined || t.state === 'replicating') places.set(t.table, byId.get(t.capture_id) ?? t.capture_id);
    return { places, addresses: captures.map((c) => c.address) };
  };
  /** Tables per capture address. */
  const placement = async (changefeed = 'cf'): Promise<Map<string, number>> => {
    const { places, addresses } = await tablePlaces(changefeed);
    const counts = new Map<string, number>(addresses.map((a) => [a, 0]));
    for (const address of places.values()) counts.set(address, (counts.get(address) ?? 0) + 1);
    return counts;
  };
  const balanced = async (captures: number, tables = 30): Promise<number[]> => {
    return waitFor(
      async () => {
        const counts = [...(await placement()).values()];
        const total = counts.reduce((a, b) => a + b, 0);
        return counts.length === captures && total === tables && Math.max(...counts) - Math.min(...counts) <= 1 ? counts.sort() : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 250, what: `${tables} tables balanced over ${captures} captures` },
    ).catch(async (error: unknown) => {
      console.log(`# placement: ${JSON.stringify([...(await placement())])}`);
      for (const s of cluster.servers) console.log(`# ${s.addr} (exit ${s.exitCode}):\n${s.output.join('').split('\n').filter((l) => /WARN|ERROR|owner|drain|removed|promoted/.test(l)).slice(-25).join('\n')}`);
      throw error;
    });
  };
  const lines = (table: string): FileSinkLine[] => readFileSinkRows(out, db, table);

  before(async () => {
    await requireService('etcd');
    await requireService('upstream');
    etcd = new Etcd3({ hosts: etcdEndpoint() });
    upstream = await mysql.createConnection({ uri: mysqlUri('upstream') });
    await upstream.query(`CREATE DATABASE \`${db}\``);
    for (let i = 0; i < 30; i++) await upstream.query(`CREATE TABLE \`${db}\`.t${i} (id INT PRIMARY KEY, v INT NOT NULL)`);
    await run(process.execPath, [CDC_BIN, 'plugins', 'link', '--no-install', FIXTURE], { env });
    for (let i = 0; i < 3; i++) await cluster.start();
    const w = await etcd.watch().key(statusKey('cf')).create();
    w.on('put', (kv) => {
      const ts = BigInt(JSON.parse(kv.value.toString())['checkpoint-ts'] as string);
      checkpoints.push(ts);
    });
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

  it('30 tables spread over 3 captures within ±1; a fourth capture joins and they rebalance', async () => {
    await run(process.execPath, [CDC_BIN, 'changefeed', 'create', '--server', cluster.servers[0].url, '--sink-uri', `file://${out}`, '-c', 'cf', '--config', await tomlFile(home, `[filter]\nrules = ["${db}.*"]\n`)], { env });
    assert.deepEqual(await balanced(3), [10, 10, 10]);
    for (let i = 0; i < 30; i++) await upstream.query(`INSERT INTO \`${db}\`.t${i} VALUES (1, 1), (2, 2)`);
    const end = await endTs();
    await waitFor(async () => (await checkpoint()) >= end, { timeoutMs: 30_000, what: 'the checkpoint to pass the inserts' });
    for (let i = 0; i < 30; i++) assert.equal(lines(`t${i}`).length, 2, `t${i}: both rows arrived once`);
    await cluster.start();
    assert.deepEqual(await balanced(4), [7, 7, 8, 8]);
    const processors = JSON.parse((await run(process.execPath, [CDC_BIN, 'processor', 'list', '--server', cluster.servers[0].url, '--json'], { env })).stdout) as unknown[];
    assert.equal(processors.length, 4, 'a processor of the changefeed on every capture');
  });

  it('SIGTERM: the capture\'s tables move before it exits, rows keep flowing, nothing is written twice outside the at-least-once window', async () => {
    const captures = await listCaptures(cluster.servers[0]);
    const ownerAddr = captures.find((c) => c.is_owner)!.address;
    const victim = cluster.alive().find((s) => s.addr !== ownerAddr)!;
    let n = 3;
    let writing = true;
    const writer = (async () => {
      while (writing) {
        const i = n % 30;
        await upstream.query(`INSERT INTO \`${db}\`.t${i} VALUES (?, ?)`, [n, n]);
        n++;
      }
    })();
    // rows are flowing: the writer is under way and the checkpoint has passed some of its rows
    await waitFor(() => n >= 60, { what: 'the writer to write some rows' });
    const flowing = await endTs();
    await waitFor(async () => (await checkpoint()) >= flowing, { timeoutMs: 60_000, what: 'the checkpoint to pass the first rows of the writer' });
    const before = await checkpoint();
    victim.kill('SIGTERM');
    const exited = await victim.exited;
    writing = false;
    await writer;
    assert.equal(exited.code, 0, 'the drained capture exits cleanly');
    assert.match(victim.output.join(''), /capture drained.*tablesLeft=0/, 'it waited until its tables had moved');
    assert.deepEqual(await balanced(3), [10, 10, 10]);
    const end = await endTs();
    await waitFor(async () => (await checkpoint()) >= end, { timeoutMs: 30_000, what: 'the checkpoint to pass the writes' });
    let duplicates = 0;
    for (let i = 0; i < 30; i++) {
      const seen = new Map<string, string>();
      for (const l of lines(`t${i}`)) {
        const key = `${l.ts}/${JSON.stringify(l.after)}`;
        if (seen.has(key)) {
          duplicates++;
          assert.ok(BigInt(l.ts) > before, `t${i}: a row at ts ${l.ts}, before the checkpoint ${before} at SIGTERM, was written twice`);
        }
        seen.set(key, l.ts);
      }
      const ids = new Set(lines(`t${i}`).map((l) => (l.after as number[])[0]));
      const [rows] = await upstream.query<mysql.RowDataPacket[]>(`SELECT id FROM \`${db}\`.t${i}`);
      assert.deepEqual([...ids].sort((a, b) => a - b), rows.map((r) => r['id'] as number).sort((a, b) => a - b), `t${i}: every row arrived`);
    }
    console.log(`# graceful stop: ${n - 3} rows written during the move, ${duplicates} written twice (all after the checkpoint at SIGTERM)`);
  });

  it('failover: kill -9 of the owner; the new owner keeps every table where it is, the rest restart from their checkpoint; the checkpoint never goes back', async () => {
    const captures = await listCaptures(cluster.alive()[0]);
    const owner = cluster.alive().find((s) => s.addr === captures.find((c) => c.is_owner)!.address)!;
    const placedBefore = (await tablePlaces()).places;
    assert.equal(placedBefore.size, 30, 'every table is placed before the kill');
    const watched = checkpoints.length;
    const updateTs: bigint[] = [];
    for (let i = 0; i < 30; i++) {
      await upstream.query(`UPDATE \`${db}\`.t${i} SET v = v + 1000 WHERE id = 1`);
      updateTs.push(await endTs());
    }
    owner.kill('SIGKILL');
    await owner.exited;
    for (let i = 0; i < 30; i++) await upstream.query(`UPDATE \`${db}\`.t${i} SET v = v + 1000 WHERE id = 2`);
    assert.deepEqual(await balanced(2), [15, 15]);
    // the surviving captures kept their tables; only the dead owner's tables moved
    const placedAfter = (await tablePlaces()).places;
    const kept = [...placedBefore].filter(([, address]) => address !== owner.addr);
    assert.equal(kept.length, 20, `two surviving captures with 10 tables each before the kill: ${JSON.stringify([...placedBefore])}`);
    assert.deepEqual(kept.filter(([table, address]) => placedAfter.get(table) !== address), [], 'a table of a surviving capture was moved by the failover');
    const end = await endTs();
    await waitFor(async () => (await checkpoint()) >= end, { timeoutMs: 60_000, what: 'the checkpoint to pass the updates after failover' });
    // the watch saw the checkpoint move through the failover, so the "never goes back" check below has data
    await waitFor(() => checkpoints.length > watched && checkpoints[checkpoints.length - 1] >= end, { what: 'the status watch to see the checkpoint pass the updates' });
    for (let i = 0; i < 30; i++) {
      const state = new Map<number, unknown[]>();
      for (const l of [...lines(`t${i}`)].sort((a, b) => (BigInt(a.ts) < BigInt(b.ts) ? -1 : BigInt(a.ts) > BigInt(b.ts) ? 1 : 0))) {
        if (l.before) state.delete((l.before as number[])[0]);
        if (l.after) state.set((l.after as number[])[0], l.after);
      }
      const [rows] = await upstream.query<mysql.RowDataPacket[]>(`SELECT id, v FROM \`${db}\`.t${i} ORDER BY id`);
      const replayed = [...state.values()].sort((a, b) => (a[0] as number) - (b[0] as number));
      if (JSON.stringify(replayed) !== JSON.stringify(rows.map((r) => [r['id'], r['v']]))) {
        // what the sink got for the table and what every capture logged about it, to tell where it was lost
        console.log(`# t${i} sink lines:\n${lines(`t${i}`).slice(0, 8).map((l) => JSON.stringify(l)).join('\n')}`);
        console.log(`# update ts of id 1: ${updateTs[i]}; checkpoints: ${checkpoints.join(' ')}`);
        for (const s of cluster.servers) {
          const file = join(home, `cdc-${s.addr.replace(':', '-')}.log`);
          writeFileSync(file, s.output.join(''));
          console.log(`# ${s.addr} (exit ${s.exitCode}), whole log in ${file}:\n${s.output.join('').split('\n').filter((l) => l.includes(`.t${i}]`) || l.includes(`.t${i}@`) || /campaign|lost|WARN|ERROR/.test(l)).slice(-60).join('\n')}`);
        }
      }
      assert.deepEqual(replayed, rows.map((r) => [r['id'], r['v']]), `t${i}: the replayed rows equal the upstream`);
    }
    for (let i = 1; i < checkpoints.length; i++) assert.ok(checkpoints[i] >= checkpoints[i - 1], `the checkpoint went back from ${checkpoints[i - 1]} to ${checkpoints[i]}`);
    console.log(`# failover: ${checkpoints.length} status writes observed, checkpoint never decreased`);
  });

  it('the drain API moves a capture\'s tables away; it is refused for the owner', async () => {
    const captures = await listCaptures(cluster.alive()[0]);
    const ownerRow = captures.find((c) => c.is_owner)!;
    const other = captures.find((c) => !c.is_owner)!;
    const refused = await fetch(`${cluster.alive()[0].url}/api/v2/captures/${ownerRow.id}/drain`, { method: 'POST' });
    assert.equal(refused.status, 400);
    assert.match(JSON.stringify(await refused.json()), /it is the owner/);
    const res = await fetch(`${cluster.alive()[0].url}/api/v2/captures/${other.id}/drain`, { method: 'POST' });
    assert.equal(res.status, 202);
    await waitFor(
      async () => {
        const p = await placement();
        return (p.get(other.address) ?? 0) === 0 && p.get(ownerRow.address) === 30;
      },
      { timeoutMs: 30_000, what: 'the drained capture to have no tables and the owner all 30' },
    );
    // it stays drained: a second changefeed over the same tables is scheduled after the drain, so the scheduler
    // has run its balance checks since; none moved a table back, and none of the new one's went to the drained capture
    await run(process.execPath, [CDC_BIN, 'changefeed', 'create', '--server', cluster.alive()[0].url, '--sink-uri', 'blackhole://', '-c', 'cf2', '--config', await tomlFile(home, `[filter]\nrules = ["${db}.*"]\n`)], { env });
    await waitFor(async () => (await placement('cf2')).get(ownerRow.address) === 30, { timeoutMs: 60_000, what: 'the second changefeed\'s 30 tables on the owner' });
    assert.equal((await placement()).get(other.address) ?? 0, 0);
    assert.equal((await placement('cf2')).get(other.address) ?? 0, 0);
  });
});

async function tomlFile(dir: string, text: string): Promise<string> {
  const { writeFile } = await import('node:fs/promises');
  const path = join(dir, `cf-${Date.now()}.toml`);
  await writeFile(path, text);
  return path;
}
