import { ConnectionPool, produceV7, Writer, type Broker, type Connection, type Producer } from '@platformatic/kafka';
import type { Compression } from '../config.js';
import { KafkaSinkError } from '../errors.js';
import { encodeRecordBatch, nextSequence, type BatchProducer } from './record-batch.js';
import { hasErrorFact, wrapClientError, type ProducerMessage } from './producer.js';

/** Produce requests in flight per broker connection: Kafka keeps the order of an idempotent producer's batches up to 5. */
export const MAX_REQUESTS_IN_FLIGHT = 5;
/** Produce v7 (Kafka 2.1 and later): record batches v2, non-flexible header. */
const PRODUCE_VERSION = 7;
const PRODUCE_API_KEY = 0;
/** Retries of a request that failed while it was the only one in flight on its partitions (resent with their sequences). */
const RETRIES = 3;
const RETRY_DELAY_MS = 250;

/** What a request carries for one partition. */
interface PartitionBatch {
  readonly partition: number;
  readonly batch: Buffer;
}

interface Request {
  /** The leader of its partitions (asked again when the broker says it is not). */
  broker: Broker;
  readonly topics: ReadonlyMap<string, PartitionBatch[]>;
  /** Its partitions' keys (partitionKey), for the sender's per-partition bookkeeping. */
  readonly keys: readonly string[];
  readonly messages: number;
}

/** One key per topic and partition, for the maps of sequences, first acknowledgements and requests in flight. */
function partitionKey(topic: string, partition: number): string {
  return `${topic}\0${partition}`;
}

/** The facts of an error that resending the same batches (same sequences) may cure. */
const RETRIABLE = ['PLT_KFK_NETWORK', 'ECONNRESET', 'EPIPE', 'ECONNREFUSED', 'NOT_ENOUGH_REPLICAS', 'REQUEST_TIMED_OUT', 'NETWORK_EXCEPTION', 'Connection closed'];
/** Answers that say the partition's leader is elsewhere or not ready yet (a topic created a moment ago): asked again before the resend. */
const STALE_LEADER = ['NOT_LEADER_OR_FOLLOWER', 'LEADER_NOT_AVAILABLE', 'UNKNOWN_TOPIC_OR_PARTITION', 'FENCED_LEADER_EPOCH'];

/** The broker's error names in a Produce response's error (e.g. NOT_LEADER_OR_FOLLOWER), for the message. */
function brokerErrors(error: unknown): string[] {
  const inner = (error as { errors?: unknown[] } | null)?.errors;
  if (!Array.isArray(inner)) return [];
  return [...new Set(inner.map((e) => (e as { apiId?: unknown }).apiId).filter((id): id is string => typeof id === 'string'))];
}

/**
 * The idempotent producer's sending side (client=platformatic): record batches written by Tidemark
 * (record-batch.ts), numbered per partition when they are built, and sent as Produce requests on
 * @platformatic/kafka's connections with up to MAX_REQUESTS_IN_FLIGHT requests outstanding per broker. The client's
 * own producer sends one request at a time when idempotent (it numbers a batch only once the one before it is
 * acknowledged), so each send waited a whole round trip plus a turn of the busy event loop.
 *
 * Order: calls are prepared one after the other (producer id, leaders, connection) and each writes its requests
 * to the connections in call order; a broker handles a connection's requests in order, and the sequences let it
 * refuse a batch that would land out of order. A request that fails while it is the only one in flight on its
 * partitions is resent as it was (same sequences: the broker keeps one copy) up to RETRIES times, after asking
 * for the leaders again when the broker said they moved; any other failure fails the sender for good: this call
 * and every later one reject with it (the changefeed restarts from its checkpoint). A partition's first request
 * goes alone, so it can always be resent.
 */
export class BatchSender {
  private readonly pool: ConnectionPool;
  private readonly sequences = new Map<string, number>();
  private readonly leaders = new Map<string, readonly Broker[]>();
  private producer: BatchProducer | undefined;
  /** The preparation of the last call: the next one starts after it. */
  private order: Promise<unknown> = Promise.resolve();
  /** Requests in flight per partition: a failed one is resent only when it is its partitions' only one. */
  private readonly inFlight = new Map<string, number>();
  private failure: KafkaSinkError | undefined;
  /**
   * Per partition, its first request's acknowledgement: until it comes, nothing else is written to the partition,
   * so that request is alone and can be resent (a topic created a moment ago answers NOT_LEADER_OR_FOLLOWER for a
   * while). Resolved entries stay, as the partition's mark.
   */
  private readonly firstAcknowledged = new Map<string, Promise<void>>();

