import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CdcServerProcess, captureAddressesInEtcd, listCaptures } from '../../helpers/cdc-process.js';
import { EtcdInstance } from '../../helpers/etcd-instance.js';
import { requireService } from '../../helpers/services.js';
import { waitFor } from '../../helpers/wait-for.js';

describe('cdc server signals', () => {
  let etcd: EtcdInstance;
  const servers: CdcServerProcess[] = [];

  before(async () => {
    await requireService('etcd');
    etcd = await EtcdInstance.create();
  });
  after(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    await etcd.destroy();
  });

  it('SIGINT drains: the capture deregisters and the process exits 0', async () => {
    const [a, b] = [await CdcServerProcess.start({ pd: etcd.endpoint, clusterId: 'sig' }), await CdcServerProcess.start({ pd: etcd.endpoint, clusterId: 'sig' })];
    servers.push(a, b);
    await Promise.all([a.waitHealthy(), b.waitHealthy()]);
    await waitFor(async () => (await listCaptures(b)).length === 2, { what: 'two captures' });
    a.kill('SIGINT');
    assert.equal((await a.exited).code, 0);
    // from etcd itself: b's API answers from its mirror, which may not have seen the delete yet
    assert.deepEqual(await captureAddressesInEtcd(etcd.endpoint, 'sig'), [b.addr], 'the drained capture deregistered before exiting');
  });

  it('a second signal exits at once while the drain is stuck (etcd away)', async () => {
    const c = await CdcServerProcess.start({ pd: etcd.endpoint, clusterId: 'sig' });
    servers.push(c);
    await c.waitHealthy();
    etcd.pause(); // deregistration now hangs on etcd until its timeouts
    c.kill('SIGTERM');
    await waitFor(() => c.output.join('').includes('draining'), { what: 'the drain to begin' });
    c.kill('SIGTERM');
    const { code } = await c.exited;
    // etcd is still paused here, so the drain could not have finished: the exit came from the second signal
    assert.equal(code, 1, 'the forced exit is not a clean one');
    const output = c.output.join('');
    assert.match(output, /second signal: exiting now/);
    assert.doesNotMatch(output, /cdc server stopped/, 'the drain did not run to its end');
    etcd.resume();
  });
});
