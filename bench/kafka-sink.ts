/**
 * The Kafka sink's throughput per protocol, narrow and wide rows, and the broker's own produce ceiling in the
 * same run: a plain @platformatic/kafka producer sending the same number of messages of the same total bytes
 * (batches of 1,000, 4 in flight, acks=all, as bench/kafka-producer). Rows are generated before the clock
 * starts; the sink gets transactions of 100 rows and a flush every 10,000 rows (resolved ts advancing), 3
 * partitions, the index-value dispatcher. Row counts are kept so a full run stays under a minute.
 * usage: node --import tsx bench/kafka-sink.ts [narrowRows=200000] [wideRows=40000] [protocols=canal-json,open-protocol,debezium,maxwell]
 */
import { Admin, Producer } from '@platformatic/kafka';
import { factory, type Protocol } from '../plugins/sink-kafka/src/index.js';
import type { ColumnInfo, ColumnValue, RowChangedEvent, TableName } from '../src/core/sink/api.js';

const broker = process.env['TIDEMARK_KAFKA_ADDR'] ?? '127.0.0.1:9092';
const [narrowArg = '200000', wideArg = '40000', protocolsArg = 'canal-json,open-protocol,debezium,maxwell'] = process.argv.slice(2);
const TXN_ROWS = 100;
const FLUSH_ROWS = 10_000;
const logger = { debug() {}, info() {}, warn() {}, error() {} };

function shape(name: 'narrow' | 'wide'): { table: TableName; columns: ColumnInfo[]; values: (i: number) => ColumnValue[] } {
  const table = { schema: 'bench', table: name, tableId: name === 'narrow' ? 1 : 2 };
  if (name === 'narrow') {
    const columns: ColumnInfo[] = [
      { name: 'id', mysqlType: 'bigint', primaryKey: true, nullable: false },
      { name: 'a', mysqlType: 'int', primaryKey: false, nullable: true },
      { name: 'b', mysqlType: 'bigint', primaryKey: false, nullable: true },
      { name: 'c', mysqlType: 'varchar(32)', primaryKey: false, nullable: true },
      { name: 'd', mysqlType: 'decimal(10,2)', primaryKey: false, nullable: true },
    ];
    return { table, columns, values: (i) => [BigInt(i), i % 1000, BigInt(i) * 7919n, `name-${i % 5000}`, `${i % 100000}.${String(i % 100).padStart(2, '0')}`] };
  }
  const columns: ColumnInfo[] = [{ name: 'id', mysqlType: 'bigint', primaryKey: true, nullable: false }];
  const kinds = ['int', 'bigint', 'varchar(64)', 'decimal(20,6)', 'datetime(6)', 'double'];
  for (let c = 1; c < 30; c++) columns.push({ name: `c${c}`, mysqlType: kinds[c % kinds.length], primaryKey: false, nullable: true });
  return {
    table,
    columns,
    values: (i) =>
      columns.map((col, c): ColumnValue => {
        if (c === 0) return BigInt(i);
        switch (col.mysqlType) {
          case 'int':
            return (i * c) % 100000;
          case 'bigint':
            return BigInt(i) * BigInt(c);
          case 'varchar(64)':
            return `value ${i} of column ${c}`;
          case 'decimal(20,6)':
            return `${i}.${String(c).padStart(6, '0')}`;
          case 'datetime(6)':
            return `2024-02-29 12:${String(c).padStart(2, '0')}:${String(i % 60).padStart(2, '0')}.${String(i % 1000000).padStart(6, '0')}`;
          default:
            return i / (c + 1);
        }
      }),
  };
}

interface SinkResult {
  rows: number;
  seconds: number;
  messages: number;
  bytes: number;
  cpuSeconds: number;
}

