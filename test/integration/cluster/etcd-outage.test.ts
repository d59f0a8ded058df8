import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { CdcServerProcess, listCaptures } from '../../helpers/cdc-process.js';
import { EtcdInstance } from '../../helpers/etcd-instance.js';
import { requireService } from '../../helpers/services.js';
import { waitFor } from '../../helpers/wait-for.js';

describe('three cdc servers survive a 20 s etcd outage', () => {
  let etcd: EtcdInstance;
  const servers: CdcServerProcess[] = [];

  before(async () => {
    await requireService('etcd'); // the shared one proves the binary is installed; this test runs its own
    etcd = await EtcdInstance.create();
    for (let i = 0; i < 3; i++) servers.push(await CdcServerProcess.start({ pd: etcd.endpoint, clusterId: 'outage' }));
    await Promise.all(servers.map((s) => s.waitHealthy()));
  });
  after(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    await etcd.destroy();
  });

  it('recovers all three captures with exactly one owner after etcd comes back', async () => {
    // each server healthy does not mean the first one's view of etcd has the others' registrations yet
    const beforeIds = (await waitFor(async () => {
      const rows = await listCaptures(servers[0]);
      return rows.length === 3 && rows;
    }, { timeoutMs: 15_000, intervalMs: 100, what: 'the first server to list all three captures' })).map((r) => r.id).sort();
    assert.equal(beforeIds.length, 3);

    await etcd.stop();
    await delay(20_000); // the outage itself: longer than the 10 s session TTL
    assert.ok(servers.every((s) => s.exitCode === undefined), 'no cdc server may exit while etcd is away');
    await etcd.start();

    // the capture list (etcd's view) can name the new owner a moment before that server's status says so: both
    // are waited for, and must agree
    const rows = await waitFor(
      async () => {
        const views = await Promise.all(servers.map((s) => listCaptures(s)));
        const ok = views.every((v) => v.length === 3 && v.filter((r) => r.is_owner).length === 1);
        const statuses = await Promise.all(servers.map((s) => s.api<{ is_owner: boolean }>('/api/v2/status')));
        const owners = servers.filter((_, i) => statuses[i].is_owner).map((s) => s.addr);
        return ok && owners.length === 1 && views[0].find((r) => r.is_owner)?.address === owners[0] && views[0];
      },
      { timeoutMs: 45_000, intervalMs: 250, what: 'three captures and one owner after the outage, the owner saying so in its status' },
    );
    assert.deepEqual(rows.map((r) => r.address).sort(), servers.map((s) => s.addr).sort());
    // sessions expired during the outage, so the captures came back as new incarnations
    const afterIds = rows.map((r) => r.id).sort();
    assert.notDeepEqual(afterIds, beforeIds, 'the captures should have re-registered with new ids after losing their sessions');
  });
});

describe('a cdc server stopped during an etcd outage', () => {
  it('exits with code 0 right after it says it stopped, not when the etcd client gives up retrying', async () => {
    const etcd = await EtcdInstance.create();
    const server = await CdcServerProcess.start({ pd: etcd.endpoint, clusterId: 'outage-stop' });
    try {
      await server.waitHealthy();
      await etcd.stop();
      // the session's lease is lost once the outage outlasts its keep-alives: the etcd client is retrying now
      await waitFor(() => server.output.join('').includes('capture lost its session'), { timeoutMs: 60_000, what: 'the capture to notice the outage' });
      server.kill('SIGTERM');
      await waitFor(() => server.output.join('').includes('cdc server stopped'), { timeoutMs: 60_000, what: 'the server to say it stopped' });
      // The bound is the behaviour under test: etcd3's and cockatiel's backoff timers kept the process alive for
      // ~23 s after "cdc server stopped"; a fixed process exits within milliseconds, so 10 s is a wide margin.
      const stoppedAt = Date.now();
      const exited = await Promise.race([server.exited, delay(10_000).then(() => undefined)]);
      const log = server.output.join('');
      assert.ok(exited !== undefined, `the server had not exited ${Date.now() - stoppedAt} ms after it said it stopped:\n${log.slice(-2000)}`);
      assert.equal(exited.code, 0, log.slice(-2000));
      assert.match(log, /cdc server stopped/);
      console.log(`# exited ${Date.now() - stoppedAt} ms after it said it stopped`);
    } finally {
      await server.stop();
      await etcd.destroy();
    }
  });
});
