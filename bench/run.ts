/**
 * The benchmark harness (issue #10): end-to-end scenarios through a real `cdc server` (built, from dist/) on the
 * running services, with the machine's ceilings for the same rows measured in the same run.
 *
 * usage: npm run bench -- <scenario> [--sink blackhole|mysql|kafka] [--rows N] [--tables N] [--rate R]
 *                         [--runs K] [--duration S] [--memory-quota MiB] [--cpu-prof] [--memory-profile] [--settle S] [--idle-seconds S]
 *                         [--changefeeds N] [--join N]
 *   --changefeeds N: N changefeeds of the same rows on one capture, created together (the first on --sink, the others
 *     on blackhole); the CPU per 1M rows is theirs together; a backlog drain also reports the upstream's binlog dumps
 *     (peak during the drain, and at its end), a fixed-rate run the first changefeed's lags
 *   many-tables measures the idle capture for --idle-seconds (10) after --settle seconds (2) once every table is scheduled;
 *     --join N then starts N more captures in the cluster and times the tables' balancing over all of them
 *   scenarios: insert-narrow, update-heavy, wide, many-tables, big-txn, ddl
 *   backlog drain (default): generate N row changes, then start the changefeed at their start and time it to their end
 *   fixed rate (--rate R --duration S; many-tables and ddl always): an open-loop generator, lag percentiles
 * Needs `bash scripts/services.sh up` and `npm run build`. Prints a table; appends JSON lines to bench/results/<scenario>.jsonl.
 */
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Etcd3 } from 'etcd3';
import mysql from 'mysql2/promise';
import { etcdEndpoint, requireService, serviceAddress } from '../test/helpers/services.js';
import { ApiClient } from '../src/core/api/client.js';
import type { ChangefeedSinkInfo } from '../src/core/api/model.js';
import { DEFAULT_NAMESPACE } from '../src/core/orchestrator/etcd-keys.js';
import { BenchCdcServer } from './harness/cdc.js';
import { ProcSampler, binlogCeilings, binlogRange, masterPos, rssBytes, servicePid, type BinlogPos } from './harness/measure.js';
import { deleteTopic, downstreamInsertRate, producerRate, topicMessages } from './harness/sink-ceilings.js';
import { POLL_MS, blackholeProgress, kafkaProgress, mysqlProgress, type SinkProgress } from './harness/sink-progress.js';
import { SCENARIOS, dropDatabase, generateBacklog, insertValuesSql, setup, shapeOf, tableNames, type Scenario } from './harness/workloads.js';

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    sink: { type: 'string', default: 'blackhole' },
    rows: { type: 'string' },
    tables: { type: 'string' },
    rate: { type: 'string' },
    runs: { type: 'string', default: '1' },
    duration: { type: 'string' },
    'memory-quota': { type: 'string' },
    'cpu-prof': { type: 'boolean', default: false },
    'memory-profile': { type: 'boolean', default: false },
    // many-tables: seconds to wait once every table is scheduled before the idle window (the settling of new tables)
    settle: { type: 'string' },
    'idle-seconds': { type: 'string' },
    // backlog drain: this many changefeeds of the same rows on the one capture (the first on --sink, the others on
    // blackhole), sharing the capture's binlog read
    changefeeds: { type: 'string' },
    // many-tables: after the fixed-rate window, this many captures join the cluster; the bench times the balancing
    join: { type: 'string' },
    // parameters added to the sink URI, e.g. --sink-params producer-thread=main (an A/B of a sink option)
    'sink-params': { type: 'string' },
  },
});
const scenario = positionals[0] as Scenario;
if (!SCENARIOS.includes(scenario)) {
  console.error(`usage: npm run bench -- <${SCENARIOS.join('|')}> [--sink blackhole|mysql|kafka] [--rows N] [--tables N] [--rate R] [--runs K] [--duration S] [--memory-quota MiB] [--cpu-prof] [--memory-profile] [--settle S] [--idle-seconds S] [--changefeeds N] [--join N] [--sink-params k=v&…]`);
  process.exit(2);
}
const sink = opts.sink;
if (sink !== 'blackhole' && sink !== 'mysql' && sink !== 'kafka') {
  console.error(`--sink must be blackhole, mysql or kafka (got "${sink}")`);
  process.exit(2);
}
const num = (v: string | undefined, d: number): number => {
  const n = v === undefined ? d : Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`not a positive number: ${v}`);
  return n;
};
const tables = num(opts.tables, scenario === 'many-tables' ? 1000 : scenario === 'update-heavy' ? 8 : 1);
if (tables !== 1 && (scenario === 'big-txn' || scenario === 'ddl')) {
  console.error(`--tables ${opts.tables}: ${scenario} uses one table (insert-narrow, wide, update-heavy and many-tables take --tables)`);
  process.exit(2);
}
if (!Number.isInteger(tables)) {
  console.error(`--tables must be a whole number (got "${opts.tables}")`);
  process.exit(2);
}
const changefeeds = num(opts.changefeeds, 1);
const joining = opts.join === undefined ? 0 : num(opts.join, 1);
if (joining > 0 && scenario !== 'many-tables') {
  console.error(`--join ${opts.join}: only many-tables times the balancing of joining captures`);
  process.exit(2);
}
const rows = Math.round(num(opts.rows, scenario === 'big-txn' ? 1_000_000 : scenario === 'wide' ? 100_000 : 200_000));
const fixedRate = opts.rate !== undefined || scenario === 'many-tables' || scenario === 'ddl';
const rate = num(opts.rate, scenario === 'many-tables' ? tables / 10 : scenario === 'ddl' ? 2000 : 10_000);
const duration = num(opts.duration, scenario === 'ddl' ? 60 : 20);
const settleMs = opts.settle === undefined ? 2000 : num(opts.settle, 2) * 1000;
const idleMs = num(opts['idle-seconds'], 10) * 1000;
const runs = Math.round(num(opts.runs, 1));
const memoryQuotaMiB = opts['memory-quota'] === undefined ? undefined : num(opts['memory-quota'], 256);

