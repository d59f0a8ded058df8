import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { Kafka, logLevel, type SASLOptions } from 'kafkajs';
import mysql from 'mysql2/promise';
import { factory } from '../../../plugins/sink-kafka/src/index.js';
import type { SinkContext } from '../../../src/core/sink/api.js';
import { CDC_BIN, CdcServerProcess } from '../../helpers/cdc-process.js';
import { etcdEndpoint, mysqlUri, requireService, uniqueName } from '../../helpers/services.js';
import { waitFor } from '../../helpers/wait-for.js';
import { makeCerts, type TestCerts } from './certs.js';

const run = promisify(execFile);
const ROOT = new URL('../../../', import.meta.url).pathname;

/** A port p with p + 1 and p + 2 free too (the TLS broker's controller and its own plaintext listener). */
async function freePortRun(): Promise<number> {
  const take = (port: number): Promise<boolean> =>
    new Promise((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
  for (let i = 0; i < 50; i++) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    if ((await take(base)) && (await take(base + 1)) && (await take(base + 2))) return base;
  }
  throw new Error('no three consecutive free ports found');
}

/**
 * The Kafka sink over TLS and SASL against a real broker with a SASL_SSL listener only (scripts/services.sh
 * `kafka-tls`, on this test's ports, data dir and certificates made here with openssl; SCRAM users created
 * when its storage is formatted; client certificates required, ssl.client.auth=required on the SASL_SSL listener):
 * a changefeed through a real cdc server delivers every row over mutual TLS + SCRAM-SHA-512; PLAIN and
 * SCRAM-SHA-256 connect too; a wrong password, a wrong CA, no client certificate, one of another CA and plaintext
 * to the TLS port each fail with an error that says which (and none crashes the process), and no password shows
 * in any output.
 */
describe('Kafka sink over TLS and SASL (a real SASL_SSL broker)', { timeout: 600_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-kafka-tls-'));
  const password = `Kf${randomBytes(9).toString('hex')}`;
  const user = 'tm-producer';
  const db = uniqueName('tm_ktls');
  const clusterId = uniqueName('ktls').replaceAll('_', '-');
  const outputs: string[] = [];
  let certs: TestCerts;
  let env: NodeJS.ProcessEnv;
  let port: number;
  let up: mysql.Connection;
  let server: CdcServerProcess | undefined;

  const services = async (verb: string): Promise<void> => {
    const { stdout, stderr } = await run('bash', [join(ROOT, 'scripts/services.sh'), verb, 'kafka-tls'], { env, maxBuffer: 16 << 20 });
    outputs.push(stdout, stderr);
  };
  const sinkUri = (topic: string, params: string): string => `kafka://127.0.0.1:${port}/${topic}?protocol=canal-json&${params}`;
  /** TLS with the CA to verify the broker and, unless `cert` is null, a client certificate (the broker requires one). */
  const tlsParams = (ca = certs.ca, cert: string | null = certs.clientCert): string =>
    `enable-tls=true&ca=${encodeURIComponent(ca)}${cert === null ? '' : `&cert=${encodeURIComponent(cert)}&key=${encodeURIComponent(certs.clientKey)}`}`;
  const saslParams = (mechanism: string, pw = password): string => `sasl-user=${user}&sasl-password=${encodeURIComponent(pw)}&sasl-mechanism=${mechanism}`;
  const ctx = (): SinkContext => ({ signal: new AbortController().signal, changefeedId: 'kafka-tls-test', logger: { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined } });
  /** Opens the sink and sends one DDL through it (a connection is made and a record produced). */
  const openAndWrite = async (uri: string): Promise<void> => {
    const u = new URL(uri);
    const sink = await factory.create(u, factory.parseConfig(u), ctx());
    try {
      await sink.writeDDL({ commitTs: 5n, commitTime: Date.now(), schema: db, query: `CREATE DATABASE ${db}_probe`, kind: 'create-database', tables: [] });
    } finally {
      await sink.close();
    }
  };
  const consumerKafka = (sasl: SASLOptions): Kafka => new Kafka({ brokers: [`127.0.0.1:${port}`], ssl: { ca: readFileSync(certs.ca, 'utf8'), cert: readFileSync(certs.clientCert, 'utf8'), key: readFileSync(certs.clientKey, 'utf8') }, sasl, logLevel: logLevel.NOTHING });

  before(async () => {
    await requireService('etcd');
    await requireService('upstream');
    certs = makeCerts(join(dir, 'tls'));
    port = await freePortRun();
    env = {
      ...process.env,
      TIDEMARK_SERVICES_DIR: join(dir, 'services'),
      TIDEMARK_TLS_DIR: certs.dir,
      TIDEMARK_KAFKA_TLS_ADDR: `127.0.0.1:${port}`,
      TIDEMARK_KAFKA_TLS_USER: user,
      TIDEMARK_KAFKA_TLS_PASSWORD: password,
    };
    await services('up');
    up = await mysql.createConnection({ uri: mysqlUri('upstream') });
    await up.query(`CREATE DATABASE \`${db}\``);
    await up.query(`CREATE TABLE \`${db}\`.t (id INT PRIMARY KEY, v VARCHAR(20))`);
  });

  after(async () => {
    await server?.stop();
    await up?.query(`DROP DATABASE IF EXISTS \`${db}\``);
    await up?.end();
    if (env !== undefined) await services('down').catch(() => undefined);
    const logs = [...outputs, ...(server?.output ?? [])].join('\n');
    rmSync(dir, { recursive: true, force: true });
    assert.ok(!logs.includes(password), 'no output of the run holds the SASL password');
  });

  it('a changefeed delivers every row over TLS + SCRAM-SHA-512 (certificate verified against the CA)', async () => {
    server = await CdcServerProcess.start({ pd: etcdEndpoint(), clusterId, extraArgs: ['--upstream', mysqlUri('upstream')] });
    await server.waitHealthy();
    const config = join(dir, 'feed.toml');
    writeFileSync(config, `[filter]\nrules = ["${db}.*"]\n`);
    const topic = `tm-ktls-${randomBytes(4).toString('hex')}`;
    const created = await run(process.execPath, [CDC_BIN, 'changefeed', 'create', '--server', server.url, '--sink-uri', sinkUri(topic, `${tlsParams()}&${saslParams('scram-sha-512')}`), '-c', 'ktls', '--config', config]);
    const queried = await run(process.execPath, [CDC_BIN, 'changefeed', 'query', '--server', server.url, '-c', 'ktls']);
    outputs.push(created.stdout, created.stderr, queried.stdout, queried.stderr);
    assert.match(queried.stdout, /sasl-password=xxxxx&/, 'the password is redacted in query');
    for (let i = 1; i <= 200; i++) await up.query(`INSERT INTO \`${db}\`.t VALUES (?, ?)`, [i, `v${i}`]);
    await up.query(`UPDATE \`${db}\`.t SET v = 'changed' WHERE id <= 10`);

    const kafka = consumerKafka({ mechanism: 'scram-sha-512', username: user, password });
    const admin = kafka.admin();
    await admin.connect();
    try {
      await waitFor(async () => (await admin.listTopics()).includes(topic), { timeoutMs: 60_000, intervalMs: 500, what: `the changefeed to create ${topic}` });
    } finally {
      await admin.disconnect();
    }
    const consumer = kafka.consumer({ groupId: `g-${topic}` });
    const rows = new Map<string, string>();
    await consumer.connect();
    try {
      await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({
        eachMessage: ({ message }) => {
          const m = JSON.parse(message.value?.toString() ?? 'null') as { type?: string; data?: { id: string; v: string }[] } | null;
          if (m?.type === 'INSERT' || m?.type === 'UPDATE') for (const r of m.data ?? []) rows.set(r.id, r.v);
          return Promise.resolve();
        },
      });
      await waitFor(() => rows.size === 200 && rows.get('10') === 'changed', { timeoutMs: 120_000, intervalMs: 500, what: `200 rows (10 updated) in ${topic}, got ${rows.size}` });
    } finally {
      await consumer.disconnect();
    }
    const [upRows] = await up.query<mysql.RowDataPacket[]>(`SELECT id, v FROM \`${db}\`.t`);
    assert.deepEqual(new Map(upRows.map((r) => [String(r['id']), String(r['v'])])), rows, 'the topic rebuilds the upstream table');
  });

  it('PLAIN and SCRAM-SHA-256 connect too', async () => {
    for (const mechanism of ['plain', 'scram-sha-256']) await openAndWrite(sinkUri(`tm-ktls-${mechanism}`, `${tlsParams()}&${saslParams(mechanism)}`));
  });

  it('a wrong password, a CA that did not sign the broker, no or a foreign client certificate, and plaintext to the TLS port each fail saying which', async () => {
    const wrong = `Wr${randomBytes(6).toString('hex')}`;
    await assert.rejects(openAndWrite(sinkUri('tm-ktls-bad', `${tlsParams()}&${saslParams('scram-sha-512', wrong)}`)), (e: Error) => {
      outputs.push(e.message);
      return (e as Error & { code?: string }).code === 'ErrKafkaAuthFailed' && /refused the SASL login .*check sasl-user, sasl-password and sasl-mechanism/.test(e.message) && !e.message.includes(wrong);
    });
    const otherCa = makeCerts(join(dir, 'other-ca'));
    await assert.rejects(openAndWrite(sinkUri('tm-ktls-bad', `${tlsParams(otherCa.ca)}&${saslParams('scram-sha-512')}`)), (e: Error) => {
      outputs.push(e.message);
      return (e as Error & { code?: string }).code === 'ErrKafkaTLSError' && /TLS certificate of the broker at 127\.0\.0\.1:\d+ failed verification/.test(e.message);
    });
    // the broker requires a client certificate signed by its CA (ssl.client.auth=required): none, or one of another CA, is refused
    for (const cert of [null, certs.foreignClientCert]) {
      await assert.rejects(openAndWrite(sinkUri('tm-ktls-bad', `${tlsParams(certs.ca, cert)}&${saslParams('scram-sha-512')}`)), (e: Error) => {
        outputs.push(e.message);
        return (e as Error & { code?: string }).code === 'ErrKafkaTLSError' && /client certificate/.test(e.message) && e.message.includes(`127.0.0.1:${port}`);
      });
    }
    await assert.rejects(openAndWrite(sinkUri('tm-ktls-bad', saslParams('scram-sha-512'))), (e: Error) => {
      outputs.push(e.message);
      const hint = (e as Error & { hint?: string }).hint ?? '';
      return (e as Error & { code?: string }).code === 'ErrKafkaUnreachable' && e.message.includes(`127.0.0.1:${port}`) && /enable-tls matches its listener/.test(hint);
    });
  });
});
