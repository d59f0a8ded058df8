import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EtcdClient } from '../../../src/core/orchestrator/etcd-client.js';
import { EtcdWorker } from '../../../src/core/orchestrator/etcd-worker.js';
import type { DataPatch, Reactor, ReactorState } from '../../../src/core/orchestrator/reactor.js';
import { leakCheck } from '../../helpers/leak-check.js';
import { etcdEndpoint, requireService, serviceAddress, uniqueName } from '../../helpers/services.js';
import { TcpProxy } from '../../helpers/tcp-proxy.js';
import { waitFor } from '../../helpers/wait-for.js';

class MirrorState implements ReactorState {
  readonly values = new Map<string, string>();
  update(key: string, value: Uint8Array | undefined): void {
    if (value === undefined) this.values.delete(key);
    else this.values.set(key, new TextDecoder().decode(value));
  }
  takePatches(): DataPatch[][] {
    return [];
  }
}

const idle: Reactor<MirrorState> = { tick: () => Promise.resolve() };

describe('EtcdWorker after its watch revision was compacted (real etcd, connection cut by a proxy)', () => {
  // Every client and proxy below is closed in after(); then no timer or socket may be left, and this file's
  // process exits by itself (the test runner would wait for it otherwise).
  const leaks = leakCheck();
  const prefix = `/tidemark-test/${uniqueName('compact')}/`;
  let direct: EtcdClient | undefined;
  let proxy: TcpProxy | undefined;
  let proxied: EtcdClient | undefined;

  before(async () => {
    await requireService('etcd');
    direct = new EtcdClient({ hosts: etcdEndpoint() });
    proxy = await proxyToEtcd();
    proxied = new EtcdClient({ hosts: proxy.endpoint, dialTimeout: 1000 });
  });
  after(async () => {
    try {
      await direct?.delete().prefix(prefix);
    } finally {
      proxied?.close();
      direct?.close();
      await proxy?.close();
    }
    await leaks.check();
  });

  it('re-lists and ends with the same keys as etcd, deletes included', async () => {
    const { direct, proxied, proxy } = clients();
    await direct.put(`${prefix}a`).value('1');
    await direct.put(`${prefix}gone`).value('x');
    const state = new MirrorState();
    const worker = new EtcdWorker({ client: proxied, prefix, reactor: idle, state, tickIntervalMs: 20 });
    const controller = new AbortController();
    const running = worker.run(controller.signal);
    try {
      await waitFor(() => state.values.get(`${prefix}a`) === '1', { what: 'the first mirror' });

      proxy.cut();
      await direct.put(`${prefix}a`).value('2');
      await direct.put(`${prefix}b`).value('new');
      await direct.delete().key(`${prefix}gone`);
      const revision = (await direct.get(`${prefix}a`).exec()).header.revision;
      await direct.kv.compact({ revision, physical: true }).catch((error: Error) => {
        if (!/compacted/.test(error.message)) throw error; // another test compacted further: fine
      });
      proxy.restore();

      await waitFor(() => state.values.get(`${prefix}a`) === '2' && state.values.get(`${prefix}b`) === 'new' && !state.values.has(`${prefix}gone`), {
        timeoutMs: 30_000,
        intervalMs: 100,
        what: 'the mirror to catch up after the compaction',
      });
      assert.ok(worker.stats.relists >= 1, `the worker should have re-listed (relists=${worker.stats.relists})`);
      assert.deepEqual([...state.values.keys()].sort(), [`${prefix}a`, `${prefix}b`]);
    } finally {
      controller.abort();
      await running;
    }
  });

  it('stops although etcd never answers its watch cancel, and the closed client ends that connection', async (t) => {
    const { direct } = clients();
    await direct.put(`${prefix}c`).value('1');
    // a client of its own: the connections of the one above went through an outage and were re-dialled
    const frozen = await proxyToEtcd();
    const client = new EtcdClient({ hosts: frozen.endpoint, dialTimeout: 1000 });
    t.after(async () => {
      client.close();
      await frozen.close();
    });
    const state = new MirrorState();
    const worker = new EtcdWorker({ client, prefix, reactor: idle, state, tickIntervalMs: 20 });
    const controller = new AbortController();
    const running = worker.run(controller.signal);
    try {
      // a tick comes only once the watch is created: its cancel will go out over the stalled connection
      await waitFor(() => state.values.get(`${prefix}c`) === '1' && worker.stats.ticks > 0, { what: 'the mirror and its watch' });
      frozen.stall(); // the connection stays open and nothing comes back, as from a frozen etcd
    } finally {
      controller.abort();
      await running; // the worker does not wait for the cancel's answer (bounded by its own timeout)
    }

    // etcd3 alone keeps that watch stream open after close(), and the proxy holds the connection: only the
    // client can end it
    client.close();
    await waitFor(() => frozen.connections === 0, { timeoutMs: 5000, what: "the closed client's connection to etcd to end" });
  });

  function clients(): { direct: EtcdClient; proxied: EtcdClient; proxy: TcpProxy } {
    assert.ok(direct !== undefined && proxied !== undefined && proxy !== undefined, 'before() did not finish');
    return { direct, proxied, proxy };
  }
});

function proxyToEtcd(): Promise<TcpProxy> {
  const { host, port } = serviceAddress('etcd');
  return TcpProxy.start(host, port);
}
