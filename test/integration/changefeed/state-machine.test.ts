import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { Etcd3 } from 'etcd3';
import { CDC_BIN, CdcServerProcess } from '../../helpers/cdc-process.js';
import { etcdEndpoint, mysqlUri, requireService, uniqueName } from '../../helpers/services.js';
import { waitFor } from '../../helpers/wait-for.js';

const run = promisify(execFile);

/**
 * The owner's changefeed state machine against real etcd and a real cdc server (the owner). Table
 * pipelines do not run yet, so the test plays the processor: it writes the task position a processor
 * would write (checkpoint, resolved-ts, an error) and checks what the owner makes of it in etcd.
 */
describe('changefeed state machine (owner, real etcd)', () => {
  const clusterId = uniqueName('fsm').replaceAll('_', '-');
  const prefix = `/tidb/cdc/${clusterId}/default/`;
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-fsm-'));
  let etcd: Etcd3;
  let server: CdcServerProcess;
  let startTs: bigint;
  const info = async (id: string): Promise<any> => JSON.parse((await etcd.get(`${prefix}changefeed/info/${id}`).string()) ?? 'null');
  const status = async (id: string): Promise<any> => JSON.parse((await etcd.get(`${prefix}changefeed/status/${id}`).string()) ?? 'null');
  const report = (id: string, position: object) => etcd.put(`${prefix}task/position/processor-1/${id}`).value(JSON.stringify(position));
  const error = (retryable: boolean, code = 'ErrSinkUnavailable') => ({ code, message: `the sink said no (${code})`, retryable, time: new Date().toISOString(), addr: 'processor-1' });
  const create = async (id: string, extra: string[]) => {
    const config = join(dir, `${id}.toml`);
    writeFileSync(config, 'changefeed-error-stuck-duration = "14s"\n');
    await run(process.execPath, [CDC_BIN, 'changefeed', 'create', '--server', server.url, '--sink-uri', 'blackhole://', '-c', id, '--config', config, ...extra]);
    await waitFor(() => status(id), { what: `the status of ${id}` });
    return BigInt((await info(id))['start-ts']);
  };

  before(async () => {
    await requireService('etcd');
    await requireService('upstream');
    etcd = new Etcd3({ hosts: etcdEndpoint() });
    server = await CdcServerProcess.start({ pd: etcdEndpoint(), clusterId, extraArgs: ['--upstream', mysqlUri('upstream')] });
    await server.waitHealthy();
    startTs = await create('feed', []);
  });
  after(async () => {
    await server.stop();
    await etcd.delete().prefix(`/tidb/cdc/${clusterId}/`);
    etcd.close();
  });

  it('folds task positions into the changefeed checkpoint and never moves it back', async () => {
    await report('feed', { 'checkpoint-ts': String(startTs + 10n), 'resolved-ts': String(startTs + 20n), 'checkpoint-time': 1_700_000_000_000 });
    await waitFor(async () => (await status('feed'))['checkpoint-ts'] === String(startTs + 10n), { what: 'the checkpoint to advance' });
    assert.equal((await status('feed'))['resolved-ts'], String(startTs + 20n));
    await report('feed', { 'checkpoint-ts': String(startTs + 5n), 'resolved-ts': String(startTs + 6n) });
    await report('feed', { 'checkpoint-ts': String(startTs + 12n), 'resolved-ts': String(startTs + 20n) });
    await waitFor(async () => (await status('feed'))['checkpoint-ts'] === String(startTs + 12n), { what: 'the checkpoint to advance again' });
    const processors = JSON.parse((await run(process.execPath, [CDC_BIN, 'cli', 'processor', 'list', '--server', server.url, '--json'])).stdout);
    assert.deepEqual(processors, [{ namespace: 'default', changefeed_id: 'feed', capture_id: 'processor-1' }]);
  });

  it('a retryable error: pending with the error, warning after the 10 s backoff, normal once the checkpoint moves', async () => {
    await report('feed', { 'checkpoint-ts': String(startTs + 12n), 'resolved-ts': String(startTs + 20n), error: error(true) });
    const pending = await waitFor(async () => ((await info('feed')).state === 'pending' ? info('feed') : undefined), { what: 'pending' });
    assert.equal(pending.error.code, 'ErrSinkUnavailable');
    const position = JSON.parse((await etcd.get(`${prefix}task/position/processor-1/feed`).string())!);
    assert.equal(position.error, null, 'the owner took the error from the task position');
    const q = JSON.parse((await run(process.execPath, [CDC_BIN, 'changefeed', 'query', '--server', server.url, '-c', 'feed', '--json'])).stdout);
    assert.equal(q.state, 'pending');
    assert.equal(q.error.code, 'ErrSinkUnavailable');
    assert.ok(!Number.isNaN(Date.parse(q.error.time)), 'the error carries its time');

    const pendingAt = Date.now();
    await waitFor(async () => (await info('feed')).state === 'warning', { timeoutMs: 20_000, intervalMs: 200, what: 'warning after the backoff' });
    assert.ok(Date.now() - pendingAt >= 8000, 'the backoff lasted about 10 s');
    await report('feed', { 'checkpoint-ts': String(startTs + 30n), 'resolved-ts': String(startTs + 40n) });
    await waitFor(async () => (await info('feed')).state === 'normal', { what: 'normal after progress' });
  });

  it('a non-retryable error fails the changefeed at once; resume clears it', async () => {
    await report('feed', { 'checkpoint-ts': String(startTs + 30n), 'resolved-ts': String(startTs + 40n), error: error(false, 'ErrSinkURIInvalid') });
    await waitFor(async () => (await info('feed')).state === 'failed', { what: 'failed' });
    assert.equal((await info('feed')).error.code, 'ErrSinkURIInvalid');
    await run(process.execPath, [CDC_BIN, 'changefeed', 'resume', '--server', server.url, '-c', 'feed']);
    const resumed = await info('feed');
    assert.equal(resumed.state, 'normal');
    assert.equal(resumed.error, null);
  });

  it('errors that keep coming for longer than changefeed-error-stuck-duration fail it', async () => {
    const started = Date.now();
    const deadline = started + 40_000;
    while ((await info('feed')).state !== 'failed') {
      assert.ok(Date.now() < deadline, 'the changefeed never failed');
      await report('feed', { 'checkpoint-ts': String(startTs + 30n), 'resolved-ts': String(startTs + 40n), error: error(true) });
      await waitFor(async () => {
        const p = JSON.parse((await etcd.get(`${prefix}task/position/processor-1/feed`).string())!);
        return p.error === null;
      }, { what: 'the owner to take the error' });
      await new Promise((resolve) => setTimeout(resolve, 1000)); // a processor retrying once a second
    }
    assert.ok(Date.now() - started >= 13_000, `failed after ${Date.now() - started} ms, before the 14 s stuck duration`);
    assert.equal((await info('feed')).error.code, 'ErrSinkUnavailable');
  });

  it('finishes at target-ts with checkpoint = target-ts', async () => {
    const start = await create('bounded', ['--target-ts', String(startTs + 100n), '--start-ts', String(startTs)]);
    await report('bounded', { 'checkpoint-ts': String(start + 500n), 'resolved-ts': String(start + 600n) });
    await waitFor(async () => (await info('bounded')).state === 'finished', { what: 'finished' });
    assert.equal((await status('bounded'))['checkpoint-ts'], String(startTs + 100n));
    assert.equal((await info('bounded'))['admin-job-type'], 4);
    const list = JSON.parse((await run(process.execPath, [CDC_BIN, 'changefeed', 'list', '--server', server.url, '--json'])).stdout);
    assert.ok(!list.some((c: { id: string }) => c.id === 'bounded'), 'finished changefeeds are hidden without --all');
    const all = JSON.parse((await run(process.execPath, [CDC_BIN, 'changefeed', 'list', '--all', '--server', server.url, '--json'])).stdout);
    assert.ok(all.some((c: { id: string; state: string }) => c.id === 'bounded' && c.state === 'finished'));
  });
});
