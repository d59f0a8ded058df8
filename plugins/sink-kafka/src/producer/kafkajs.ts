import { CompressionTypes, Kafka, logLevel, type Admin, type Producer, type SASLOptions } from 'kafkajs';
import type { ConfigResourceTypes } from 'kafkajs';
import type { KafkaConfig } from '../config.js';

/** kafkajs' ConfigResourceTypes.TOPIC (its CommonJS export is not visible to ESM named imports). */
const TOPIC_RESOURCE = 2 as ConfigResourceTypes;
import { KafkaSinkError } from '../errors.js';
import { tlsOptions, wrapClientError, type KafkaProducer, type ProducerMessage, type TopicInfo, type TopicSpec } from './producer.js';

/**
 * KafkaProducer on kafkajs 2.2.4 (client=kafkajs): idempotent with at most one request in flight when
 * acks=-1, gzip or none. Selectable; not the default (slower, and it spins ~4 % of a core while idle).
 */
export class KafkajsKafkaProducer implements KafkaProducer {
  readonly client = 'kafkajs' as const;
  /** One at a time: kafkajs numbers an idempotent batch when it sends it, with one request in flight. */
  readonly sendsInFlight = 1;
  private closed = false;
  private adminConnected = false;
  private readonly brokersText: string;

  private constructor(
    private readonly producer: Producer,
    private readonly admin: Admin,
    private readonly config: KafkaConfig,
  ) {
    this.brokersText = config.brokers.map((b) => `${b.host}:${b.port}`).join(',');
  }

  static async open(config: KafkaConfig): Promise<KafkajsKafkaProducer> {
    const tls = await tlsOptions(config);
    const sasl: SASLOptions | undefined = config.sasl === undefined ? undefined : ({ mechanism: config.sasl.mechanism, username: config.sasl.username, password: config.sasl.password });
    const kafka = new Kafka({
      clientId: config.clientId,
      brokers: config.brokers.map((b) => `${b.host}:${b.port}`),
      connectionTimeout: config.dialTimeoutMs,
      requestTimeout: config.writeTimeoutMs,
      retry: { retries: 3, initialRetryTime: 250, maxRetryTime: 2000 },
      logLevel: logLevel.NOTHING,
      ...(tls === undefined ? {} : { ssl: tls }),
      ...(sasl === undefined ? {} : { sasl }),
    });
    const producer = kafka.producer({ idempotent: config.requiredAcks === -1, maxInFlightRequests: 1, allowAutoTopicCreation: false });
    const self = new KafkajsKafkaProducer(producer, kafka.admin(), config);
    try {
      await producer.connect();
    } catch (error) {
      await producer.disconnect().catch(() => undefined);
      throw wrapClientError(error, 'connecting the kafkajs producer', self.brokersText);
    }
    return self;
  }

  async ensureTopic(topic: string, spec: TopicSpec): Promise<TopicInfo> {
    this.checkOpen();
    try {
      if (!this.adminConnected) {
        await this.admin.connect();
        this.adminConnected = true;
      }
      const exists = (await this.admin.listTopics()).includes(topic);
      if (!exists) {
        if (!spec.create) throw new KafkaSinkError('ErrKafkaTopicInvalid', `topic "${topic}" does not exist on ${this.brokersText} and auto-create-topic=false`);
        await this.admin.createTopics({
          topics: [{ topic, numPartitions: spec.partitions, replicationFactor: spec.replicationFactor, configEntries: [{ name: 'max.message.bytes', value: String(spec.maxMessageBytes) }] }],
          waitForLeaders: true,
        });
      }
      const metadata = await this.admin.fetchTopicMetadata({ topics: [topic] });
      let maxMessageBytes: number | undefined;
      try {
        const configs = await this.admin.describeConfigs({ resources: [{ type: TOPIC_RESOURCE, name: topic, configNames: ['max.message.bytes'] }], includeSynonyms: false });
        const value = configs.resources[0]?.configEntries.find((e) => e.configName === 'max.message.bytes')?.configValue;
        maxMessageBytes = value === undefined ? undefined : Number(value);
      } catch {
        maxMessageBytes = undefined; // not allowed to describe configs: the broker's refusal still surfaces as ErrKafkaMessageTooLarge
      }
      return { partitions: metadata.topics[0]?.partitions.length ?? 0, maxMessageBytes };
    } catch (error) {
      throw wrapClientError(error, `preparing topic "${topic}"`, this.brokersText);
    }
  }

  async send(messages: readonly ProducerMessage[]): Promise<void> {
    this.checkOpen();
    if (messages.length === 0) return;
    const byTopic = new Map<string, { partition: number; key: Buffer | null; value: Buffer | null }[]>();
    for (const m of messages) {
      let list = byTopic.get(m.topic);
      if (list === undefined) byTopic.set(m.topic, (list = []));
      list.push({ partition: m.partition, key: m.key, value: m.value });
    }
    try {
      await this.producer.sendBatch({
        topicMessages: [...byTopic].map(([topic, msgs]) => ({ topic, messages: msgs })),
        acks: this.config.requiredAcks,
        compression: this.config.compression === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None,
      });
    } catch (error) {
      throw wrapClientError(error, `sending ${messages.length} message(s) to Kafka`, this.brokersText);
    }
  }

  private checkOpen(): void {
    if (this.closed) throw new KafkaSinkError('ErrKafkaSinkClosed', 'the Kafka producer is closed');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([this.producer.disconnect(), this.adminConnected ? this.admin.disconnect() : Promise.resolve()]);
  }
}
