import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, it, type TestContext } from 'node:test';
import { ClientClosedError, type Watcher } from 'etcd3';
import { BugIndicatingError } from '../../../src/core/errors/index.js';
import { EtcdClient } from '../../../src/core/orchestrator/etcd-client.js';
import { leakCheck } from '../../helpers/leak-check.js';
import { requireService, serviceAddress, uniqueName } from '../../helpers/services.js';
import { TcpProxy } from '../../helpers/tcp-proxy.js';
import { waitFor } from '../../helpers/wait-for.js';

/** An EtcdClient that reaches the real etcd through a proxy the test can cut or stall. */
async function proxiedClient(t: TestContext): Promise<{ client: EtcdClient; proxy: TcpProxy }> {
  await requireService('etcd');
  const { host, port } = serviceAddress('etcd');
  const proxy = await TcpProxy.start(host, port);
  const client = new EtcdClient({ hosts: proxy.endpoint, dialTimeout: 1000 });
  t.after(async () => {
    client.close();
    await proxy.close();
  });
  return { client, proxy };
}

/** Closes the client, then requires every connection it had to end and every timer and socket to go. */
async function closeAndCheck(client: EtcdClient, proxy: TcpProxy, leaks: ReturnType<typeof leakCheck>): Promise<void> {
  client.close();
  assert.equal(client.openCalls, 0, 'gRPC calls left open after close()');
  // the proxy keeps a stalled connection open: only the client can end it
  await waitFor(() => proxy.connections === 0, { timeoutMs: 5000, what: "the closed client's connections to end" });
  await proxy.close();
  await leaks.check();
}

/** Observes `promise` at once; `within(ms)` then fails the test unless it has settled by then. */
function outcomeOf<T>(promise: Promise<T>, what: string): { within(ms: number): Promise<PromiseSettledResult<T>> } {
  const outcome = Promise.allSettled([promise]).then(([result]) => result);
  return {
    async within(ms) {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
      });
      try {
        return await Promise.race([outcome, late]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

describe('EtcdClient.close() leaves no timer or socket of etcd3 behind (real etcd behind a proxy)', () => {
  const prefix = `/tidemark-test/${uniqueName('etcd-client')}/`;

  it('ends a watcher still attached while etcd is unreachable, and its reconnect timers', async (t) => {
    const leaks = leakCheck();
    const { client, proxy } = await proxiedClient(t);
    const watcher = await client.watch().key(`${prefix}w`).create();
    const errors: Error[] = [];
    watcher.on('error', (error: Error) => errors.push(error));
    const disconnected = once(watcher, 'disconnected');
    proxy.cut(); // etcd3 now re-dials the watch stream on its backoff, for as long as a watcher is attached
    await disconnected;

    await closeAndCheck(client, proxy, leaks);
    assert.equal(errors.length, 1, 'the watcher should be told once that its client closed');
    assert.ok(errors[0] instanceof ClientClosedError, `unexpected error: ${String(errors[0])}`);
  });

  it('stops the keepalive of a lease that was neither revoked nor released while etcd is unreachable', async (t) => {
    const leaks = leakCheck();
    const { client, proxy } = await proxiedClient(t);
    const lease = client.lease(5);
    await lease.grant();
    const failed = once(lease, 'keepaliveFailed');
    proxy.cut(); // etcd3 now retries the keepalive every 100 ms until twice the TTL has passed
    await failed;

    await closeAndCheck(client, proxy, leaks);
    assert.ok(lease.revoked(), 'the lease should be released');
  });

  it('settles a watch cancel and a request that etcd never answers', async (t) => {
    const leaks = leakCheck();
    const { client, proxy } = await proxiedClient(t);
    const watcher: Watcher = await client.watch().key(`${prefix}w`).create();
    proxy.stall(); // the connection stays open, nothing comes back
    const cancelling = outcomeOf(watcher.cancel(), 'the cancel');
    const reading = outcomeOf(client.get(`${prefix}r`).string(), 'the read');

    await closeAndCheck(client, proxy, leaks);
    assert.equal((await cancelling.within(2000)).status, 'fulfilled');
    const read = await reading.within(2000);
    assert.ok(read.status === 'rejected' && read.reason instanceof ClientClosedError, `the read should fail as closed: ${JSON.stringify(read)}`);
  });

  it('ends a live watch stream and lease keepalive that nobody cancelled (etcd reachable)', async (t) => {
    const leaks = leakCheck();
    const { client, proxy } = await proxiedClient(t);
    await client.watch().key(`${prefix}w`).create();
    await client.lease(5).grant();
    assert.ok(client.openCalls >= 2, `the watch and keepalive streams should be open (open calls: ${client.openCalls})`);

    await closeAndCheck(client, proxy, leaks);
  });

  it('is idempotent, and rejects every call after close', async (t) => {
    const { client } = await proxiedClient(t);
    await client.put(`${prefix}k`).value('v');
    await client.delete().key(`${prefix}k`);
    client.close();
    client.close();
    assert.equal(client.closed, true);
    await assert.rejects(client.get(`${prefix}k`).string(), ClientClosedError);
    assert.throws(() => client.lease(5), ClientClosedError);
  });

  it('refuses namespace() and lock(), whose watches and leases close() would not reach', async (t) => {
    const { client } = await proxiedClient(t);
    assert.throws(() => client.namespace(prefix), BugIndicatingError);
    assert.throws(() => client.lock(`${prefix}lock`), BugIndicatingError);
  });
});
