import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import {
  createPartitionDispatcher,
  decodeMessage,
  factory,
  KafkaSink,
  openProducer,
  parseConfig,
  readTopic,
  supportedCompressions,
  type DecodedEvent,
  type Protocol,
} from '../../../plugins/sink-kafka/src/index.js';
import type { ColumnInfo, RowChangedEvent, Sink, SinkContext, TableName } from '../../../src/core/sink/api.js';
import { leakCheck } from '../../helpers/leak-check.js';
import { requireService, serviceAddress, uniqueName } from '../../helpers/services.js';
import { TcpProxy } from '../../helpers/tcp-proxy.js';

const noop = { debug() {}, info() {}, warn() {}, error() {} };
const context = (sinkConfig?: Record<string, unknown>): SinkContext => ({ signal: new AbortController().signal, changefeedId: 'kafka-test', logger: noop, ...(sinkConfig === undefined ? {} : { sinkConfig }) });
const columns: ColumnInfo[] = [
  { name: 'id', mysqlType: 'bigint', primaryKey: true, nullable: false },
  { name: 'version', mysqlType: 'int', primaryKey: false, nullable: false },
  { name: 'note', mysqlType: 'varchar(8000)', primaryKey: false, nullable: true },
];
const change = (t: TableName, commitTs: bigint, id: number, version: number, note: string | null = null): RowChangedEvent => ({
  table: t,
  commitTs,
  commitTime: 1_700_000_000_000,
  seq: 0,
  kind: version === 0 ? 'insert' : 'update',
  columns,
  before: version === 0 ? null : [BigInt(id), version - 1, null],
  after: [BigInt(id), version, note],
});

