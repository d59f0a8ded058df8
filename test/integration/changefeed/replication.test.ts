import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { Etcd3 } from 'etcd3';
import mysql from 'mysql2/promise';
import { CDC_BIN, CdcServerProcess } from '../../helpers/cdc-process.js';
import { etcdEndpoint, mysqlUri, requireService, uniqueName } from '../../helpers/services.js';
import { mountedValues, typeFamilies } from '../../helpers/type-matrix.js';
import { waitFor } from '../../helpers/wait-for.js';
import { readFileSinkLines, type FileSinkLine } from '../../helpers/file-sink.js';
import { upstreamEndTs } from '../../helpers/upstream.js';

const run = promisify(execFile);
const FIXTURE = new URL('../../fixtures/plugins/sink-file', import.meta.url).pathname;

/** The JSON the file sink writes for a value: bigint as its decimal text, Buffer as {base64}. */
function fileJson(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v !== null && typeof v === 'object' && (v as { type?: string }).type === 'Buffer' ? { base64: Buffer.from((v as { data: number[] }).data).toString('base64') } : v)));
}

/**
 * Changefeeds end to end with real processes: a `cdc server` reads the real upstream MariaDB and writes
 * into the blackhole (counts readable through the API) and into a third-party file sink linked with
 * `cdc plugins link` (JSON lines that the test replays).
 */