const upstreamAddr = serviceAddress('upstream');
const downstreamAddr = serviceAddress('downstream');
const kafkaAddr = serviceAddress('kafka');
const RESULTS = new URL('./results/', import.meta.url).pathname;
const MEMORY_PROBE = new URL('./harness/memory-probe.mjs', import.meta.url).pathname;

type Fields = Record<string, number | string | undefined>;

// ------------------------------------------------------------------------------------------- clean-up
const cleanups: (() => Promise<void>)[] = [];
async function runCleanups(): Promise<void> {
  while (cleanups.length > 0) {
    const fn = cleanups.pop()!;
    await fn().catch((error: unknown) => console.error(`clean-up: ${error instanceof Error ? error.message : String(error)}`));
  }
}
let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    console.error(`\n${signal}: stopping the cdc server and cleaning up`);
    void runCleanups().finally(() => process.exit(130));
  });
}

class SinkRefused extends Error {}

// ------------------------------------------------------------------------------------------- cdc server
interface Cdc {
  server: BenchCdcServer;
  /** Starts another capture in the same cluster (stopped with the run's clean-up). */
  join: () => Promise<BenchCdcServer>;
  etcd: Etcd3;
  statusKey: (id: string) => string;
  /** Where the captures' task positions are (`<prefix><capture>/<changefeed>`). */
  positionPrefix: string;
  profileDir: string | undefined;
}

