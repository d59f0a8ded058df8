import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { Etcd3 } from 'etcd3';
import mysql from 'mysql2/promise';
import { CDC_BIN, CdcServerGroup } from '../../helpers/cdc-process.js';
import { etcdEndpoint, mysqlUri, requireService, uniqueName } from '../../helpers/services.js';
import { upstreamEndTs } from '../../helpers/upstream.js';
import { waitFor } from '../../helpers/wait-for.js';
import { Prometheus, RULES_FILE } from './prometheus.js';

const run = promisify(execFile);
const ALERT = 'TidemarkChangefeedCheckpointLagHigh';

/**
 * The repo's checkpoint-lag rule with short thresholds, for a test that runs in well under 2 minutes: the same
 * expression and labels, `> 60` → `> threshold`, `for: 1m` → `for: forSeconds`, and a `rules: test` label so its
 * ALERTS series is told apart from the real rule's.
 */
export function testLagRule(thresholdSeconds: number, forSeconds: number, group: string): string {
  const text = readFileSync(RULES_FILE, 'utf8');
  const start = text.indexOf(`      - alert: ${ALERT}\n`);
  assert.ok(start >= 0, `${ALERT} is not in ${RULES_FILE}`);
  const end = text.indexOf('\n      - alert: ', start + 1);
  const block = text.slice(start, end < 0 ? undefined : end + 1);
  const rule = block
    .replace(/\) > 60\n/, `) > ${thresholdSeconds}\n`)
    .replace('        for: 1m\n', `        for: ${forSeconds}s\n`)
    .replace('        labels:\n', '        labels:\n          rules: test\n');
  assert.notEqual(rule, block);
  assert.match(rule, new RegExp(`> ${thresholdSeconds}\\n`));
  assert.match(rule, new RegExp(`for: ${forSeconds}s\\n`));
  return `groups:\n  - name: ${group}\n    rules:\n${rule}`;
}

/**
 * Acceptance of the metrics issue against a real Prometheus (scripts/services.sh up prometheus): two cdc servers
 * and a changefeed under load into a slowed blackhole sink. Prometheus scrapes both (file_sd) and evaluates the
 * checkpoint-lag rule of metrics/tidemark.rules.yml with short thresholds: the lag series exist, rise while the
 * sink is behind and fall once it has caught up; the alert fires (ALERTS) and resolves.
 */
