import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import { createPartitionDispatcher, decodeMessage, factory, KafkaSink, openProducer, parseConfig, supportedCompressions, type Protocol } from '../../../plugins/sink-kafka/src/index.js';
import type { ColumnInfo, ColumnValue, RowChangedEvent, Sink, SinkContext, TableName } from '../../../src/core/sink/api.js';
import { canonical } from '../../../src/core/sink/testkit.js';
import {
  decodeReference,
  FormatNotes,
  jsonTreeText,
  KNOWN_TIDEMARK_DEPARTURES,
  parseJsonKeepingNumbers,
  readTopicRecords,
  type ReferenceEvent,
  type ReferenceRow,
} from '../../helpers/kafka-reference-decoders.js';
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

/** A table of awkward values for the reference decoders: exact numbers, bytes, fractions, negative times, members. */
const awkwardColumns: ColumnInfo[] = [
  { name: 'id', mysqlType: 'bigint', primaryKey: true, nullable: false },
  ...(
    [
      ['u', 'bigint unsigned'],
      ['dec', 'decimal(65,30)'],
      ['d2', 'decimal(10,2)'],
      ['f', 'float'],
      ['db', 'double'],
      ['bin', 'varbinary(32)'],
      ['bl', 'blob'],
      ['dt', 'datetime(6)'],
      ['dt0', 'datetime'],
      ['ts', 'timestamp(6)'],
      ['tm', 'time(6)'],
      ['y', 'year'],
      ['txt', 'text'],
      ['vc', 'varchar(64)'],
      ['e', "enum('a','b😀')"],
      ['s', "set('x','y','z')"],
      ['bits', 'bit(12)'],
      ['b1', 'bit(1)'],
      ['n', 'int'],
    ] as const
  ).map(([name, mysqlType]) => ({ name, mysqlType, primaryKey: false, nullable: true })),
];
// values as the puller gives them (the type matrix's golden forms)
const awkward: ColumnValue[] = [
  1n,
  18446744073709551615n,
  '-99999999999999999999999999999999999.999999999999999999999999999999',
  '-0.50',
  Math.fround(3.14159),
  1e-300,
  Buffer.from('00ff225c0a807f3c26c3a9e282', 'hex'), // NUL, 0xff, quote, backslash, newline, 0x80, DEL, <, &, é, a cut-off UTF-8 sequence
  Buffer.from([0, 1, 2, 0xfe, 0xff]),
  '2024-02-29 23:59:59.999999',
  '1969-12-31 23:59:59',
  '2038-01-19 03:14:07.999999',
  '-838:59:58.999999',
  2155,
  'Grüße 🚀 "q" \\ \n end',
  'tab\there "quoted" 😀',
  'b😀',
  'x,z',
  2730n,
  1n,
  null,
];
const awkwardUpdated: ColumnValue[] = awkward.map((v, i) => {
  const name = awkwardColumns[i].name;
  if (name === 'u') return 0n;
  if (name === 'dec') return '0.000000000000000000000000000001';
  if (name === 'bin') return Buffer.alloc(0);
  if (name === 'vc') return null;
  if (name === 'n') return 7;
  return v;
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
  /** Every message of the topic, read with a plain client and decoded by the reference decoder (written from the format's documentation); the plugin's decoder must agree. */
  const decodeAll = async (protocol: Protocol, topic: string): Promise<{ partition: number; event: ReferenceEvent }[]> => {
    const out: { partition: number; event: ReferenceEvent }[] = [];
    for (const m of await readTopicRecords([broker], topic)) {
      const events = decodeReference(protocol, m.key, m.value);
      assert.deepEqual(decodeMessage(protocol, m.key, m.value), events, `${protocol}: ${topic} partition ${m.partition} offset ${m.offset}: the plugin's decoder agrees with the reference decoder`);
      for (const event of events) out.push({ partition: m.partition, event });
    }
    return out;
  };

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
    bad('protocol=debezium&tombstones-on-delete=yes', 'invalid tombstones-on-delete "yes" in kafka sink URI: true or false');
    bad('protocol=debezium&include-schema-changes=1', 'invalid include-schema-changes "1" in kafka sink URI: true or false');
    bad('protocol=debezium&schema-change-topic=a%2Fb', 'invalid schema-change-topic "a/b" in kafka sink URI: a topic name: 1 to 249 of A-Z a-z 0-9 . _ -');
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

  it('one call of 3,000 Debezium rows of about 5 KiB (15 MiB), cut into several requests within the call: every row arrives once, in commit order per key', async () => {
    const topic = uniqueName('tm-big-call');
    const sink = await open(uri(topic, 'protocol=debezium&partition-num=3'), { dispatchers: [{ matcher: ['*.*'], partition: 'index-value' }] });
    const t = { schema: 'big', table: 'docs', tableId: 1 };
    const note = 'n'.repeat(4000);
    const rows = Array.from({ length: 3000 }, (_, i) => change(t, 1000n + BigInt(i), i % 1000, Math.floor(i / 1000), note));
    await sink.writeRows(t, rows);
    await sink.flush(rows.at(-1)!.commitTs);
    const versions = new Map<string, string[]>();
    let count = 0;
    for (const { event } of await decodeAll('debezium', topic)) {
      if (event.kind !== 'row') continue;
      count++;
      const id = event.after!['id']!;
      versions.set(id, [...(versions.get(id) ?? []), event.after!['version']!]);
    }
    assert.equal(count, 3000);
    assert.equal(versions.size, 1000);
    for (const [id, list] of versions) assert.deepEqual(list, ['0', '1', '2'], `key ${id}: every version once, in order`);
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
    const perPartition = new Map<number, ReferenceEvent[]>();
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

  it('producer-thread=worker: the client runs on a thread of its own; per-key order over partitions and topics, tombstones, typed errors from the thread, closed after close', async () => {
    const prefix = uniqueName('tm-k-thread').replaceAll('_', '-');
    const other = `${prefix}-other`;
    topics.push(other);
    const sink = await open(uri(prefix, 'protocol=debezium&partition-num=4&producer-thread=worker'), {
      dispatchers: [
        { matcher: ['thr.items'], partition: 'index-value' },
        { matcher: ['thr.more'], topic: other, partition: 'index-value' },
      ],
    });
    const items = { schema: 'thr', table: 'items', tableId: 1 };
    const more = { schema: 'thr', table: 'more', tableId: 2 };
    let ts = 100n;
    for (let version = 0; version < 6; version++) {
      ts++;
      const rows = [];
      for (let id = 0; id < 200; id++) rows.push(change(items, ts, id, version, version % 2 === 0 ? 'é'.repeat(id) : null));
      await sink.writeRows(items, rows);
      await sink.writeRows(more, [change(more, ts, 1, version)]);
      if (version % 2 === 1) await sink.flush(ts);
    }
    ts++;
    await sink.writeRows(items, [{ ...change(items, ts, 7, 6), kind: 'delete', before: [7n, 5, null], after: null }]);
    await sink.flush(ts);
    const records = await readTopicRecords([broker], prefix);
    const versions = new Map<string, { partition: number; versions: number[] }>();
    for (const m of records) {
      if (m.value === null) continue;
      const payload = (JSON.parse(m.value.toString()) as { payload: { after: { id: number; version: number } | null } }).payload;
      if (payload.after === null) continue;
      const entry = versions.get(String(payload.after.id)) ?? { partition: m.partition, versions: [] };
      assert.equal(m.partition, entry.partition, `key ${payload.after.id} in one partition`);
      entry.versions.push(payload.after.version);
      versions.set(String(payload.after.id), entry);
    }
    assert.equal(versions.size, 200);
    for (const [id, entry] of versions) assert.deepEqual(entry.versions, [0, 1, 2, 3, 4, 5], `key ${id}: every version once, in order`);
    assert.equal(new Set([...versions.values()].map((e) => e.partition)).size, 4, 'keys spread over the 4 partitions');
    const last = records.filter((m) => m.key !== null && JSON.parse(m.key.toString()).payload.id === 7).at(-1)!;
    assert.equal(last.value, null, 'the delete is followed by its tombstone (a null value crossed the thread)');
    const moreVersions = (await readTopicRecords([broker], other)).map((m) => (JSON.parse(m.value!.toString()) as { payload: { after: { version: number } } }).payload.after.version);
    assert.deepEqual(moreVersions, [0, 1, 2, 3, 4, 5], 'the second topic got its rows, in order');

    await sink.close();
    await assert.rejects(sink.writeRows(items, [change(items, ts + 1n, 1, 7)]), { code: 'ErrKafkaSinkClosed' });

    const missingCa = uri(uniqueName('tm-k-thread-ca'), 'protocol=canal-json&producer-thread=worker&ca=/nonexistent/ca.pem');
    await assert.rejects(factory.create(missingCa, parseConfig(missingCa), context()), { code: 'ErrSinkURIInvalid', retryable: false, message: /^cannot read the kafka sink's ca file "\/nonexistent\/ca.pem": ENOENT/ });
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

  for (const protocol of ['canal-json', 'open-protocol', 'debezium', 'maxwell'] as const) {
    it(`${protocol}: a reference decoder written from the format's documentation reads back the awkward values, the update's pre-image, the delete, the DDL${protocol === 'canal-json' || protocol === 'open-protocol' ? ' and the watermark' : ''}`, async () => {
      const topic = uniqueName(`tm-k-ref-${protocol}`);
      const schemaTopic = `${topic}-schema`;
      const extra = protocol === 'canal-json' ? '&enable-tidb-extension=true' : protocol === 'debezium' ? `&schema-change-topic=${schemaTopic}` : '';
      const sink = await open(uri(topic, `protocol=${protocol}&partition-num=1${extra}`));
      const t = { schema: 'awk', table: 'vals', tableId: 7 };
      const row = (commitTs: bigint, kind: RowChangedEvent['kind'], before: ColumnValue[] | null, after: ColumnValue[] | null): RowChangedEvent => ({ table: t, commitTs, commitTime: 1_700_000_000_000, seq: 0, kind, columns: awkwardColumns, before, after });
      const nulls: ColumnValue[] = [2n, ...awkwardColumns.slice(1).map(() => null)];
      await sink.writeRows(t, [row(10n, 'insert', null, awkward), row(10n, 'insert', null, nulls)]);
      await sink.writeRows(t, [row(11n, 'update', awkward, awkwardUpdated), row(11n, 'delete', nulls, null)]);
      await sink.flush(11n);
      const query = 'ALTER TABLE vals ADD COLUMN extra INT';
      await sink.writeDDL({ commitTs: 12n, commitTime: 1_700_000_001_000, schema: 'awk', query, kind: 'alter-table', tables: [t] });
      await sink.writeCheckpoint(13n, [t]);

      const notes = new FormatNotes();
      const columnTypes = (schema: string, table: string): readonly ColumnInfo[] | undefined => (schema === 'awk' && table === 'vals' ? awkwardColumns : undefined);
      const events: ReferenceEvent[] = [];
      const records = await readTopicRecords([broker], topic);
      for (const m of records) events.push(...decodeReference(protocol, m.key, m.value, { columnTypes, notes }));
      if (protocol === 'debezium') {
        // Debezium: DDL only in the schema-change topic, and a tombstone (the delete's key, no value) after the delete
        assert.deepEqual(records.map((m) => m.value === null), [false, false, false, false, true]);
        assert.deepEqual(records[4].key, records[3].key);
        for (const m of await readTopicRecords([broker], schemaTopic)) events.push(...decodeReference(protocol, m.key, m.value, { columnTypes, notes }));
      }
      const image = (values: ColumnValue[]): ReferenceRow => Object.fromEntries(awkwardColumns.map((c, i) => [c.name, canonical(values[i] ?? null)]));
      const rowEvent = (commitTs: bigint, type: 'insert' | 'update' | 'delete', before: ColumnValue[] | null, after: ColumnValue[] | null): ReferenceEvent => ({
        kind: 'row',
        schema: 'awk',
        table: 'vals',
        type,
        commitTs,
        before: before === null ? null : image(before),
        after: after === null ? null : image(after),
      });
      const expected: ReferenceEvent[] = [
        rowEvent(10n, 'insert', null, awkward),
        rowEvent(10n, 'insert', null, nulls),
        rowEvent(11n, 'update', awkward, awkwardUpdated),
        rowEvent(11n, 'delete', nulls, null),
        { kind: 'ddl', schema: 'awk', table: 'vals', query, commitTs: 12n },
      ];
      if (protocol === 'canal-json' || protocol === 'open-protocol') expected.push({ kind: 'watermark', ts: 13n });
      assert.deepEqual(events, expected);
      // spot checks in plain words, on top of the canonical images
      const inserted = events[0].kind === 'row' ? events[0].after! : {};
      assert.equal(inserted['u'], '18446744073709551615', 'BIGINT UNSIGNED max, every digit');
      assert.equal(inserted['dec'], '-99999999999999999999999999999999999.999999999999999999999999999999', 'DECIMAL(65,30), every digit');
      assert.equal(inserted['bin'], '0x00ff225c0a807f3c26c3a9e282', 'VARBINARY bytes, including invalid UTF-8');
      assert.equal(inserted['dt'], '2024-02-29 23:59:59.999999', 'DATETIME(6) with its fraction');
      assert.equal(inserted['n'], null, 'NULL');
      if (notes.codes.length > 0) console.log(`# ${protocol}: departures from the documented format:\n#   ${notes.describe().join('\n#   ')}`);
      assert.deepEqual(
        notes.codes.filter((code) => !KNOWN_TIDEMARK_DEPARTURES[protocol].includes(code)),
        [],
        `${protocol}: no unknown departure from the documented format`,
      );
    });
  }

  for (const protocol of ['debezium', 'maxwell'] as const) {
    it(`${protocol}: snapshot reads (first, row, last; a table's only row) then a change, read back from the broker as the format marks them`, async () => {
      const topic = uniqueName(`tm-k-snap-${protocol}`);
      const sink = await open(uri(topic, `protocol=${protocol}&partition-num=3`));
      const t = { schema: 'snap', table: 'items', tableId: 1 };
      const one = { schema: 'snap', table: 'one', tableId: 2 };
      const read = (table: TableName, id: number, snapshot: NonNullable<RowChangedEvent['snapshot']>, seq: number): RowChangedEvent => ({ ...change(table, 100n, id, 0, `row ${id}`), seq, snapshot });
      // the table's snapshot over two writeRows calls (as the processor hands pieces over), then a one-row table
      await sink.writeRows(t, [read(t, 1, 'first', 0), read(t, 2, 'row', 1)]);
      await sink.writeRows(t, [read(t, 3, 'row', 2), read(t, 4, 'last', 3)]);
      await sink.writeRows(one, [read(one, 1, 'only', 0)]);
      await sink.flush(100n);
      // then a change from the binlog
      await sink.writeRows(t, [change(t, 101n, 5, 0, 'new')]);
      await sink.flush(101n);

      const records = await readTopicRecords([broker], topic);
      const messages = records.map((m) => ({ partition: m.partition, json: JSON.parse(m.value!.toString()) as Record<string, unknown> & { payload?: Record<string, unknown> } }));
      const tableOf = (m: (typeof messages)[number]): string => String(protocol === 'debezium' ? (m.json.payload!['source'] as { table: string }).table : m.json['table']);
      const items = messages.filter((m) => tableOf(m) === 'items');
      const single = messages.filter((m) => tableOf(m) === 'one');
      // every message of a table in one partition, the table dispatcher's (the default)
      assert.deepEqual(new Set(items.map((m) => m.partition)), new Set([createPartitionDispatcher('table').dispatch(change(t, 1n, 1, 0), 3)]));
      assert.equal(new Set(single.map((m) => m.partition)).size, 1);
      if (protocol === 'debezium') {
        const shape = (m: (typeof messages)[number]): [unknown, unknown, unknown, unknown] => {
          const payload = m.json.payload!;
          return [payload['op'], (payload['source'] as { snapshot: string }).snapshot, payload['before'] === null, (payload['after'] as { id: number }).id];
        };
        assert.deepEqual(items.map(shape), [
          ['r', 'first_in_data_collection', true, 1],
          ['r', 'true', true, 2],
          ['r', 'true', true, 3],
          ['r', 'last_in_data_collection', true, 4],
          ['c', 'false', true, 5],
        ]);
        assert.deepEqual(single.map(shape), [['r', 'last_in_data_collection', true, 1]], "a table's only row is its last, as Debezium marks it");
      } else {
        const shape = (m: (typeof messages)[number]): [unknown, unknown] => [m.json['type'], (m.json['data'] as { id?: number }).id];
        assert.deepEqual(items.map(shape), [
          ['bootstrap-start', undefined],
          ['bootstrap-insert', 1],
          ['bootstrap-insert', 2],
          ['bootstrap-insert', 3],
          ['bootstrap-insert', 4],
          ['bootstrap-complete', undefined],
          ['insert', 5],
        ]);
        assert.deepEqual(single.map(shape), [['bootstrap-start', undefined], ['bootstrap-insert', 1], ['bootstrap-complete', undefined]]);
        for (const edge of [items[0], items[5]]) assert.deepEqual(edge.json, { database: 'snap', table: 'items', type: edge.json['type'], ts: 1_700_000_000, data: {} }, "Maxwell's shape: database, table, type, ts, data {}");
      }
      // both decoders read them back to the same events: snapshot inserts marked as the format says
      const decoded = (await decodeAll(protocol, topic)).map((e) => e.event);
      const summary = decoded.map((e) => (e.kind === 'row' ? `${e.table} ${e.type} ${e.after!['id']} ${e.snapshot ?? '-'}` : e.kind === 'bootstrap' ? `${e.table} ${e.phase}` : e.kind));
      const itemsSummary = summary.filter((x) => x.startsWith('items '));
      const oneSummary = summary.filter((x) => x.startsWith('one '));
      if (protocol === 'debezium') {
        assert.deepEqual(itemsSummary, ['items insert 1 first', 'items insert 2 row', 'items insert 3 row', 'items insert 4 last', 'items insert 5 -']);
        assert.deepEqual(oneSummary, ['one insert 1 last']);
      } else {
        assert.deepEqual(itemsSummary, ['items start', 'items insert 1 row', 'items insert 2 row', 'items insert 3 row', 'items insert 4 row', 'items complete', 'items insert 5 -']);
        assert.deepEqual(oneSummary, ['one start', 'one insert 1 row', 'one complete']);
      }
    });
  }

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

  for (const [client, params] of [
    ['platformatic', 'client=platformatic'],
    ['kafkajs', 'client=kafkajs'],
    ['platformatic in a worker thread', 'producer-thread=worker'],
  ] as const) {
    it(`an existing topic's smaller max.message.bytes lowers the limit (${client}): the row is refused naming the topic's limit; rows that fit go in batches under it`, async () => {
      const topic = uniqueName('tm-k-small');
      topics.push(topic);
      const kafka = new Kafka({ clientId: 'tidemark-test', brokers: [broker], logLevel: logLevel.NOTHING });
      const admin = kafka.admin();
      await admin.connect();
      await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 1, configEntries: [{ name: 'max.message.bytes', value: '4096' }] }], waitForLeaders: true });
      await admin.disconnect();
      const sink = await open(new URL(`kafka://${broker}/${topic}?protocol=maxwell&${params}`));
      const t = { schema: 'small', table: 'notes', tableId: 1 };
      await sink.writeRows(t, [change(t, 1n, 1, 0, 'fits')]);
      await assert.rejects(sink.writeRows(t, [change(t, 2n, 7, 0, 'y'.repeat(5000))]), {
        code: 'ErrKafkaMessageTooLarge',
        message: new RegExp(`^row insert of small\\.notes with key id=7 at commit ts 2 is \\d+ bytes as maxwell, over max\\.message\\.bytes=4096 of topic "${topic}"$`),
      });
      await sink.flush(2n);
      // ten rows of 1.5 KiB in one call: together over the topic's 4096 bytes, which bound a record batch too
      const fitting = Array.from({ length: 10 }, (_, i) => change(t, 3n + BigInt(i), 10 + i, 0, 'z'.repeat(1500)));
      await sink.writeRows(t, fitting);
      await sink.flush(12n);
      const events = await decodeAll('maxwell', topic);
      assert.deepEqual(
        events.map((e) => (e.event.kind === 'row' ? e.event.after!['id'] : e.event.kind)),
        ['1', ...fitting.map((_, i) => String(10 + i))],
      );
    });

    it(`broker unreachable (${client}): a typed, retryable error naming the broker`, async () => {
      const proxy = await TcpProxy.start(serviceAddress('kafka').host, serviceAddress('kafka').port);
      proxy.cut();
      try {
        const u = new URL(`kafka://127.0.0.1:${proxy.port}/${uniqueName('tm-k-down')}?protocol=canal-json&${params}&dial-timeout=500ms`);
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

/**
 * The reference Debezium decoder follows the real format, not Tidemark's encoder: it reads messages that the
 * real Debezium 3.5 MariaDB connector wrote (the peer samples: ../shared/peers/debezium/samples, from
 * sql/types-ddl.sql and sql/types-dml.sql there) to the values the SQL put in.
 */
describe('reference debezium decoder on real Debezium 3.5 messages (peer samples)', () => {
  // ../shared beside the checkout (as on the developers' machines and in CI)
  const dir = process.env['TIDEMARK_DEBEZIUM_SAMPLES'] ?? new URL('../../../../shared/peers/debezium/samples', import.meta.url).pathname;
  const skip = existsSync(join(dir, 'dbz_types.default.jsonl')) ? false : `no peer Debezium samples in ${dir}`;
  // the table's DDL (sql/types-ddl.sql): what a consumer knows besides the messages
  const ddl: [string, string][] = [
    ['id', 'int'],
    ['c_tinyint', 'tinyint'],
    ['c_tinyint_u', 'tinyint unsigned'],
    ['c_bool', 'tinyint(1)'],
    ['c_smallint', 'smallint'],
    ['c_smallint_u', 'smallint unsigned'],
    ['c_mediumint', 'mediumint'],
    ['c_mediumint_u', 'mediumint unsigned'],
    ['c_int', 'int'],
    ['c_int_u', 'int unsigned'],
    ['c_bigint', 'bigint'],
    ['c_bigint_u', 'bigint unsigned'],
    ['c_decimal', 'decimal(65,30)'],
    ['c_decimal_s', 'decimal(10,2)'],
    ['c_float', 'float'],
    ['c_double', 'double'],
    ['c_date', 'date'],
    ['c_time', 'time(6)'],
    ['c_datetime', 'datetime(6)'],
    ['c_datetime0', 'datetime'],
    ['c_timestamp', 'timestamp(6)'],
    ['c_year', 'year'],
    ['c_char', 'char(10)'],
    ['c_varchar', 'varchar(100)'],
    ['c_text', 'text'],
    ['c_binary', 'binary(4)'],
    ['c_varbinary', 'varbinary(16)'],
    ['c_blob', 'blob'],
    ['c_bit1', 'bit(1)'],
    ['c_bit', 'bit(64)'],
    ['c_enum', "enum('red','green','blue')"],
    ['c_set', "set('a','b','c')"],
    ['c_json', 'longtext'],
  ];
  const columnTypes = (schema: string, table: string): { name: string; mysqlType: string }[] | undefined => (schema === 'peerbench' && table === 'dbz_types' ? ddl.map(([name, mysqlType]) => ({ name, mysqlType })) : undefined);
  const row = (values: Record<string, string | null>): ReferenceRow => Object.fromEntries(ddl.map(([name]) => [name, name in values ? values[name] : null]));
  // the rows of sql/types-dml.sql, in the reference decoder's canonical text
  const minimum = row({
    id: '1', c_tinyint: '-128', c_tinyint_u: '0', c_bool: '0', c_smallint: '-32768', c_smallint_u: '0', c_mediumint: '-8388608', c_mediumint_u: '0', c_int: '-2147483648', c_int_u: '0',
    c_bigint: '-9223372036854775808', c_bigint_u: '0', c_decimal: '-99999999999999999999999999999999999.999999999999999999999999999999', c_decimal_s: '-99999999.99',
    c_float: String(Math.fround(-3.40282e38)), c_double: '-1.7976931348623157e+308', c_date: '1000-01-01', c_time: '-838:59:59.000000', c_datetime: '1000-01-01 00:00:00.000000',
    c_datetime0: '1000-01-01 00:00:00', c_timestamp: '1970-01-01 00:00:01.000000', c_year: '1901', c_char: '', c_varchar: '', c_text: '', c_binary: '0x00000000', c_varbinary: '0x', c_blob: '0x',
    c_bit1: '0', c_bit: '0', c_enum: 'red', c_set: '', c_json: '[]',
  });
  const maximum = row({
    id: '2', c_tinyint: '127', c_tinyint_u: '255', c_bool: '1', c_smallint: '32767', c_smallint_u: '65535', c_mediumint: '8388607', c_mediumint_u: '16777215', c_int: '2147483647', c_int_u: '4294967295',
    c_bigint: '9223372036854775807', c_bigint_u: '18446744073709551615', c_decimal: '99999999999999999999999999999999999.999999999999999999999999999999', c_decimal_s: '99999999.99',
    c_float: String(Math.fround(3.40282e38)), c_double: '1.7976931348623157e+308', c_date: '9999-12-31', c_time: '838:59:59.000000', c_datetime: '9999-12-31 23:59:59.999999',
    c_datetime0: '9999-12-31 23:59:59', c_timestamp: '2038-01-19 03:14:07.999999', c_year: '2155', c_char: 'zzzzzzzzzz', c_varchar: 'z'.repeat(100), c_text: 'long text '.repeat(50),
    c_binary: '0xffffffff', c_varbinary: `0x${'ff'.repeat(16)}`, c_blob: '0xdeadbeef00ff', c_bit1: '1', c_bit: '18446744073709551615', c_enum: 'blue', c_set: 'a,b,c', c_json: '{"max": true, "n": 1.5e300}',
  });
  const typical = row({
    id: '3', c_tinyint: '-5', c_tinyint_u: '5', c_bool: '1', c_smallint: '-300', c_smallint_u: '300', c_mediumint: '-70000', c_mediumint_u: '70000', c_int: '-123456789', c_int_u: '3000000000',
    c_bigint: '-1234567890123', c_bigint_u: '12345678901234567890', c_decimal: '12345.678901234567890123456789012345', c_decimal_s: '1234.56', c_float: String(Math.fround(3.14159)),
    c_double: '2.718281828459045', c_date: '2024-02-29', c_time: '13:45:56.123456', c_datetime: '2024-02-29 13:45:56.123456', c_datetime0: '2024-02-29 13:45:56', c_timestamp: '2024-02-29 13:45:56.654321',
    c_year: '2024', c_char: 'héllo', c_varchar: 'Grüße 🚀 emoji 😀', c_text: 'Text with 日本語 and 🎉 and "quotes" and \\backslash\\ and a\nnewline', c_binary: '0x01020304', c_varbinary: '0xcafebabe',
    c_blob: '0x00010203feff', c_bit1: '1', c_bit: '12297829382473034410', c_enum: 'green', c_set: 'a,c', c_json: '{"k": "v", "arr": [1, 2, {"x": null}], "emoji": "😀", "num": 12.5}',
  });
  const six = row({
    id: '6', c_int: '1', c_decimal: '0.000000000000000000000000000001', c_decimal_s: '0.01', c_float: '1.5', c_double: '0.1', c_date: '1969-12-31', c_time: '-00:00:00.000001',
    c_datetime: '1969-12-31 23:59:59.999999', c_timestamp: '1999-12-31 23:59:59.999999', c_year: '1999', c_varchar: 'six', c_bit: '2', c_json: '"a string"',
  });
  const seven = row({
    id: '7', c_int: '-1', c_decimal: '-0.500000000000000000000000000000', c_decimal_s: '-0.50', c_float: String(Math.fround(-1.5e-10)), c_double: '1e-300', c_date: '2000-02-29',
    c_time: '23:59:59.999999', c_datetime: '2000-02-29 12:00:00.500000', c_timestamp: '2020-06-15 08:30:00.000000', c_year: '2000', c_varchar: 'seven', c_bit: '255', c_json: '123',
  });

  for (const file of ['dbz_types.default.jsonl', 'dbz_types.decimal-string.jsonl']) {
    it(`${file}: every message decodes to the SQL's values; replaying them gives the table the statements leave`, { skip }, () => {
      const notes = new FormatNotes();
      const events: ReferenceEvent[] = [];
      let tombstones = 0;
      for (const line of readFileSync(join(dir, file), 'utf8').split('\n')) {
        if (line.trim() === '') continue;
        // one line per message: {"topic","partition","offset","timestamp","key","value"}, key and value the bytes Debezium wrote, as JSON
        const record = parseJsonKeepingNumbers(line);
        assert.ok(record !== null && typeof record === 'object' && !Array.isArray(record) && 'value' in record, `${file}: a message record`);
        const value = record['value'] === null ? null : Buffer.from(jsonTreeText(record['value']));
        const decoded = decodeReference('debezium', null, value, { columnTypes, notes });
        if (value === null) tombstones++;
        events.push(...decoded);
      }
      assert.equal(tombstones, 4, 'a tombstone after each delete');
      assert.deepEqual(
        events.map((e) => (e.kind === 'row' ? `${e.type} ${(e.after ?? e.before)!['id']}` : e.kind)),
        ['insert 1', 'insert 2', 'insert 3', 'insert 4', 'insert 5', 'insert 6', 'insert 7', 'insert 8', 'update 3', 'update 4', 'update 2', 'update 5', 'update 6', 'delete 7', 'insert 100', 'delete 1', 'delete 5', 'delete 8'],
      );
      const rows = events.filter((e) => e.kind === 'row');
      for (const e of rows) {
        assert.equal(`${e.schema}.${e.table}`, 'peerbench.dbz_types');
        assert.equal(e.commitTs, undefined, "Debezium's own source block has no commit_ts");
      }
      const insertOf = (id: string): ReferenceRow => rows.find((e) => e.type === 'insert' && e.after!['id'] === id)!.after!;
      assert.deepEqual(insertOf('1'), minimum, 'row 1: minimum values');
      assert.deepEqual(insertOf('2'), maximum, 'row 2: maximum values (BIGINT UNSIGNED max, DECIMAL(65,30), BIT(64) all ones)');
      assert.deepEqual(insertOf('3'), typical, 'row 3: typical values, utf8mb4');
      assert.deepEqual(insertOf('4'), row({ id: '4' }), 'row 4: NULL everywhere but the key');
      assert.deepEqual(insertOf('6'), six, 'row 6: just before the epoch, -1 µs TIME, tiny DECIMAL');
      assert.deepEqual(insertOf('7'), seven, 'row 7');
      const update2 = rows.find((e) => e.type === 'update' && e.after!['id'] === '2')!;
      assert.deepEqual(update2.before, maximum, 'the update of row 2 carries its whole pre-image');
      assert.deepEqual(update2.after, { ...maximum, c_char: 'nulled', c_bigint_u: null, c_datetime: null });
      // replay: the table the statements leave
      const state = new Map<string, ReferenceRow>();
      for (const e of rows) {
        if (e.before !== null) state.delete(e.before['id']!);
        if (e.after !== null) state.set(e.after['id']!, e.after);
      }
      assert.deepEqual([...state.keys()].sort((a, b) => Number(a) - Number(b)), ['2', '3', '4', '6', '100']);
      assert.deepEqual(state.get('3'), { ...typical, c_varchar: 'updated ✓', c_int: '-123456788', c_json: '{"k": "v2", "arr": [1, 2, {"x": null}], "emoji": "😀", "num": 12.5}', c_decimal: '24691.357802469135780246913578024690' });
      assert.deepEqual(state.get('4'), row({ id: '4', c_tinyint: '1', c_text: 'was null', c_enum: 'blue', c_set: 'b', c_blob: '0x0102', c_timestamp: '2001-09-09 01:46:40.000000' }));
      assert.deepEqual(state.get('6'), { ...six, c_year: '2001', c_float: '2.5' });
      assert.deepEqual(state.get('100'), { ...seven, id: '100' });
      assert.deepEqual(notes.codes, [], 'real Debezium messages need no tolerance');
    });
  }
});
