import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { Etcd3 } from 'etcd3';
import mysql from 'mysql2/promise';
import type { ColumnInfo } from '../../../src/core/sink/api.js';
import { decodeMessage } from '../../../plugins/sink-kafka/src/decoder.js';
import { readTopic } from '../../../plugins/sink-kafka/src/read-topic.js';
import { CDC_BIN, CdcServerProcess } from '../../helpers/cdc-process.js';
import { etcdEndpoint, mysqlUri, requireService, serviceAddress, uniqueName } from '../../helpers/services.js';
import { waitFor } from '../../helpers/wait-for.js';
import { upstreamEndTs } from '../../helpers/upstream.js';

const run = promisify(execFile);
const FIXTURE = new URL('../../fixtures/plugins/dispatcher-mod', import.meta.url).pathname;
const COLUMNS: ColumnInfo[] = [
  { name: 'id', mysqlType: 'int', primaryKey: true, nullable: false },
  { name: 'v', mysqlType: 'int', primaryKey: false, nullable: false },
];

/**
 * Kafka partition dispatchers are plugins too (DESIGN §6): a third-party package outside plugins/, linked with
 * `cdc plugins link`, declares `"tidemark": {"dispatchers": {"key-mod": …}}`; a `[[sink.dispatchers]]` rule names
 * it and every row lands in the partition it chose, on the real broker. An unknown name is refused by
 * `changefeed create` with a message listing the installed dispatchers.
 */
describe('a partition dispatcher shipped by a third-party plugin (real cdc server, upstream, Kafka)', () => {
  const home = mkdtempSync(join(tmpdir(), 'tidemark-dispatcher-'));
  const env = { ...process.env, XDG_DATA_HOME: join(home, 'data'), XDG_CACHE_HOME: join(home, 'cache'), XDG_CONFIG_HOME: join(home, 'config') };
  const clusterId = uniqueName('dispatch').replaceAll('_', '-');
  const prefix = `/tidb/cdc/${clusterId}/default/changefeed/`;
  const db = uniqueName('dispatch');
  const broker = (): string => `${serviceAddress('kafka').host}:${serviceAddress('kafka').port}`;
  let etcd: Etcd3;
  let upstream: mysql.Connection;
  let server: CdcServerProcess;

  const create = async (id: string, topic: string, partition: string): Promise<void> => {
    const config = join(home, `${id}.toml`);
    writeFileSync(config, `[filter]\nrules = ["${db}.*"]\n[sink]\n[[sink.dispatchers]]\nmatcher = ["${db}.*"]\npartition = "${partition}"\n`);
    await run(process.execPath, [CDC_BIN, 'changefeed', 'create', '--server', server.url, '--sink-uri', `kafka://${broker()}/${topic}?protocol=canal-json&partition-num=3`, '-c', id, '--config', config], { env });
  };
  const info = async (id: string): Promise<any> => JSON.parse((await etcd.get(`${prefix}info/${id}`).string()) ?? 'null');
  const checkpoint = async (id: string): Promise<bigint> => BigInt(JSON.parse((await etcd.get(`${prefix}status/${id}`).string()) ?? '{"checkpoint-ts":"0"}')['checkpoint-ts'] as string);

  before(async () => {
    await requireService('etcd');
    await requireService('upstream');
    await requireService('kafka');
    etcd = new Etcd3({ hosts: etcdEndpoint() });
    upstream = await mysql.createConnection({ uri: mysqlUri('upstream') });
    await run(process.execPath, [CDC_BIN, 'plugins', 'link', '--no-install', FIXTURE], { env });
    server = await CdcServerProcess.start({ pd: etcdEndpoint(), clusterId, extraArgs: ['--upstream', mysqlUri('upstream')], env });
    await server.waitHealthy();
  });
  after(async () => {
    await server?.stop();
    await upstream.query(`DROP DATABASE IF EXISTS \`${db}\``);
    await upstream.end();
    await etcd.delete().prefix(`/tidb/cdc/${clusterId}/`);
    etcd.close();
  });

  it('an unknown dispatcher name is refused at create naming the installed ones; rows go to the partition the plugin chose', async () => {
    const topic = uniqueName('kfk-dispatch').replaceAll('_', '-');
    // an unknown dispatcher is refused at create, naming the installed ones (the plugin's among them)
    await assert.rejects(create('bad', `${topic}-bad`, 'nope'), (e: { stderr: string }) =>
      /ErrConfigInvalid: invalid \[sink\] config of the changefeed for kafka:\/\/: invalid partition "nope" in sink\.dispatchers\[0\]: one of default, index-value, ts, table, columns, key-mod/.test(e.stderr),
    );
    assert.equal(await info('bad'), null, 'no changefeed was written');
    await create('good', topic, 'key-mod');
    await upstream.query(`CREATE DATABASE \`${db}\``);
    await upstream.query(`CREATE TABLE \`${db}\`.t (id INT PRIMARY KEY, v INT NOT NULL)`);
    await upstream.query(`INSERT INTO \`${db}\`.t VALUES ${Array.from({ length: 30 }, (_, i) => `(${i}, ${i})`).join(', ')}`);
    await upstream.query(`UPDATE \`${db}\`.t SET v = v + 1 WHERE id % 4 = 0`);
    const end = await upstreamEndTs(upstream);
    await waitFor(async () => (await checkpoint('good')) >= end, { timeoutMs: 60_000, what: 'the checkpoint of the good changefeed' });

    const messages = await readTopic([broker()], topic, 30_000);
    let rows = 0;
    for (const m of messages) {
      for (const e of decodeMessage('canal-json', m.key, m.value, () => COLUMNS)) {
        if (e.kind !== 'row') continue;
        const id = Number((e.after ?? e.before)!['id']);
        assert.equal(m.partition, id % 3, `row id ${id} in partition ${m.partition}, key-mod said ${id % 3}`);
        rows++;
      }
    }
    assert.equal(rows, 30 + 8, 'every insert and update arrived');

  });
});
