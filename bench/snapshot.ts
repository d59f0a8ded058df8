/**
 * The initial snapshot's benchmark (`--snapshot initial`): one table of N narrow rows copied by a real `cdc server`
 * (from dist/) into the downstream MariaDB and into Kafka, each next to its ceiling measured in the same run:
 *   - mysql: `mariadb-dump --single-transaction | mariadb` of the same table into the downstream (dump and load);
 *   - kafka: a plain producer (@platformatic/kafka, acks=all) sending as many messages of the same mean size.
 * Times run from the create request to the table's snapshot record reading done (every row acknowledged by the
 * sink); the capture's peak RSS is sampled throughout.
 *
 * usage: npm run bench:snapshot -- [--rows N] [--sink mysql|kafka|both] [--memory-quota MiB] [--chunk-rows N] [--cpu-prof DIR]
 *                                   [--partition table|index-value|ts|columns (Kafka's dispatcher)]
 * Needs `bash scripts/services.sh up` and `npm run build`. Appends JSON lines to bench/results/snapshot.jsonl.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Etcd3 } from 'etcd3';
import mysql from 'mysql2/promise';
import { etcdEndpoint, requireService, serviceAddress } from '../test/helpers/services.js';
import { ApiClient } from '../src/core/api/client.js';
import { BenchCdcServer } from './harness/cdc.js';
import { ProcSampler } from './harness/measure.js';
import { deleteTopic, producerRate, topicMessages } from './harness/sink-ceilings.js';
import { NARROW, createTableSql } from './harness/workloads.js';

const { values: opts } = parseArgs({
  options: {
    rows: { type: 'string', default: '1000000' },
    sink: { type: 'string', default: 'both' },
    'memory-quota': { type: 'string' },
    'chunk-rows': { type: 'string' },
    'cpu-prof': { type: 'string' },
    partition: { type: 'string' },
  },
});
const rows = Number(opts.rows);
const sinks = opts.sink === 'both' ? ['mysql', 'kafka'] : [opts.sink];
if (!Number.isInteger(rows) || rows <= 0 || !sinks.every((s) => s === 'mysql' || s === 'kafka')) {
  console.error('usage: npm run bench:snapshot -- [--rows N] [--sink mysql|kafka|both] [--memory-quota MiB] [--chunk-rows N]');
  process.exit(2);
}
const memoryQuotaMiB = opts['memory-quota'] === undefined ? undefined : Number(opts['memory-quota']);
const chunkRows = opts['chunk-rows'] === undefined ? undefined : Number(opts['chunk-rows']);

const up = serviceAddress('upstream');
const down = serviceAddress('downstream');
const kafka = serviceAddress('kafka');
const broker = `${kafka.host}:${kafka.port}`;
const db = `tm_bench_snap_${process.pid}`;
const RESULTS = new URL('./results/', import.meta.url).pathname;

function run(command: string, args: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-o', 'pipefail', '-c', [command, ...args].join(' ')], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${command} exited with ${code}: ${err.slice(-2000)}`))));
  });
}

async function fill(conn: mysql.Connection): Promise<void> {
  await conn.query(`CREATE DATABASE \`${db}\``);
  await conn.query(createTableSql(db, 't', NARROW));
  for (let a = 1; a <= rows; a += 50_000) {
    const b = Math.min(rows, a + 49_999);
    await conn.query(`INSERT INTO \`${db}\`.t (id, ${NARROW.names.join(', ')}) SELECT seq, ${NARROW.selectExprs} FROM \`${db}\`.seq_${a}_to_${b}`);
  }
}

/** rows/s of mariadb-dump | mariadb of the table into a scratch database of the downstream. */
async function dumpAndLoad(): Promise<number> {
  const target = `${db}_dump`;
  const downConn = await mysql.createConnection({ host: down.host, port: down.port, user: 'root' });
  try {
    await downConn.query(`CREATE DATABASE \`${target}\``);
    const t0 = performance.now();
    await run(`mariadb-dump -h ${up.host} -P ${up.port} -u root --single-transaction --quick ${db} t | mariadb -h ${down.host} -P ${down.port} -u root ${target}`, []);
    return rows / ((performance.now() - t0) / 1000);
  } finally {
    await downConn.query(`DROP DATABASE IF EXISTS \`${target}\``).catch(() => undefined);
    await downConn.end();
  }
}

