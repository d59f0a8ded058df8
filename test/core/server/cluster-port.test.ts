import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ApiClient, type ApiClientOptions } from '../../../src/core/api/client.js';
import { HttpApi } from '../../../src/core/api/http-server.js';
import { resolveServerConfig } from '../../../src/core/config/server-config.js';
import { TidemarkError } from '../../../src/core/errors/index.js';
import { silentLogger } from '../../../src/core/logger/logger.js';
import type { MessageEnvelope } from '../../../src/core/p2p/messages.js';
import { PeerClient } from '../../../src/core/p2p/peer-client.js';
import { PeerServer } from '../../../src/core/p2p/peer-server.js';
import type { PortMux } from '../../../src/core/p2p/port-mux.js';
import { ApiAuth, hashPassword } from '../../../src/core/api/auth.js';
import { clusterPort } from '../../../src/core/server/cluster-port.js';
import { loadClusterTls } from '../../../src/core/server/tls.js';
import { freePort } from '../../helpers/cdc-process.js';
import { leakCheck } from '../../helpers/leak-check.js';
import { waitFor } from '../../helpers/wait-for.js';
import { makeCerts, type TestCerts } from '../../integration/tls/certs.js';

const PASSWORD = 'correct horse battery staple';

/**
 * A capture's port as `cdc server --ca --cert --key --cert-allowed-cn` with API users serves it (clusterPort, the
 * Server's own wiring), over real TLS sockets with certificates made by openssl: who may connect, and what each
 * refusal says; the write that was refused changed nothing.
 */