describe('metrics: a real Prometheus scrapes two captures, the checkpoint-lag alert fires and resolves', () => {
  const home = mkdtempSync(join(tmpdir(), 'tidemark-metrics-prom-'));
  const clusterId = uniqueName('mprom').replaceAll('_', '-');
  const db = uniqueName('mprom');
  const changefeed = `lag-${clusterId.slice(-8)}`;
  const cluster = new CdcServerGroup({ pd: etcdEndpoint(), clusterId, extraArgs: ['--upstream', mysqlUri('upstream')] });
  let prometheus: Prometheus;
  let etcd: Etcd3;
  let upstream: mysql.Connection;

  before(async () => {
    await requireService('etcd');
    await requireService('upstream');
    prometheus = await Prometheus.start();
    etcd = new Etcd3({ hosts: etcdEndpoint() });
    upstream = await mysql.createConnection({ uri: mysqlUri('upstream') });
    await upstream.query(`CREATE DATABASE \`${db}\``);
    for (let i = 0; i < 4; i++) await upstream.query(`CREATE TABLE \`${db}\`.t${i} (id INT PRIMARY KEY, v INT NOT NULL)`);
    await cluster.start();
    await cluster.start();
  });
  after(async () => {
    await prometheus?.cleanUp();
    await cluster.stopAll();
    await upstream?.query(`DROP DATABASE IF EXISTS \`${db}\``);
    await upstream?.end();
    await etcd?.delete().prefix(`/tidb/cdc/${clusterId}/`);
    etcd?.close();
  });

  it('lag rises while the sink is slowed, falls after; the alert fires and resolves', async () => {
    // the repo's rules are loaded; ours joins them with short thresholds
    assert.ok((await prometheus.ruleFiles()).some((g) => g.endsWith('tidemark.rules.yml#tidemark-changefeed')), 'metrics/tidemark.rules.yml is loaded');
    const group = `tidemark-test-${clusterId}`;
    await prometheus.writeRules(group, testLagRule(4, 4, group));
    await waitFor(async () => (await prometheus.ruleFiles()).some((g) => g.endsWith(`#${group}`)), { timeoutMs: 10_000, what: 'the test rule group to load' });
    prometheus.writeTargets(group, cluster.servers.map((s) => s.addr), { cluster: clusterId });
    const sel = `cluster="${clusterId}"`;
    await waitFor(async () => (await prometheus.query(`up{${sel}} == 1`)).length === 2 || undefined, { timeoutMs: 20_000, intervalMs: 500, what: 'Prometheus to scrape both captures' });

    // ~100 rows/s through the sink (10 ms per row, 50 ms per call), 4 tables over the two captures
    const config = join(home, 'cf.toml');
    writeFileSync(config, `[filter]\nrules = ["${db}.*"]\n`);
    await run(process.execPath, [CDC_BIN, 'changefeed', 'create', '--server', cluster.servers[0].url, '--sink-uri', 'blackhole://?write-delay-ms=50&row-delay-us=10000', '-c', changefeed, '--config', config, '--json'], { timeout: 60_000 });
    const cf = `${sel}, changefeed="${changefeed}"`;
    // a first commit gives the checkpoint a commit time (a new changefeed's start has none)
    await upstream.query(`INSERT INTO \`${db}\`.t0 VALUES (-1, 0)`);
    await waitFor(async () => (await prometheus.value(`tidemark_owner_checkpoint_ts_lag_seconds{${cf}}`)) !== undefined || undefined, { timeoutMs: 30_000, intervalMs: 500, what: 'the checkpoint lag series in Prometheus' });
    await waitFor(async () => (await prometheus.query(`tidemark_processor_resolved_ts_lag_seconds{${cf}}`)).length === 2 || undefined, { timeoutMs: 30_000, intervalMs: 500, what: 'the resolved lag series of both captures' });
    const idleLag = (await prometheus.value(`tidemark_owner_checkpoint_ts_lag_seconds{${cf}}`))!;
    assert.ok(idleLag < 4, `lag before the load is ${idleLag} s`);

    // the load: 250 rows/s for 12 s, more than the slowed sink takes
    let inserted = 0;
    const loadEnds = Date.now() + 12_000;
    const alertFiring = `ALERTS{alertname="${ALERT}", alertstate="firing", rules="test", changefeed="${changefeed}"}`;
    while (Date.now() < loadEnds) {
      const rows = Array.from({ length: 25 }, (_, i) => `(${inserted + i}, ${i})`).join(',');
      await upstream.query(`INSERT INTO \`${db}\`.t${(inserted / 25) % 4} VALUES ${rows}`);
      inserted += 25;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const end = await upstreamEndTs(upstream);

    // the lag rose past the threshold, and the alert fired, evaluated by Prometheus
    const peak = await waitFor(async () => {
      const lag = await prometheus.value(`tidemark_owner_checkpoint_ts_lag_seconds{${cf}}`);
      return lag !== undefined && lag > 6 ? lag : undefined;
    }, { timeoutMs: 30_000, intervalMs: 500, what: 'the checkpoint lag to rise above 6 s' });
    await waitFor(async () => (await prometheus.query(alertFiring)).length === 1 || undefined, { timeoutMs: 30_000, intervalMs: 500, what: `${ALERT} to fire` });
    const [firing] = await prometheus.query(alertFiring);
    assert.equal(firing?.metric['severity'], 'warning');
    assert.equal(firing?.metric['namespace'], 'default');

    // the sink catches up: every row acknowledged, the lag falls back, the alert resolves
    await waitFor(async () => {
      const statuses = await Promise.all(cluster.servers.map((s) => s.api<{ checkpoint_ts: string }>(`/api/v2/changefeeds/${changefeed}/sink`).catch(() => undefined)));
      return statuses.every((st) => st === undefined || BigInt(st.checkpoint_ts) >= end) || undefined;
    }, { timeoutMs: 90_000, intervalMs: 500, what: 'the slowed sink to catch up' });
    const settled = await waitFor(async () => {
      const lag = await prometheus.value(`tidemark_owner_checkpoint_ts_lag_seconds{${cf}}`);
      return lag !== undefined && lag < 3 ? lag : undefined;
    }, { timeoutMs: 30_000, intervalMs: 500, what: 'the checkpoint lag to fall below 3 s' });
    assert.ok(settled < peak);
    const maxLag = await prometheus.value(`max_over_time(tidemark_owner_checkpoint_ts_lag_seconds{${cf}}[3m])`);
    assert.ok(maxLag !== undefined && maxLag >= peak, `max lag over the run ${maxLag}, peak seen ${peak}`);
    await waitFor(async () => (await prometheus.query(alertFiring)).length === 0 || undefined, { timeoutMs: 30_000, intervalMs: 500, what: `${ALERT} to resolve` });

    // what went through, as Prometheus has it: every row inserted (the load and the first one) was read and written once
    const rows = inserted + 1;
    await waitFor(async () => (await prometheus.value(`sum(tidemark_sink_rows_total{${cf}, kind="insert"})`)) === rows || undefined, { timeoutMs: 15_000, intervalMs: 500, what: `${rows} inserts written in Prometheus` }).catch(async (error: unknown) => {
      console.log(`# sink rows in Prometheus: ${JSON.stringify(await prometheus.query(`tidemark_sink_rows_total{${cf}}`))}`);
      throw error;
    });
    assert.equal(await prometheus.value(`sum(tidemark_processor_rows_read_total{${cf}, kind="insert"})`), rows);
    assert.equal((await prometheus.query(`tidemark_sink_rows_total{${cf}, kind="insert"} > 0`)).length, 2, 'both captures wrote rows');
    assert.ok((await prometheus.value(`max_over_time(tidemark_processor_checkpoint_ts_lag_seconds{${cf}}[3m])`))! > 4, 'the processor checkpoint lag rose too');
    assert.equal(await prometheus.value(`sum(tidemark_owner_is_owner{${sel}})`), 1);
  });
});
