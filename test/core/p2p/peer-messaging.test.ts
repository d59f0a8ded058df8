import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HttpApi } from '../../../src/core/api/http-server.js';
import { silentLogger } from '../../../src/core/logger/logger.js';
import { MAX_REPORTS_PER_RESPONSE, responseParts, type HeartbeatResponse, type MessageEnvelope, type TableProgressReport } from '../../../src/core/p2p/messages.js';
import { PeerClient } from '../../../src/core/p2p/peer-client.js';
import { PeerServer } from '../../../src/core/p2p/peer-server.js';
import { PortMux } from '../../../src/core/p2p/port-mux.js';
import { freePort } from '../../helpers/cdc-process.js';
import { waitFor } from '../../helpers/wait-for.js';
import { leakCheck } from '../../helpers/leak-check.js';

/** A capture's listener: the OpenAPI and gRPC on one port, as `cdc server` runs them. */
async function startNode(port: number) {
  const api = new HttpApi(silentLogger).route('GET', '/api/v2/health', () => Promise.resolve({ body: { ok: true } }));
  const peers = new PeerServer(silentLogger);
  const received: MessageEnvelope[] = [];
  peers.on('test/topic', (e) => received.push(e));
  peers.on('test/other', (e) => received.push(e));
  peers.on('test/heartbeat', (e) => received.push(e));
  const mux = new PortMux({ http: api.server, grpc: peers.injector() });
  await mux.listen('127.0.0.1', port);
  return {
    api, peers, received,
    async close() {
      peers.close();
      await mux.close();
      await api.close();
    },
  };
}