describe('the secured cluster port (TLS, client certificates, API users)', { timeout: 120_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-port-tls-'));
  let certs: TestCerts;
  let users: Record<string, string>;

  before(async () => {
    certs = makeCerts(dir);
    users = { admin: await hashPassword(PASSWORD, { N: 1024, r: 8, p: 1 }) };
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  interface Node {
    readonly url: string;
    readonly port: number;
    readonly writes: unknown[];
    readonly received: MessageEnvelope[];
    readonly peers: PeerServer;
    close(): Promise<void>;
  }

  async function startNode(security: Record<string, unknown>, port?: number): Promise<Node> {
    const config = resolveServerConfig({ security }, {});
    const api = new HttpApi(silentLogger);
    const writes: unknown[] = [];
    api
      .route('GET', '/api/v2/status', () => Promise.resolve({ body: { id: 'x' } }))
      .route('GET', '/api/v2/changefeeds', () => Promise.resolve({ body: { total: writes.length, items: [] } }))
      .route('POST', '/api/v2/changefeeds', (_req, _p, body) => {
        writes.push(body);
        return Promise.resolve({ status: 201, body: { id: 'made' } });
      });
    const peers = new PeerServer(silentLogger);
    const received: MessageEnvelope[] = [];
    peers.on('t', (e) => received.push(e));
    const auth = new ApiAuth({ users: config.security['client-user-list'], reads: config.security['client-auth-reads'] });
    const tls = loadClusterTls(config.security);
    const mux: PortMux = clusterPort({ api, peers, tls, auth, logger: silentLogger });
    const p = port ?? (await freePort());
    await mux.listen('127.0.0.1', p);
    return {
      url: `${tls?.serving === true ? 'https' : 'http'}://127.0.0.1:${p}`,
      port: p,
      writes,
      received,
      peers,
      async close() {
        peers.close();
        await mux.close();
        await api.close();
      },
    };
  }

  const secure = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    'ca-path': certs.ca,
    'cert-path': certs.captureCert,
    'key-path': certs.captureKey,
    'cert-allowed-cn': ['tidemark-capture', 'tidemark-client'],
    'client-user-list': users,
    ...extra,
  });
  const asClient = (node: Node, options: ApiClientOptions): ApiClient => new ApiClient(node.url, 3000, options);
  const client = { caPath: '', certPath: '', keyPath: '' };
  const failure = async (promise: Promise<unknown>): Promise<TidemarkError> => {
    const error = await promise.then(
      () => assert.fail('expected a failure'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof TidemarkError, String(error));
    return error;
  };

  it('serves the API over TLS to an allowed client certificate, with writes only for an API user', async () => {
    const leaks = leakCheck();
    const node = await startNode(secure());
    try {
      Object.assign(client, { caPath: certs.ca, certPath: certs.clientCert, keyPath: certs.clientKey });
      const anonymous = asClient(node, client);
      // reads are open by default
      assert.equal((await anonymous.changefeeds()).length, 0);
      // a write without a user: 401, nothing written
      const noUser = await failure(anonymous.createChangefeed({ changefeed_id: 'a' }));
      assert.equal(noUser.code, 'ErrUnauthorized');
      assert.match(noUser.message, /POST \/api\/v2\/changefeeds needs an API user/);
      assert.equal(noUser.details?.['httpStatus'], 401);
      // a wrong password: 401, named user, no password in the message, nothing written
      const wrong = await failure(asClient(node, { ...client, user: 'admin', password: 'not-it' }).createChangefeed({ changefeed_id: 'b' }));
      assert.equal(wrong.code, 'ErrUnauthorized');
      assert.match(wrong.message, /authentication failed for API user "admin": unknown user or wrong password/);
      assert.doesNotMatch(JSON.stringify(wrong.toJSON()), /not-it/);
      const unknown = await failure(asClient(node, { ...client, user: 'mallory', password: PASSWORD }).createChangefeed({ changefeed_id: 'c' }));
      assert.equal(unknown.code, 'ErrUnauthorized');
      assert.equal(node.writes.length, 0, 'a refused write changed nothing');
      // the right one
      assert.deepEqual(await asClient(node, { ...client, user: 'admin', password: PASSWORD }).createChangefeed({ changefeed_id: 'd' }), { id: 'made' });
      assert.deepEqual(node.writes, [{ changefeed_id: 'd' }]);
      // and again (the check is remembered, same answer)
      await asClient(node, { ...client, user: 'admin', password: PASSWORD }).createChangefeed({ changefeed_id: 'e' });
      assert.equal(node.writes.length, 2);
      const stillWrong = await failure(asClient(node, { ...client, user: 'admin', password: `${PASSWORD}x` }).createChangefeed({ changefeed_id: 'f' }));
      assert.equal(stillWrong.code, 'ErrUnauthorized');
      assert.equal(node.writes.length, 2);
      // a 401 answer says how to authenticate
      const raw = await failure(asClient(node, client).createChangefeed({}));
      assert.equal(raw.details?.['httpStatus'], 401);
    } finally {
      await node.close();
    }
    await leaks.check();
  });

  it('refuses client certificates that are missing, expired, from another CA or with a CN not allowed, each saying why', async () => {
    const node = await startNode(secure());
    try {
      const cases: [string, ApiClientOptions, RegExp][] = [
        ['no certificate', { caPath: certs.ca }, /accepts only clients with a certificate \(cert-allowed-cn: tidemark-capture, tidemark-client\), and none was presented/],
        ['CN not allowed', { caPath: certs.ca, certPath: certs.intruderCert, keyPath: certs.intruderKey }, /the client certificate's CN "intruder" is not allowed by this cdc server \(cert-allowed-cn: tidemark-capture, tidemark-client\)/],
        ['expired', { caPath: certs.ca, certPath: certs.expiredClientCert, keyPath: certs.clientKey }, /the client certificate \(CN "tidemark-client"\) has expired/],
        ['another CA', { caPath: certs.ca, certPath: certs.foreignClientCert, keyPath: certs.clientKey }, /the client certificate \(CN "tidemark-client"\) is not signed by the server's CA \(.*ca\.pem\)/],
      ];
      for (const [what, options, message] of cases) {
        const error = await failure(asClient(node, { ...options, user: 'admin', password: PASSWORD }).createChangefeed({ changefeed_id: what }));
        assert.equal(error.code, 'ErrTLSClientCertificate', what);
        assert.match(error.message, message, what);
        assert.equal(error.details?.['httpStatus'], 403, what);
        // reads too: the certificate is checked on every route
        assert.equal((await failure(asClient(node, options).status())).code, 'ErrTLSClientCertificate', what);
      }
      assert.equal(node.writes.length, 0);
    } finally {
      await node.close();
    }
  });

  it('the CLI side: a wrong CA, an expired or wrong-host server certificate, plaintext to TLS and TLS to plaintext are named', async () => {
    const node = await startNode(secure());
    const expired = await startNode(secure({ 'cert-path': certs.expiredServerCert, 'key-path': certs.serverKey }));
    const wrongHost = await startNode(secure({ 'cert-path': certs.wrongHostCert, 'key-path': certs.serverKey }));
    const plain = await startNode({});
    try {
      const good = { caPath: certs.ca, certPath: certs.clientCert, keyPath: certs.clientKey };
      const wrongCa = await failure(asClient(node, { ...good, caPath: certs.otherCa }).status());
      assert.equal(wrongCa.code, 'ErrTLSCertificate');
      assert.match(wrongCa.message, /TLS to the cdc server at https:\/\/127\.0\.0\.1:\d+ failed: the server certificate is not signed by --ca .*other-ca\.pem \(wrong CA\?\)/);
      const exp = await failure(asClient(expired, good).status());
      assert.equal(exp.code, 'ErrTLSCertificate');
      assert.match(exp.message, /the server certificate has expired: renew the server certificate/);
      const host = await failure(asClient(wrongHost, good).status());
      assert.equal(host.code, 'ErrTLSCertificate');
      assert.match(host.message, /does not name the host connected to/);
      const toTls = await failure(new ApiClient(`http://127.0.0.1:${node.port}`, 3000).status());
      assert.equal(toTls.code, 'ErrServiceUnreachable');
      assert.match(toTls.hint ?? '', /if it serves TLS .*use https:\/\/ and --ca/);
      const toPlain = await failure(new ApiClient(`127.0.0.1:${plain.port}`, 3000, good).status());
      assert.equal(toPlain.code, 'ErrTLSUnavailable');
      assert.match(toPlain.message, /does not speak TLS/);
      assert.throws(() => new ApiClient(`http://127.0.0.1:${node.port}`, 3000, good), /is plaintext http, but --ca\/--cert are for TLS/);
      // a plaintext server without users takes writes from anyone (the loopback default)
      assert.deepEqual(await new ApiClient(plain.url).createChangefeed({ changefeed_id: 'p' }), { id: 'made' });
    } finally {
      await Promise.all([node.close(), expired.close(), wrongHost.close(), plain.close()]);
    }
  });

  it('captures reach each other over TLS with their certificate; a peer whose CN is not allowed delivers nothing', async () => {
    const leaks = leakCheck();
    const a = await startNode(secure());
    const b = await startNode(secure({ 'cert-path': certs.intruderCert, 'key-path': certs.intruderKey }));
    // b's certificate is a client certificate only: b dials a with it
    const fromA = new PeerClient(`127.0.0.1:${a.port}`, 'capture-a', silentLogger, a.peers.dialCredentials);
    const fromB = new PeerClient(`127.0.0.1:${a.port}`, 'capture-b', silentLogger, b.peers.dialCredentials);
    try {
      assert.ok(a.peers.dialCredentials !== undefined);
      fromA.send('t', { n: 1 });
      fromA.send('t', { n: 2 });
      await waitFor(() => a.received.length === 2 && fromA.pending === 0, { timeoutMs: 10_000, what: 'messages over TLS' });
      assert.deepEqual(a.received.map((e) => e.payload), [{ n: 1 }, { n: 2 }]);
      fromB.send('t', { n: 'intruder' });
      await new Promise((resolve) => setTimeout(resolve, 1500));
      assert.equal(a.received.length, 2, 'nothing from a capture whose CN is not allowed');
      assert.equal(fromB.pending, 1);
    } finally {
      fromA.close();
      fromB.close();
      await a.close();
      await b.close();
    }
    await leaks.check();
  });

  it('reads need a user too with client-auth-reads; status stays open', async () => {
    const node = await startNode(secure({ 'client-auth-reads': true }));
    try {
      const good = { caPath: certs.ca, certPath: certs.clientCert, keyPath: certs.clientKey };
      assert.equal((await failure(asClient(node, good).changefeeds())).code, 'ErrUnauthorized');
      assert.deepEqual(await asClient(node, good).status(), { id: 'x' });
      assert.equal((await asClient(node, { ...good, user: 'admin', password: PASSWORD }).changefeeds()).length, 0);
    } finally {
      await node.close();
    }
  });
});