  constructor(
    private readonly client: Producer,
    connectionOptions: ConstructorParameters<typeof ConnectionPool>[1],
    clientId: string,
    private readonly settings: { readonly acks: number; readonly timeoutMs: number; readonly compression: Compression; readonly brokersText: string },
  ) {
    this.pool = new ConnectionPool(clientId, { ...connectionOptions, maxInflights: MAX_REQUESTS_IN_FLIGHT });
  }

  /** Sends the messages; resolves once the broker acknowledged every one. Calls may overlap; order is kept per partition. */
  send(messages: readonly ProducerMessage[]): Promise<void> {
    const written = this.order.then(() => this.write(messages));
    this.order = written.catch(() => undefined);
    return written.then((acknowledged) => acknowledged.done);
  }

  async close(): Promise<void> {
    this.failure ??= new KafkaSinkError('ErrKafkaSinkClosed', 'the Kafka producer is closed');
    await this.pool.close();
  }

  /** Builds this call's requests and writes them to their connections; `done` settles with their acknowledgements. */
  private async write(messages: readonly ProducerMessage[]): Promise<{ done: Promise<void> }> {
    this.assertUsable();
    const producer = (this.producer ??= await this.initProducer());
    const requests = await this.build(messages, producer);
    const first: (() => void)[] = [];
    for (const key of requests.flatMap((r) => r.keys)) {
      const waiting = this.firstAcknowledged.get(key);
      if (waiting !== undefined) {
        await waiting;
        this.assertUsable(); // the first request failed
        continue;
      }
      let resolve!: () => void;
      this.firstAcknowledged.set(key, new Promise<void>((r) => (resolve = r)));
      first.push(resolve);
    }
    const connections = await Promise.all(requests.map((r) => this.connect(r.broker)));
    this.assertUsable(); // a request of an earlier call failed meanwhile
    const acknowledgements = requests.map((request, i) => this.deliver(request, connections[i]));
    const done = Promise.all(acknowledgements).then(() => undefined);
    // settled either way: after a failure the waiting calls find the sender failed
    const release = (): void => first.forEach((resolve) => resolve());
    done.then(release, release);
    return { done };
  }

  private async initProducer(): Promise<BatchProducer> {
    if (this.settings.acks !== -1) return { producerId: -1n, producerEpoch: -1 }; // acks=1: no idempotence
    try {
      const info = await this.client.initIdempotentProducer({});
      return { producerId: info.producerId, producerEpoch: info.producerEpoch };
    } catch (error) {
      throw this.fail(wrapClientError(error, 'initializing the idempotent producer', this.settings.brokersText));
    }
  }

  /** The messages as record batches, numbered, grouped into one request per leader broker. */
  private async build(messages: readonly ProducerMessage[], producer: BatchProducer): Promise<Request[]> {
    // a partition's messages keep their order; a call usually holds one partition's
    const byPartition = new Map<string, { topic: string; partition: number; messages: ProducerMessage[] }>();
    for (const m of messages) {
      const key = partitionKey(m.topic, m.partition);
      let group = byPartition.get(key);
      if (group === undefined) byPartition.set(key, (group = { topic: m.topic, partition: m.partition, messages: [] }));
      group.messages.push(m);
    }
    const requests = new Map<string, { broker: Broker; topics: Map<string, PartitionBatch[]>; keys: string[]; messages: number }>();
    const now = Date.now();
    for (const [key, group] of byPartition) {
      const broker = await this.leaderOf(group.topic, group.partition);
      const sequence = producer.producerId < 0n ? -1 : (this.sequences.get(key) ?? 0);
      const batch = encodeRecordBatch(group.messages, 0, group.messages.length, producer, sequence, now, this.settings.compression);
      if (sequence >= 0) this.sequences.set(key, nextSequence(sequence, group.messages.length));
      const brokerKey = `${broker.host}:${broker.port}`;
      let request = requests.get(brokerKey);
      if (request === undefined) requests.set(brokerKey, (request = { broker, topics: new Map(), keys: [], messages: 0 }));
      let partitions = request.topics.get(group.topic);
      if (partitions === undefined) request.topics.set(group.topic, (partitions = []));
      partitions.push({ partition: group.partition, batch });
      request.keys.push(key);
      request.messages += group.messages.length;
    }
    return [...requests.values()];
  }

