import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { Etcd3, Range } from 'etcd3';
import mysql from 'mysql2/promise';
import { requestText } from '../../../src/core/api/http-request.js';
import { EtcdClient } from '../../../src/core/orchestrator/etcd-client.js';
import { hashPassword } from '../../../src/core/api/auth.js';
import { CDC_BIN, freePort } from '../../helpers/cdc-process.js';
import { etcdEndpoint, mysqlUri, requireService, serviceAddress, uniqueName } from '../../helpers/services.js';
import { leakCheck } from '../../helpers/leak-check.js';
import { TcpProxy } from '../../helpers/tcp-proxy.js';
import { waitFor } from '../../helpers/wait-for.js';
import { makeCerts, type TestCerts } from './certs.js';

const run = promisify(execFile);
const ROOT = new URL('../../../', import.meta.url).pathname;

/** A `cdc server` child process on TLS (this test's own: the shared helper speaks plain http). */
class TlsServer {
  readonly output: string[] = [];
  exitCode: number | null | undefined;
  readonly exited: Promise<number | null>;

  constructor(
    readonly child: ChildProcess,
    readonly addr: string,
  ) {
    child.stdout?.on('data', (d: Buffer) => this.output.push(d.toString()));
    child.stderr?.on('data', (d: Buffer) => this.output.push(d.toString()));
    this.exited = new Promise((resolve) =>
      child.once('exit', (code) => {
        this.exitCode = code;
        resolve(code);
      }),
    );
  }

  get url(): string {
    return `https://${this.addr}`;
  }

  async stop(): Promise<void> {
    if (this.exitCode !== undefined) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(timer);
  }
}

/**
 * The cluster's own TLS and authentication against a real TLS-only etcd with client-certificate authentication
 * and etcd users (scripts/services.sh up etcd-tls, on this test's port, data dir and certificates): two `cdc
 * server`s on TLS with --cert-allowed-cn and API users, a changefeed created through the CLI over https with a
 * user and password, rows arriving downstream equal to the upstream; each failure a typed error saying what is
 * wrong; no password anywhere in the logs, CLI output, API answers or process titles.
 */
