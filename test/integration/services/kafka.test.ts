import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Kafka, logLevel, Partitioners, type Admin, type Consumer, type Producer } from 'kafkajs';
import { requireService, serviceAddress, uniqueName } from '../../helpers/services.js';
import { waitFor } from '../../helpers/wait-for.js';
import { leakCheck } from '../../helpers/leak-check.js';

describe('Kafka (real broker, KRaft)', () => {
  const leaks = leakCheck();
  const topic = uniqueName('tm-smoke');
  let kafka: Kafka;
  let admin: Admin;
  let producer: Producer;
  let consumer: Consumer | undefined;

  before(async () => {
    await requireService('kafka');
    kafka = new Kafka({ clientId: 'tidemark-test', brokers: [serviceAddress('kafka').addr], logLevel: logLevel.NOTHING });
    admin = kafka.admin();
    await admin.connect();
    producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
  });
  after(async () => {
    await consumer?.disconnect();
    await producer.disconnect();
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
    await leaks.check();
  });

  it('creates a 3-partition topic, takes 1,000 keyed messages and gives them back in per-key order', async () => {
    assert.equal(await admin.createTopics({ topics: [{ topic, numPartitions: 3, replicationFactor: 1 }], waitForLeaders: true }), true);
    const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
    assert.equal(metadata.topics[0]?.partitions.length, 3);

    const keys = 10;
    const total = 1000;
    const messages = Array.from({ length: total }, (_, i) => ({ key: `key-${i % keys}`, value: String(i) }));
    for (let i = 0; i < total; i += 100) await producer.send({ topic, messages: messages.slice(i, i + 100), acks: -1 });

    const received = new Map<string, number[]>();
    const partitionsByKey = new Map<string, Set<number>>();
    let count = 0;
    consumer = kafka.consumer({ groupId: uniqueName('tm-smoke-group') });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: ({ partition, message }) => {
        const key = message.key?.toString() ?? '';
        received.set(key, [...(received.get(key) ?? []), Number(message.value?.toString())]);
        partitionsByKey.set(key, (partitionsByKey.get(key) ?? new Set()).add(partition));
        count++;
        return Promise.resolve();
      },
    });
    await waitFor(() => count >= total, { timeoutMs: 30_000, what: `${total} messages back from ${topic}` });

    assert.equal(count, total, 'every message exactly once');
    assert.equal(received.size, keys);
    for (const [key, values] of received) {
      const expected = messages.filter((m) => m.key === key).map((m) => Number(m.value));
      assert.deepEqual(values, expected, `messages of ${key} in the order they were produced`);
      assert.equal(partitionsByKey.get(key)?.size, 1, `all messages of ${key} in one partition`);
    }
    const usedPartitions = new Set([...partitionsByKey.values()].flatMap((s) => [...s]));
    assert.ok(usedPartitions.size > 1, 'the keys spread over more than one partition');
  });
});
