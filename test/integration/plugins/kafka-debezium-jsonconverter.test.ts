import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { factory, parseConfig } from '../../../plugins/sink-kafka/src/index.js';
import type { ColumnInfo, ColumnValue, RowChangedEvent, Sink, SinkContext } from '../../../src/core/sink/api.js';
import { readTopicRecords, type TopicRecord } from '../../helpers/kafka-reference-decoders.js';
import { requireService, serviceAddress, uniqueName } from '../../helpers/services.js';
import { jsonConverter } from '../../helpers/kafka-connect-json.js';

/**
 * Kafka Connect's own JsonConverter (org.apache.kafka:connect-json from Maven Central, at the Kafka version of
 * scripts/kafka/pom.xml, resolved by scripts/kafka/connect-json.sh) decodes every record Tidemark's debezium
 * protocol writes for a type matrix (every column type; insert, update, delete and its tombstone; an ALTER in
 * the schema-change topic), as a Connect sink with schemas.enable=true would: each key and value against its
 * schema, required fields present, bytes valid base64, structs valid.
 */
before(async () => {
  await requireService('kafka');
});

const matrix: [string, string, ColumnValue, ColumnValue][] = [
  ['ti', 'tinyint', -128, 127],
  ['tiu', 'tinyint unsigned', 255, 0],
  ['si', 'smallint', -32768, 1],
  ['siu', 'smallint unsigned', 65535, 2],
  ['mi', 'mediumint', -8388608, 3],
  ['miu', 'mediumint unsigned', 16777215, 4],
  ['i', 'int', -2147483648, 5],
  ['iu', 'int unsigned', 4294967295, 6],
  ['bi', 'bigint', -9223372036854775808n, 7n],
  ['biu', 'bigint unsigned', 18446744073709551615n, 8n],
  ['f', 'float', 1.5, -0.25],
  ['d', 'double', 1e300, -2.5],
  ['dec', 'decimal(10,2)', '-12345678.90', '0.01'],
  ['dec65', 'decimal(65,30)', '99999999999999999999999999999999999.999999999999999999999999999999', '0.000000000000000000000000000001'],
  ['b1', 'bit(1)', Buffer.from([1]), Buffer.from([0])],
  ['b12', 'bit(12)', Buffer.from([0x0f, 0xff]), Buffer.from([0, 1])],
  ['dt', 'date', '2024-02-29', '1970-01-01'],
  ['dtm', 'datetime', '2024-02-29 23:59:59', '0000-00-00 00:00:00'],
  ['dtm6', 'datetime(6)', '2024-02-29 23:59:59.999999', '1000-01-01 00:00:00.000000'],
  ['tsp', 'timestamp(3)', '2024-02-29 23:59:59.123', '1970-01-01 00:00:01.000'],
  ['tm', 'time(6)', '-838:59:59.000000', '12:34:56.789012'],
  ['yr', 'year', 2155, 1901],
  ['ch', 'char(10)', 'abc', ''],
  ['vc', 'varchar(255)', 'héllo 😀', 'x'],
  ['bn', 'binary(4)', Buffer.from([0, 1, 2, 3]), Buffer.from([255, 255, 255, 255])],
  ['vb', 'varbinary(32)', Buffer.from([0x00, 0xff, 0x22]), Buffer.alloc(0)],
  ['tt', 'tinytext', 't', 'u'],
  ['tx', 'text', 'long text', ''],
  ['mt', 'mediumtext', 'm', 'n'],
  ['lt', 'longtext', 'l', 'o'],
  ['tb', 'tinyblob', Buffer.from('tb'), Buffer.from('')],
  ['bl', 'blob', Buffer.from([0, 1]), Buffer.from([2])],
  ['mb', 'mediumblob', Buffer.from('mb'), Buffer.from('x')],
  ['lb', 'longblob', Buffer.from('lb'), Buffer.from('y')],
  ['en', "enum('a','b','c d')", 'c d', 'a'],
  ['st', "set('x','y','z')", 'x,z', ''],
  ['js', 'json', '{"a": [1, 2.5, null]}', '[]'],
  ['geo', 'point', Buffer.from('000000000101000000000000000000f03f0000000000000040', 'hex'), Buffer.from('000000000101000000000000000000000000000000000000', 'hex')],
  ['uu', 'uuid', '123e4567-e89b-12d3-a456-426614174000', '00000000-0000-0000-0000-000000000000'],
  ['ip6', 'inet6', '2001:db8::ff00:42:8329', '::ffff:1.2.3.4'],
  ['ip4', 'inet4', '10.0.0.1', '255.255.255.255'],
];
const columns: ColumnInfo[] = [
  { name: 'id', mysqlType: 'int', primaryKey: true, nullable: false },
  ...matrix.map(([name, mysqlType]) => ({ name, mysqlType, primaryKey: false, nullable: true })),
];
const first: ColumnValue[] = [1, ...matrix.map((m) => m[2])];
const second: ColumnValue[] = [1, ...matrix.map((m) => m[3])];
const nulls: ColumnValue[] = [2, ...matrix.map(() => null)];

