import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { Etcd3 } from 'etcd3';
import mysql from 'mysql2/promise';
import { CDC_BIN, CdcServerProcess } from '../../helpers/cdc-process.js';
import { etcdEndpoint, mysqlUri, requireService, uniqueName } from '../../helpers/services.js';
import { upstreamEndTs } from '../../helpers/upstream.js';
import { waitFor } from '../../helpers/wait-for.js';
import { referencedMetrics, rulesAndDashboardExprs } from './prometheus.js';

const run = promisify(execFile);

/** The metrics of a Prometheus text exposition: name → type, and the samples (name with labels → value). */
function parseExposition(text: string): { types: Map<string, string>; samples: { name: string; labels: Record<string, string>; value: number }[] } {
  const types = new Map<string, string>();
  const samples: { name: string; labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type !== null) types.set(type[1], type[2]);
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null) continue;
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[k] = v!;
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return { types, samples };
}

/**
 * Acceptance of the metrics issue: every series the Grafana dashboard (metrics/grafana-dashboard.json) and the
 * alert rules (metrics/tidemark.rules.yml) reference is exported by a real `cdc server` running a changefeed,
 * and the counted series hold the workload's numbers.
 */
describe('metrics: the series of the dashboard and the rules are exported by a running server', () => {
  const home = mkdtempSync(join(tmpdir(), 'tidemark-metrics-series-'));
  const clusterId = uniqueName('mseries').replaceAll('_', '-');
  const db = uniqueName('mseries');
  let server: CdcServerProcess;
  let etcd: Etcd3;
  let upstream: mysql.Connection;

  before(async () => {
    await requireService('etcd');
    await requireService('upstream');
    etcd = new Etcd3({ hosts: etcdEndpoint() });
    upstream = await mysql.createConnection({ uri: mysqlUri('upstream') });
    await upstream.query(`CREATE DATABASE \`${db}\``);
    await upstream.query(`CREATE TABLE \`${db}\`.t (id INT PRIMARY KEY, v INT NOT NULL)`);
    server = await CdcServerProcess.start({ pd: etcdEndpoint(), clusterId, extraArgs: ['--upstream', mysqlUri('upstream')] });
    await server.waitHealthy();
  });
  after(async () => {
    await server?.stop();
    await upstream?.query(`DROP DATABASE IF EXISTS \`${db}\``);
    await upstream?.end();
    await etcd?.delete().prefix(`/tidb/cdc/${clusterId}/`);
    etcd?.close();
  });

  it('a changefeed with 300 inserts, 50 updates and 20 deletes: every referenced series is exported, the counts are exact', async () => {
    const config = join(home, 'cf.toml');
    writeFileSync(config, `[filter]\nrules = ["${db}.*"]\n`);
    await run(process.execPath, [CDC_BIN, 'changefeed', 'create', '--server', server.url, '--sink-uri', 'blackhole://', '-c', 'mcf', '--config', config, '--json'], { timeout: 60_000 });
    await waitFor(async () => (await server.api<{ items: unknown[] }>('/api/v2/changefeeds/mcf/tables')).items.length === 1, { what: 'the table to be scheduled' });
    const values = Array.from({ length: 300 }, (_, i) => `(${i}, ${i})`).join(',');
    await upstream.query(`INSERT INTO \`${db}\`.t VALUES ${values}`);
    await upstream.query(`UPDATE \`${db}\`.t SET v = v + 1 WHERE id < 50`);
    await upstream.query(`DELETE FROM \`${db}\`.t WHERE id >= 280`);
    const end = await upstreamEndTs(upstream);
    await waitFor(async () => BigInt((await server.api<{ checkpoint_ts: string }>('/api/v2/changefeeds/mcf/sink')).checkpoint_ts) >= end, { timeoutMs: 60_000, what: 'the changefeed to catch up' });

    const scrape = async (): Promise<ReturnType<typeof parseExposition>> => {
      const res = await fetch(`${server.url}/metrics`, { signal: AbortSignal.timeout(5000) });
      assert.equal(res.status, 200);
      return parseExposition(await res.text());
    };
    // the owner's status follows the processor's acknowledgement by a heartbeat: wait until the owner series are there
    const exposition = await waitFor(
      async () => {
        const e = await scrape();
        const has = (name: string): boolean => e.samples.some((s) => s.name === name && s.labels['changefeed'] === 'mcf');
        return has('tidemark_owner_checkpoint_ts_lag_seconds') && has('tidemark_binlog_reader_lag_bytes') && e.samples.some((s) => s.name === 'tidemark_sink_rows_total' && s.labels['kind'] === 'delete' && s.value === 20) ? e : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 250, what: 'the owner and processor series of mcf' },
    );
    const histograms = new Set([...exposition.types].filter(([, t]) => t === 'histogram').map(([n]) => n));
    const { rules, dashboard } = rulesAndDashboardExprs();
    const referenced = new Set([...referencedMetrics(rules, histograms), ...referencedMetrics(dashboard.join('\n'), histograms)]);
    assert.ok(referenced.size >= 40, `only ${referenced.size} series referenced`);
    const missing = [...referenced].filter((name) => !exposition.types.has(name)).sort();
    assert.deepEqual(missing, [], `referenced by the dashboard or the rules but not exported: ${missing.join(', ')}`);

    // the series of a replicating changefeed have samples (not only a TYPE line)
    const sample = (name: string, labels: Record<string, string> = {}): number | undefined =>
      exposition.samples.find((s) => s.name === name && s.labels['changefeed'] === 'mcf' && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
    for (const name of [
      'tidemark_owner_checkpoint_ts_lag_seconds', 'tidemark_owner_checkpoint_ts', 'tidemark_owner_resolved_ts', 'tidemark_owner_status', 'tidemark_owner_checkpoint_binlog_file_sequence',
      'tidemark_processor_checkpoint_ts_lag_seconds', 'tidemark_processor_resolved_ts_lag_seconds', 'tidemark_processor_checkpoint_ts', 'tidemark_processor_resolved_ts',
      'tidemark_sorter_memory_bytes', 'tidemark_sorter_memory_quota_bytes', 'tidemark_sorter_spilled_bytes', 'tidemark_binlog_reader_ts', 'tidemark_binlog_reader_file_sequence',
      'tidemark_binlog_reader_lag_bytes', 'tidemark_binlog_reader_lag_files', 'tidemark_upstream_first_binlog_file_sequence', 'tidemark_binlog_read_bytes_total',
      'tidemark_sink_write_duration_seconds_count', 'tidemark_sink_flush_duration_seconds_count', 'tidemark_sink_batch_rows_count', 'tidemark_owner_changefeed_tables', 'tidemark_processor_tables',
    ]) {
      assert.notEqual(sample(name), undefined, `${name}{changefeed="mcf"} has no sample`);
    }
    assert.equal(sample('tidemark_changefeed_state', { state: 'normal' }), 1);
    assert.equal(sample('tidemark_changefeed_state', { state: 'failed' }), 0);
    assert.equal(sample('tidemark_owner_status'), 0);
    // exact counts of the workload, read and written
    assert.equal(sample('tidemark_sink_rows_total', { kind: 'insert' }), 300);
    assert.equal(sample('tidemark_sink_rows_total', { kind: 'update' }), 50);
    assert.equal(sample('tidemark_sink_rows_total', { kind: 'delete' }), 20);
    assert.equal(sample('tidemark_processor_rows_read_total', { kind: 'insert' }), 300);
    assert.equal(sample('tidemark_processor_rows_read_total', { kind: 'update' }), 50);
    assert.equal(sample('tidemark_processor_rows_read_total', { kind: 'delete' }), 20);
    assert.ok(sample('tidemark_binlog_read_bytes_total')! > 300 * 8, 'binlog bytes read cover the rows');
    assert.equal(sample('tidemark_processor_tables'), 1);
    assert.equal(sample('tidemark_owner_changefeed_tables'), 1);
    // caught up and idle: the reader is at the upstream's end, the lag is the heartbeat's
    assert.equal(sample('tidemark_binlog_reader_lag_files'), 0);
    assert.ok(sample('tidemark_owner_checkpoint_ts_lag_seconds')! < 10, `checkpoint lag ${sample('tidemark_owner_checkpoint_ts_lag_seconds')} s while idle`);
    const owner = exposition.samples.find((s) => s.name === 'tidemark_owner_is_owner');
    assert.equal(owner?.value, 1);
    assert.equal(exposition.samples.find((s) => s.name === 'tidemark_capture_incarnations_total')?.value, 1);
    assert.ok((exposition.samples.find((s) => s.name === 'tidemark_etcd_worker_txn_duration_seconds_count')?.value ?? 0) > 0, 'etcd transactions timed');
    assert.ok(exposition.samples.some((s) => s.name === 'tidemark_p2p_messages_total' && s.labels['direction'] === 'received' && s.value > 0), 'p2p messages counted');
    // no per-table series without per-table-metrics
    assert.equal(exposition.samples.filter((s) => s.name.startsWith('tidemark_table_')).length, 0);
  });

  it('a failing sink: errors counted by code, the changefeed state and error code exported, back to normal after', async () => {
    const config = join(home, 'failing.toml');
    writeFileSync(config, `[filter]\nrules = ["${db}.*"]\n`);
    const until = Date.now() + 6000;
    await run(process.execPath, [CDC_BIN, 'changefeed', 'create', '--server', server.url, '--sink-uri', `blackhole://?fail-until=${until}`, '-c', 'failing', '--config', config, '--json'], { timeout: 60_000 });
    await upstream.query(`INSERT INTO \`${db}\`.t VALUES (500, 1)`);
    const scrape = async (): Promise<ReturnType<typeof parseExposition>['samples']> => parseExposition(await (await fetch(`${server.url}/metrics`, { signal: AbortSignal.timeout(5000) })).text()).samples;
    const value = (samples: ReturnType<typeof parseExposition>['samples'], name: string, labels: Record<string, string>): number | undefined =>
      samples.find((s) => s.name === name && s.labels['changefeed'] === 'failing' && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
    const failing = await waitFor(
      async () => {
        const samples = await scrape();
        const errors = value(samples, 'tidemark_sink_errors_total', { code: 'ErrSinkFailed' }) ?? 0;
        const retrying = (value(samples, 'tidemark_changefeed_state', { state: 'warning' }) ?? 0) + (value(samples, 'tidemark_changefeed_state', { state: 'pending' }) ?? 0);
        return errors >= 1 && retrying === 1 && value(samples, 'tidemark_changefeed_error', { code: 'ErrSinkFailed' }) === 1 ? samples : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 250, what: 'the sink errors and the warning state of "failing"' },
    );
    assert.equal(value(failing, 'tidemark_changefeed_state', { state: 'normal' }), 0);
    assert.notEqual(value(failing, 'tidemark_owner_status', {}), 0);
    // the blackhole stops failing: the changefeed goes back to normal and writes the row
    await waitFor(
      async () => {
        const samples = await scrape();
        return value(samples, 'tidemark_changefeed_state', { state: 'normal' }) === 1 && (value(samples, 'tidemark_sink_rows_total', { kind: 'insert' }) ?? 0) >= 1 || undefined;
      },
      { timeoutMs: 60_000, intervalMs: 250, what: '"failing" back to normal with its row written' },
    );
    await run(process.execPath, [CDC_BIN, 'changefeed', 'remove', '--server', server.url, '-c', 'failing', '--json'], { timeout: 60_000 });
  });

  it('an initial snapshot: the rows copied and the tables by state, as etcd has them', async () => {
    const config = join(home, 'snap.toml');
    writeFileSync(config, `[filter]\nrules = ["${db}.*"]\n`);
    const [counted] = await upstream.query<mysql.RowDataPacket[]>(`SELECT COUNT(*) AS n FROM \`${db}\`.t`);
    const n = Number(counted[0]['n']);
    await run(process.execPath, [CDC_BIN, 'changefeed', 'create', '--server', server.url, '--sink-uri', 'blackhole://', '-c', 'snap', '--snapshot', 'initial', '--config', config, '--json'], { timeout: 120_000 });
    const samples = await waitFor(
      async () => {
        const { samples } = parseExposition(await (await fetch(`${server.url}/metrics`, { signal: AbortSignal.timeout(5000) })).text());
        const done = samples.find((s) => s.name === 'tidemark_snapshot_tables' && s.labels['changefeed'] === 'snap' && s.labels['state'] === 'done')?.value;
        return done === 1 ? samples : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 250, what: 'the snapshot of "snap" done in the metrics' },
    );
    const value = (name: string, labels: Record<string, string> = {}): number | undefined =>
      samples.find((s) => s.name === name && s.labels['changefeed'] === 'snap' && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
    assert.ok(n > 0);
    assert.equal(value('tidemark_snapshot_rows_copied'), n);
    assert.equal(value('tidemark_snapshot_tables', { state: 'pending' }), 0);
    assert.equal(value('tidemark_snapshot_tables', { state: 'copying' }), 0);
    await run(process.execPath, [CDC_BIN, 'changefeed', 'remove', '--server', server.url, '-c', 'snap', '--json'], { timeout: 60_000 });
  });

  it('per-table-metrics = true in the server config: the table series appear, labelled with the table', async () => {
    const config = join(home, 'server.toml');
    writeFileSync(config, 'per-table-metrics = true\n');
    const second = await CdcServerProcess.start({ pd: etcdEndpoint(), clusterId, extraArgs: ['--upstream', mysqlUri('upstream'), '--config', config] });
    try {
      await second.waitHealthy();
      // the first server drains (its table moves to the second), then exits
      await server.stop();
      await upstream.query(`INSERT INTO \`${db}\`.t VALUES (1000, 1)`);
      const text = await waitFor(
        async () => {
          const body = await (await fetch(`${second.url}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
          return /tidemark_table_checkpoint_ts_lag_seconds\{[^}]*table="[^"]+\.t"/.test(body) ? body : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 500, what: 'the per-table series on the server with per-table-metrics' },
      );
      const { samples } = parseExposition(text);
      const tables = samples.filter((s) => s.name === 'tidemark_table_resolved_ts' && s.labels['changefeed'] === 'mcf').map((s) => s.labels['table']);
      assert.deepEqual(tables, [`${db}.t`]);
      assert.equal(samples.find((s) => s.name === 'tidemark_sink_rows_total' && s.labels['changefeed'] === 'mcf' && s.labels['kind'] === 'insert')?.value, 1, 'the new capture counts what it wrote');
    } finally {
      await second.stop();
    }
  });
});
