/**
 * Kafka producer clients side by side on the same broker (issue: Kafka sink): kafkajs vs @platformatic/kafka.
 * Each client runs in its own process, so CPU is measured per client: produce throughput (msg/s, CPU-s per
 * 1M messages) with acks=all, then the CPU a connected but idle producer burns over 10 s.
 * usage: node --import tsx bench/kafka-producer.ts [messages=200000] [bytes=100]   (needs scripts/services.sh up kafka)
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const [, , mode, ...rest] = process.argv;
const broker = process.env['TIDEMARK_KAFKA_ADDR'] ?? '127.0.0.1:9092';
const BATCH = 1000;
const IN_FLIGHT = 4;
const IDLE_MS = 10_000;

interface Result {
  client: string;
  messages: number;
  bytes: number;
  seconds: number;
  messagesPerSecond: number;
  cpuSecondsPer1M: number;
  idleCpuPercent: number;
}

interface BenchProducer {
  send(topic: string, messages: { key: string; value: Buffer }[]): Promise<void>;
  close(): Promise<void>;
}

async function kafkajsProducer(topic: string): Promise<BenchProducer> {
  const { Kafka, logLevel, Partitioners } = await import('kafkajs');
  const kafka = new Kafka({ clientId: 'tidemark-bench', brokers: [broker], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 3, replicationFactor: 1 }], waitForLeaders: true });
  await admin.disconnect();
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  return {
    send: async (t, messages) => void (await producer.send({ topic: t, messages, acks: -1 })),
    close: () => producer.disconnect(),
  };
}

async function platformaticProducer(topic: string): Promise<BenchProducer> {
  const { Admin, Producer, stringSerializer } = await import('@platformatic/kafka');
  const admin = new Admin({ clientId: 'tidemark-bench', bootstrapBrokers: [broker] });
  await admin.createTopics({ topics: [topic], partitions: 3, replicas: 1 });
  await admin.close();
  const producer = new Producer<string, Buffer, string, string>({
    clientId: 'tidemark-bench',
    bootstrapBrokers: [broker],
    serializers: { key: stringSerializer, headerKey: stringSerializer, headerValue: stringSerializer },
    acks: -1,
  });
  return {
    send: async (t, messages) => void (await producer.send({ messages: messages.map((m) => ({ topic: t, key: m.key, value: m.value })) })),
    close: () => producer.close(),
  };
}

async function runClient(client: string, messages: number, bytes: number): Promise<Result> {
  const topic = `bench-${client}-${process.pid}-${Date.now()}`;
  const producer = client === 'kafkajs' ? await kafkajsProducer(topic) : await platformaticProducer(topic);
  const value = Buffer.alloc(bytes, 0x61);
  const batches = Array.from({ length: Math.ceil(messages / BATCH) }, (_, b) =>
    Array.from({ length: Math.min(BATCH, messages - b * BATCH) }, (_, i) => ({ key: `k${(b * BATCH + i) % 1000}`, value })),
  );
  await producer.send(topic, batches[0].slice(0, 10)); // warm the metadata and connections
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  let next = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < batches.length) await producer.send(topic, batches[next++]);
    }),
  );
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const idle0 = process.cpuUsage();
  await new Promise((resolve) => setTimeout(resolve, IDLE_MS));
  const idle = process.cpuUsage(idle0);
  await producer.close();
  return {
    client,
    messages,
    bytes,
    seconds: Number(seconds.toFixed(2)),
    messagesPerSecond: Math.round(messages / seconds),
    cpuSecondsPer1M: Number((((cpu.user + cpu.system) / 1e6) * (1e6 / messages)).toFixed(2)),
    idleCpuPercent: Number((((idle.user + idle.system) / 1e3 / IDLE_MS) * 100).toFixed(2)),
  };
}

if (mode === '--client') {
  const [client, messages, bytes] = rest;
  console.log(JSON.stringify(await runClient(client, Number(messages), Number(bytes))));
} else {
  const [messages = '200000', bytes = '100'] = [mode, ...rest].filter((a) => a !== undefined);
  const self = fileURLToPath(import.meta.url);
  const results: Result[] = [];
  for (const client of ['kafkajs', 'platformatic']) {
    const out = execFileSync(process.execPath, ['--import', 'tsx', self, '--client', client, messages, bytes], { encoding: 'utf8' });
    results.push(JSON.parse(out.trim().split('\n').pop()!) as Result);
  }
  console.log(`${'client'.padEnd(14)} ${'msg/s'.padStart(10)} ${'CPU-s/1M'.padStart(9)} ${'idle CPU'.padStart(9)}`);
  for (const r of results) {
    console.log(`${r.client.padEnd(14)} ${r.messagesPerSecond.toLocaleString('en').padStart(10)} ${r.cpuSecondsPer1M.toFixed(2).padStart(9)} ${`${r.idleCpuPercent}%`.padStart(9)}`);
  }
  const [a, b] = results;
  console.log(`platformatic / kafkajs throughput: ${(b.messagesPerSecond / a.messagesPerSecond).toFixed(2)}x`);
  for (const r of results) console.log(JSON.stringify({ bench: 'kafka-producer', ...r }));
}