describe("Kafka Connect's JsonConverter reads every debezium record (data and schema-change topics)", () => {
  it('type matrix: insert, update, delete and tombstone, an ALTER: every key and value accepted against its schema', async () => {
    const broker = serviceAddress('kafka').addr;
    const topic = uniqueName('tm-k-jsonconv');
    const schemaTopic = `${topic}-schema`;
    const uri = new URL(`kafka://${broker}/${topic}?protocol=debezium&partition-num=1&schema-change-topic=${schemaTopic}`);
    const context: SinkContext = { signal: new AbortController().signal, changefeedId: 'tm-jsonconv', logger: { debug() {}, info() {}, warn() {}, error() {} } };
    const sink: Sink = await factory.create(uri, parseConfig(uri), context);
    try {
      const t = { schema: 'tm', table: 'matrix', tableId: 1 };
      const row = (commitTs: bigint, kind: RowChangedEvent['kind'], b: ColumnValue[] | null, a: ColumnValue[] | null): RowChangedEvent => ({ table: t, commitTs, commitTime: 1_700_000_000_123, seq: 0, kind, columns, before: b, after: a });
      await sink.writeRows(t, [row(10n, 'insert', null, first), row(10n, 'insert', null, nulls)]);
      await sink.writeRows(t, [row(11n, 'update', first, second), row(12n, 'delete', second, null), row(12n, 'delete', nulls, null)]);
      await sink.flush(12n);
      await sink.writeDDL({ commitTs: 13n, commitTime: 1_700_000_001_000, schema: 'tm', query: 'ALTER TABLE matrix ADD COLUMN extra INT', kind: 'alter-table', tables: [t] });
    } finally {
      await sink.close();
    }
    const data: TopicRecord[] = await readTopicRecords([broker], topic);
    const changes: TopicRecord[] = await readTopicRecords([broker], schemaTopic);
    const records = [...data.map((r) => ({ topic, key: r.key, value: r.value })), ...changes.map((r) => ({ topic: schemaTopic, key: r.key, value: r.value }))];
    const { status, lines } = jsonConverter(records);
    const envelope = 'ok tm-jsonconv.tm.matrix.Key tm-jsonconv.tm.matrix.Envelope before,after,source,transaction,op,ts_ms,ts_us,ts_ns';
    const tombstone = 'ok tm-jsonconv.tm.matrix.Key - -';
    assert.deepEqual(lines, [
      envelope, // insert
      envelope, // insert of NULLs
      envelope, // update
      envelope, // delete
      tombstone,
      envelope, // delete
      tombstone,
      'ok io.debezium.connector.mysql.SchemaChangeKey io.debezium.connector.mysql.SchemaChangeValue source,ts_ms,databaseName,schemaName,ddl,tableChanges',
    ]);
    assert.equal(status, 0);
    // text, not bytes: UUID, INET6, INET4 as MariaDB prints them
    const after = (JSON.parse(data[0].value!.toString()) as { payload: { after: Record<string, unknown> } }).payload.after;
    assert.deepEqual([after['uu'], after['ip6'], after['ip4']], ['123e4567-e89b-12d3-a456-426614174000', '2001:db8::ff00:42:8329', '10.0.0.1']);
  });

  it('the checker refuses a record that breaks its schema (the test can fail)', () => {
    const good = Buffer.from('{"schema":{"type":"struct","fields":[{"type":"int32","optional":false,"field":"a"}],"optional":false},"payload":{"a":1}}');
    const missing = Buffer.from('{"schema":{"type":"struct","fields":[{"type":"int32","optional":false,"field":"a"}],"optional":false},"payload":{}}');
    const { status, lines } = jsonConverter([
      { topic: 't', key: null, value: good },
      { topic: 't', key: null, value: missing },
    ]);
    assert.equal(status, 1);
    assert.equal(lines[0], 'ok - null a');
    assert.match(lines[1] ?? '', /^error DataException: .*required INT32/);
  });
});
