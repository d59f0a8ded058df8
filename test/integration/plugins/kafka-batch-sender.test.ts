import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Admin, Consumer } from '@platformatic/kafka';
import { parseConfig, supportedCompressions } from '../../../plugins/sink-kafka/src/config.js';
import { PlatformaticKafkaProducer, type ProducerMessage } from '../../../plugins/sink-kafka/src/producer/index.js';
import { requestsFramed } from '../../../plugins/sink-kafka/src/producer/request-frames.js';
import { leakCheck } from '../../helpers/leak-check.js';
import { kafkaFaultListener, requireService, uniqueName } from '../../helpers/services.js';
import { TcpProxy } from '../../helpers/tcp-proxy.js';

/** A null key or value reads as undefined or an empty buffer here (the test writes no empty ones). */
const text = (b: Buffer | null | undefined): string | null => (b === null || b === undefined || b.length === 0 ? null : b.toString());

interface Read {
  readonly partition: number;
  readonly offset: bigint;
  readonly key: string | null;
  readonly value: string | null;
}

/** One partition's messages as read, once their offsets are checked to run from 0 without gaps. */
function partitionRead(read: readonly Read[], partition: number): Read[] {
  const mine = read.filter((r) => r.partition === partition);
  assert.deepEqual(
    mine.map((r) => r.offset),
    mine.map((_, i) => BigInt(i)),
    `partition ${partition}: offsets from 0 without gaps`,
  );
  return mine;
}

/**
 * The producer of client=platformatic writes its own record batches and keeps several requests in flight: on the real
 * broker, overlapping sends land once each and in order per partition, with every compression codec, and a batch
 * the broker refuses fails this send and every later one, typed.
 */
