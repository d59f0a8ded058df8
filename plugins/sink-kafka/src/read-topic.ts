import { Kafka, logLevel } from 'kafkajs';

export interface TopicMessage {
  readonly partition: number;
  readonly offset: bigint;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
}

/**
 * Reads a topic from its start up to the high watermarks it has now (every acknowledged message), with a
 * throwaway consumer group; for tests, audits and `readBack`. Messages come back per partition in offset order.
 */
export async function readTopic(brokers: readonly string[], topic: string, timeoutMs = 30_000): Promise<TopicMessage[]> {
  const kafka = new Kafka({ clientId: 'tidemark-read-topic', brokers: [...brokers], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  let high: Map<number, bigint>;
  try {
    // a topic created a moment ago may answer "not the leader" until its leaders settle
    for (let attempt = 0; ; attempt++) {
      try {
        const offsets = await admin.fetchTopicOffsets(topic);
        high = new Map(offsets.map((o) => [o.partition, BigInt(o.high)]));
        break;
      } catch (error) {
        if (attempt >= 20) throw error;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
  } finally {
    await admin.disconnect();
  }
  const messages: TopicMessage[] = [];
  const pending = new Set([...high].filter(([, h]) => h > 0n).map(([p]) => p));
  if (pending.size === 0) return messages;
  const consumer = kafka.consumer({ groupId: `tidemark-read-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`, maxWaitTimeInMs: 100 });
  await consumer.connect();
  let timer: NodeJS.Timeout | undefined;
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`reading ${topic}: partitions ${[...pending].join(', ')} not read to their high watermark within ${timeoutMs} ms`)), timeoutMs);
      consumer
        .run({
          eachMessage: ({ partition, message }) => {
            const offset = BigInt(message.offset);
            const limit = high.get(partition) ?? 0n;
            if (offset < limit) messages.push({ partition, offset, key: message.key, value: message.value });
            if (offset + 1n >= limit && pending.delete(partition) && pending.size === 0) resolve();
            return Promise.resolve();
          },
        })
        .catch(reject);
    });
  } finally {
    clearTimeout(timer);
    await consumer.disconnect();
  }
  return messages.sort((a, b) => a.partition - b.partition || (a.offset < b.offset ? -1 : a.offset > b.offset ? 1 : 0));
}
