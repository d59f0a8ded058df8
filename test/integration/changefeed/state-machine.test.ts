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
import { waitFor } from '../../helpers/wait-for.js';
import { upstreamEndTs } from '../../helpers/upstream.js';

const run = promisify(execFile);

/**
 * The changefeed state machine (seed document 002, ① to ⑧) with real processors: a real cdc server reads
 * the real upstream into a blackhole sink that is told to fail (`fail-until`, `fail-fatal`), and the test
 * checks what the owner makes of the processor's errors in etcd and in `query`.
 */
describe('changefeed state machine (real processors, etcd and upstream)', () => {
  const clusterId = uniqueName('fsm').replaceAll('_', '-');
  const prefix = `/tidb/cdc/${clusterId}/default/`;
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-fsm-'));
  const schema = uniqueName('fsm');
  let etcd: Etcd3;
  let server: CdcServerProcess;
  let upstream: mysql.Connection;
  const info = async (id: string): Promise<any> => JSON.parse((await etcd.get(`${prefix}changefeed/info/${id}`).string()) ?? 'null');
  const status = async (id: string): Promise<any> => JSON.parse((await etcd.get(`${prefix}changefeed/status/${id}`).string()) ?? 'null');
  const endTs = (): Promise<bigint> => upstreamEndTs(upstream);
  let n = 0;
  const write = async (): Promise<bigint> => {
    await upstream.query(`INSERT INTO \`${schema}\`.t VALUES (?)`, [++n]);
    return endTs();
  };
  const create = async (id: string, sinkUri: string, extra: string[] = [], stuck = '14s') => {
    const config = join(dir, `${id}.toml`);
    writeFileSync(config, `changefeed-error-stuck-duration = "${stuck}"\n[filter]\nrules = ["${schema}.*"]\n`);
    await run(process.execPath, [CDC_BIN, 'changefeed', 'create', '--server', server.url, '--sink-uri', sinkUri, '-c', id, '--config', config, ...extra]);
    await waitFor(() => status(id), { what: `the status of ${id}` });
  };
  const query = async (id: string): Promise<any> => JSON.parse((await run(process.execPath, [CDC_BIN, 'changefeed', 'query', '--server', server.url, '-c', id, '--json'])).stdout);

  before(async () => {
    await requireService('etcd');
    await requireService('upstream');
    etcd = new Etcd3({ hosts: etcdEndpoint() });
    upstream = await mysql.createConnection({ uri: mysqlUri('upstream') });
    await upstream.query(`CREATE DATABASE \`${schema}\``);
    await upstream.query(`CREATE TABLE \`${schema}\`.t (id INT PRIMARY KEY)`);
    server = await CdcServerProcess.start({ pd: etcdEndpoint(), clusterId, extraArgs: ['--upstream', mysqlUri('upstream')] });
    await server.waitHealthy();
  });
  after(async () => {
    await server.stop();
    await upstream.query(`DROP DATABASE IF EXISTS \`${schema}\``);
    await upstream.end();
    await etcd.delete().prefix(`/tidb/cdc/${clusterId}/`);
    etcd.close();
  });

  it('the checkpoint follows the upstream; a stale position of a gone capture is dropped and never moves it back', async () => {
    await create('feed', 'blackhole://');
    const ts = await write();
    await waitFor(async () => BigInt((await status('feed'))['checkpoint-ts']) >= ts, { what: 'the checkpoint to reach the last write' });
    const reached = BigInt((await status('feed'))['checkpoint-ts']);
    // a position left by a capture that no longer exists, far behind
    await etcd.put(`${prefix}task/position/gone-capture/feed`).value(JSON.stringify({ 'checkpoint-ts': '5', 'resolved-ts': '5' }));
    await waitFor(async () => (await etcd.get(`${prefix}task/position/gone-capture/feed`).string()) === null, { what: 'the owner to drop the stale position' });
    assert.ok(BigInt((await status('feed'))['checkpoint-ts']) >= reached, 'the checkpoint did not go back');
    const processors = JSON.parse((await run(process.execPath, [CDC_BIN, 'cli', 'processor', 'list', '--server', server.url, '--json'])).stdout);
    assert.deepEqual(processors.map((p: { changefeed_id: string }) => p.changefeed_id), ['feed']);
  });

  it('an idle changefeed stays current: its checkpoint time follows the upstream\'s heartbeats, so its lag stays small', async () => {
    const ts = await write();
    await waitFor(async () => BigInt((await status('feed'))['checkpoint-ts']) >= ts, { what: 'the checkpoint to reach the last write' });
    const written = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 8000));
    const q = await query('feed');
    const lag = Date.now() - Date.parse(q.checkpoint_time);
    assert.equal(BigInt((await status('feed'))['checkpoint-ts']), ts, 'nothing was written: the checkpoint stays at the last write');
    assert.ok(lag < 4000, `checkpoint time ${q.checkpoint_time} is ${lag} ms old after ${Date.now() - written} ms idle (the last commit's time would be ≥ 8000 ms old)`);
  });

  it('a retryable sink error: pending with the error, warning after the 10 s backoff, normal once the checkpoint moves', async () => {
    const failFor = 6000;
    await create('flaky', `blackhole://?fail-until=${Date.now() + failFor}`);
    await write();
    const pending = await waitFor(async () => ((await info('flaky')).state === 'pending' ? info('flaky') : undefined), { what: 'pending' });
    assert.equal(pending.error.code, 'ErrSinkFailed');
    assert.match(pending.error.message, /blackhole configured to fail until/);
    const q = await query('flaky');
    assert.equal(q.state, 'pending');
    assert.equal(q.error.code, 'ErrSinkFailed');
    assert.ok(!Number.isNaN(Date.parse(q.error.time)), 'the error carries its time');

    // the backoff starts when the owner takes the error, which is after the error's own time
    const erredAt = Date.parse(pending.error.time as string);
    // after the backoff the owner lets it run again (warning); the restarted processor flushes the write that
    // failed, the checkpoint passes it, and the changefeed is normal again (warning can be brief)
    const resumedState = await waitFor(async () => {
      const state = (await info('flaky')).state as string;
      return state === 'warning' || state === 'normal' ? state : undefined;
    }, { timeoutMs: 60_000, intervalMs: 50, what: 'warning after the backoff' });
    // the 10 s backoff is the subject: measured from a point before it began, a slow machine can only lengthen it
    assert.ok(Date.now() - erredAt >= 8000, `the backoff lasted about 10 s (left pending as ${resumedState} ${Date.now() - erredAt} ms after the error)`);
    const ts = await write();
    await waitFor(async () => (await info('flaky')).state === 'normal', { timeoutMs: 60_000, what: 'normal after progress' });
    await waitFor(async () => BigInt((await status('flaky'))['checkpoint-ts']) >= ts, { what: 'the checkpoint to pass the write' });
  });

  it('a non-retryable sink error fails the changefeed at once; resume clears it', async () => {
    await create('fatal', 'blackhole://?fail-fatal=true');
    await write();
    await waitFor(async () => (await info('fatal')).state === 'failed', { what: 'failed' });
    const failed = await info('fatal');
    assert.equal(failed.error.code, 'ErrSinkRejected');
    assert.match(failed.error.message, /fail-fatal=true/);
    await run(process.execPath, [CDC_BIN, 'changefeed', 'resume', '--server', server.url, '-c', 'fatal']);
    // resume clears the error and runs it again; the sink still refuses, so it may fail again at once, with a new error
    const resumed = await info('fatal');
    assert.ok(
      (resumed.state === 'normal' && resumed.error === null) || (resumed.state === 'failed' && resumed.error.time !== failed.error.time),
      `after resume: ${resumed.state}, error ${JSON.stringify(resumed.error)}`,
    );
    await run(process.execPath, [CDC_BIN, 'changefeed', 'remove', '--server', server.url, '-c', 'fatal']);
  });

  it('errors that keep coming for longer than changefeed-error-stuck-duration fail it', async () => {
    const started = Date.now();
    await create('stuck', `blackhole://?fail-until=${Date.now() + 3_600_000}`, [], '14s');
    await write();
    await waitFor(async () => (await info('stuck')).state === 'failed', { timeoutMs: 60_000, intervalMs: 500, what: 'failed after the stuck duration' });
    // the stuck duration is the subject: `started` is before the first error, so load can only lengthen this
    assert.ok(Date.now() - started >= 13_000, `failed after ${Date.now() - started} ms, before the 14 s stuck duration`);
    assert.equal((await info('stuck')).error.code, 'ErrSinkFailed');
  });

  it('finishes at target-ts with checkpoint = target-ts', async () => {
    const start = await endTs();
    await write();
    const target = await endTs();
    await write();
    await create('bounded', 'blackhole://', ['--start-ts', String(start), '--target-ts', String(target)]);
    await waitFor(async () => (await info('bounded')).state === 'finished', { what: 'finished' });
    assert.equal((await status('bounded'))['checkpoint-ts'], String(target));
    assert.equal((await info('bounded'))['admin-job-type'], 4);
    const list = JSON.parse((await run(process.execPath, [CDC_BIN, 'changefeed', 'list', '--server', server.url, '--json'])).stdout);
    assert.ok(!list.some((c: { id: string }) => c.id === 'bounded'), 'finished changefeeds are hidden without --all');
    const all = JSON.parse((await run(process.execPath, [CDC_BIN, 'changefeed', 'list', '--all', '--server', server.url, '--json'])).stdout);
    assert.ok(all.some((c: { id: string; state: string }) => c.id === 'bounded' && c.state === 'finished'));
  });

  it('a purged start position fails the changefeed with the purge error', async () => {
    // a binlog file that never existed before the oldest one: the upstream answers "could not find first log file"
    await create('purged', 'blackhole://', ['--start-ts', `mysql-bin.000000:4`]);
    await waitFor(async () => (await info('purged')).state === 'failed', { what: 'failed on the purged binlog' });
    const failed = await info('purged');
    assert.equal(failed.error.code, 'ErrBinlogPurged');
  });
});
