/**
 * The downstream ceilings of a result: the downstream MariaDB's plain multi-row INSERT rate for the same rows,
 * and a plain Kafka producer's rate for the same message count and size.
 */
import { Kafka, logLevel } from 'kafkajs';
import mysql from 'mysql2/promise';
import { createTableSql, type Shape } from './workloads.js';

/** rows/s of 1,000-row INSERTs of the workload's rows into a scratch table on the downstream. */
export async function downstreamInsertRate(host: string, port: number, shape: Shape, rows: number): Promise<number> {
  const conn = await mysql.createConnection({ host, port, user: 'root' });
  const db = `tm_bench_ceiling_${process.pid}`;
  try {
    await conn.query(`CREATE DATABASE IF NOT EXISTS \`${db}\``);
    await conn.query(createTableSql(db, 'scratch', shape));
    const t0 = performance.now();
    for (let from = 1; from <= rows; from += 1000) {
      const n = Math.min(1000, rows - from + 1);
      const values = Array.from({ length: n }, (_, i) => `(${from + i}, ${shape.literal(from + i)})`);
      await conn.query(`INSERT INTO \`${db}\`.scratch (id, ${shape.names.join(', ')}) VALUES ${values.join(', ')}`);
    }
    return rows / ((performance.now() - t0) / 1000);
  } finally {
    await conn.query(`DROP DATABASE IF EXISTS \`${db}\``).catch(() => undefined);
    await conn.end();
  }
}

/** The message count of a topic (sum of its high watermarks) and the mean key + value size of up to 500 of them. */
export async function topicMessages(broker: string, topic: string): Promise<{ count: number; meanBytes: number }> {
  const kafka = new Kafka({ clientId: 'tidemark-bench', brokers: [broker], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  let count = 0;
  try {
    count = (await admin.fetchTopicOffsets(topic)).reduce((sum, o) => sum + Number(o.high) - Number(o.low), 0);
  } finally {
    await admin.disconnect();
  }
  if (count === 0) return { count, meanBytes: 0 };
  const consumer = kafka.consumer({ groupId: `tidemark-bench-${process.pid}-${Date.now().toString(36)}`, maxWaitTimeInMs: 100 });
  let bytes = 0;
  let seen = 0;
  let timer: NodeJS.Timeout | undefined;
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve) => {
      timer = setTimeout(resolve, 10_000);
      void consumer.run({
        eachMessage: ({ message }) => {
          if (seen < 500) {
            bytes += (message.key?.length ?? 0) + (message.value?.length ?? 0);
            if (++seen === 500 || seen === count) resolve();
          }
          return Promise.resolve();
        },
      });
    });
  } finally {
    clearTimeout(timer);
    await consumer.disconnect();
  }
  return { count, meanBytes: seen === 0 ? 0 : Math.round(bytes / seen) };
}

/** messages/s of @platformatic/kafka producing `messages` messages of `bytes` (acks=all, 3 partitions, 1,000 a batch, 4 in flight). */
export async function producerRate(broker: string, messages: number, bytes: number): Promise<number> {
  const { Admin, Producer, stringSerializer } = await import('@platformatic/kafka');
  const topic = `tidemark-bench-ceiling-${process.pid}-${Date.now().toString(36)}`;
  const admin = new Admin({ clientId: 'tidemark-bench', bootstrapBrokers: [broker] });
  try {
    await admin.createTopics({ topics: [topic], partitions: 3, replicas: 1 });
  } finally {
    await admin.close();
  }
  const producer = new Producer<string, Buffer, string, string>({
    clientId: 'tidemark-bench',
    bootstrapBrokers: [broker],
    serializers: { key: stringSerializer, headerKey: stringSerializer, headerValue: stringSerializer },
    acks: -1,
  });
  try {
    const value = Buffer.alloc(Math.max(1, bytes), 0x61);
    const batch = (b: number) => Array.from({ length: Math.min(1000, messages - b * 1000) }, (_, i) => ({ topic, key: `k${(b * 1000 + i) % 1000}`, value }));
    await producer.send({ messages: batch(0).slice(0, 10) });
    const batches = Math.ceil(messages / 1000);
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (next < batches) await producer.send({ messages: batch(next++) });
      }),
    );
    return messages / ((performance.now() - t0) / 1000);
  } finally {
    await producer.close();
    const cleanup = new Admin({ clientId: 'tidemark-bench', bootstrapBrokers: [broker] });
    await cleanup.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await cleanup.close();
  }
}

/** Deletes a topic the benchmark's changefeed wrote (missing is fine). */
export async function deleteTopic(broker: string, topic: string): Promise<void> {
  const { Admin } = await import('@platformatic/kafka');
  const admin = new Admin({ clientId: 'tidemark-bench', bootstrapBrokers: [broker] });
  try {
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
  } finally {
    await admin.close();
  }
}