/** Copies the table with a changefeed to `sinkUri`; rows/s from the create request to the record reading done, and the capture's peak RSS. */
async function tidemark(etcd: Etcd3, sink: string, sinkUri: string): Promise<{ rate: number; seconds: number; peakRssMiB: number; cpu: number }> {
  const clusterId = `bench-snap-${process.pid}-${sink}`;
  const dataDir = mkdtempSync(join(tmpdir(), 'tm-bench-snap-'));
  const server = await BenchCdcServer.start({ pd: etcdEndpoint(), clusterId, dataDir, upstream: `mysql://root@${up.host}:${up.port}`, nodeFlags: opts['cpu-prof'] === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', opts['cpu-prof']] });
  const sampler = new ProcSampler(new Map([['capture', server.pid]]));
  try {
    await server.waitHealthy(30_000);
    const snapshot: Record<string, unknown> = { mode: 'initial', ...(chunkRows === undefined ? {} : { 'chunk-rows': chunkRows }) };
    const dispatch = sink === 'kafka' && opts.partition !== undefined ? { sink: { dispatchers: [{ matcher: ['*.*'], partition: opts.partition }] } } : {};
    const config = { filter: { rules: [`${db}.t`] }, snapshot, ...dispatch, ...(memoryQuotaMiB === undefined ? {} : { 'memory-quota': memoryQuotaMiB * 1048576 }) };
    sampler.start();
    const t0 = performance.now();
    await new ApiClient(server.url, 30_000).createChangefeed({ changefeed_id: 'snap', sink_uri: sinkUri, replica_config: config });
    const key = `/tidb/cdc/${clusterId}/default/changefeed/snapshot/snap/${encodeURIComponent(`${db}.t`)}`;
    for (;;) {
      const record = JSON.parse((await etcd.get(key).string()) ?? '{}') as { state?: string };
      if (record.state === 'done') break;
      if (server.exitCode !== undefined) throw new Error(`cdc server exited: ${server.output.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const seconds = (performance.now() - t0) / 1000;
    sampler.stop();
    return { rate: rows / seconds, seconds, peakRssMiB: Math.round((sampler.peakRss.get('capture') ?? 0) / 1048576), cpu: Math.round((sampler.cpu('capture') ?? 0) * 10) / 10 };
  } finally {
    sampler.stop();
    await server.stop();
    await etcd.delete().prefix(`/tidb/cdc/${clusterId}/`);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  await requireService('etcd');
  await requireService('upstream');
  await requireService('downstream');
  if (sinks.includes('kafka')) await requireService('kafka');
  const upConn = await mysql.createConnection({ host: up.host, port: up.port, user: 'root' });
  const downConn = await mysql.createConnection({ host: down.host, port: down.port, user: 'root' });
  const etcd = new Etcd3({ hosts: etcdEndpoint() });
  mkdirSync(RESULTS, { recursive: true });
  try {
    console.log(`filling ${db}.t with ${rows} narrow rows…`);
    await fill(upConn);
    for (const sink of sinks) {
      const fields: Record<string, number | string | undefined> = { bench: 'snapshot', sink, rows, memoryQuotaMiB, chunkRows, partition: sink === 'kafka' ? (opts.partition ?? 'table') : undefined, at: new Date().toISOString() };
      if (sink === 'mysql') {
        fields['ceilingRate'] = Math.round(await dumpAndLoad());
        const t = await tidemark(etcd, sink, `mysql://root@${down.host}:${down.port}/`);
        const [count] = await downConn.query<mysql.RowDataPacket[]>(`SELECT COUNT(*) AS n FROM \`${db}\`.t`);
        if (Number(count[0]['n']) !== rows) throw new Error(`the downstream has ${count[0]['n']} rows, not ${rows}`);
        Object.assign(fields, { rate: Math.round(t.rate), seconds: Math.round(t.seconds * 10) / 10, peakRssMiB: t.peakRssMiB, cpuSeconds: t.cpu, ratio: Math.round((t.rate / Number(fields['ceilingRate'])) * 100) / 100, ceiling: 'mariadb-dump | mariadb' });
        await downConn.query(`DROP DATABASE IF EXISTS \`${db}\``);
      } else {
        const topic = `tm-bench-snap-${process.pid}`;
        const t = await tidemark(etcd, sink, `kafka://${broker}/${topic}?protocol=canal-json&partition-num=3`);
        const { count, meanBytes } = await topicMessages(broker, topic);
        if (count < rows) throw new Error(`the topic has ${count} messages, fewer than ${rows}`);
        fields['ceilingRate'] = Math.round(await producerRate(broker, rows, meanBytes));
        Object.assign(fields, { rate: Math.round(t.rate), seconds: Math.round(t.seconds * 10) / 10, peakRssMiB: t.peakRssMiB, cpuSeconds: t.cpu, messages: count, meanBytes, ratio: Math.round((t.rate / Number(fields['ceilingRate'])) * 100) / 100, ceiling: 'plain producer' });
        await deleteTopic(broker, topic);
      }
      console.log(JSON.stringify(fields));
      appendFileSync(join(RESULTS, 'snapshot.jsonl'), `${JSON.stringify(fields)}\n`);
    }
  } finally {
    await upConn.query(`DROP DATABASE IF EXISTS \`${db}\``).catch(() => undefined);
    await downConn.query(`DROP DATABASE IF EXISTS \`${db}\``).catch(() => undefined);
    await upConn.end();
    await downConn.end();
    etcd.close();
  }
}

await main();