describe('kafka sink on the real broker', () => {
  const leaks = leakCheck();
  const sinks: Sink[] = [];
  const topics: string[] = [];
  let broker: string;

  const uri = (topic: string, params: string): URL => {
    topics.push(topic);
    return new URL(`kafka://${broker}/${topic}?${params}`);
  };
  const open = async (u: URL, sinkConfig?: Record<string, unknown>): Promise<Sink> => {
    const sink = await factory.create(u, factory.parseConfig(u), context(sinkConfig));
    sinks.push(sink);
    return sink;
  };
  const decodeAll = async (protocol: Protocol, topic: string): Promise<{ partition: number; event: DecodedEvent }[]> =>
    (await readTopic([broker], topic)).flatMap((m) => decodeMessage(protocol, m.key, m.value).map((event) => ({ partition: m.partition, event })));

  before(async () => {
    broker = (await requireService('kafka')).addr;
  });
  after(async () => {
    for (const s of sinks) await s.close();
    const kafka = new Kafka({ clientId: 'tidemark-test-cleanup', brokers: [broker], logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    const existing = new Set(await admin.listTopics());
    await admin.deleteTopics({ topics: topics.filter((t) => existing.has(t)) }).catch(() => undefined);
    await admin.disconnect();
    await leaks.check();
  });

  it('refuses bad URIs with messages naming the key, the value and what is allowed', () => {
    const bad = (query: string, message: string | RegExp): void => {
      assert.throws(() => parseConfig(new URL(`kafka://127.0.0.1:9092/t?${query}`)), { code: 'ErrSinkURIInvalid', message });
    };
    bad('protocol=avro', 'invalid protocol "avro" in kafka sink URI: one of canal-json, open-protocol, debezium, maxwell');
    bad('protocol=canal-json&partiton-num=3', /^unknown parameter "partiton-num" in kafka sink URI; allowed: protocol, partition-num, replication-factor, max-message-bytes, compression, required-acks, /);
    bad('partition-num=0', 'invalid partition-num "0" in kafka sink URI: an integer from 1 to 10000');
    bad('max-message-bytes=10MB', 'invalid max-message-bytes "10MB" in kafka sink URI: an integer from 1024 to 1073741824');
    bad('required-acks=0', /^invalid required-acks "0" in kafka sink URI: -1 \(all in-sync replicas, the default\) or 1/);
    bad('compression=brotli', `invalid compression "brotli" in kafka sink URI: one of ${supportedCompressions('platformatic').join(', ')} (what the platformatic client supports here)`);
    bad('client=kafkajs&compression=snappy', 'invalid compression "snappy" in kafka sink URI: one of none, gzip (what the kafkajs client supports here)');
    bad('client=librdkafka', 'invalid client "librdkafka" in kafka sink URI: one of platformatic, kafkajs');
    bad('auto-create-topic=yes', 'invalid auto-create-topic "yes" in kafka sink URI: true or false');
    bad('kafka-version=latest', 'invalid kafka-version "latest" in kafka sink URI: a version such as 2.4.0 or 3.9.1');
    bad('sasl-user=u', 'kafka sink URI: sasl-user and sasl-password go together; got only sasl-user');
    bad('sasl-mechanism=gssapi&sasl-user=u&sasl-password=p', 'invalid sasl-mechanism "gssapi" in kafka sink URI: one of plain, scram-sha-256, scram-sha-512');
    bad('ca=/tmp/ca.pem&enable-tls=false', /need enable-tls=true/);
    assert.throws(() => parseConfig(new URL('kafka://127.0.0.1:9092/bad%20topic?protocol=maxwell')), { message: /^invalid topic "bad topic" in kafka sink URI path/ });
    assert.throws(() => parseConfig(new URL('kafka://127.0.0.1:0/t')), { message: /^invalid broker "127.0.0.1" in kafka sink URI|^invalid broker/ });
    const config = parseConfig(new URL('kafka://a,b%3A9093:9094/t?protocol=canal-json'));
    assert.deepEqual(config.brokers, [{ host: 'a', port: 9094 }, { host: 'b', port: 9093 }]);
    assert.equal(config.maxMessageBytes, 10 * 1024 * 1024);
    assert.equal(config.requiredAcks, -1);
    assert.equal(config.autoCreateTopic, true);
    assert.equal(config.client, 'platformatic');
    assert.ok(Object.isFrozen(config));
  });

  it('create refuses a missing protocol, unless [sink] protocol gives one', async () => {
    const u = uri(uniqueName('tm-k-proto'), '');
    await assert.rejects(factory.create(u, parseConfig(u), context()), { code: 'ErrSinkURIInvalid', message: /needs a protocol: add protocol=<canal-json\|open-protocol\|debezium\|maxwell>/ });
    const sink = await open(u, { protocol: 'maxwell' });
    assert.equal((sink as KafkaSink).protocol, 'maxwell');
  });

  it('keeps per-key order across partitions (index-value on 4 partitions): every message of a key in one partition, in commit order', async () => {
    const topic = uniqueName('tm-k-order');
    const sink = await open(uri(topic, 'protocol=canal-json&enable-tidb-extension=true&partition-num=4'), { dispatchers: [{ matcher: ['*.*'], partition: 'index-value' }] });
    const t = { schema: 'ord', table: 'items', tableId: 1 };
    let ts = 100n;
    for (let version = 0; version < 8; version++) {
      for (let batch = 0; batch < 4; batch++) {
        ts++;
        const rows = [];
        for (let id = batch * 25; id < batch * 25 + 25; id++) rows.push(change(t, ts, id, version));
        await sink.writeRows(t, rows);
      }
      await sink.flush(ts);
    }
    const messages = await decodeAll('canal-json', topic);
    const byKey = new Map<string, { partition: number; version: string; ts: bigint }[]>();
    for (const { partition, event } of messages) {
      if (event.kind !== 'row') continue;
      const id = event.after!['id']!;
      byKey.set(id, [...(byKey.get(id) ?? []), { partition, version: event.after!['version']!, ts: event.commitTs! }]);
    }
    assert.equal(byKey.size, 100);
    const dispatcher = createPartitionDispatcher('index-value');
    const used = new Set<number>();
    for (const [id, list] of byKey) {
      assert.deepEqual(list.map((m) => m.version), ['0', '1', '2', '3', '4', '5', '6', '7'], `key ${id}: every version once, in order`);
      const partitions = new Set(list.map((m) => m.partition));
      assert.equal(partitions.size, 1, `key ${id} in one partition`);
      const [p] = partitions;
      assert.equal(p, dispatcher.dispatch(change(t, 1n, Number(id), 1), 4), `key ${id} where index-value says`);
      used.add(p);
    }
    assert.equal(used.size, 4, 'keys spread over the 4 partitions');
  });

  it('watermarks reach every partition, never go backwards, follow the rows they cover, and come at most once a second', async () => {
    const topic = uniqueName('tm-k-wm');
    const u = uri(topic, 'protocol=canal-json&enable-tidb-extension=true&partition-num=3');
    const config = parseConfig(u);
    const t = { schema: 'wm', table: 'rows', tableId: 2 };
    const sink = new KafkaSink({ config, protocol: 'canal-json', rules: [{ matcher: ['*.*'], partition: 'index-value', topic: undefined, index: undefined, columns: undefined }], producer: await openProducer(config), context: context(), checkpointIntervalMs: 0 });
    sinks.push(sink);
    let ts = 1000n;
    for (let round = 0; round < 5; round++) {
      ts += 10n;
      await sink.writeRows(t, Array.from({ length: 30 }, (_, id) => change(t, ts, id, round)));
      await sink.flush(ts);
      await sink.writeCheckpoint(ts, [t]);
      await sink.writeCheckpoint(ts - 5n, [t]); // behind: not sent
    }
    const messages = await decodeAll('canal-json', topic);
    const perPartition = new Map<number, DecodedEvent[]>();
    for (const { partition, event } of messages) perPartition.set(partition, [...(perPartition.get(partition) ?? []), event]);
    assert.equal(perPartition.size, 3);
    for (const [p, events] of perPartition) {
      const marks = events.filter((e) => e.kind === 'watermark').map((e) => (e.kind === 'watermark' ? e.ts : 0n));
      assert.deepEqual(marks, [1010n, 1020n, 1030n, 1040n, 1050n], `partition ${p}: one watermark per checkpoint, increasing`);
      let mark = 0n;
      for (const e of events) {
        if (e.kind === 'watermark') mark = e.ts;
        else if (e.kind === 'row') assert.ok(e.commitTs! > mark, `partition ${p}: row at ${e.commitTs} after watermark ${mark}`);
      }
    }
    // the default interval: a second checkpoint within the same second is not sent
    const topic2 = uniqueName('tm-k-wm1s');
    const rated = await open(uri(topic2, 'protocol=open-protocol&partition-num=2'));
    await rated.writeRows(t, [change(t, 5n, 1, 0)]);
    await rated.writeCheckpoint(5n, [t]);
    await rated.writeCheckpoint(6n, [t]);
    const resolved = (await decodeAll('open-protocol', topic2)).filter((m) => m.event.kind === 'watermark');
    assert.deepEqual(resolved.map((m) => [m.partition, m.event.kind === 'watermark' ? m.event.ts : 0n]).sort(), [[0, 5n], [1, 5n]]);
  });

  it('topic expressions create and use the right topics; DDL and watermarks go to every partition of each topic used', async () => {
    const prefix = uniqueName('tmx').replaceAll('_', '-');
    const defaultTopic = `${prefix}-default`;
    const fixed = `${prefix}-fixed`;
    const sink = await open(uri(defaultTopic, 'protocol=open-protocol&partition-num=2'), {
      dispatchers: [
        { matcher: ['db1.*'], topic: `${prefix}_{schema}_{table}` },
        { matcher: ['db2.*'], topic: fixed, partition: 'ts' },
      ],
    });
    const a = { schema: 'db1', table: 'a', tableId: 1 };
    const b = { schema: 'db1', table: 'b', tableId: 2 };
    const c = { schema: 'db2', table: 'c', tableId: 3 };
    const d = { schema: 'db3', table: 'd', tableId: 4 };
    topics.push(`${prefix}_db1_a`, `${prefix}_db1_b`, fixed);
    for (const [i, t] of [a, b, c, d].entries()) await sink.writeRows(t, [change(t, BigInt(10 + i), i, 0)]);
    await sink.flush(20n);
    await sink.writeDDL({ commitTs: 21n, commitTime: 0, schema: 'db1', query: 'ALTER TABLE a ADD COLUMN x INT', kind: 'alter-table', tables: [a] });
    await sink.writeCheckpoint(22n, [a, b, c, d]);
    const expectTopic = async (topic: string, table: TableName): Promise<void> => {
      const events = await decodeAll('open-protocol', topic);
      const rows = events.filter((e) => e.event.kind === 'row');
      assert.deepEqual(rows.map((e) => (e.event.kind === 'row' ? `${e.event.schema}.${e.event.table}` : '')), [`${table.schema}.${table.table}`], `${topic} holds the rows of ${table.schema}.${table.table} only`);
      const marks = events.filter((e) => e.event.kind === 'watermark').map((e) => e.partition).sort();
      assert.deepEqual(marks, [0, 1], `${topic}: a resolved event on each partition`);
    };
    await expectTopic(`${prefix}_db1_a`, a);
    await expectTopic(`${prefix}_db1_b`, b);
    await expectTopic(fixed, c);
    await expectTopic(defaultTopic, d);
    const ddl = (await decodeAll('open-protocol', `${prefix}_db1_a`)).filter((e) => e.event.kind === 'ddl');
    assert.deepEqual(ddl.map((e) => e.partition).sort(), [0, 1], 'open-protocol DDL on every partition of its table topic');
    const kafka = new Kafka({ clientId: 'tidemark-test', brokers: [broker], logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    const meta = await admin.fetchTopicMetadata({ topics: [`${prefix}_db1_a`, fixed] });
    await admin.disconnect();
    assert.deepEqual(meta.topics.map((t) => t.partitions.length), [2, 2], 'created with partition-num');
  });

  it('auto-create-topic=false: a missing topic is a non-retryable error naming it', async () => {
    const topic = uniqueName('tm-k-missing');
    const sink = await open(uri(topic, 'protocol=maxwell&auto-create-topic=false'));
    const t = { schema: 's', table: 't', tableId: 1 };
    await assert.rejects(sink.writeRows(t, [change(t, 1n, 1, 0)]), { code: 'ErrKafkaTopicInvalid', retryable: false, message: `topic "${topic}" does not exist on ${broker} and auto-create-topic=false` });
  });

  it('canal-json DDL goes to partition 0 only', async () => {
    const topic = uniqueName('tm-k-ddl');
    const sink = await open(uri(topic, 'protocol=canal-json&partition-num=3'));
    await sink.writeDDL({ commitTs: 5n, commitTime: 0, schema: 's', query: 'CREATE TABLE s.t (id INT PRIMARY KEY)', kind: 'create-table', tables: [{ schema: 's', table: 't', tableId: 1 }] });
    const events = await decodeAll('canal-json', topic);
    assert.deepEqual(events.map((e) => [e.partition, e.event.kind]), [[0, 'ddl']]);
  });

  it('a row over max-message-bytes is refused naming table, key and size; nothing is sent for it', async () => {
    const topic = uniqueName('tm-k-big');
    const sink = await open(uri(topic, 'protocol=canal-json&max-message-bytes=2048'));
    const t = { schema: 'big', table: 'docs', tableId: 1 };
    await sink.writeRows(t, [change(t, 10n, 1, 0, 'small')]);
    await assert.rejects(sink.writeRows(t, [change(t, 11n, 42, 0, 'x'.repeat(4000))]), (error: Error & { code?: string; retryable?: boolean }) => {
      assert.equal(error.code, 'ErrKafkaMessageTooLarge');
      assert.equal(error.retryable, false);
      assert.match(error.message, /^row insert of big\.docs with key id=42 at commit ts 11 is \d{4} bytes as canal-json, over max-message-bytes=2048$/);
      return true;
    });
    await sink.flush(11n);
    const events = await decodeAll('canal-json', topic);
    assert.deepEqual(events.map((e) => (e.event.kind === 'row' ? e.event.after!['id'] : e.event.kind)), ['1'], 'only the small row reached Kafka');
  });

  for (const client of ['platformatic', 'kafkajs'] as const) {
    it(`an existing topic's smaller max.message.bytes lowers the limit (${client}): the row is refused naming the topic's limit`, async () => {
      const topic = uniqueName('tm-k-small');
      topics.push(topic);
      const kafka = new Kafka({ clientId: 'tidemark-test', brokers: [broker], logLevel: logLevel.NOTHING });
      const admin = kafka.admin();
      await admin.connect();
      await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 1, configEntries: [{ name: 'max.message.bytes', value: '4096' }] }], waitForLeaders: true });
      await admin.disconnect();
      const sink = await open(new URL(`kafka://${broker}/${topic}?protocol=maxwell&client=${client}`));
      const t = { schema: 'small', table: 'notes', tableId: 1 };
      await sink.writeRows(t, [change(t, 1n, 1, 0, 'fits')]);
      await assert.rejects(sink.writeRows(t, [change(t, 2n, 7, 0, 'y'.repeat(5000))]), {
        code: 'ErrKafkaMessageTooLarge',
        message: new RegExp(`^row insert of small\\.notes with key id=7 at commit ts 2 is \\d+ bytes as maxwell, over max\\.message\\.bytes=4096 of topic "${topic}"$`),
      });
      await sink.flush(2n);
      const events = await decodeAll('maxwell', topic);
      assert.deepEqual(events.map((e) => (e.event.kind === 'row' ? e.event.after!['id'] : e.event.kind)), ['1']);
    });

    it(`broker unreachable (${client}): a typed, retryable error naming the broker`, async () => {
      const proxy = await TcpProxy.start(serviceAddress('kafka').host, serviceAddress('kafka').port);
      proxy.cut();
      try {
        const u = new URL(`kafka://127.0.0.1:${proxy.port}/${uniqueName('tm-k-down')}?protocol=canal-json&client=${client}&dial-timeout=500ms`);
        const check = (error: Error & { code?: string; retryable?: boolean }): boolean => {
          assert.equal(error.code, 'ErrKafkaUnreachable');
          assert.equal(error.retryable, true);
          assert.ok(error.message.includes(`127.0.0.1:${proxy.port}`), error.message);
          return true;
        };
        let sink: Sink | undefined;
        try {
          sink = await factory.create(u, parseConfig(u), context());
        } catch (error) {
          check(error as Error);
          return;
        }
        sinks.push(sink);
        const t = { schema: 's', table: 't', tableId: 1 };
        await assert.rejects(sink.writeRows(t, [change(t, 1n, 1, 0)]), check);
      } finally {
        await proxy.close();
      }
    });
  }
});