  private async leaderOf(topic: string, partition: number, refresh = false): Promise<Broker> {
    let leaders = refresh ? undefined : this.leaders.get(topic);
    if (leaders === undefined || leaders[partition] === undefined) {
      try {
        const metadata = await this.client.metadata({ topics: [topic], forceUpdate: refresh || leaders !== undefined });
        const t = metadata.topics.get(topic);
        leaders = (t?.partitions ?? []).map((p) => (p === undefined ? undefined : metadata.brokers.get(p.leader))) as Broker[];
      } catch (error) {
        throw this.fail(wrapClientError(error, `reading metadata of topic "${topic}"`, this.settings.brokersText));
      }
      this.leaders.set(topic, leaders);
    }
    const leader = leaders[partition];
    if (leader === undefined) throw this.fail(new KafkaSinkError('ErrKafkaSendFailed', `topic "${topic}" has no leader for partition ${partition} on ${this.settings.brokersText}`));
    return leader;
  }

  /** The leader of every partition of the request, asked again; the request goes whole, so they must share one. */
  private async leaderOfRequest(request: Request): Promise<Broker> {
    let leader: Broker | undefined;
    for (const [topic, partitions] of request.topics) {
      for (const { partition } of partitions) {
        const now = await this.leaderOf(topic, partition, true);
        if (leader !== undefined && (now.host !== leader.host || now.port !== leader.port)) {
          throw this.fail(new KafkaSinkError('ErrKafkaSendFailed', `the partitions of a produce request now have different leaders (${leader.host}:${leader.port}, ${now.host}:${now.port}) on ${this.settings.brokersText}`));
        }
        leader = now;
      }
    }
    return leader ?? request.broker;
  }

  private async connect(broker: Broker): Promise<Connection> {
    try {
      return await this.pool.get(broker);
    } catch (error) {
      throw this.fail(wrapClientError(error, `connecting to the partition leader ${broker.host}:${broker.port}`, this.settings.brokersText));
    }
  }

  /** Writes the request now (the caller keeps call order) and resolves with its acknowledgement, retrying as above. */
  private async deliver(request: Request, connection: Connection): Promise<void> {
    const keys = request.keys;
    for (const key of keys) this.inFlight.set(key, (this.inFlight.get(key) ?? 0) + 1);
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          await produce(connection, request, this.settings.acks, this.settings.timeoutMs);
          return;
        } catch (error) {
          // resent only alone on its partitions: a later request of one of them would reach the broker first
          const alone = keys.every((key) => this.inFlight.get(key) === 1);
          const stale = STALE_LEADER.some((fact) => hasErrorFact(error, fact));
          const retry = this.failure === undefined && alone && attempt < RETRIES && (stale || RETRIABLE.some((fact) => hasErrorFact(error, fact)));
          if (!retry) {
            const said = brokerErrors(error);
            throw this.fail(wrapClientError(error, `sending ${request.messages} message(s) to Kafka${said.length === 0 ? '' : ` (the broker answered ${said.join(', ')})`}`, this.settings.brokersText));
          }
          await new Promise((resolve) => setTimeout(resolve, RETRY_DELAY_MS));
          if (stale) request.broker = await this.leaderOfRequest(request);
        }
        connection = await this.connect(request.broker); // a new connection when the old one closed
      }
    } finally {
      for (const key of keys) {
        const left = (this.inFlight.get(key) ?? 1) - 1;
        if (left === 0) this.inFlight.delete(key);
        else this.inFlight.set(key, left);
      }
    }
  }

  private assertUsable(): void {
    if (this.failure !== undefined) throw this.failure;
  }

  /** The first failure is the cause; every later call rejects with it. */
  private fail(error: KafkaSinkError): KafkaSinkError {
    this.failure ??= error;
    return this.failure;
  }
}

/** One Produce v7 request: no transactional id, acks, timeout, then per topic its partitions' record batches. */
function produce(connection: Connection, request: Request, acks: number, timeoutMs: number): Promise<unknown> {
  const body = (): Writer => {
    const writer = Writer.create().appendInt16(-1).appendInt16(acks).appendInt32(timeoutMs).appendInt32(request.topics.size);
    for (const [topic, partitions] of request.topics) {
      writer.appendString(topic, false).appendInt32(partitions.length);
      // the batches go in as they are: the connection copies the request into one buffer once
      for (const { partition, batch } of partitions) writer.appendInt32(partition).appendInt32(batch.length).append(batch);
    }
    return writer;
  };
  return new Promise((resolve, reject) => {
    connection.send(PRODUCE_API_KEY, PRODUCE_VERSION, body, produceV7.parseResponse, false, false, (error: unknown, response: unknown) => (error ? reject(error as Error) : resolve(response)));
  });
}
