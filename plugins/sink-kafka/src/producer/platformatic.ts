import { tracingChannel } from 'node:diagnostics_channel';
import type { EventEmitter } from 'node:events';
import { Admin, Producer, type SASLOptions } from '@platformatic/kafka';
import type { KafkaConfig } from '../config.js';
import { KafkaSinkError } from '../errors.js';
import { BatchSender, MAX_REQUESTS_IN_FLIGHT } from './batch-sender.js';
import { hasErrorFact, tlsOptions, wrapClientError, type KafkaProducer, type ProducerMessage, type TopicInfo, type TopicSpec } from './producer.js';

const SASL = { plain: 'PLAIN', 'scram-sha-256': 'SCRAM-SHA-256', 'scram-sha-512': 'SCRAM-SHA-512' } as const;

/**
 * A connection of @platformatic/kafka can emit 'error' twice when it fails during the SASL handshake (a broker
 * that refuses our TLS client certificate closes the connection after the TLS 1.3 handshake: the socket error,
 * then the handshake request's "connection closed"); its pool listens `once`, so the second emission had no
 * listener and crashed the process. Every connection gets a listener of its own that keeps it quiet: the
 * failure still reaches the caller through the request's callback (and wrapClientError).
 */
let connectionsGuarded = false;
function guardConnectionErrors(): void {
  if (connectionsGuarded) return;
  connectionsGuarded = true;
  const quiet = (): void => undefined;
  tracingChannel<unknown, { connection?: EventEmitter }>('plt:kafka:connections:connects').subscribe({
    start: (context) => {
      const connection = context.connection;
      if (connection !== undefined && !connection.listeners('error').includes(quiet)) connection.on('error', quiet);
    },
    end: () => undefined,
    asyncStart: () => undefined,
    asyncEnd: () => undefined,
    error: () => undefined,
  });
}

/**
 * KafkaProducer on @platformatic/kafka: its client for topics, metadata and the idempotent producer's id; the record
 * batches written and sent by Tidemark's BatchSender on its connections, up to 5 requests in flight. An idempotent
 * producer with acks=-1, or acks=1 without idempotence; the configured compression.
 */
export class PlatformaticKafkaProducer implements KafkaProducer {
  readonly client = 'platformatic' as const;
  readonly sendsInFlight = MAX_REQUESTS_IN_FLIGHT;
  private admin: Admin | undefined;
  private readonly sender: BatchSender;
  private closed = false;
  private readonly brokersText: string;

  private constructor(
    private readonly producer: Producer,
    private readonly options: ConstructorParameters<typeof Admin>[0],
    config: KafkaConfig,
  ) {
    this.brokersText = config.brokers.map((b) => `${b.host}:${b.port}`).join(',');
    this.sender = new BatchSender(producer, options, config.clientId, { acks: config.requiredAcks, timeoutMs: config.writeTimeoutMs, compression: config.compression, brokersText: this.brokersText });
  }

  static async open(config: KafkaConfig): Promise<PlatformaticKafkaProducer> {
    guardConnectionErrors();
    const tls = await tlsOptions(config);
    const sasl: SASLOptions | undefined = config.sasl === undefined ? undefined : { mechanism: SASL[config.sasl.mechanism], username: config.sasl.username, password: config.sasl.password };
    const base = {
      clientId: config.clientId,
      bootstrapBrokers: config.brokers.map((b) => `${b.host}:${b.port}`),
      connectTimeout: config.dialTimeoutMs,
      requestTimeout: config.writeTimeoutMs,
      retries: 3,
      retryDelay: 250,
      autocreateTopics: false,
      ...(tls === undefined ? {} : { tls }),
      ...(sasl === undefined ? {} : { sasl }),
    };
    const producer = new Producer({
      ...base,
      acks: config.requiredAcks,
      idempotent: config.requiredAcks === -1,
      compression: config.compression,
    });
    return new PlatformaticKafkaProducer(producer, base, config);
  }

  async ensureTopic(topic: string, spec: TopicSpec): Promise<TopicInfo> {
    this.checkOpen();
    if (spec.create) {
      // create first and accept TOPIC_ALREADY_EXISTS: asking the metadata of a missing topic costs the client's retries
      this.admin ??= new Admin(this.options);
      try {
        await this.admin.createTopics({ topics: [topic], partitions: spec.partitions, replicas: spec.replicationFactor, configs: [{ name: 'max.message.bytes', value: String(spec.maxMessageBytes) }] });
      } catch (error) {
        if (!hasErrorFact(error, 'TOPIC_ALREADY_EXISTS')) throw wrapClientError(error, `creating topic "${topic}"`, this.brokersText);
      }
    }
    for (let attempt = 0; attempt < 100; attempt++) {
      const count = await this.partitionCount(topic, attempt > 0);
      if (count !== undefined) return { partitions: count, maxMessageBytes: await this.topicMaxMessageBytes(topic) };
      if (!spec.create) {
        throw new KafkaSinkError('ErrKafkaTopicInvalid', `topic "${topic}" does not exist on ${this.brokersText} and auto-create-topic=false`, { hint: 'create the topic or set auto-create-topic=true' });
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new KafkaSinkError('ErrKafkaTopicInvalid', `topic "${topic}" was created on ${this.brokersText} but has no partition leaders after 5 s`);
  }

  private async topicMaxMessageBytes(topic: string): Promise<number | undefined> {
    this.admin ??= new Admin(this.options);
    try {
      const [description] = await this.admin.describeConfigs({ resources: [{ resourceType: 2, resourceName: topic, configurationKeys: ['max.message.bytes'] }] });
      const value = description?.configs.find((c) => c.name === 'max.message.bytes')?.value;
      return value === undefined || value === null ? undefined : Number(value);
    } catch {
      return undefined; // not allowed to describe configs: the broker's refusal still surfaces as ErrKafkaMessageTooLarge
    }
  }

  private async partitionCount(topic: string, forceUpdate = false): Promise<number | undefined> {
    try {
      const metadata = await this.producer.metadata({ topics: [topic], forceUpdate, autocreateTopics: false });
      const t = metadata.topics.get(topic);
      if (t === undefined || t.partitionsCount === 0 || t.partitions.some((p) => p === undefined || p.leader < 0)) return undefined;
      return t.partitionsCount;
    } catch (error) {
      if (['UNKNOWN_TOPIC_OR_PARTITION', 'LEADER_NOT_AVAILABLE', 'Unknown topic'].some((fact) => hasErrorFact(error, fact))) return undefined;
      throw wrapClientError(error, `reading metadata of topic "${topic}"`, this.brokersText);
    }
  }

  async send(messages: readonly ProducerMessage[]): Promise<void> {
    this.checkOpen();
    if (messages.length === 0) return;
    await this.sender.send(messages);
  }

  private checkOpen(): void {
    if (this.closed) throw new KafkaSinkError('ErrKafkaSinkClosed', 'the Kafka producer is closed');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([this.sender.close(), this.producer.close(), this.admin?.close() ?? Promise.resolve()]);
  }
}