describe('changefeeds end to end (real cdc server, etcd, upstream MariaDB)', () => {
  const home = mkdtempSync(join(tmpdir(), 'tidemark-e2e-'));
  const env = { ...process.env, XDG_DATA_HOME: join(home, 'data'), XDG_CACHE_HOME: join(home, 'cache'), XDG_CONFIG_HOME: join(home, 'config') };
  const clusterId = uniqueName('e2e').replaceAll('_', '-');
  const prefix = `/tidb/cdc/${clusterId}/default/`;
  const dataDir = join(home, 'cdc-data');
  const db = uniqueName('e2e');
  let etcd: Etcd3;
  let server: CdcServerProcess;
  let upstream: mysql.Connection;

  const cdc = async (args: string[]): Promise<any> => JSON.parse((await run(process.execPath, [CDC_BIN, ...args, '--server', server.url, '--json'], { env, timeout: 30_000 })).stdout);
  const status = async (id: string): Promise<any> => JSON.parse((await etcd.get(`${prefix}changefeed/status/${id}`).string()) ?? 'null');
  const endTs = (): Promise<bigint> => upstreamEndTs(upstream);
  const create = async (id: string, sinkUri: string, toml: string, extra: string[] = []): Promise<void> => {
    const config = join(home, `${id}.toml`);
    writeFileSync(config, toml);
    await cdc(['changefeed', 'create', '--sink-uri', sinkUri, '-c', id, '--config', config, ...extra]);
    await waitFor(() => status(id), { what: `the status of ${id}` });
  };
  /** A table of `rows` rows of 60 characters, inserted `perTransaction` at a time; the binlog positions around them. */
  const backlog = async (table: string, rows: number, perTransaction: number): Promise<{ start: bigint; end: bigint }> => {
    await upstream.query(`CREATE TABLE \`${db}\`.\`${table}\` (id INT PRIMARY KEY, payload VARCHAR(100))`);
    const start = await endTs();
    for (let from = 1; from <= rows; from += perTransaction) {
      await upstream.query(`INSERT INTO \`${db}\`.\`${table}\` SELECT seq, REPEAT(CHAR(65 + seq % 26), 60) FROM \`${db}\`.seq_${from}_to_${from + perTransaction - 1}`);
    }
    return { start, end: await endTs() };
  };
  const caughtUp = (id: string, ts: bigint, timeoutMs = 60_000) =>
    waitFor(async () => BigInt((await status(id))['checkpoint-ts']) >= ts, { timeoutMs, intervalMs: 50, what: `${id}'s checkpoint to reach ${ts}` }).catch((error: unknown) => {
      console.log(`# ${id} did not catch up; server log tail:\n${server.output.join('').slice(-6000)}`);
      throw error;
    });
  const readLines = (dir: string, table: string): FileSinkLine[] => readFileSinkLines(dir, db, table);

  before(async () => {
    await requireService('etcd');
    await requireService('upstream');
    etcd = new Etcd3({ hosts: etcdEndpoint() });
    upstream = await mysql.createConnection({ uri: mysqlUri('upstream'), multipleStatements: true, timezone: 'Z' });
    await upstream.query("SET time_zone = '+00:00', sql_mode = ''");
    await upstream.query(`CREATE DATABASE \`${db}\``);
    await run(process.execPath, [CDC_BIN, 'plugins', 'link', '--no-install', FIXTURE], { env });
    server = await CdcServerProcess.start({ pd: etcdEndpoint(), clusterId, extraArgs: ['--upstream', mysqlUri('upstream')], dataDir, env });
    await server.waitHealthy();
  });
  after(async () => {
    await server.stop();
    await upstream.query(`DROP DATABASE IF EXISTS \`${db}\``);
    await upstream.end();
    await etcd.delete().prefix(`/tidb/cdc/${clusterId}/`);
    etcd.close();
  });

  it('20 tables, ≥ 200k mixed changes: the blackhole counts equal the workload exactly; the checkpoint ends at the last commit', async () => {
    const tables = Array.from({ length: 20 }, (_, i) => `w${i}`);
    for (const t of tables) await upstream.query(`CREATE TABLE \`${db}\`.${t} (id INT PRIMARY KEY, v INT NOT NULL, note VARCHAR(40))`);
    await create('bulk', 'blackhole://', `[filter]\nrules = ["${db}.w*"]\n`);
    const expected = new Map(tables.map((t) => [`${db}.${t}`, { inserts: 0, updates: 0, deletes: 0 }]));
    const count = (t: string, kind: 'inserts' | 'updates' | 'deletes', n: number) => (expected.get(`${db}.${t}`)![kind] += n);
    const affected = (r: unknown): number => (r as mysql.ResultSetHeader).affectedRows;
    // the upstream's own clock, whole seconds (the binlog's commit times have 1 s resolution)
    const upstreamSeconds = async (): Promise<number> => Number((await upstream.query<mysql.RowDataPacket[]>('SELECT UNIX_TIMESTAMP() AS s'))[0][0].s);
    let lastCommitFrom = 0;
    for (let round = 0; round < 7; round++) {
      // every table is written in the last round: the checkpoint time must end within it
      if (round === 6) lastCommitFrom = await upstreamSeconds();
      for (const t of tables) {
        // 1,000 rows per transaction, then updates and deletes of earlier rows, one table at a time
        const from = round * 1000 + 1;
        const [ins] = await upstream.query(`INSERT INTO \`${db}\`.${t} SELECT seq, seq % 97, CONCAT('row ', seq) FROM \`${db}\`.seq_${from}_to_${from + 999}`);
        count(t, 'inserts', affected(ins));
        const [upd] = await upstream.query(`UPDATE \`${db}\`.${t} SET v = v + 1 WHERE id BETWEEN ${from} AND ${from + 999} AND id % 3 = 0`);
        count(t, 'updates', affected(upd));
        const [del] = await upstream.query(`DELETE FROM \`${db}\`.${t} WHERE id BETWEEN ${from} AND ${from + 999} AND id % 7 = 0`);
        count(t, 'deletes', affected(del));
      }
      // a transaction across two tables
      const [a, b] = [tables[round], tables[19 - round]];
      await upstream.query('BEGIN');
      const [u1] = await upstream.query(`UPDATE \`${db}\`.${a} SET note = 'cross' WHERE id % 11 = 1`);
      const [u2] = await upstream.query(`UPDATE \`${db}\`.${b} SET note = 'cross' WHERE id % 13 = 1`);
      await upstream.query('COMMIT');
      count(a, 'updates', affected(u1));
      count(b, 'updates', affected(u2));
    }
    const end = await endTs();
    const lastCommitTo = await upstreamSeconds();
    const total = [...expected.values()].reduce((sum, c) => sum + c.inserts + c.updates + c.deletes, 0);
    assert.ok(total >= 200_000, `the workload made ${total} row changes`);
    // how fast it catches up is a goal of `npm run bench` (checkpoint lag), not of this test
    await caughtUp('bulk', end, 120_000);

    const sink = await server.api<{ stats: { tables: Record<string, { inserts: number; updates: number; deletes: number }> } }>('/api/v2/changefeeds/bulk/sink');
    assert.deepEqual(new Map(Object.entries(sink.stats.tables).sort()), new Map([...expected].sort()));

    const q = await cdc(['changefeed', 'query', '-c', 'bulk']);
    const checkpoint = BigInt(q.checkpoint_tso);
    assert.ok(checkpoint >= end);
    assert.equal(q.checkpoint_coordinate, `mysql-bin.${String(checkpoint >> 32n).padStart(6, '0')}:${checkpoint & 0xffffffffn}`);
    const checkpointSeconds = Date.parse(q.checkpoint_time) / 1000;
    assert.ok(checkpointSeconds >= lastCommitFrom && checkpointSeconds <= lastCommitTo, `checkpoint time ${q.checkpoint_time} is the commit time of the last transaction (upstream clock ${lastCommitFrom}..${lastCommitTo} s)`);
    const tablesProgress = await server.api<{ items: { table: string; checkpoint_ts: string }[] }>('/api/v2/changefeeds/bulk/tables');
    assert.equal(tablesProgress.items.length, 20);
    await cdc(['changefeed', 'remove', '-c', 'bulk']);
  });

  it('the file sink: its output, replayed, equals the upstream rows of the type matrix; ADD COLUMN lands between the rows', async () => {
    const out = join(home, 'out-matrix');
    await create('matrix', `file://${out}`, `[filter]\nrules = ["${db}.f*", "${db}.ac"]\n`);
    const expected = new Map<string, Map<string, unknown[]>>();
    for (const [f, family] of typeFamilies.entries()) {
      const table = `\`${db}\`.f${f}`;
      await upstream.query(`CREATE TABLE ${table} (id INT PRIMARY KEY, ${family.columns})`);
      const width = family.rows[0][1].length;
      for (const [r, [sql]] of family.rows.entries()) await upstream.query(`INSERT INTO ${table} VALUES (${r + 1}, ${sql})`);
      await upstream.query(`INSERT INTO ${table} VALUES (0, ${Array.from({ length: width }, () => 'NULL').join(', ')})`);
      await upstream.query(`UPDATE ${table} SET id = id + 100 WHERE id = 1`);
      await upstream.query(`DELETE FROM ${table} WHERE id = 0`);
      const state = new Map<string, unknown[]>();
      // as a changefeed delivers them: MariaDB's UUID/INET6/INET4 as their text
      for (const [r, row] of family.rows.entries()) state.set(String(r === 0 ? 101 : r + 1), fileJson([r === 0 ? 101 : r + 1, ...mountedValues(row)]) as unknown[]);
      expected.set(`f${f}`, state);
    }
    await upstream.query(`CREATE TABLE \`${db}\`.ac (id INT PRIMARY KEY, v VARCHAR(10))`);
    await upstream.query(`INSERT INTO \`${db}\`.ac VALUES (1, 'before')`);
    await upstream.query(`ALTER TABLE \`${db}\`.ac ADD COLUMN note VARCHAR(20) NULL`);
    await upstream.query(`INSERT INTO \`${db}\`.ac VALUES (2, 'after', 'new column')`);
    await caughtUp('matrix', await endTs());

    for (const [table, state] of expected) {
      const replayed = new Map<string, unknown[]>();
      for (const line of readLines(out, table)) {
        if (line.kind === undefined) continue;
        if (line.before) replayed.delete(String(line.before[0]));
        if (line.after) replayed.set(String(line.after[0]), line.after);
      }
      assert.deepEqual(replayed, state, `replayed ${table} equals the upstream rows`);
    }
    const ac = readLines(out, 'ac');
    assert.deepEqual(
      ac.map((l) => (l.ddl !== undefined ? `DDL ${l.ddl}` : `${l.kind} ${JSON.stringify(l.columns)} ${JSON.stringify(l.after)}`)),
      ['DDL create-table', 'insert ["id","v"] [1,"before"]', 'DDL alter-table', 'insert ["id","v","note"] [2,"after","new column"]'],
    );
    assert.ok(BigInt(ac[1].ts) < BigInt(ac[2].ts) && BigInt(ac[2].ts) < BigInt(ac[3].ts), 'the DDL ts lies between the rows');
    await cdc(['changefeed', 'remove', '-c', 'matrix']);
  });

  it('pause → writes continue upstream → resume: nothing lost, nothing before the checkpoint sent again', async () => {
    const out = join(home, 'out-pause');
    await upstream.query(`CREATE TABLE \`${db}\`.pr (id INT PRIMARY KEY, v INT)`);
    await create('pr', `file://${out}`, `[filter]\nrules = ["${db}.pr"]\n`);
    for (let i = 1; i <= 100; i++) await upstream.query(`INSERT INTO \`${db}\`.pr VALUES (?, ?)`, [i, i]);
    await caughtUp('pr', await endTs());
    await cdc(['changefeed', 'pause', '-c', 'pr']);
    const pausedAt = BigInt((await status('pr'))['checkpoint-ts']);
    for (let i = 101; i <= 200; i++) await upstream.query(`INSERT INTO \`${db}\`.pr VALUES (?, ?)`, [i, i]);
    await upstream.query(`UPDATE \`${db}\`.pr SET v = -v WHERE id <= 10`);
    // a running changefeed over the same table, from the same point, catches up with these writes: by then the
    // paused one would have moved too, if it could
    const written = await endTs();
    await create('pr-witness', 'blackhole://', `[filter]\nrules = ["${db}.pr"]\n`, ['--start-ts', String(pausedAt)]);
    await caughtUp('pr-witness', written);
    assert.equal(BigInt((await status('pr'))['checkpoint-ts']), pausedAt, 'a paused changefeed does not move');
    await cdc(['changefeed', 'remove', '-c', 'pr-witness']);
    await cdc(['changefeed', 'resume', '-c', 'pr']);
    await caughtUp('pr', await endTs());
    const lines = readLines(out, 'pr');
    const inserts = lines.filter((l) => l.kind === 'insert').map((l) => l.after![0] as number);
    assert.deepEqual([...new Set(inserts)].sort((a, b) => a - b), Array.from({ length: 200 }, (_, i) => i + 1), 'every insert arrived');
    const resent = lines.filter((l) => l.kind !== undefined && BigInt(l.ts) <= pausedAt).length - 100;
    assert.equal(resent, 0, 'changes at or before the checkpoint were not sent again');
    assert.equal(lines.filter((l) => l.kind === 'update').length, 10);
    await cdc(['changefeed', 'remove', '-c', 'pr']);
  });

  it('the default memory-quota, a slow sink and a 400k-row backlog: the backlog waits in the binlog, not in memory or on disk', async () => {
    // 40 transactions of 10,000 rows (about 1 MiB each as the sorter counts them; 40 MiB in all)
    const { start, end } = await backlog('backlog', 400_000, 10_000);
    await create('backlog', 'blackhole://?row-delay-us=20', `[filter]\nrules = ["${db}.backlog"]\n`, ['--start-ts', String(start)]);
    await caughtUp('backlog', end, 180_000);
    const sink = await server.api<{ memory_peak: number; spilled_total_bytes: number; stats: { tables: Record<string, { inserts: number }> } }>('/api/v2/changefeeds/backlog/sink');
    console.log(`# backlog: sorter memory peak ${(sink.memory_peak / 2 ** 20).toFixed(1)} MiB, spilled ${sink.spilled_total_bytes} bytes`);
    assert.equal(sink.stats.tables[`${db}.backlog`]?.inserts, 400_000, 'every row reached the sink');
    // the reader stops 16 MiB ahead of the sink (it reads on at 8): that, the transaction that crossed it, and the batches being written
    assert.ok(sink.memory_peak <= 24 * 2 ** 20, `the rows held for the sink peaked at ${(sink.memory_peak / 2 ** 20).toFixed(1)} MiB of the 256 MiB quota (the backlog is about 40 MiB)`);
    assert.equal(sink.spilled_total_bytes, 0, 'nothing spilled: the sink took rows all along');
    // an operator sees the reader wait for the sink, and no stall
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    const counter = (name: string): number => Number(new RegExp(`^${name}\\{[^}]*changefeed="backlog"[^}]*\\} (\\S+)$`, 'm').exec(metrics)?.[1] ?? NaN);
    assert.ok(counter('tidemark_binlog_reader_sink_waits_total') >= 1, `sink waits ${counter('tidemark_binlog_reader_sink_waits_total')}`);
    assert.ok(counter('tidemark_binlog_reader_sink_wait_seconds_total') > 0, `sink wait seconds ${counter('tidemark_binlog_reader_sink_wait_seconds_total')}`);
    assert.equal(counter('tidemark_binlog_reader_stalls_total'), 0);
    await cdc(['changefeed', 'remove', '-c', 'backlog']);
  });

  it('memory-quota 16 MiB, a slow sink and a 1M-row backlog: the sorter spills, RSS stays bounded, nothing is lost, spill files go with remove', async () => {
    const { start, end } = await backlog('big', 1_000_000, 100_000);
    const rss = (): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${server.pid}/status`, 'utf8'))![1]) * 1024;
    const baseline = rss();
    await create('quota', 'blackhole://?row-delay-us=20', `memory-quota = ${16 * 1024 * 1024}\n[filter]\nrules = ["${db}.big"]\n`, ['--start-ts', String(start)]);
    let peak = baseline;
    let heapPeak = 0;
    const series: number[] = [];
    const sampler = setInterval(() => {
      peak = Math.max(peak, rss());
      series.push(Math.round(rss() / 2 ** 20));
      fetch(`${server.url}/metrics`).then((r) => r.text()).then((text) => {
        const heap = /^tidemark_nodejs_heap_size_used_bytes (\d+)/m.exec(text);
        if (heap) heapPeak = Math.max(heapPeak, Number(heap[1]));
      }, () => undefined);
    }, 100);
    try {
      await caughtUp('quota', end, 180_000);
    } finally {
      clearInterval(sampler);
    }
    const sink = await server.api<{ memory_peak: number; spilled_total_bytes: number; stats: { tables: Record<string, { inserts: number }> } }>('/api/v2/changefeeds/quota/sink');
    const spilled = sink.spilled_total_bytes;
    console.log('# quota: RSS (MiB) once a second:', series.filter((_, i) => i % 10 === 0).join(' '));
    console.log(`# quota: RSS ${(baseline / 2 ** 20).toFixed(0)} MiB before, peak ${(peak / 2 ** 20).toFixed(0)} MiB (V8 heap used peak ${(heapPeak / 2 ** 20).toFixed(0)} MiB); sorter memory peak ${(sink.memory_peak / 2 ** 20).toFixed(1)} MiB; spilled ${(spilled / 2 ** 20).toFixed(0)} MiB in all`);
    assert.equal(sink.stats.tables[`${db}.big`]?.inserts, 1_000_000, 'every row reached the sink');
    // the quota holds the sorters' memory and the rows held for the sink (a whole transaction may pass it, up to half the quota more)
    assert.ok(sink.memory_peak <= 1.5 * 16 * 1024 * 1024, `the sorters and the batches for the sink kept within the quota and a half (peak ${sink.memory_peak})`);
    assert.ok(spilled > 0, 'the sorter spilled to LevelDB');
    // measured here: +290-300 MiB at the peak while the puller reads the 1M rows (V8 heap ~150 MiB of it, mostly
    // garbage not yet collected), then a flat sawtooth while the spilled blocks are read back (the sorter compacts
    // what it read, so LevelDB's mmapped files no longer grow with the backlog)
    assert.ok(peak - baseline < 400 * 2 ** 20, `RSS grew by ${((peak - baseline) / 2 ** 20).toFixed(0)} MiB for a 1M-row backlog (bound: 400 MiB)`);
    const spillDir = join(dataDir, 'sorter', 'default.quota');
    assert.ok(existsSync(spillDir), 'the spill store exists while the changefeed runs');
    await cdc(['changefeed', 'remove', '-c', 'quota']);
    await waitFor(() => !existsSync(spillDir), { what: 'the spill files to be deleted' });
    assert.deepEqual(readdirSync(join(dataDir, 'sorter')), [], 'no spilled data is left');
  });
});
