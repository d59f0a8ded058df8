import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { factory } from '../../../plugins/sink-mysql/src/index.js';
import { Upstream } from '../../../src/core/upstream/upstream.js';
import { ProtocolConnection } from '../../../src/core/upstream/protocol/connection.js';
import { CDC_BIN, CdcServerProcess, freePort } from '../../helpers/cdc-process.js';
import { etcdEndpoint, requireService, uniqueName } from '../../helpers/services.js';
import { waitFor } from '../../helpers/wait-for.js';
import { makeCerts, useServerCert, type TestCerts } from './certs.js';

const run = promisify(execFile);
const ROOT = new URL('../../../', import.meta.url).pathname;

/**
 * TLS for the upstream (replication connection and every mysql2 connection) and the mysql sink, against real
 * TLS-only MariaDB servers (require_secure_transport=ON) that scripts/services.sh starts as `upstream-tls` and
 * `downstream-tls` on this test's own ports, data dir and certificates (made here with openssl).
 */
describe('TLS to the upstream and the mysql sink (real TLS-only MariaDB servers)', { timeout: 600_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-tls-'));
  const servicesDir = join(dir, 'services');
  const db = uniqueName('tm_tls');
  const clusterId = uniqueName('tls').replaceAll('_', '-');
  // every password used by the test: none of them may appear in any log or output
  const passwords = { rep: `Rp${randomBytes(9).toString('hex')}`, sink: `Sk${randomBytes(9).toString('hex')}`, plain: `Pl${randomBytes(9).toString('hex')}` };
  /** Everything the CLI printed, for the password check. */
  const cliOutput: string[] = [];
  let certs: TestCerts;
  let env: NodeJS.ProcessEnv;
  let upPort: number;
  let downPort: number;
  let up: mysql.Connection;
  let down: mysql.Connection;
  let server: CdcServerProcess | undefined;

  const services = async (verb: string): Promise<void> => {
    const { stdout, stderr } = await run('bash', [join(ROOT, 'scripts/services.sh'), verb, 'upstream-tls', 'downstream-tls'], { env, maxBuffer: 16 << 20 });
    cliOutput.push(stdout, stderr);
  };
  const tlsParams = (mode: string, ca = certs.ca, client = true): string =>
    `ssl-mode=${mode}&ssl-ca=${encodeURIComponent(ca)}${client ? `&ssl-cert=${encodeURIComponent(certs.clientCert)}&ssl-key=${encodeURIComponent(certs.clientKey)}` : ''}`;
  const upstreamUri = (mode = 'verify-identity', ca = certs.ca, host = '127.0.0.1'): string => `mysql://tm_rep:${passwords.rep}@${host}:${upPort}/?${tlsParams(mode, ca)}`;
  const sinkUri = (mode = 'verify-identity', ca = certs.ca): string => `mysql://tm_sink:${passwords.sink}@127.0.0.1:${downPort}/?${tlsParams(mode, ca)}`;
  const rootConnection = (port: number): Promise<mysql.Connection> =>
    mysql.createConnection({ host: '127.0.0.1', port, user: 'root', ssl: { ca: readFileSync(certs.ca, 'utf8'), rejectUnauthorized: false }, multipleStatements: true });
  /** Runs the CLI; its output (both streams) is kept for the password check. */
  const cdc = async (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
    try {
      const { stdout, stderr } = await run(process.execPath, [CDC_BIN, ...args], { maxBuffer: 64 << 20 });
      cliOutput.push(stdout, stderr);
      return { code: 0, stdout, stderr };
    } catch (error) {
      const e = error as { code: number; stdout: string; stderr: string };
      cliOutput.push(e.stdout, e.stderr);
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  };
  /** The upstream presents `which` certificate from now on (MariaDB reloads its files at FLUSH SSL). */
  const serverCert = async (which: 'good' | 'expired' | 'wronghost'): Promise<void> => {
    useServerCert(certs.dir, which);
    await up.query('FLUSH SSL');
  };

  before(async () => {
    await requireService('etcd');
    certs = makeCerts(join(dir, 'tls'));
    upPort = await freePort();
    downPort = await freePort();
    env = {
      ...process.env,
      TIDEMARK_SERVICES_DIR: servicesDir,
      TIDEMARK_TLS_DIR: certs.dir,
      TIDEMARK_UPSTREAM_TLS_ADDR: `127.0.0.1:${upPort}`,
      TIDEMARK_DOWNSTREAM_TLS_ADDR: `127.0.0.1:${downPort}`,
    };
    await services('up');
    up = await rootConnection(upPort);
    down = await rootConnection(downPort);
    // the replication user and the sink user must present the client certificate; tm_plain only needs TLS
    await up.query(`CREATE USER tm_rep@'%' IDENTIFIED BY '${passwords.rep}' REQUIRE X509; GRANT ALL ON *.* TO tm_rep@'%';
      CREATE USER tm_plain@'%' IDENTIFIED BY '${passwords.plain}'; GRANT ALL ON *.* TO tm_plain@'%'`);
    await down.query(`CREATE USER tm_sink@'%' IDENTIFIED BY '${passwords.sink}' REQUIRE X509; GRANT ALL ON *.* TO tm_sink@'%';
      CREATE USER tm_plain@'%' IDENTIFIED BY '${passwords.plain}'; GRANT ALL ON *.* TO tm_plain@'%'`);
    await up.query(`CREATE DATABASE ${db}; CREATE TABLE ${db}.orders (id INT PRIMARY KEY, total DECIMAL(10,2), note VARCHAR(40));
      INSERT INTO ${db}.orders VALUES ${Array.from({ length: 300 }, (_, i) => `(${i + 1}, ${i}.25, 'before ${i}')`).join(', ')}`);
    // the server's default upstream carries a password: it must not show in `ps`
    server = await CdcServerProcess.start({ pd: etcdEndpoint(), clusterId, extraArgs: ['--upstream', upstreamUri()] });
    await server.waitHealthy(30_000);
  });

  after(async () => {
    await server?.stop();
    await up?.end().catch(() => undefined);
    await down?.end().catch(() => undefined);
    if (env !== undefined) await services('down').catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  it('replicates upstream → downstream over TLS with verify-identity, the binlog dump included', async () => {
    const config = join(dir, 'feed.toml');
    writeFileSync(config, `[filter]\nrules = ["${db}.*"]\n`);
    const created = await cdc(['changefeed', 'create', '--server', server!.url, '-c', 'tlsfeed', '--upstream', upstreamUri(), '--sink-uri', sinkUri(), '--snapshot', 'initial', '--config', config, '--json']);
    assert.equal(created.code, 0, created.stderr);
    await up.query(`INSERT INTO ${db}.orders VALUES (1001, 1.50, 'after'), (1002, 2.50, 'after'); UPDATE ${db}.orders SET note = 'changed' WHERE id <= 10; DELETE FROM ${db}.orders WHERE id BETWEEN 11 AND 20`);
    const rows = async (conn: mysql.Connection): Promise<string> => JSON.stringify((await conn.query(`SELECT id, total, note FROM ${db}.orders ORDER BY id`))[0]);
    await waitFor(async () => (await rows(down).catch(() => '')) === (await rows(up)), { timeoutMs: 120_000, intervalMs: 300, what: 'the downstream to equal the upstream' }).catch((error: unknown) => {
      console.log(`# server log tail:\n${server!.output.join('').slice(-5000)}`);
      throw error;
    });
    const [[count]] = (await down.query(`SELECT COUNT(*) AS n FROM ${db}.orders`)) as unknown as [[{ n: number }]];
    assert.equal(Number(count.n), 292);

    // the binlog dump thread of tm_rep runs over TLS: performance_schema says SSL/TLS and its session has a cipher
    const [dumps] = await up.query<mysql.RowDataPacket[]>(
      `SELECT t.CONNECTION_TYPE AS type, s.VARIABLE_VALUE AS cipher FROM information_schema.PROCESSLIST p
         JOIN performance_schema.threads t ON t.PROCESSLIST_ID = p.ID
         LEFT JOIN performance_schema.status_by_thread s ON s.THREAD_ID = t.THREAD_ID AND s.VARIABLE_NAME = 'Ssl_cipher'
       WHERE p.COMMAND = 'Binlog Dump' AND p.USER = 'tm_rep'`,
    );
    assert.ok(dumps.length >= 1, 'a binlog dump thread of tm_rep');
    for (const d of dumps) {
      assert.equal(d['type'], 'SSL/TLS');
      assert.match(String(d['cipher']), /^TLS_|^ECDHE|^AES/);
    }
    // and every connection of the sink user to the downstream too
    const [sinks] = await down.query<mysql.RowDataPacket[]>("SELECT t.CONNECTION_TYPE AS type FROM information_schema.PROCESSLIST p JOIN performance_schema.threads t ON t.PROCESSLIST_ID = p.ID WHERE p.USER = 'tm_sink'");
    assert.ok(sinks.length >= 1);
    assert.deepEqual([...new Set(sinks.map((s) => s['type']))], ['SSL/TLS']);

    // cdc diff over TLS on both sides agrees
    const diff = await cdc(['diff', '--upstream', upstreamUri(), '--downstream', sinkUri(), '--tables', `${db}.*`, '--json']);
    assert.equal(diff.code, 0, diff.stderr);
    assert.equal(JSON.parse(diff.stdout).equal, true);

    const query = await cdc(['changefeed', 'query', '--server', server!.url, '-c', 'tlsfeed', '--json']);
    assert.equal(query.code, 0, query.stderr);
    assert.equal(JSON.parse(query.stdout).state, 'normal');
    assert.equal((await cdc(['changefeed', 'list', '--server', server!.url, '--json'])).code, 0);
    // the API's answers go into the password check too
    for (const path of ['/api/v2/changefeeds', '/api/v2/changefeeds/tlsfeed', '/api/v2/changefeeds/tlsfeed/tables', '/api/v2/changefeeds/tlsfeed/sink', '/api/v2/processors']) {
      const res = await fetch(`${server!.url}${path}`);
      cliOutput.push(await res.text());
      assert.equal(res.status, 200, path);
    }
  });

  it('the replication client itself negotiates TLS and reports the cipher', async () => {
    const conn = await ProtocolConnection.open(Upstream.of(upstreamUri()).target);
    try {
      assert.match(conn.cipher ?? '', /^TLS_|^ECDHE|^AES/);
    } finally {
      conn.close();
    }
  });

  it('a wrong CA fails with ErrTLSCertificate naming the CA, on every kind of connection', async () => {
    const uri = upstreamUri('verify-ca', certs.otherCa);
    await assert.rejects(ProtocolConnection.open(Upstream.of(uri).target), { code: 'ErrTLSCertificate', retryable: false, message: /TLS to the upstream 127\.0\.0\.1:\d+ failed: the server certificate is not signed by the CA in ssl-ca \(wrong CA\?\).*other-ca\.pem/ });
    await assert.rejects(Upstream.of(uri).connect(), { code: 'ErrTLSCertificate', message: /not signed by the CA in ssl-ca \(wrong CA\?\)/ });
    const created = await cdc(['changefeed', 'create', '--server', server!.url, '-c', 'wrongca', '--upstream', uri, '--sink-uri', 'blackhole://']);
    assert.notEqual(created.code, 0);
    assert.match(created.stderr, /ErrTLSCertificate: TLS to the upstream 127\.0\.0\.1:\d+ failed: the server certificate .*wrong CA/);
    const sinkUrl = new URL(sinkUri('verify-ca', certs.otherCa));
    await assert.rejects(factory.create(sinkUrl, factory.parseConfig(sinkUrl), sinkContext()), { code: 'ErrMySQLTLSError', retryable: false, message: /cannot connect to the downstream 127\.0\.0\.1:\d+ as tm_sink: TLS failed: the server certificate is not signed by the CA in ssl-ca \(wrong CA\?\)/ });
  });

  it('an expired server certificate fails with ErrTLSCertificate saying it expired', async () => {
    await serverCert('expired');
    try {
      await assert.rejects(ProtocolConnection.open(Upstream.of(upstreamUri()).target), { code: 'ErrTLSCertificate', message: /the server certificate has expired: renew the server certificate/ });
      await assert.rejects(Upstream.of(upstreamUri()).connect(), { code: 'ErrTLSCertificate', message: /has expired/ });
      // required does not verify (MySQL's meaning): the same server is accepted
      const conn = await Upstream.of(`mysql://tm_plain:${passwords.plain}@127.0.0.1:${upPort}/?ssl-mode=required`).connect();
      await conn.end();
    } finally {
      await serverCert('good');
    }
  });

  it('a certificate for another host fails under verify-identity only', async () => {
    await serverCert('wronghost');
    try {
      await assert.rejects(ProtocolConnection.open(Upstream.of(upstreamUri('verify-identity')).target), { code: 'ErrTLSCertificate', message: /the server certificate does not name the host 127\.0\.0\.1 \(ssl-mode=verify-identity\)/ });
      await assert.rejects(Upstream.of(upstreamUri('verify-identity')).connect(), { code: 'ErrTLSCertificate', message: /does not name the host 127\.0\.0\.1/ });
      const created = await cdc(['diff', '--upstream', upstreamUri('verify-identity'), '--downstream', sinkUri(), '--tables', `${db}.*`]);
      assert.notEqual(created.code, 0);
      assert.match(created.stderr, /ErrTLSCertificate: .*does not name the host 127\.0\.0\.1/);
      // verify-ca checks the chain only: accepted
      const conn = await ProtocolConnection.open(Upstream.of(upstreamUri('verify-ca')).target);
      conn.close();
      await (await Upstream.of(upstreamUri('verify-ca')).connect()).end();
    } finally {
      await serverCert('good');
    }
    // and the good certificate names localhost as well as 127.0.0.1
    const conn = await ProtocolConnection.open(Upstream.of(upstreamUri('verify-identity', certs.ca, 'localhost')).target);
    conn.close();
  });

  it('plaintext to a TLS-only server is ErrTLSRequired, not a missing privilege', async () => {
    const uri = `mysql://tm_plain:${passwords.plain}@127.0.0.1:${upPort}/?ssl-mode=disabled`;
    await assert.rejects(ProtocolConnection.open(Upstream.of(uri).target), { code: 'ErrTLSRequired', retryable: false, message: /accepts this user only over TLS \(require_secure_transport\).*ssl-mode=disabled/ });
    await assert.rejects(Upstream.of(uri).connect(), { code: 'ErrTLSRequired' });
    const created = await cdc(['changefeed', 'create', '--server', server!.url, '-c', 'plain', '--upstream', uri, '--sink-uri', 'blackhole://']);
    assert.notEqual(created.code, 0);
    assert.match(created.stderr, /ErrTLSRequired: the upstream 127\.0\.0\.1:\d+ accepts this user only over TLS/);
    assert.doesNotMatch(created.stderr, /ErrReplicationPrivilege/);
    // a wrong password in plaintext stays what it is
    await assert.rejects(ProtocolConnection.open(Upstream.of(`mysql://tm_plain:nope@127.0.0.1:${upPort}/?ssl-mode=disabled`).target), { code: 'ErrReplicationPrivilege' });
    // the sink says the same about the downstream
    const sinkUrl = new URL(`mysql://tm_plain:${passwords.plain}@127.0.0.1:${downPort}/?ssl-mode=disabled`);
    await assert.rejects(factory.create(sinkUrl, factory.parseConfig(sinkUrl), sinkContext()), {
      code: 'ErrMySQLTLSError',
      retryable: false,
      message: /cannot connect to the downstream 127\.0\.0\.1:\d+ as tm_plain: the downstream accepts this user only over TLS \(require_secure_transport\)/,
    });
  });

  it('a running changefeed whose upstream certificate expired reports ErrTLSCertificate', async () => {
    await serverCert('expired');
    try {
      // end the binlog dump connections: the readers connect again and meet the expired certificate
      const [dumps] = await up.query<mysql.RowDataPacket[]>("SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND = 'Binlog Dump' AND USER = 'tm_rep'");
      assert.ok(dumps.length >= 1);
      for (const d of dumps) await up.query(`KILL ${Number(d['ID'])}`).catch(() => undefined);
      let last = '';
      await waitFor(
        async () => {
          const q = await cdc(['changefeed', 'query', '--server', server!.url, '-c', 'tlsfeed', '--json']);
          last = q.stdout;
          const detail = JSON.parse(q.stdout) as { state: string; error: { code?: string; message?: string } | null };
          return detail.error?.code === 'ErrTLSCertificate' && /has expired/.test(detail.error.message ?? '') ? true : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 500, what: 'the changefeed to report the expired certificate' },
      ).catch((error: unknown) => {
        console.log(`# last query: ${last}\n# server log tail:\n${server!.output.join('').slice(-4000)}`);
        throw error;
      });
    } finally {
      await serverCert('good');
    }
  });

  it('an unknown parameter on the upstream URI is refused, naming the allowed ones', async () => {
    const created = await cdc(['changefeed', 'create', '--server', server!.url, '-c', 'typo', '--upstream', `mysql://tm_rep:${passwords.rep}@127.0.0.1:${upPort}/?sslmode=required`, '--sink-uri', 'blackhole://']);
    assert.notEqual(created.code, 0);
    assert.match(created.stderr, /ErrUpstreamURIInvalid: invalid upstream URI "mysql:\/\/tm_rep:xxxxx@127\.0\.0\.1:\d+\/\?sslmode=required": unknown parameter "sslmode"; allowed: ssl-mode, ssl-ca, ssl-cert, ssl-key/);
  });

  it('no password used appears in the logs, the CLI output and API answers of the run, nor in the server\'s process title', () => {
    const texts = [...cliOutput, server!.output.join('')];
    const cmdline = readFileSync(`/proc/${server!.pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
    assert.match(cmdline, /server --pd .* --upstream mysql:\/\/tm_rep:xxxxx@127\.0\.0\.1:/);
    texts.push(cmdline);
    const walk = (d: string): void => {
      for (const name of readdirSync(d)) {
        const p = join(d, name);
        const st = statSync(p);
        if (st.isDirectory()) {
          if (name !== 'upstream-tls' && name !== 'downstream-tls') walk(p); // the datadirs hold the users' hashes, not logs
        } else if (/\.(log|err)$/.test(name)) texts.push(readFileSync(p, 'utf8'));
      }
    };
    walk(servicesDir);
    assert.ok(texts.join('').length > 1000, 'some output was collected');
    for (const [who, pw] of Object.entries(passwords)) {
      for (const text of texts) assert.ok(!text.includes(pw), `the ${who} password appears in: ${text.slice(Math.max(0, text.indexOf(pw) - 200), text.indexOf(pw) + 50)}`);
    }
  });
});

function sinkContext() {
  const log = (): void => undefined;
  return { signal: new AbortController().signal, changefeedId: 'tls-test', logger: { debug: log, info: log, warn: log, error: log } };
}