async function runSink(protocol: Protocol, name: 'narrow' | 'wide', rowCount: number): Promise<SinkResult> {
  const { table, columns, values } = shape(name);
  const txns: RowChangedEvent[][] = [];
  for (let start = 0; start < rowCount; start += TXN_ROWS) {
    const commitTs = BigInt(1000 + txns.length);
    const rows: RowChangedEvent[] = [];
    for (let i = start; i < Math.min(rowCount, start + TXN_ROWS); i++) {
      rows.push({ table, commitTs, commitTime: 1_700_000_000_000, seq: i - start, kind: 'insert', columns, before: null, after: values(i) });
    }
    txns.push(rows);
  }
  const topic = `bench-sink-${protocol}-${name}-${process.pid}-${Date.now().toString(36)}`;
  const uri = new URL(`kafka://${broker}/${topic}?protocol=${protocol}&partition-num=3${protocol === 'canal-json' ? '&enable-tidb-extension=true' : ''}`);
  const sink = await factory.create(uri, factory.parseConfig(uri), {
    signal: new AbortController().signal,
    changefeedId: 'bench',
    logger,
    sinkConfig: { dispatchers: [{ matcher: ['*.*'], partition: 'index-value' }] },
  });
  await sink.writeRows(table, txns[0].slice(0, 1)); // creates the topic, warms metadata and connections
  await sink.flush(0n);
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  let sinceFlush = 0;
  for (const rows of txns) {
    await sink.writeRows(table, rows);
    sinceFlush += rows.length;
    if (sinceFlush >= FLUSH_ROWS) {
      await sink.flush(rows[0].commitTs);
      sinceFlush = 0;
    }
  }
  await sink.flush(txns[txns.length - 1][0].commitTs);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const stats = sink.stats?.() as { messages: number; bytes: number };
  await sink.close();
  return { rows: rowCount, seconds, messages: stats.messages - 1, bytes: stats.bytes, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

/** The broker ceiling: a plain producer sending `messages` messages of `bytes` in total. */
async function runCeiling(messages: number, bytes: number): Promise<{ seconds: number }> {
  const topic = `bench-ceiling-${process.pid}-${Date.now().toString(36)}`;
  const admin = new Admin({ clientId: 'tidemark-bench', bootstrapBrokers: [broker] });
  await admin.createTopics({ topics: [topic], partitions: 3, replicas: 1, configs: [{ name: 'max.message.bytes', value: String(10 * 1024 * 1024) }] });
  await admin.close();
  const producer = new Producer({ clientId: 'tidemark-bench', bootstrapBrokers: [broker], acks: -1 }); // not idempotent: platformatic's idempotent producer rejects overlapping sends (OUT_OF_ORDER_SEQUENCE_NUMBER)
  const value = Buffer.alloc(Math.max(1, Math.round(bytes / messages) - 70), 0x61);
  const batch = (n: number, offset: number) => Array.from({ length: n }, (_, i) => ({ topic, partition: (offset + i) % 3, value }));
  await producer.send({ messages: batch(10, 0) });
  const t0 = process.hrtime.bigint();
  let next = 0;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next < messages) {
        const start = next;
        next += 1000;
        await producer.send({ messages: batch(Math.min(1000, messages - start), start) });
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  await producer.close();
  return { seconds };
}

const results: Record<string, unknown>[] = [];
console.log(`${'protocol'.padEnd(14)} ${'shape'.padEnd(7)} ${'rows'.padStart(8)} ${'rows/s'.padStart(9)} ${'msgs'.padStart(8)} ${'B/row'.padStart(6)} ${'MB/s'.padStart(6)} ${'CPU-s/1M'.padStart(9)} ${'ceiling msg/s'.padStart(14)} ${'sink/ceiling'.padStart(12)}`);
for (const protocol of protocolsArg.split(',') as Protocol[]) {
  for (const [name, count] of [['narrow', Number(narrowArg)], ['wide', Number(wideArg)]] as const) {
    const r = await runSink(protocol, name, count);
    const ceiling = await runCeiling(r.messages, r.bytes);
    const rowsPerSecond = Math.round(r.rows / r.seconds);
    const ceilingMsgs = Math.round(r.messages / ceiling.seconds);
    const sinkMsgs = r.messages / r.seconds;
    const line = {
      bench: 'kafka-sink',
      protocol,
      shape: name,
      rows: r.rows,
      seconds: Number(r.seconds.toFixed(2)),
      rowsPerSecond,
      messages: r.messages,
      bytesPerRow: Math.round(r.bytes / r.rows),
      megabytesPerSecond: Number((r.bytes / r.seconds / 1e6).toFixed(1)),
      cpuSecondsPer1MRows: Number(((r.cpuSeconds / r.rows) * 1e6).toFixed(1)),
      ceilingMessagesPerSecond: ceilingMsgs,
      sinkOverCeiling: Number((sinkMsgs / ceilingMsgs).toFixed(2)),
    };
    results.push(line);
    console.log(
      `${protocol.padEnd(14)} ${name.padEnd(7)} ${String(r.rows).padStart(8)} ${rowsPerSecond.toLocaleString('en').padStart(9)} ${String(r.messages).padStart(8)} ${String(line.bytesPerRow).padStart(6)} ${String(line.megabytesPerSecond).padStart(6)} ${String(line.cpuSecondsPer1MRows).padStart(9)} ${ceilingMsgs.toLocaleString('en').padStart(14)} ${String(line.sinkOverCeiling).padStart(12)}`,
    );
  }
}
for (const r of results) console.log(JSON.stringify(r));