async function startCdc(run: number): Promise<Cdc> {
  const clusterId = `bench-${scenario}-${process.pid}-${run}-${Date.now().toString(36)}`;
  const dataDir = mkdtempSync(join(tmpdir(), 'tidemark-bench-cdc-'));
  const profileDir = opts['cpu-prof'] || opts['memory-profile'] ? join(RESULTS, 'profiles') : undefined;
  if (profileDir !== undefined) mkdirSync(profileDir, { recursive: true });
  const etcd = new Etcd3({ hosts: etcdEndpoint() });
  cleanups.push(async () => {
    await etcd.delete().prefix(`/tidb/cdc/${clusterId}/`);
    etcd.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const nodeFlags = opts['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  if (opts['memory-profile']) {
    // the probe writes <out>.memory.json and <out>.heapprofile when the server exits
    process.env['TIDEMARK_BENCH_MEMORY_OUT'] = join(profileDir!, `memory-${scenario}-${Date.now()}`);
    nodeFlags.push('--import', MEMORY_PROBE);
  }
  const server = await BenchCdcServer.start({ pd: etcdEndpoint(), clusterId, dataDir, upstream: `mysql://root@${upstreamAddr.addr}`, nodeFlags });
  cleanups.push(() => server.stop());
  await server.waitHealthy(30_000);
  const joinCapture = async (): Promise<BenchCdcServer> => {
    const dir = mkdtempSync(join(tmpdir(), 'tidemark-bench-cdc-'));
    const other = await BenchCdcServer.start({ pd: etcdEndpoint(), clusterId, dataDir: dir, upstream: `mysql://root@${upstreamAddr.addr}`, nodeFlags: [] });
    cleanups.push(async () => {
      await other.stop();
      rmSync(dir, { recursive: true, force: true });
    });
    await other.waitHealthy(30_000);
    return other;
  };
  return { server, etcd, join: joinCapture, statusKey: (id) => `/tidb/cdc/${clusterId}/default/changefeed/status/${id}`, positionPrefix: `/tidb/cdc/${clusterId}/default/task/position/`, profileDir };
}

const topicOf = (run: number): string => `tidemark-bench-${scenario}-${process.pid}-${run}`;

const sinkParams = opts['sink-params'] ?? '';

function sinkUri(topic: string): string {
  const more = (first: string): string => (sinkParams === '' ? '' : `${first}${sinkParams}`);
  if (sink === 'blackhole') return `blackhole://${more('?')}`;
  if (sink === 'mysql') return `mysql://root@${downstreamAddr.addr}/${more('?')}`;
  // canal-json unless --sink-params names a protocol (e.g. protocol=debezium)
  if (/(^|&)protocol=/.test(sinkParams)) return `kafka://${kafkaAddr.addr}/${topic}?${sinkParams}`;
  return `kafka://${kafkaAddr.addr}/${topic}?protocol=canal-json${more('&')}`;
}

async function createChangefeed(cdc: Cdc, id: string, db: string, uri: string, startTs: bigint | undefined): Promise<void> {
  try {
    await new ApiClient(cdc.server.url, 30_000).createChangefeed({ changefeed_id: id, sink_uri: uri, start_ts: startTs === undefined ? undefined : String(startTs), replica_config: { filter: { rules: [`${db}.*`] }, ...(memoryQuotaMiB === undefined ? {} : { 'memory-quota': memoryQuotaMiB * 1048576 }) } });
  } catch (error) {
    throw new SinkRefused(`creating the changefeed with --sink-uri ${uri} failed: ${(error as Error).message}`);
  }
}

/** Fails when the changefeed is failed, or has stayed in warning or error for 20 s (a sink that refuses its writes). */
function changefeedWatchdog(cdc: Cdc, id: string): { check: () => Promise<void> } {
  let warningSince: number | undefined;
  return {
    check: async () => {
      const cf = await new ApiClient(cdc.server.url, 3000).changefeed(id, DEFAULT_NAMESPACE).catch(() => undefined);
      if (cdc.server.exitCode !== undefined) throw new Error(`cdc server exited with ${cdc.server.exitCode}: ${cdc.server.output.slice(-3000)}`);
      if (cf === undefined) return;
      const problem = cf.error ?? cf.warning;
      if (cf.state === 'failed') throw new SinkRefused(`changefeed ${id} failed: ${JSON.stringify(problem)}`);
      if (cf.state === 'warning' || cf.state === 'error' || (problem !== undefined && problem !== null)) {
        warningSince ??= Date.now();
        if (Date.now() - warningSince > 20_000) throw new SinkRefused(`changefeed ${id} is ${cf.state ?? '?'}: ${JSON.stringify(problem)}`);
      } else warningSince = undefined;
    },
  };
}

/** Calls onCheckpoint(ts, at) on every change of the changefeed's checkpoint-ts (etcd watch on its status key). */
async function watchCheckpoint(cdc: Cdc, id: string, onCheckpoint: (ts: bigint, at: number) => void): Promise<() => Promise<void>> {
  const watcher = await cdc.etcd.watch().key(cdc.statusKey(id)).create();
  watcher.on('put', (kv) => {
    const at = performance.now();
    const ts = (JSON.parse(kv.value.toString()) as { 'checkpoint-ts'?: string | number })['checkpoint-ts'];
    if (ts !== undefined) onCheckpoint(BigInt(ts), at);
  });
  const current = await cdc.etcd.get(cdc.statusKey(id)).string();
  if (current !== null) {
    const ts = (JSON.parse(current) as { 'checkpoint-ts'?: string | number })['checkpoint-ts'];
    if (ts !== undefined) onCheckpoint(BigInt(ts), performance.now());
  }
  return () => watcher.cancel();
}

/** Resolves when the checkpoint reaches `target`; checks the changefeed's health every second meanwhile. */
async function untilCheckpoint(cdc: Cdc, id: string, target: bigint, timeoutMs: number, onTick?: () => Promise<void>): Promise<number> {
  let reachedAt: number | undefined;
  const cancel = await watchCheckpoint(cdc, id, (ts, at) => {
    if (ts >= target && reachedAt === undefined) reachedAt = at;
  });
  const watchdog = changefeedWatchdog(cdc, id);
  const deadline = Date.now() + timeoutMs;
  let lastCheck = 0;
  try {
    while (reachedAt === undefined) {
      if (Date.now() > deadline) throw new Error(`changefeed ${id}: the checkpoint did not reach ${target} within ${timeoutMs / 1000} s`);
      if (Date.now() - lastCheck > 1000) {
        lastCheck = Date.now();
        await watchdog.check();
      }
      if (onTick !== undefined) await onTick();
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return reachedAt;
  } finally {
    await cancel();
  }
}

/** Resolves once the changefeed lists `tables` tables replicating (its processors' own view, a page of one). */
async function untilReplicating(cdc: Cdc, id: string, tables: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const page = await new ApiClient(cdc.server.url, 10_000).tablePage(id, DEFAULT_NAMESPACE, { limit: 1, state: 'replicating' }).catch(() => undefined);
    if (page !== undefined && page.total >= tables) return;
    if (Date.now() > deadline) throw new Error(`changefeed ${id}: ${page?.total ?? '?'} of ${tables} tables replicating after ${timeoutMs / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

function sinkInfo(cdc: Cdc, id: string): Promise<ChangefeedSinkInfo | undefined> {
  return new ApiClient(cdc.server.url, 3000).sinkInfo(id, DEFAULT_NAMESPACE).catch(() => undefined);
}

function sinkRows(info: ChangefeedSinkInfo | undefined): number | undefined {
  const t = (info?.stats as { tables?: Record<string, Record<string, unknown>> } | null | undefined)?.tables;
  if (t === undefined) return undefined;
  let sum = 0;
  for (const counts of Object.values(t)) for (const v of Object.values(counts)) if (typeof v === 'number') sum += v;
  return sum;
}

function pids(cdc: Cdc): Map<string, number> {
  const m = new Map<string, number>([['cdc', cdc.server.pid]]);
  const up = servicePid('upstream');
  const down = servicePid('downstream');
  if (up !== undefined) m.set('upstream', up);
  if (down !== undefined) m.set('downstream', down);
  return m;
}

const mib = (b: number | undefined): number | undefined => (b === undefined ? undefined : Math.round(b / 1048576));
const per1M = (cpu: number | undefined, n: number): number | undefined => (cpu === undefined ? undefined : round((cpu * 1e6) / n, 2));
function round(n: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
function ratio(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined || b === undefined || b === 0 ? undefined : round(a / b, 2);
}

// ------------------------------------------------------------------------------------------- backlog drain
async function backlogRun(run: number, up: mysql.Connection, db: string): Promise<Fields> {
  const tbls = tableNames(tables);
  await setup(up, scenario, db, tbls, rows);
  await mirrorDownstream(db, tbls);
  // the backlog starts a binlog file of its own: one that crossed max_binlog_size would end at the next file's
  // first position, which the checkpoint reaches only with the next heartbeat (up to a second later)
  await up.query('FLUSH BINARY LOGS');
  const start = await masterPos(up);
  const g0 = performance.now();
  const changed = await generateBacklog(up, scenario, db, tbls, rows);
  const generateSeconds = (performance.now() - g0) / 1000;
  const end = await masterPos(up);
  const range = await binlogRange(up, start, end);
  console.log(`# run ${run}: ${changed.toLocaleString('en')} row changes in ${tbls.length} table(s) in ${generateSeconds.toFixed(1)} s, binlog ${start.file}:${start.pos} → ${end.file}:${end.pos} (${(range.bytes / 1048576).toFixed(1)} MiB)`);
  const ceil = await binlogCeilings(upstreamAddr.host, upstreamAddr.port, start, end, range.files);

  const cdc = await startCdc(run);
  const id = `bench-${run}`;
  const topic = topicOf(run);
  const sampler = new ProcSampler(pids(cdc));
  cleanups.push(() => Promise.resolve(void sampler.stop()));
  let firstRowAt: number | undefined;
  let firstMoveAt: number | undefined;
  let spilled = 0;
  let memoryPeak = 0;
  let lastPoll = 0;
  const poll = async (): Promise<void> => {
    if (performance.now() - lastPoll < 100) return;
    lastPoll = performance.now();
    const info = await sinkInfo(cdc, id);
    if (info === undefined) return;
    spilled = Math.max(spilled, info.spilled_total_bytes ?? 0);
    memoryPeak = Math.max(memoryPeak, info.memory_peak ?? 0);
    if (firstRowAt === undefined && (sinkRows(info) ?? 0) > 0) firstRowAt = performance.now();
    if (firstMoveAt === undefined && BigInt(info.checkpoint_ts ?? '0') > start.ts) firstMoveAt = performance.now();
  };
  // the upstream's binlog dumps while the changefeeds drain (one per capture and upstream when they share it)
  const dumpsConn = await mysql.createConnection({ host: upstreamAddr.host, port: upstreamAddr.port, user: 'root' });
  cleanups.push(() => dumpsConn.end().catch(() => undefined));
  const countDumps = async (): Promise<number> => {
    const [rows] = await dumpsConn.query<mysql.RowDataPacket[]>("SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'");
    return Number(rows[0]['n']);
  };
  const dumpsBefore = await countDumps();
  let dumpsPeak = 0;
  let lastDumps = 0;
  const pollAll = async (): Promise<void> => {
    await poll();
    if (performance.now() - lastDumps < 250) return;
    lastDumps = performance.now();
    dumpsPeak = Math.max(dumpsPeak, (await countDumps()) - dumpsBefore);
  };
  const others = Array.from({ length: changefeeds - 1 }, (_, i) => `${id}-${i + 2}`);
  sampler.start();
  const t0 = performance.now();
  // created together, as one would start several changefeeds from one position (one after the other, the first
  // ones would drain on a saturated machine while the next are created)
  await Promise.all([createChangefeed(cdc, id, db, sinkUri(topic), start.ts), ...others.map((other) => createChangefeed(cdc, other, db, 'blackhole://', start.ts))]);
  const reached = Math.max(...(await Promise.all([untilCheckpoint(cdc, id, end.ts, 600_000, pollAll), ...others.map((other) => untilCheckpoint(cdc, other, end.ts, 600_000))])));
  sampler.stop();
  const dumpsAtEnd = (await countDumps()) - dumpsBefore;
  const seconds = (reached - t0) / 1000;
  const info = await sinkInfo(cdc, id);
  spilled = Math.max(spilled, info?.spilled_total_bytes ?? 0);
  const r: Fields = {
    rows: changed,
    seconds: round(seconds, 2),
    rowsPerSecond: Math.round(changed / seconds),
    binlogMiB: round(range.bytes / 1048576, 1),
    binlogMBps: round(range.bytes / 1e6 / seconds, 1),
    cdcCpuSecPer1M: per1M(sampler.cpu('cdc'), changed),
    upstreamCpuSecPer1M: per1M(sampler.cpu('upstream'), changed),
    downstreamCpuSecPer1M: per1M(sampler.cpu('downstream'), changed),
    cdcPeakRssMiB: mib(sampler.peakRss.get('cdc')),
    sinkRows: sinkRows(info),
    rawReadRowsPerSecond: Math.round(changed / ceil.rawSeconds),
    rawReadMBps: round(ceil.rawBytes / 1e6 / ceil.rawSeconds, 1),
    decodeRowsPerSecond: Math.round(changed / ceil.decodeSeconds),
    // the etcd session through the drain (a saturated event loop): a keep-alive that missed the TTL shows here
    captureSessionsLost: cdc.server.sessionsLost,
    captureRegistrations: cdc.server.registrations,
  };
  if (changefeeds > 1) {
    r['changefeeds'] = changefeeds;
    r['binlogDumpsPeak'] = dumpsPeak;
    r['binlogDumpsAtEnd'] = dumpsAtEnd;
  }
  if (scenario === 'big-txn') {
    r['spilledMiB'] = round(spilled / 1048576, 1);
    r['sorterMemoryPeakMiB'] = round(memoryPeak / 1048576, 1);
  }
  // from the changefeed's creation to the first row the sink counted, and to the first move of the checkpoint
  r['firstRowSeconds'] = firstRowAt === undefined ? undefined : round((firstRowAt - t0) / 1000, 2);
  r['firstCheckpointMoveSeconds'] = firstMoveAt === undefined ? undefined : round((firstMoveAt - t0) / 1000, 2);
  r['vsRawRead'] = ratio(r['rowsPerSecond'] as number, r['rawReadRowsPerSecond'] as number);
  r['vsDecode'] = ratio(r['rowsPerSecond'] as number, r['decodeRowsPerSecond'] as number);
  await sinkCeiling(r, changed, topic);
  return r;
}

/** The downstream's own ceiling for the same rows, measured after the changefeed drained. */
async function sinkCeiling(r: Fields, changed: number, topic: string): Promise<void> {
  if (sink === 'mysql') {
    r['downstreamInsertRowsPerSecond'] = Math.round(await downstreamInsertRate(downstreamAddr.host, downstreamAddr.port, shapeOf(scenario), changed));
    r['vsDownstreamInsert'] = ratio(r['rowsPerSecond'] as number, r['downstreamInsertRowsPerSecond']);
  } else if (sink === 'kafka') {
    const { count, meanBytes } = await topicMessages(kafkaAddr.addr, topic);
    r['kafkaMessages'] = count;
    r['kafkaMessageBytes'] = meanBytes;
    r['producerMsgPerSecond'] = Math.round(await producerRate(kafkaAddr.addr, Math.max(count, 1000), meanBytes));
    r['vsProducer'] = ratio(r['rowsPerSecond'] as number, r['producerMsgPerSecond']);
  }
}

// ------------------------------------------------------------------------------------------- fixed rate
interface Pending {
  readonly intended: number;
  /** When the generator's COMMIT returned: the clock both lags are measured from. */
  readonly committedAt: number;
  readonly ts: bigint;
}

/** A transaction the sink has not shown yet: its table and the figure (count or id) that shows it arrived. */
interface SinkPending {
  readonly table: string;
  readonly need: number;
  readonly committedAt: number;
}

/** Tables whose sink progress the bench polls for the sink lag (MAX(id) per table on the downstream). */
const SINK_LAG_MAX_TABLES = 50;

interface Resolved {
  readonly intended: number;
  readonly latency: number;
  /** From the commit's return to the checkpoint's move. */
  readonly checkpointLag: number;
}

function percentile(sorted: readonly number[], q: number): number | undefined {
  if (sorted.length === 0) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

async function fixedRateRun(run: number, up: mysql.Connection, db: string): Promise<Fields> {
  const tbls = tableNames(tables);
  const shape = shapeOf(scenario);
  const t0Setup = performance.now();
  await setup(up, scenario, db, tbls, rows);
  await mirrorDownstream(db, tbls);
  console.log(`# run ${run}: ${tbls.length} table(s) created in ${((performance.now() - t0Setup) / 1000).toFixed(1)} s`);
  const cdc = await startCdc(run);
  const id = `bench-${run}`;
  const topic = topicOf(run);
  const rssBefore = rssBytes(cdc.server.pid);
  const startPos = await masterPos(up);
  const t0Create = performance.now();
  // --changefeeds N: the others on blackhole, from the same position (the lags are the first one's)
  const others = Array.from({ length: changefeeds - 1 }, (_, i) => `${id}-${i + 2}`);
  await Promise.all([createChangefeed(cdc, id, db, sinkUri(topic), startPos.ts), ...others.map((other) => createChangefeed(cdc, other, db, 'blackhole://', startPos.ts))]);
  // the create request's answer (#23: within 5 s over 100,000 tables)
  const createSeconds = round((performance.now() - t0Create) / 1000, 1);
  await untilCheckpoint(cdc, id, startPos.ts, 120_000);
  const r: Fields = { createSeconds };
  if (scenario === 'many-tables') {
    // idle: every table scheduled and replicating (the checkpoint stands at the start from the create on, so it
    // says nothing of that: with 100,000 tables the idle window otherwise held the scheduling), nothing written
    const scheduled = performance.now();
    await untilReplicating(cdc, id, tbls.length, 300_000);
    r['allReplicatingSeconds'] = round((performance.now() - scheduled) / 1000, 1);
    // from the create request: the schema snapshot (the owner's, when create left it to it) and the scheduling
    r['allReplicatingFromCreateSeconds'] = round((performance.now() - t0Create) / 1000, 1);
    await new Promise((resolve) => setTimeout(resolve, settleMs));
    const idle = new ProcSampler(pids(cdc)).start();
    cleanups.push(() => Promise.resolve(void idle.stop()));
    await new Promise((resolve) => setTimeout(resolve, idleMs));
    idle.stop();
    const rss = idle.peakRss.get('cdc') ?? 0;
    r['idleCpuPercent'] = round(((idle.cpu('cdc') ?? 0) / idle.seconds) * 100, 2);
    r['idleCpuUsPerTablePerS'] = round((((idle.cpu('cdc') ?? 0) / idle.seconds) * 1e6) / tbls.length, 1);
    r['idleRssMiB'] = mib(rss);
    r['rssPerTableKiB'] = round((rss - rssBefore) / 1024 / tbls.length, 1);
  }

  // open loop: transaction i is due at t0 + i / txPerSecond whatever happened to the ones before it
  const txPerSecond = Math.min(rate, 200);
  const rowsPerTx = Math.max(1, Math.round(rate / txPerSecond));
  const pending: Pending[] = [];
  const resolved: Resolved[] = [];
  const cancel = await watchCheckpoint(cdc, id, (ts, at) => {
    while (pending.length > 0 && pending[0].ts <= ts) {
      const p = pending.shift()!;
      resolved.push({ intended: p.intended, latency: at - p.intended, checkpointLag: at - p.committedAt });
    }
  });
  cleanups.push(cancel);
  // the sink lag: each transaction until the sink shows its rows (per table, in commit order)
  const sinkProgress: SinkProgress | undefined =
    sink === 'blackhole' ? blackholeProgress(cdc.server.url, id, db)
    : sink === 'kafka' ? kafkaProgress(kafkaAddr.addr, topic)
    : tbls.length <= SINK_LAG_MAX_TABLES ? mysqlProgress(downstreamAddr.host, downstreamAddr.port, db, tbls)
    : undefined;
  const sinkPending = new Map<string, SinkPending[]>();
  const sinkLags: number[] = [];
  const sentPerTable = new Map<string, number>();
  let sinkPendingCount = 0;
  const takeSinkProgress = (): void => {
    if (sinkProgress === undefined || sinkPendingCount === 0) return;
    const now = performance.now();
    for (const [table, queue] of sinkPending) {
      const seen = sinkProgress.seen.get(table) ?? 0;
      while (queue.length > 0 && queue[0].need <= seen) {
        sinkLags.push(now - queue.shift()!.committedAt);
        sinkPendingCount--;
      }
    }
  };
  let sinkTimer: NodeJS.Timeout | undefined;
  if (sinkProgress !== undefined) {
    await sinkProgress.start();
    cleanups.push(() => sinkProgress.stop());
    sinkTimer = setInterval(takeSinkProgress, POLL_MS / 2);
    cleanups.push(() => Promise.resolve(clearInterval(sinkTimer)));
  }
  const ddlConn = scenario === 'ddl' ? await mysql.createConnection({ host: upstreamAddr.host, port: upstreamAddr.port, user: 'root' }) : undefined;
  if (ddlConn !== undefined) cleanups.push(() => ddlConn.end());
  const sampler = new ProcSampler(pids(cdc));
  cleanups.push(() => Promise.resolve(void sampler.stop()));
  const watchdog = changefeedWatchdog(cdc, id);
  sampler.start();
  const t0 = performance.now();
  const total = Math.floor(duration * txPerSecond);
  let nextId = 1_000_000;
  let maxBehindMs = 0;
  const ddls: Promise<void>[] = [];
  const ddlTimes: number[] = [];
  let ddlCount = 0;
  let lastCheck = performance.now();
  let lastTs: bigint | undefined;
  for (let i = 0; i < total; i++) {
    const intended = t0 + (i * 1000) / txPerSecond;
    const wait = intended - performance.now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    else maxBehindMs = Math.max(maxBehindMs, -wait);
    if (ddlConn !== undefined && performance.now() - t0 >= 15_000 + ddlCount * 30_000) {
      const n = ddlCount++;
      ddlTimes.push(performance.now());
      ddls.push(ddlConn.query(`ALTER TABLE \`${db}\`.t0 ${n % 2 === 0 ? `ADD COLUMN x${n} INT NULL` : `DROP COLUMN x${n - 1}`}`).then(() => undefined));
    }
    const table = tbls[i % tbls.length];
    await up.query(insertValuesSql(db, table, shape, nextId, rowsPerTx));
    const committedAt = performance.now();
    nextId += rowsPerTx;
    const sent = (sentPerTable.get(table) ?? 0) + rowsPerTx;
    sentPerTable.set(table, sent);
    if (sinkProgress !== undefined) {
      let queue = sinkPending.get(table);
      if (queue === undefined) sinkPending.set(table, (queue = []));
      queue.push({ table, need: sinkProgress.measure === 'count' ? sent : nextId - 1, committedAt });
      sinkPendingCount++;
    }
    const pos: BinlogPos = await masterPos(up);
    pending.push({ intended, committedAt, ts: pos.ts });
    lastTs = pos.ts;
    if (performance.now() - lastCheck > 1000) {
      lastCheck = performance.now();
      await watchdog.check();
    }
  }
  const genSeconds = (performance.now() - t0) / 1000;
  await Promise.all(ddls);
  const deadline = Date.now() + 120_000;
  while ((pending.length > 0 || sinkPendingCount > 0) && Date.now() < deadline) {
    await watchdog.check();
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  if (lastTs !== undefined) await Promise.all(others.map((other) => untilCheckpoint(cdc, other, lastTs, 120_000)));
  sampler.stop();
  await cancel();
  clearInterval(sinkTimer);
  await sinkProgress?.stop();
  const changed = total * rowsPerTx;
  const latencies = resolved.map((x) => x.latency).sort((a, b) => a - b);
  const checkpointLags = resolved.map((x) => x.checkpointLag).sort((a, b) => a - b);
  sinkLags.sort((a, b) => a - b);
  // the worst lag of the transactions due in the 5 s after each DDL
  const nearDdl = resolved.filter((x) => ddlTimes.some((d) => x.intended >= d && x.intended < d + 5000)).map((x) => x.latency);
  const info = await sinkInfo(cdc, id);
  Object.assign(r, {
    rows: changed,
    targetRowsPerSecond: rate,
    rowsPerTx,
    seconds: round(genSeconds, 2),
    rowsPerSecond: Math.round(changed / genSeconds),
    generatorMaxBehindMs: Math.round(maxBehindMs),
    ddls: ddlConn === undefined ? undefined : ddlCount,
    lagMaxNearDdlMs: nearDdl.length === 0 ? undefined : round(Math.max(...nearDdl)),
    sinkRows: sinkRows(info),
    sinkLagP50Ms: sinkProgress === undefined ? undefined : round(percentile(sinkLags, 0.5) ?? NaN),
    sinkLagP99Ms: sinkProgress === undefined ? undefined : round(percentile(sinkLags, 0.99) ?? NaN),
    sinkLagMaxMs: sinkProgress === undefined ? undefined : round(sinkLags.at(-1) ?? NaN),
    checkpointLagP50Ms: round(percentile(checkpointLags, 0.5) ?? NaN),
    checkpointLagP99Ms: round(percentile(checkpointLags, 0.99) ?? NaN),
    checkpointLagMaxMs: round(checkpointLags.at(-1) ?? NaN),
    lagP50Ms: round(percentile(latencies, 0.5) ?? NaN),
    lagP99Ms: round(percentile(latencies, 0.99) ?? NaN),
    lagP999Ms: round(percentile(latencies, 0.999) ?? NaN),
    lagMaxMs: round(latencies.at(-1) ?? NaN),
    unresolved: pending.length,
    cdcCpuPercent: round(((sampler.cpu('cdc') ?? 0) / sampler.seconds) * 100, 1),
    cdcCpuSecPer1M: per1M(sampler.cpu('cdc'), changed),
    upstreamCpuSecPer1M: per1M(sampler.cpu('upstream'), changed),
    downstreamCpuSecPer1M: per1M(sampler.cpu('downstream'), changed),
    cdcPeakRssMiB: mib(sampler.peakRss.get('cdc')),
    // the etcd session under load: a keep-alive that missed the session's TTL shows as a lost session and a new
    // registration (a new capture incarnation)
    captureSessionsLost: cdc.server.sessionsLost,
    captureRegistrations: cdc.server.registrations,
  } satisfies Fields);
  if (changefeeds > 1) r['changefeeds'] = changefeeds;
  if (pending.length > 0) r['error'] = `${pending.length} transactions not visible 120 s after the generator stopped`;
  if (joining > 0) {
    const { seconds, counts } = await timeBalancing(cdc, id, tbls.length, joining);
    r['joinedCaptures'] = joining;
    r['balanceSeconds'] = seconds === undefined ? undefined : round(seconds, 1);
    r['tablesPerCapture'] = counts.join('/');
    if (seconds === undefined) r['error'] = `the tables were not balanced over ${joining + 1} captures within ${BALANCE_TIMEOUT_MS / 1000} s: ${counts.join('/')}`;
  }
  return r;
}

const BALANCE_TIMEOUT_MS = 600_000;

/**
 * Starts `n` more captures in the cluster and waits until the changefeed's tables are balanced over all of them
 * (each capture's task position counts its tables, secondaries of moves in flight included: balanced when the
 * counts add up to the tables and differ by at most 1). Returns the seconds from the first join, or undefined.
 */
async function timeBalancing(cdc: Cdc, id: string, tables: number, n: number): Promise<{ seconds: number | undefined; counts: number[] }> {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await cdc.join();
  let counts: number[] = [];
  while (performance.now() - t0 < BALANCE_TIMEOUT_MS) {
    const positions = await cdc.etcd.getAll().prefix(cdc.positionPrefix).strings();
    counts = Object.entries(positions)
      .filter(([key]) => key.endsWith(`/${id}`))
      .map(([, value]) => (JSON.parse(value) as { 'table-count'?: number })['table-count'] ?? 0)
      .sort((a, b) => a - b);
    if (counts.length === n + 1 && counts.reduce((a, b) => a + b, 0) === tables && counts[counts.length - 1] - counts[0] <= 1) {
      return { seconds: (performance.now() - t0) / 1000, counts };
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  return { seconds: undefined, counts };
}

// ------------------------------------------------------------------------------------------- profile
interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

/** A profile's frame as `function file:line`, the file from node_modules, dist or plugins on. */
function frameName(f: ProfileNode['callFrame']): string {
  const where = f.url === '' ? '' : ` ${f.url.replace(/^file:\/\//, '').replace(/^.*\/(node_modules|dist|plugins)\//, '$1/')}:${f.lineNumber + 1}`;
  return `${f.functionName || '(anonymous)'}${where}`;
}

/** The top self-time frames of the newest .cpuprofile in `dir`. */
function topFrames(dir: string, n: number): string[] {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).sort();
  if (files.length === 0) return ['(no .cpuprofile written)'];
  const profile = JSON.parse(readFileSync(join(dir, files.at(-1)!), 'utf8')) as { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] };
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = new Map<string, number>();
  const byFile = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((sid, i) => {
    const node = byId.get(sid);
    const dt = profile.timeDeltas[i] ?? 0;
    total += dt;
    if (node === undefined) return;
    const f = node.callFrame;
    const key = frameName(f);
    self.set(key, (self.get(key) ?? 0) + dt);
    const file = f.url === '' ? key : f.url.replace(/^file:\/\//, '').replace(/^.*\/(node_modules\/(@[^/]+\/)?[^/]+)\/.*$/, '$1').replace(/^.*\/(dist|plugins)\//, '$1/');
    byFile.set(file, (byFile.get(file) ?? 0) + dt);
  });
  const lines = (m: Map<string, number>, k: number): string[] =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, k)
      .map(([name, us]) => `${((us / total) * 100).toFixed(1).padStart(5)}%  ${(us / 1e6).toFixed(2).padStart(6)} s  ${name}`);
  return [`${files.at(-1)} (${(total / 1e6).toFixed(2)} s sampled); self time by frame:`, ...lines(self, n), 'self time by file:', ...lines(byFile, 10)];
}

interface HeapProfileNode {
  callFrame: ProfileNode['callFrame'];
  selfSize: number;
  children?: HeapProfileNode[];
}

/**
 * The newest run's memory probe: process.memoryUsage() at its highest RSS, and the bytes allocated by site (frame
 * and caller; objects the collector freed included), from V8's sampling heap profiler.
 */
function memoryReport(dir: string, n: number): string[] {
  const newest = (suffix: string): string | undefined => readdirSync(dir).filter((f) => f.startsWith('memory-') && f.endsWith(suffix)).sort().at(-1);
  const peakFile = newest('.memory.json');
  const profileFile = newest('.heapprofile');
  if (peakFile === undefined || profileFile === undefined) return ['(no memory probe written: did the server exit on SIGTERM?)'];
  const peak = JSON.parse(readFileSync(join(dir, peakFile), 'utf8')) as Record<string, number>;
  const out = [`${profileFile}; at the highest RSS sampled (every 100 ms, ${peak['samples']} samples): RSS ${peak['rssMiB']} MiB, V8 heap ${peak['heapTotalMiB']} MiB (${peak['heapUsedMiB']} used), external ${peak['externalMiB']} MiB (array buffers ${peak['arrayBuffersMiB']})`];
  const bySite = new Map<string, number>();
  let total = 0;
  const walk = (node: HeapProfileNode, caller: HeapProfileNode | undefined): void => {
    if (node.selfSize > 0) {
      const key = `${frameName(node.callFrame)}${caller === undefined ? '' : ` <- ${frameName(caller.callFrame)}`}`;
      bySite.set(key, (bySite.get(key) ?? 0) + node.selfSize);
      total += node.selfSize;
    }
    for (const child of node.children ?? []) walk(child, node);
  };
  walk((JSON.parse(readFileSync(join(dir, profileFile), 'utf8')) as { head: HeapProfileNode }).head, undefined);
  out.push(`allocated over the server's life (sampled): ${(total / 1048576).toFixed(0)} MiB; by site:`);
  for (const [site, bytes] of [...bySite].sort((a, b) => b[1] - a[1]).slice(0, n)) out.push(`${((bytes / total) * 100).toFixed(1).padStart(5)}%  ${(bytes / 1048576).toFixed(1).padStart(7)} MiB  ${site}`);
  return out;
}

// ------------------------------------------------------------------------------------------- main
function printTable(results: readonly Fields[]): void {
  const keys = [...new Set(results.flatMap((r) => Object.keys(r)))].filter((k) => results.some((r) => r[k] !== undefined));
  const fmt = (v: number | string | undefined): string => (v === undefined ? '-' : typeof v === 'number' ? v.toLocaleString('en', { maximumFractionDigits: 2 }) : v);
  console.log(`\n${scenario} · sink ${sink} · ${fixedRate ? `fixed rate ${rate} rows/s for ${duration} s` : `backlog of ${rows.toLocaleString('en')} rows`} · ${results.length} run(s)`);
  for (const k of keys) {
    const nums = results.map((r) => r[k]).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
    let cell: string;
    if (results.length > 1 && nums.length === results.length) {
      const sorted = [...nums].sort((a, b) => a - b);
      const median = sorted.length % 2 === 1 ? sorted[(sorted.length - 1) / 2] : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
      cell = sorted[0] === sorted.at(-1) ? fmt(median) : `${fmt(median)}  (${fmt(sorted[0])} – ${fmt(sorted.at(-1))})`;
    } else cell = results.map((r) => fmt(r[k])).join(', ');
    console.log(`  ${k.padEnd(28)} ${cell}`);
  }
}

/**
 * For the mysql sink: what exists before the start position must exist downstream too (as after a user's initial
 * load; only changes after start-ts are replicated), so the same database, tables and pre-existing rows.
 */
async function mirrorDownstream(db: string, tbls: readonly string[]): Promise<void> {
  if (sink !== 'mysql') return;
  const down = await mysql.createConnection({ host: downstreamAddr.host, port: downstreamAddr.port, user: 'root', multipleStatements: true });
  cleanups.push(async () => {
    const conn = await mysql.createConnection({ host: downstreamAddr.host, port: downstreamAddr.port, user: 'root' });
    await dropDatabase(conn, db).catch(() => undefined);
    await conn.end();
  });
  try {
    await down.query(`CREATE DATABASE IF NOT EXISTS \`${db}\``);
    await setup(down, scenario, db, tbls, rows);
  } finally {
    await down.end();
  }
}

async function main(): Promise<number> {
  await requireService('etcd');
  await requireService('upstream');
  if (sink === 'mysql') await requireService('downstream');
  if (sink === 'kafka') await requireService('kafka');
  mkdirSync(RESULTS, { recursive: true });
  const results: Fields[] = [];
  let failed = false;
  for (let run = 1; run <= runs && !interrupted; run++) {
    const up = await mysql.createConnection({ host: upstreamAddr.host, port: upstreamAddr.port, user: 'root', multipleStatements: true });
    const db = `tm_bench_${scenario.replaceAll('-', '_')}_${process.pid}_${run}`;
    cleanups.push(async () => {
      await dropDatabase(up, db);
      await up.end();
    });
    await up.query(`CREATE DATABASE \`${db}\``);
    // runs after the server stopped (clean-ups run last first)
    if (sink === 'kafka') cleanups.push(() => deleteTopic(kafkaAddr.addr, topicOf(run)));
    const base: Fields = { bench: 'harness', scenario, sink, mode: fixedRate ? 'fixed-rate' : 'backlog', tables, run, at: new Date().toISOString() };
    let r: Fields;
    try {
      r = { ...base, ...(fixedRate ? await fixedRateRun(run, up, db) : await backlogRun(run, up, db)) };
    } catch (error) {
      failed = true;
      const message = interrupted ? 'interrupted' : error instanceof Error ? error.message : String(error);
      console.error(error instanceof SinkRefused ? `${sink} sink: ${message}` : `run ${run} failed: ${message}`);
      r = { ...base, error: message };
    } finally {
      await runCleanups();
    }
    results.push(r);
    appendFileSync(join(RESULTS, `${scenario}.jsonl`), `${JSON.stringify(r)}\n`);
    if (failed) break;
  }
  printTable(results);
  console.log(`(appended to bench/results/${scenario}.jsonl)`);
  if (opts['cpu-prof']) {
    console.log('\ntop self-time frames of the cdc server:');
    for (const line of topFrames(join(RESULTS, 'profiles'), 15)) console.log(`  ${line}`);
  }
  if (opts['memory-profile']) {
    console.log('\nmemory of the cdc server:');
    for (const line of memoryReport(join(RESULTS, 'profiles'), 15)) console.log(`  ${line}`);
  }
  return failed ? 1 : 0;
}

const code = await main().catch(async (error: unknown) => {
  console.error(error instanceof Error ? error.message : String(error));
  await runCleanups();
  return 1;
});
process.exit(code);