describe('capture-to-capture messages over gRPC (real sockets)', () => {
  it('serves HTTP and gRPC on one port, resends across a restart without duplicates, and ignores a deposed owner', async () => {
    const leaks = leakCheck();
    const port = await freePort();
    let node = await startNode(port);
    const client = new PeerClient(`127.0.0.1:${port}`, 'capture-a', silentLogger);
    try {
      const health = await fetch(`http://127.0.0.1:${port}/api/v2/health`);
      assert.deepEqual(await health.json(), { ok: true }, 'HTTP/1.1 still answers on the shared port');

      for (let i = 1; i <= 5; i++) client.send('test/topic', { n: i });
      await waitFor(() => node.received.length === 5 && client.pending === 0, { what: 'five messages delivered and acknowledged' });
      assert.deepEqual(node.received.map((e) => (e.payload as { n: number }).n), [1, 2, 3, 4, 5]);
      assert.deepEqual(node.received.map((e) => e.seq), [1, 2, 3, 4, 5]);
      assert.ok(node.received.every((e) => e.from === 'capture-a'));

      await node.close();
      for (let i = 6; i <= 8; i++) client.send('test/topic', { n: i }); // the peer is down: these wait
      assert.equal(client.pending, 3);
      node = await startNode(port);
      await waitFor(() => node.received.length === 3 && client.pending === 0, { timeoutMs: 15_000, what: 'the queued messages after the peer came back' });
      assert.deepEqual(node.received.map((e) => (e.payload as { n: number }).n), [6, 7, 8]);
      assert.ok(client.stats.reconnects >= 1);

      client.send('test/topic', { n: 'owner-r10' }, 10n);
      client.send('test/topic', { n: 'owner-r7' }, 7n);
      client.send('test/topic', { n: 'owner-r10-again' }, 10n);
      await waitFor(() => client.pending === 0, { what: 'the owner messages acknowledged' });
      await waitFor(() => node.received.length === 5, { what: 'the current owner\'s messages' });
      assert.deepEqual(node.received.slice(3).map((e) => (e.payload as { n: string }).n), ['owner-r10', 'owner-r10-again']);
      assert.equal(node.peers.stats.staleOwner, 1, 'the message of the older owner revision was dropped');
    } finally {
      client.close();
      await node.close();
    }
    await leaks.check();
  });

  it('10,000 messages on two topics at once are all acknowledged; while the peer is down the newest 10,000 wait and are resent once', async () => {
    const leaks = leakCheck();
    const port = await freePort();
    let node = await startNode(port);
    const client = new PeerClient(`127.0.0.1:${port}`, 'capture-a', silentLogger);
    try {
      for (let i = 1; i <= 5000; i++) {
        client.send('test/topic', { n: i });
        client.send('test/other', { n: i });
      }
      await waitFor(() => node.received.length === 10_000 && client.pending === 0, { what: '10,000 messages delivered and acknowledged' });
      assert.equal(client.stats.acked, 10_000);
      await node.close();
      for (let i = 1; i <= 12_000; i++) client.send(i % 2 === 0 ? 'test/topic' : 'test/other', { n: 10_000 + i });
      assert.equal(client.pending, 10_000, 'the oldest 2,000 of the queue were dropped');
      node = await startNode(port);
      await waitFor(() => node.received.length === 10_000 && client.pending === 0, { timeoutMs: 15_000, what: 'the 10,000 kept after the peer came back' });
      assert.deepEqual(node.received.map((e) => (e.payload as { n: number }).n), Array.from({ length: 10_000 }, (_, i) => 12_001 + i), 'the newest, in send order, once');
      assert.equal(client.stats.acked, 20_000);
    } finally {
      client.close();
      await node.close();
    }
    await leaks.check();
  });

  it('a heartbeat response of 100,000 tables goes in parts under gRPC\'s 4 MiB limit and arrives whole; in one message it never does', async () => {
    const leaks = leakCheck();
    const port = await freePort();
    const node = await startNode(port);
    const tables: TableProgressReport[] = Array.from({ length: 100_000 }, (_, i) => ({
      changefeed: 'default/cf', tableId: i + 1, table: `db.t${i}`, state: 'replicating', checkpointTs: '4318506599', checkpointTime: 1_733_000_000_000 + i, resolvedTs: '4319173043',
    }));
    const response: HeartbeatResponse = { changefeeds: ['default/cf'], delta: [], tables, draining: false, processors: { 'default/cf': 'p-1' } };
    const whole = new PeerClient(`127.0.0.1:${port}`, 'capture-a', silentLogger);
    try {
      // the message 100,000 tables made before: the peer refuses it, the stream breaks, and it is sent again
      whole.send('test/heartbeat', response);
      await waitFor(() => whole.stats.reconnects >= 2, { timeoutMs: 15_000, what: 'the stream broken by the 17 MB message, twice' });
      assert.equal(node.received.length, 0, 'nothing of it arrived');
    } finally {
      whole.close();
    }
    const client = new PeerClient(`127.0.0.1:${port}`, 'capture-a', silentLogger);
    try {
      const parts = responseParts(response);
      assert.equal(parts.length, Math.ceil(100_000 / MAX_REPORTS_PER_RESPONSE));
      for (const part of parts) client.send('test/heartbeat', part);
      await waitFor(() => client.pending === 0, { timeoutMs: 30_000, what: 'every part acknowledged' });
      assert.equal(client.stats.reconnects, 0, 'no part broke the stream');
      const got = node.received.map((e) => e.payload as HeartbeatResponse);
      assert.equal(got.length, parts.length);
      assert.deepEqual(got.flatMap((p) => p.tables.map((t) => t.tableId)), tables.map((t) => t.tableId), 'every table once, in order');
      assert.deepEqual(got[0].delta, [], 'the first part replaces the owner\'s list (a full answer)');
      assert.ok(got.slice(1).every((p) => p.delta?.includes('default/cf') === true), 'the later parts fold into it');
      assert.ok(got.slice(0, -1).every((p) => p.continued?.includes('default/cf') === true), 'every part but the last says more follows');
      assert.equal(got.at(-1)!.continued, undefined, 'the last part closes the list');
      assert.ok(got.every((p) => p.processors?.['default/cf'] === 'p-1' && p.draining === false));
    } finally {
      client.close();
      await node.close();
    }
    await leaks.check();
  });

  it('a short heartbeat response goes as it is', () => {
    const response: HeartbeatResponse = { changefeeds: ['a/b'], delta: ['a/b'], tables: [], draining: true };
    assert.deepEqual(responseParts(response), [response]);
  });
});