describe('kafka producer (client=platformatic): own record batches, requests in flight, on the real broker', () => {
  const leaks = leakCheck();
  const topics: string[] = [];
  let broker: string;

  const createTopic = async (partitions: number, configs: { name: string; value: string }[] = []): Promise<string> => {
    const topic = uniqueName('tm-k-batches');
    topics.push(topic);
    const admin = new Admin({ clientId: 'tidemark-test', bootstrapBrokers: [broker] });
    try {
      await admin.createTopics({ topics: [topic], partitions, replicas: 1, configs });
    } finally {
      await admin.close();
    }
    return topic;
  };

  /** Reads `count` messages of the topic from its start with @platformatic/kafka's consumer (it decodes every codec). */
  const readBack = async (topic: string, count: number): Promise<Read[]> => {
    const consumer = new Consumer({ clientId: 'tidemark-test', groupId: uniqueName('tm-k-read'), bootstrapBrokers: [broker] });
    const out: Read[] = [];
    try {
      const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false, maxWaitTime: 100 });
      const timer = setTimeout(() => void stream.close(), 30_000);
      try {
        for await (const m of stream) {
          out.push({ partition: m.partition, offset: m.offset, key: text(m.key), value: text(m.value) });
          if (out.length >= count) break;
        }
      } finally {
        clearTimeout(timer);
        await stream.close();
      }
    } finally {
      await consumer.close();
    }
    return out;
  };

  before(async () => {
    broker = (await requireService('kafka')).addr;
  });
  after(async () => {
    const admin = new Admin({ clientId: 'tidemark-test-cleanup', bootstrapBrokers: [broker] });
    await admin.deleteTopics({ topics }).catch(() => undefined);
    await admin.close();
    await leaks.check();
  });

  for (const compression of supportedCompressions('platformatic')) {
    it(`compression=${compression}: 40 sends not awaited one by one, over 2 partitions, land once each and in order per partition`, async () => {
      const topic = await createTopic(2);
      const producer = await PlatformaticKafkaProducer.open(parseConfig(new URL(`kafka://${broker}/${topic}?compression=${compression}`)));
      try {
        assert.equal(producer.sendsInFlight, 5);
        const sends: Promise<void>[] = [];
        let n = 0;
        for (let call = 0; call < 40; call++) {
          const messages: ProducerMessage[] = [];
          for (let i = 0; i < 50; i++, n++) {
            const value = n % 97 === 5 ? null : Buffer.from(`value ${n} ${'x'.repeat(n % 300)}`);
            messages.push({ topic, partition: n % 2, key: n % 89 === 7 ? null : Buffer.from(`k${n}`), value });
          }
          sends.push(producer.send(messages));
        }
        await Promise.all(sends);
        const read = await readBack(topic, n);
        assert.equal(read.length, n);
        for (const partition of [0, 1]) {
          const mine = partitionRead(read, partition);
          const expected = Array.from({ length: n }, (_, i) => i).filter((i) => i % 2 === partition);
          assert.deepEqual(
            mine.map((r) => [r.key, r.value]),
            expected.map((i) => [i % 89 === 7 ? null : `k${i}`, i % 97 === 5 ? null : `value ${i} ${'x'.repeat(i % 300)}`]),
            `partition ${partition}: every message once, in the order sent`,
          );
        }
      } finally {
        await producer.close();
      }
    });
  }

  it('right after a topic is created (its leaders may answer NOT_LEADER_OR_FOLLOWER a moment): overlapping sends to 3 partitions all land, once each', async () => {
    for (let round = 0; round < 5; round++) {
      const topic = await createTopic(3);
      const producer = await PlatformaticKafkaProducer.open(parseConfig(new URL(`kafka://${broker}/${topic}`)));
      try {
        const sends = Array.from({ length: 12 }, (_, call) => producer.send(Array.from({ length: 30 }, (_, i) => ({ topic, partition: (call + i) % 3, key: Buffer.from(`k${call}-${i}`), value: Buffer.from(`v${call}-${i}`) }))));
        await Promise.all(sends);
        const read = await readBack(topic, 360);
        assert.equal(new Set(read.map((r) => r.value)).size, 360, `round ${round}: every message once`);
        for (const partition of [0, 1, 2]) {
          const values = read.filter((r) => r.partition === partition).map((r) => r.value);
          const expected = Array.from({ length: 12 }, (_, call) => Array.from({ length: 30 }, (_, i) => ((call + i) % 3 === partition ? `v${call}-${i}` : null)).filter((v) => v !== null)).flat();
          assert.deepEqual(values, expected, `round ${round}, partition ${partition}: in the order sent`);
        }
      } finally {
        await producer.close();
      }
    }
  });

  it('the connections to the broker dropped twice while requests are in flight: the failed requests are resent in order, every send resolves, every message lands once', async () => {
    const faults = kafkaFaultListener();
    const proxy = await TcpProxy.start(faults.host, faults.listenerPort, { port: faults.advertisedPort });
    const topic = await createTopic(3);
    const producer = await PlatformaticKafkaProducer.open(parseConfig(new URL(`kafka://${faults.advertised}/${topic}`)));
    const cuts: { readonly at: number; readonly unsettled: number }[] = [];
    try {
      const calls = 120;
      const perCall = 60;
      const valueOf = (n: number): string => `value ${n} ${'y'.repeat(900 + (n % 200))}`;
      let settled = 0;
      const sends: Promise<void>[] = [];
      for (let call = 0; call < calls; call++) {
        const messages: ProducerMessage[] = [];
        for (let i = 0; i < perCall; i++) {
          const n = call * perCall + i;
          messages.push({ topic, partition: n % 3, key: Buffer.from(`k${n}`), value: Buffer.from(valueOf(n)) });
        }
        sends.push(producer.send(messages).finally(() => settled++));
      }
      // cut every connection (the proxy refuses new ones meanwhile) when 1.5 MB and 4.5 MB have gone through it
      for (const threshold of [1_500_000, 4_500_000]) {
        while (proxy.bytesFromClients < threshold && settled < calls) await new Promise((resolve) => setTimeout(resolve, 1));
        cuts.push({ at: proxy.bytesFromClients, unsettled: calls - settled });
        proxy.cut();
        await new Promise((resolve) => setTimeout(resolve, 400));
        proxy.restore();
      }
      const outcomes = await Promise.allSettled(sends);
      assert.deepEqual(
        outcomes.filter((o) => o.status === 'rejected').map((o) => String(o.reason)),
        [],
        'every send resolves',
      );
      assert.ok(
        cuts.every((c) => c.unsettled > 0),
        `both cuts came while sends were unsettled: ${JSON.stringify(cuts)}`,
      );
      const total = calls * perCall;
      const read = await readBack(topic, total);
      assert.equal(read.length, total);
      for (const partition of [0, 1, 2]) {
        const mine = partitionRead(read, partition);
        const expected = Array.from({ length: total }, (_, n) => n).filter((n) => n % 3 === partition);
        assert.deepEqual(
          mine.map((r) => r.key),
          expected.map((n) => `k${n}`),
          `partition ${partition}: every message once, in the order sent`,
        );
        assert.ok(
          mine.every((r, i) => r.value === valueOf(expected[i])),
          `partition ${partition}: the values as sent`,
        );
      }
    } finally {
      await producer.close();
      await proxy.close();
    }
  });

  it('requests of about 2 MiB, several in flight over a slow link, some over two topics and partitions: written in place in kept frames, used again only once answered; every value lands as sent', async () => {
    const faults = kafkaFaultListener();
    // the link takes a chunk every 2 ms: the producer's socket queues its requests, frames included
    const proxy = await TcpProxy.start(faults.host, faults.listenerPort, { port: faults.advertisedPort, clientChunkDelayMs: 2 });
    const topics = [await createTopic(2), await createTopic(1)];
    const producer = await PlatformaticKafkaProducer.open(parseConfig(new URL(`kafka://${faults.advertised}/${topics[0]}`)));
    try {
      const calls = 14;
      const perCall = 480;
      // 4 KiB values, each its own bytes (a frame written over while queued shows as another message's bytes, or a broken checksum)
      const valueOf = (n: number): string => `${n}:${String.fromCharCode(97 + (n % 26)).repeat(4000 + (n % 97))}`;
      // even calls: one partition of the first topic; odd calls: both of its partitions and the second topic
      const placeOf = (n: number): { topic: string; partition: number } => {
        const call = Math.floor(n / perCall);
        if (call % 2 === 0) return { topic: topics[0], partition: (call / 2) % 2 };
        return n % 3 === 2 ? { topic: topics[1], partition: 0 } : { topic: topics[0], partition: n % 3 };
      };
      const before = requestsFramed();
      const sends: Promise<void>[] = [];
      for (let call = 0; call < calls; call++) {
        const messages: ProducerMessage[] = [];
        for (let i = 0; i < perCall; i++) {
          const n = call * perCall + i;
          messages.push({ ...placeOf(n), key: Buffer.from(`k${n}`), value: Buffer.from(valueOf(n)) });
        }
        sends.push(producer.send(messages));
      }
      await Promise.all(sends);
      const after = requestsFramed();
      assert.ok(after.inPlace - before.inPlace >= calls, `every request was written in place in a frame (${after.inPlace - before.inPlace} of ${calls}; ${after.framed - before.framed} framed)`);
      const total = calls * perCall;
      for (const [t, topic] of topics.entries()) {
        const expectedAll = Array.from({ length: total }, (_, n) => n).filter((n) => placeOf(n).topic === topic);
        const read = await readBack(topic, expectedAll.length);
        assert.equal(read.length, expectedAll.length, `topic ${t}: every message`);
        for (const partition of t === 0 ? [0, 1] : [0]) {
          const mine = partitionRead(read, partition);
          const expected = expectedAll.filter((n) => placeOf(n).partition === partition);
          assert.equal(mine.length, expected.length, `topic ${t} partition ${partition}: every message once`);
          const wrong = mine.findIndex((r, i) => r.key !== `k${expected[i]}` || r.value !== valueOf(expected[i]));
          assert.equal(wrong, -1, `topic ${t} partition ${partition}: message ${wrong} as sent (key ${mine[wrong]?.key}, value starting ${mine[wrong]?.value?.slice(0, 12)})`);
        }
      }
    } finally {
      await producer.close();
      await proxy.close();
    }
  });

  it("a batch over the topic's max.message.bytes: that send rejects typed (not retryable), and so does every later one", async () => {
    const topic = await createTopic(1, [{ name: 'max.message.bytes', value: '4096' }]);
    const producer = await PlatformaticKafkaProducer.open(parseConfig(new URL(`kafka://${broker}/${topic}`)));
    try {
      await producer.send([{ topic, partition: 0, key: Buffer.from('a'), value: Buffer.from('fits') }]);
      await assert.rejects(producer.send([{ topic, partition: 0, key: Buffer.from('b'), value: Buffer.alloc(6000, 120) }]), (error: Error & { code?: string; retryable?: boolean }) => {
        assert.equal(error.code, 'ErrKafkaMessageTooLarge');
        assert.equal(error.retryable, false);
        assert.match(error.message, /^sending 1 message\(s\) to Kafka \(the broker answered MESSAGE_TOO_LARGE\): the broker refused a message as too large/);
        return true;
      });
      await assert.rejects(producer.send([{ topic, partition: 0, key: Buffer.from('c'), value: Buffer.from('after') }]), { code: 'ErrKafkaMessageTooLarge' });
      const read = await readBack(topic, 1);
      assert.deepEqual(
        read.map((r) => r.value),
        ['fits'],
      );
    } finally {
      await producer.close();
    }
  });
});