describe('cluster TLS: cdc server on TLS to a TLS etcd, mTLS between captures and the CLI, API users', { timeout: 600_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-cluster-tls-'));
  const servicesDir = join(dir, 'services');
  const db = uniqueName('tm_ctls');
  const clusterId = uniqueName('ctls').replaceAll('_', '-');
  const sinkUser = uniqueName('tm_sink');
  // every password of the run: none may appear in any log, output, answer or process title
  const passwords = {
    api: `Api${randomBytes(9).toString('hex')}`,
    etcd: `Etc${randomBytes(9).toString('hex')}`,
    etcdRoot: `Rt${randomBytes(9).toString('hex')}`,
    stranger: `St${randomBytes(9).toString('hex')}`,
    sink: `Sk${randomBytes(9).toString('hex')}`,
  };
  const texts: string[] = [];
  let certs: TestCerts;
  let env: NodeJS.ProcessEnv;
  let etcdAddr: string;
  let serverConfig: string;
  let up: mysql.Connection;
  let down: mysql.Connection;
  const servers: TlsServer[] = [];

  const services = async (verb: string): Promise<void> => {
    const { stdout, stderr } = await run('bash', [join(ROOT, 'scripts/services.sh'), verb, 'etcd-tls'], { env, maxBuffer: 16 << 20 });
    texts.push(stdout, stderr);
  };
  const etcdAdmin = (auth?: { username: string; password: string }): Etcd3 =>
    new Etcd3({
      hosts: `https://${etcdAddr}`,
      credentials: { rootCertificate: readFileSync(certs.ca), privateKey: readFileSync(certs.clientKey), certChain: readFileSync(certs.clientCert) },
      ...(auth === undefined ? {} : { auth }),
    });
  /** The flags of a TLS capture of this cluster; `extra` flags replace those of the same name. */
  const serverArgs = (port: number, extra: string[] = []): string[] => {
    const flags = new Map<string, string>([
      ['--pd', `https://${etcdAddr}`],
      ['--addr', `127.0.0.1:${port}`],
      ['--cluster-id', clusterId],
      ['--data-dir', mkdtempSync(join(dir, 'data-'))],
      ['--config', serverConfig],
      ['--ca', certs.ca],
      ['--cert', certs.captureCert],
      ['--key', certs.captureKey],
      ['--cert-allowed-cn', 'tidemark-capture,tidemark-client'],
      ['--etcd-user', 'tidemark'],
    ]);
    for (let i = 0; i < extra.length; i += 2) flags.set(extra[i], extra[i + 1]);
    return ['server', ...[...flags].flat()];
  };
  const startServer = async (extra: string[] = [], extraEnv: NodeJS.ProcessEnv = { TIDEMARK_ETCD_PASSWORD: passwords.etcd }): Promise<TlsServer> => {
    const port = await freePort();
    const child = spawn(process.execPath, [CDC_BIN, ...serverArgs(port, extra)], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TIDEMARK_ETCD_PASSWORD: undefined, ...extraEnv } });
    const server = new TlsServer(child, `127.0.0.1:${port}`);
    servers.push(server);
    return server;
  };
  const tlsAsClient = () => ({ ca: readFileSync(certs.ca, 'utf8'), cert: readFileSync(certs.clientCert, 'utf8'), key: readFileSync(certs.clientKey, 'utf8') });
  /** A GET of the server's API over https with the CLI's client certificate; the answer is kept for the password check. */
  const api = async (server: TlsServer, path: string): Promise<{ status: number; json: unknown }> => {
    const res = await requestText({ method: 'GET', url: new URL(path, server.url), signal: AbortSignal.timeout(5000), tls: tlsAsClient() });
    texts.push(res.text);
    return { status: res.status, json: JSON.parse(res.text) as unknown };
  };
  const waitHealthy = async (server: TlsServer): Promise<void> => {
    await waitFor(
      async () => {
        if (server.exitCode !== undefined) throw new Error(`cdc server exited with ${server.exitCode}: ${server.output.join('')}`);
        return (await api(server, '/api/v2/health').then((r) => r.status === 200, () => false)) || undefined;
      },
      { timeoutMs: 60_000, intervalMs: 200, what: `cdc server on ${server.addr} to be healthy` },
    );
  };
  /** The CLI as an operator runs it against the TLS cluster; `password` goes in TIDEMARK_PASSWORD. */
  const cdc = async (args: string[], options: { password?: string; tls?: string[] } = {}): Promise<{ code: number; stdout: string; stderr: string }> => {
    const tlsFlags = options.tls ?? ['--ca', certs.ca, '--cert', certs.clientCert, '--key', certs.clientKey];
    try {
      const { stdout, stderr } = await run(process.execPath, [CDC_BIN, ...args, ...tlsFlags], {
        maxBuffer: 64 << 20,
        env: { ...process.env, TIDEMARK_PASSWORD: options.password },
      });
      texts.push(stdout, stderr);
      return { code: 0, stdout, stderr };
    } catch (error) {
      const e = error as { code: number; stdout: string; stderr: string };
      texts.push(e.stdout, e.stderr);
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  };
  /** A cdc server expected to fail at start: its exit code and everything it printed. */
  const serverFails = async (extra: string[], extraEnv: NodeJS.ProcessEnv = { TIDEMARK_ETCD_PASSWORD: passwords.etcd }): Promise<{ code: number | null; output: string }> => {
    const server = await startServer(extra, extraEnv);
    const timer = setTimeout(() => server.child.kill('SIGKILL'), 60_000);
    const code = await server.exited;
    clearTimeout(timer);
    return { code, output: server.output.join('') };
  };

  before(async () => {
    await requireService('upstream');
    await requireService('downstream');
    certs = makeCerts(join(dir, 'tls'));
    const port = await freePort();
    etcdAddr = `127.0.0.1:${port}`;
    env = { ...process.env, TIDEMARK_SERVICES_DIR: servicesDir, TIDEMARK_TLS_DIR: certs.dir, TIDEMARK_ETCD_TLS_ADDR: etcdAddr };
    await services('up');
    // etcd users: root (to enable auth), tidemark with readwrite on /tidb/cdc/, stranger with no role
    const admin = etcdAdmin();
    try {
      await admin.user('root').create(passwords.etcdRoot);
      await admin.role('root').create();
      await admin.user('root').addRole('root');
      await admin.role('tidemark').create();
      await admin.role('tidemark').grant({ permission: 'Readwrite', range: Range.prefix('/tidb/cdc/') });
      await admin.user('tidemark').create(passwords.etcd);
      await admin.user('tidemark').addRole('tidemark');
      await admin.user('stranger').create(passwords.stranger);
      await admin.auth.authEnable();
    } finally {
      admin.close();
    }
    serverConfig = join(dir, 'server.toml');
    writeFileSync(serverConfig, `[security.client-user-list]\nadmin = "${await hashPassword(passwords.api)}"\n`);

    up = await mysql.createConnection({ host: serviceAddress('upstream').host, port: serviceAddress('upstream').port, user: 'root', multipleStatements: true });
    down = await mysql.createConnection({ host: serviceAddress('downstream').host, port: serviceAddress('downstream').port, user: 'root', multipleStatements: true });
    await down.query(`CREATE USER '${sinkUser}'@'%' IDENTIFIED BY '${passwords.sink}'; GRANT ALL ON *.* TO '${sinkUser}'@'%'`);
    const tables = ['orders', 'items', 'users', 'notes'];
    await up.query(`CREATE DATABASE ${db}; ${tables.map((t) => `CREATE TABLE ${db}.${t} (id INT PRIMARY KEY, v VARCHAR(40));`).join(' ')}
      ${tables.map((t) => `INSERT INTO ${db}.${t} VALUES ${Array.from({ length: 100 }, (_, i) => `(${i + 1}, '${t} ${i}')`).join(', ')};`).join(' ')}`);
  });

  after(async () => {
    for (const server of servers) await server.stop();
    await up?.query(`DROP DATABASE IF EXISTS ${db}`).catch(() => undefined);
    await down?.query(`DROP DATABASE IF EXISTS ${db}; DROP USER IF EXISTS '${sinkUser}'@'%'`).catch(() => undefined);
    await up?.end().catch(() => undefined);
    await down?.end().catch(() => undefined);
    if (env !== undefined) await services('down').catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  let a: TlsServer;
  let b: TlsServer;

  it('two captures on TLS join through the TLS etcd as an etcd user; a changefeed made over https with an API user replicates, on both captures', async () => {
    a = await startServer();
    await waitHealthy(a);
    // the second one takes its etcd password as a flag: the process title must not show it
    b = await startServer(['--etcd-password', passwords.etcd], {});
    await waitHealthy(b);
    const captures = await cdc(['capture', 'list', '--server', a.url, '--json']);
    assert.equal(captures.code, 0, captures.stderr);
    assert.equal((JSON.parse(captures.stdout) as unknown[]).length, 2);

    const config = join(dir, 'feed.toml');
    writeFileSync(config, `[filter]\nrules = ["${db}.*"]\n`);
    const sinkUri = `mysql://${sinkUser}:${passwords.sink}@${serviceAddress('downstream').addr}/`;
    const created = await cdc(['changefeed', 'create', '--server', b.url, '-c', 'securefeed', '--upstream', mysqlUri('upstream'), '--sink-uri', sinkUri, '--snapshot', 'initial', '--config', config, '--user', 'admin', '--json'], { password: passwords.api });
    assert.equal(created.code, 0, created.stderr);
    await up.query(`INSERT INTO ${db}.orders VALUES (1001, 'after'); UPDATE ${db}.items SET v = 'changed' WHERE id <= 10; DELETE FROM ${db}.users WHERE id > 90; INSERT INTO ${db}.notes VALUES (500, 'n')`);
    const rows = async (conn: mysql.Connection): Promise<string> => {
      const out: unknown[] = [];
      for (const t of ['orders', 'items', 'users', 'notes']) out.push((await conn.query(`SELECT id, v FROM ${db}.${t} ORDER BY id`))[0]);
      return JSON.stringify(out);
    };
    await waitFor(async () => (await rows(down).catch(() => '')) === (await rows(up)), { timeoutMs: 180_000, intervalMs: 500, what: 'the downstream to equal the upstream' }).catch((error: unknown) => {
      console.log(`# server a:\n${a.output.join('').slice(-4000)}\n# server b:\n${b.output.join('').slice(-4000)}`);
      throw error;
    });
    const [[count]] = (await down.query(`SELECT COUNT(*) AS n FROM ${db}.users`)) as unknown as [[{ n: number }]];
    assert.equal(Number(count.n), 90);
    // both captures run the changefeed: the owner dispatched tables to the other over the TLS gRPC channel
    const processors = await api(a, '/api/v2/processors');
    const captureIds = new Set((processors.json as { items: { changefeed_id: string; capture_id: string }[] }).items.filter((p) => p.changefeed_id === 'securefeed').map((p) => p.capture_id));
    assert.equal(captureIds.size, 2, JSON.stringify(processors.json));
    // pause through the capture that is not the owner: forwarded to the owner over https with the caller's user
    const status = (await api(a, '/api/v2/status')).json as { is_owner: boolean };
    const notOwner = status.is_owner ? b : a;
    const paused = await cdc(['changefeed', 'pause', '--server', notOwner.url, '-c', 'securefeed', '--user', 'admin', '--json'], { password: passwords.api });
    assert.equal(paused.code, 0, paused.stderr);
    await waitFor(async () => ((await api(a, '/api/v2/changefeeds/securefeed')).json as { state: string }).state === 'stopped', { what: 'the changefeed to be paused' });
    const resumed = await cdc(['changefeed', 'resume', '--server', notOwner.url, '-c', 'securefeed', '--user', 'admin', '--json'], { password: passwords.api });
    assert.equal(resumed.code, 0, resumed.stderr);
    await waitFor(async () => ((await api(a, '/api/v2/changefeeds/securefeed')).json as { state: string }).state === 'normal', { what: 'the changefeed to run again' });
    // the server said it serves TLS with client certificates and API users
    assert.match(a.output.join(''), /"cdc server listening".*\[tls=true\] \[clientCertificates="required, CN in tidemark-capture, tidemark-client"\] \[apiUsers="required for writes"\]/);
  });

  it('a wrong API password is 401 ErrUnauthorized and changes nothing; no user at all too', async () => {
    const wrong = await cdc(['changefeed', 'pause', '--server', a.url, '-c', 'securefeed', '--user', 'admin', '--json'], { password: `${passwords.api}x` });
    assert.notEqual(wrong.code, 0);
    const error = (JSON.parse(wrong.stdout) as { error: { code: string; message: string; details: { httpStatus: number } } }).error;
    assert.equal(error.code, 'ErrUnauthorized');
    assert.equal(error.details.httpStatus, 401);
    assert.match(error.message, /authentication failed for API user "admin": unknown user or wrong password/);
    const none = await cdc(['changefeed', 'create', '--server', a.url, '-c', 'sneaky', '--upstream', mysqlUri('upstream'), '--sink-uri', 'blackhole://']);
    assert.notEqual(none.code, 0);
    assert.match(none.stderr, /ErrUnauthorized: POST \/api\/v2\/changefeeds needs an API user/);
    assert.match(none.stderr, /Hint: pass --user and --password \(or TIDEMARK_PASSWORD\)/);
    // nothing changed: still running, and no changefeed "sneaky"
    const detail = await api(a, '/api/v2/changefeeds/securefeed');
    assert.equal((detail.json as { state: string }).state, 'normal');
    const list = (await api(a, '/api/v2/changefeeds?state=all')).json as { items: { id: string }[] };
    assert.deepEqual(list.items.map((c) => c.id).filter((id) => id === 'securefeed' || id === 'sneaky'), ['securefeed']);
    // reads stay open by default, with an allowed certificate
    const query = await cdc(['changefeed', 'query', '--server', a.url, '-c', 'securefeed', '--json']);
    assert.equal(query.code, 0, query.stderr);
    assert.match((JSON.parse(query.stdout) as { sink_uri: string }).sink_uri, new RegExp(`^mysql://${sinkUser}:xxxxx@`));
  });

  it('the CLI with a wrong CA, an expired client certificate or a CN not allowed: each error names what is wrong', async () => {
    const wrongCa = await cdc(['capture', 'list', '--server', a.url], { tls: ['--ca', certs.otherCa, '--cert', certs.clientCert, '--key', certs.clientKey] });
    assert.notEqual(wrongCa.code, 0);
    assert.match(wrongCa.stderr, /ErrTLSCertificate: TLS to the cdc server at https:\/\/127\.0\.0\.1:\d+ failed: the server certificate is not signed by --ca \S*other-ca\.pem \(wrong CA\?\)/);
    const expired = await cdc(['capture', 'list', '--server', a.url], { tls: ['--ca', certs.ca, '--cert', certs.expiredClientCert, '--key', certs.clientKey] });
    assert.notEqual(expired.code, 0);
    assert.match(expired.stderr, /ErrTLSClientCertificate: the client certificate \(CN "tidemark-client"\) has expired/);
    const intruder = await cdc(['changefeed', 'pause', '--server', a.url, '-c', 'securefeed', '--user', 'admin'], { password: passwords.api, tls: ['--ca', certs.ca, '--cert', certs.intruderCert, '--key', certs.intruderKey] });
    assert.notEqual(intruder.code, 0);
    assert.match(intruder.stderr, /ErrTLSClientCertificate: the client certificate's CN "intruder" is not allowed by this cdc server \(cert-allowed-cn: tidemark-capture, tidemark-client\)/);
    const noCert = await cdc(['capture', 'list', '--server', a.url], { tls: ['--ca', certs.ca] });
    assert.notEqual(noCert.code, 0);
    assert.match(noCert.stderr, /ErrTLSClientCertificate: this cdc server accepts only clients with a certificate/);
    const plaintext = await cdc(['capture', 'list', '--server', `http://${a.addr}`], { tls: [] });
    assert.notEqual(plaintext.code, 0);
    assert.match(plaintext.stderr, /ErrServiceUnreachable: cannot reach the cdc server at http:\/\/127\.0\.0\.1:\d+.*\n.*use https:\/\/ and --ca/);
    assert.equal(((await api(a, '/api/v2/changefeeds/securefeed')).json as { state: string }).state, 'normal', 'nothing changed');
  });

  it('cdc server: a wrong CA for etcd, plaintext to the TLS etcd, a wrong etcd password, a user without permissions — each a typed error', async () => {
    const wrongCa = await serverFails(['--ca', certs.otherCa]);
    assert.equal(wrongCa.code, 1, wrongCa.output);
    assert.match(wrongCa.output, /ErrTLSCertificate: TLS to etcd at https:\/\/127\.0\.0\.1:\d+ failed: the server certificate is not signed by --ca \S*other-ca\.pem \(wrong CA\?\)/);
    const plain = await serverFails(['--pd', `http://${etcdAddr}`]);
    assert.notEqual(plain.code, 0, plain.output);
    assert.match(plain.output, /ErrEtcdUnreachable: cannot reach etcd at --pd http:\/\/127\.0\.0\.1:\d+/);
    assert.match(plain.output, /needs https:\/\/ endpoints and --ca/);
    const wrongPassword = await serverFails([], { TIDEMARK_ETCD_PASSWORD: `${passwords.etcd}x` });
    assert.equal(wrongPassword.code, 3, wrongPassword.output);
    assert.match(wrongPassword.output, /ErrEtcdAuthFailed: etcd at --pd https:\/\/127\.0\.0\.1:\d+ refused the etcd user "tidemark": unknown user or wrong password/);
    const stranger = await serverFails(['--etcd-user', 'stranger'], { TIDEMARK_ETCD_PASSWORD: passwords.stranger });
    assert.equal(stranger.code, 3, stranger.output);
    assert.match(stranger.output, /ErrEtcdAuthFailed: etcd at --pd https:\/\/127\.0\.0\.1:\d+ denies the etcd user "stranger" access to the cluster's keys/);
    const noPassword = await serverFails([], {});
    assert.notEqual(noPassword.code, 0);
    assert.match(noPassword.output, /the etcd user "tidemark" needs a password: set TIDEMARK_ETCD_PASSWORD/);
    const expiredCert = await serverFails(['--cert', certs.expiredServerCert, '--key', certs.serverKey]);
    assert.notEqual(expiredCert.code, 0);
    assert.match(expiredCert.output, /ErrTLS\w+: TLS handshake with etcd at https:\/\/127\.0\.0\.1:\d+ failed: .*certificate/);
  });

  it('the etcd client with TLS and an etcd user: works, and close() leaves no connection, timer or socket (token clients included)', async () => {
    const leaks = leakCheck();
    const proxy = await TcpProxy.start('127.0.0.1', Number(etcdAddr.split(':')[1]));
    const client = new EtcdClient({
      hosts: `https://127.0.0.1:${proxy.endpoint.split(':').at(-1)}`,
      dialTimeout: 3000,
      credentials: { rootCertificate: readFileSync(certs.ca), privateKey: readFileSync(certs.captureKey), certChain: readFileSync(certs.captureCert) },
      auth: { username: 'tidemark', password: passwords.etcd },
    });
    const key = `/tidb/cdc/${clusterId}-leak/k`;
    const watcher = await client.watch().key(key).create();
    const seen = new Promise<string>((resolve) => watcher.once('put', (kv) => resolve(kv.value.toString())));
    const lease = client.lease(10);
    await lease.put(key).value('v1');
    assert.equal(await seen, 'v1');
    assert.equal(await client.get(key).string(), 'v1');
    await client.delete().key(key);
    // a key outside the user's prefix is refused
    await assert.rejects(client.put('/elsewhere/k').value('x').exec(), /permission denied/);
    client.close();
    assert.equal(client.openCalls, 0);
    await waitFor(() => proxy.connections === 0, { timeoutMs: 5000, what: "the closed client's connections (the token's too) to end" });
    await proxy.close();
    await leaks.check();
  });

  it('a plaintext server told to listen on a non-loopback address warns; on loopback it does not', async () => {
    await requireService('etcd');
    const start = async (host: string): Promise<TlsServer> => {
      const port = await freePort();
      const child = spawn(process.execPath, [CDC_BIN, 'server', '--pd', etcdEndpoint(), '--addr', `${host}:${port}`, '--cluster-id', `${clusterId}-plain`, '--data-dir', mkdtempSync(join(dir, 'data-'))], { stdio: ['ignore', 'pipe', 'pipe'] });
      const server = new TlsServer(child, `${host}:${port}`);
      servers.push(server);
      await waitFor(() => server.output.join('').includes('cdc server listening') || (server.exitCode !== undefined ? assert.fail(server.output.join('')) : undefined), { timeoutMs: 30_000, what: 'the plaintext server to listen' });
      return server;
    };
    const open = await start('0.0.0.0');
    const local = await start('127.0.0.1');
    try {
      await waitFor(() => open.output.join('').includes('listening on a non-loopback address without TLS'), { timeoutMs: 5000, what: 'the warning' });
      assert.match(open.output.join(''), /\[WARN\] \["listening on a non-loopback address without TLS: .*"\] \[addr=0\.0\.0\.0:\d+\] \[fix="pass --cert and --key/);
      assert.match(open.output.join(''), /\[tls=false\] \[clientCertificates="not checked"\] \[apiUsers=none\]/);
      assert.doesNotMatch(local.output.join(''), /non-loopback/);
    } finally {
      await open.stop();
      await local.stop();
    }
  });

  it('no password used appears in the logs, CLI output, API answers or process titles of the run', async () => {
    for (const path of ['/api/v2/changefeeds', '/api/v2/changefeeds/securefeed', '/api/v2/changefeeds/securefeed/tables', '/api/v2/processors', '/api/v2/captures']) {
      assert.equal((await api(a, path)).status, 200, path);
    }
    const titles = [a, b].map((s) => readFileSync(`/proc/${s.child.pid}/cmdline`, 'utf8').replaceAll('\0', ' '));
    assert.match(titles[1], /--etcd-password xxxxx/);
    texts.push(...titles, ...servers.map((s) => s.output.join('')));
    texts.push(readFileSync(join(servicesDir, 'etcd-tls.log'), 'utf8'));
    assert.ok(texts.join('').length > 5000, 'some output was collected');
    for (const [who, pw] of Object.entries(passwords)) {
      for (const text of texts) assert.ok(!text.includes(pw), `the ${who} password appears in: ${text.slice(Math.max(0, text.indexOf(pw) - 200), text.indexOf(pw) + 50)}`);
    }
  });
});
