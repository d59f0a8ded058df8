import { setTimeout as sleep } from 'node:timers/promises';
import { ConnectionPool, produceV7, Writer, type Broker, type Connection, type Producer } from '@platformatic/kafka';
import type { Compression } from '../config.js';
import { KafkaSinkError } from '../errors.js';
import { BatchArena, encodeRecordBatch, nextSequence, type BatchProducer } from './record-batch.js';
import { hasErrorFact, wrapClientError, type ProducerMessage } from './producer.js';
import { PARTITION_HEAD_BYTES, PRODUCE_BODY_HEAD_BYTES, RequestFrames, requestHeaderBytes, topicHeadBytes } from './request-frames.js';

/** Produce requests in flight per broker connection: Kafka keeps the order of an idempotent producer's batches up to 5. */
export const MAX_REQUESTS_IN_FLIGHT = 5;
/** Produce v7 (Kafka 2.1 and later): record batches v2, non-flexible header. */
const PRODUCE_VERSION = 7;
const PRODUCE_API_KEY = 0;
/** How long a failed request is resent (same sequences) before the sender gives up: a leader moving, a broker restarting. */
const RESEND_BUDGET_MS = 15_000;
/** The wait before the first resend, doubled after each failed one up to RESEND_DELAY_MAX_MS. */
const RESEND_DELAY_MS = 250;
const RESEND_DELAY_MAX_MS = 2_000;
/**
 * A request's record batches are written into a frame of this size, where the connection's join of the request
 * puts them (RequestFrames): the sink's requests are up to 2 MiB of keys and values, plus each record's few bytes.
 */
const FRAME_BYTES = 2304 * 1024;
/** A request of fewer bytes of keys and values allocates its batches (a flush's few rows under a light load). */
const FRAME_MIN_BYTES = 64 * 1024;
/**
 * Frames kept for use again: the sink holds about 4 MiB unacknowledged beyond the request it cuts (3 requests of
 * 2 MiB), and one more for the request being prepared; a request finding none allocates one, dropped after.
 */
const FRAMES_KEPT = 4;

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
  /** Where its record batches are written, in place for the join (a big request), and whether an attempt to send it failed. */
  readonly frame: Buffer | undefined;
  failed: boolean;
}

/** A request's messages grouped by topic and partition, before its record batches are written. */
interface RequestDraft {
  readonly broker: Broker;
  readonly topics: Map<string, { readonly partition: number; readonly key: string; readonly messages: ProducerMessage[] }[]>;
  bytes: number;
}

/** A request written to its connection, numbered in write order, and how its caller hears of it. */
interface Flight {
  readonly request: Request;
  readonly n: number;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/** Failed requests waiting for every request written before the failure to settle, then resent in write order. */
interface Recovery {
  readonly failed: { readonly flight: Flight; readonly error: unknown }[];
  /** Resolves when the resends are over (new writes wait for it). */
  readonly over: Promise<void>;
  readonly end: () => void;
  resending: boolean;
}

/** One key per topic and partition, for the maps of sequences and first acknowledgements. */
function partitionKey(topic: string, partition: number): string {
  return `${topic}\0${partition}`;
}

/** The facts of an error that resending the same batches (same sequences) may cure. */
const RETRIABLE = ['PLT_KFK_NETWORK', 'ECONNRESET', 'EPIPE', 'ECONNREFUSED', 'NOT_ENOUGH_REPLICAS', 'REQUEST_TIMED_OUT', 'NETWORK_EXCEPTION', 'Connection closed'];
/** Answers that say the partition's leader is elsewhere or not ready yet (a topic created a moment ago): asked again before the resend. */
const STALE_LEADER = ['NOT_LEADER_OR_FOLLOWER', 'LEADER_NOT_AVAILABLE', 'UNKNOWN_TOPIC_OR_PARTITION', 'FENCED_LEADER_EPOCH'];
/**
 * The broker refused a batch because one before it on its partition is missing: a consequence of an earlier
 * request's failure, cured by resending that one first (resendable only behind it).
 */
const OUT_OF_ORDER = 'OUT_OF_ORDER_SEQUENCE_NUMBER';

function resendable(error: unknown): boolean {
  return STALE_LEADER.some((fact) => hasErrorFact(error, fact)) || RETRIABLE.some((fact) => hasErrorFact(error, fact));
}

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
 * refuse a batch that would land out of order. A partition's first request goes alone.
 *
 * Failures: when a request fails in a way a resend may cure (the connection dropped, the leader moved, too few
 * replicas), the sender stops writing, waits until every request written before settles, then resends the failed
 * ones one at a time in write order, as they were (same sequences: the broker keeps one copy of a batch it already
 * has and answers with its offset), asking for the leaders again when the broker said they moved, for up to
 * RESEND_BUDGET_MS; then writing goes on. A request refused out of order behind a failed one is resent after it.
 * Any other failure, or one that outlasts the budget, fails the sender for good: that call and every later one
 * reject with it (the changefeed restarts from its checkpoint).
 */
export class BatchSender {
  private readonly pool: ConnectionPool;
  private readonly sequences = new Map<string, number>();
  private readonly leaders = new Map<string, readonly Broker[]>();
  private producer: BatchProducer | undefined;
  /** The preparation of the last call: the next one starts after it. */
  private order: Promise<unknown> = Promise.resolve();
  /** Requests written and not settled. */
  private readonly flights = new Set<Flight>();
  /** Requests written so far (numbers the flights). */
  private written = 0;
  /** Set from a resendable failure until its resends are over. */
  private recovery: Recovery | undefined;
  /** Aborted by close: a resend's wait ends. */
  private readonly closing = new AbortController();
  private readonly frames = new RequestFrames(FRAME_BYTES, FRAMES_KEPT);
  /** Bytes of the connection's header before a request's body (its client id's length included). */
  private readonly headerBytes: number;
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
    this.headerBytes = requestHeaderBytes(clientId);
  }

  /** Sends the messages; resolves once the broker acknowledged every one. Calls may overlap; order is kept per partition. */
  send(messages: readonly ProducerMessage[]): Promise<void> {
    const written = this.order.then(() => this.write(messages));
    this.order = written.catch(() => undefined);
    return written.then((acknowledged) => acknowledged.done);
  }

  async close(): Promise<void> {
    this.failure ??= new KafkaSinkError('ErrKafkaSinkClosed', 'the Kafka producer is closed');
    this.closing.abort();
    await this.pool.close();
  }

  /** Builds this call's requests and writes them to their connections; `done` settles with their acknowledgements. */
  private async write(messages: readonly ProducerMessage[]): Promise<{ done: Promise<void> }> {
    this.assertUsable();
    const producer = (this.producer ??= await this.initProducer());
    const requests = await this.build(messages, producer).catch((error: unknown) => {
      // some partitions' sequences may have moved on: nothing more can be sent after it
      throw this.fail(error instanceof KafkaSinkError ? error : new KafkaSinkError('ErrKafkaSendFailed', `building a produce request of ${messages.length} message(s) failed: ${(error as Error).message}`, { cause: error }));
    });
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
    let connections: Connection[];
    for (;;) {
      // after a failure, nothing more is written until the failed requests are resent
      if (this.recovery !== undefined) await this.recovery.over;
      this.assertUsable(); // a request of an earlier call failed meanwhile
      connections = await Promise.all(requests.map((r) => this.connectForWrite(r.broker)));
      this.assertUsable();
      if (this.recovery === undefined) break;
    }
    const acknowledgements = requests.map((request, i) => this.deliver(request, connections[i]));
    const done = Promise.all(acknowledgements).then(() => {
      for (const r of requests) if (r.frame !== undefined && !r.failed) this.frames.give(r.frame);
    });
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
    // every leader first, so that no partition's sequence moves on in a call that then fails
    const drafts = new Map<string, RequestDraft>();
    for (const [key, group] of byPartition) {
      const broker = await this.leaderOf(group.topic, group.partition);
      const brokerKey = `${broker.host}:${broker.port}`;
      let draft = drafts.get(brokerKey);
      if (draft === undefined) drafts.set(brokerKey, (draft = { broker, topics: new Map(), bytes: 0 }));
      let partitions = draft.topics.get(group.topic);
      if (partitions === undefined) draft.topics.set(group.topic, (partitions = []));
      partitions.push({ partition: group.partition, key, messages: group.messages });
      draft.bytes += messageBytes(group.messages);
    }
    const now = Date.now();
    return [...drafts.values()].map((draft) => this.encode(draft, producer, now));
  }

  /**
   * A request's record batches, numbered; a big request's written into a frame at the offsets where the
   * connection's join puts them (after the header, the body's head, each topic's and each partition's head).
   */
  private encode(draft: RequestDraft, producer: BatchProducer, now: number): Request {
    const frame = draft.bytes >= FRAME_MIN_BYTES && this.frames.usable ? this.frames.take() : undefined;
    const arena = frame === undefined ? undefined : new BatchArena(frame);
    let at = this.headerBytes + PRODUCE_BODY_HEAD_BYTES;
    const topics = new Map<string, PartitionBatch[]>();
    const keys: string[] = [];
    let count = 0;
    for (const [topic, partitions] of draft.topics) {
      at += topicHeadBytes(topic);
      const batches: PartitionBatch[] = [];
      for (const { partition, key, messages } of partitions) {
        at += PARTITION_HEAD_BYTES;
        arena?.seek(at);
        const sequence = producer.producerId < 0n ? -1 : (this.sequences.get(key) ?? 0);
        const batch = encodeRecordBatch(messages, 0, messages.length, producer, sequence, now, this.settings.compression, arena);
        if (sequence >= 0) this.sequences.set(key, nextSequence(sequence, messages.length));
        batches.push({ partition, batch });
        keys.push(key);
        count += messages.length;
        at += batch.length;
      }
      topics.set(topic, batches);
    }
    return { broker: draft.broker, topics, keys, messages: count, frame, failed: false };
  }

  private async leaderOf(topic: string, partition: number, refresh = false): Promise<Broker> {
    let leaders = refresh ? undefined : this.leaders.get(topic);
    if (leaders === undefined || leaders[partition] === undefined) {
      try {
        const metadata = await this.client.metadata({ topics: [topic], forceUpdate: refresh || leaders !== undefined });
        const t = metadata.topics.get(topic);
        leaders = (t?.partitions ?? []).map((p) => (p === undefined ? undefined : metadata.brokers.get(p.leader))) as Broker[];
      } catch (error) {
        throw wrapClientError(error, `reading metadata of topic "${topic}"`, this.settings.brokersText);
      }
      this.leaders.set(topic, leaders);
    }
    const leader = leaders[partition];
    if (leader === undefined) throw new KafkaSinkError('ErrKafkaSendFailed', `topic "${topic}" has no leader for partition ${partition} on ${this.settings.brokersText}`);
    return leader;
  }

  /** The leader of every partition of the request, asked again; the request goes whole, so they must share one. */
  private async leaderOfRequest(request: Request): Promise<Broker> {
    let leader: Broker | undefined;
    for (const [topic, partitions] of request.topics) {
      for (const { partition } of partitions) {
        const now = await this.leaderOf(topic, partition, true);
        if (leader !== undefined && (now.host !== leader.host || now.port !== leader.port)) {
          throw new KafkaSinkError('ErrKafkaSendFailed', `the partitions of a produce request now have different leaders (${leader.host}:${leader.port}, ${now.host}:${now.port}) on ${this.settings.brokersText}`, { retryable: true });
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
      throw wrapClientError(error, `connecting to the partition leader ${broker.host}:${broker.port}`, this.settings.brokersText);
    }
  }

  /** A connection for a call's request, tried again within the resend budget while the broker cannot be reached. */
  private async connectForWrite(broker: Broker): Promise<Connection> {
    const deadline = Date.now() + RESEND_BUDGET_MS;
    for (let delay = RESEND_DELAY_MS; ; delay = Math.min(2 * delay, RESEND_DELAY_MAX_MS)) {
      try {
        return await this.connect(broker);
      } catch (error) {
        if (!resendable(error) || Date.now() + delay > deadline) throw this.fail(error as KafkaSinkError);
      }
      await sleep(delay, undefined, { signal: this.closing.signal }).catch(() => undefined);
      this.assertUsable();
    }
  }

  /** Writes the request now (the caller keeps call order) and resolves with its acknowledgement, resent as above. */
  private deliver(request: Request, connection: Connection): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const flight: Flight = { request, n: this.written++, resolve, reject };
      this.flights.add(flight);
      // the first attempt's join goes into the request's frame; a resend's is the client's own (an earlier attempt may still be in a socket)
      produce(connection, request, this.settings.acks, this.settings.timeoutMs, request.failed ? undefined : request.frame).then(
        () => {
          this.flights.delete(flight);
          resolve();
          this.resendWhenSettled();
        },
        (error: unknown) => {
          this.flights.delete(flight);
          request.failed = true;
          if (this.failure !== undefined) reject(this.failure);
          else if (this.recovery === undefined && !resendable(error)) reject(this.fail(this.sendError(request, error)));
          else {
            this.recovery ??= newRecovery();
            this.recovery.failed.push({ flight, error });
          }
          this.resendWhenSettled();
        },
      );
    });
  }

  /** Once every request written before the failure has settled, the failed ones are resent (see the class). */
  private resendWhenSettled(): void {
    const recovery = this.recovery;
    if (recovery === undefined || recovery.resending || this.flights.size > 0) return;
    recovery.resending = true;
    void this.resendAll(recovery);
  }

  private async resendAll(recovery: Recovery): Promise<void> {
    const failed = recovery.failed.sort((a, b) => a.flight.n - b.flight.n);
    let i = 0;
    try {
      for (; i < failed.length; i++) {
        const { flight, error } = failed[i];
        if (!resendable(error) && !(i > 0 && hasErrorFact(error, OUT_OF_ORDER))) throw this.fail(this.sendError(flight.request, error));
        await this.resend(flight.request, error, i === 0);
        flight.resolve();
      }
    } catch (error) {
      const failure = this.fail(error instanceof KafkaSinkError ? error : this.sendError(failed[i].flight.request, error));
      for (; i < failed.length; i++) failed[i].flight.reject(failure);
    } finally {
      this.recovery = undefined;
      recovery.end();
    }
  }

  /**
   * Resends one request alone until it is acknowledged, it fails in a way a resend cannot cure, or the budget is
   * spent; `wait`: a pause before the first resend (the one right after a failure; the requests behind it go at once).
   */
  private async resend(request: Request, error: unknown, wait: boolean): Promise<void> {
    const deadline = Date.now() + RESEND_BUDGET_MS;
    let lastError = error;
    for (let delay = RESEND_DELAY_MS, attempt = 0; ; attempt++) {
      if (wait || attempt > 0) {
        await sleep(delay, undefined, { signal: this.closing.signal }).catch(() => undefined);
        delay = Math.min(2 * delay, RESEND_DELAY_MAX_MS);
      }
      this.assertUsable(); // closed meanwhile
      try {
        if (STALE_LEADER.some((fact) => hasErrorFact(lastError, fact))) request.broker = await this.leaderOfRequest(request);
        await produce(await this.connect(request.broker), request, this.settings.acks, this.settings.timeoutMs, undefined); // a new connection when the old one closed
        return;
      } catch (e) {
        // a batch the broker already has, beyond the ones it answers with their offsets: it is stored
        const said = brokerErrors(e);
        if (said.length > 0 && said.every((name) => name === 'DUPLICATE_SEQUENCE_NUMBER')) return;
        lastError = e;
        if (this.failure !== undefined) throw this.failure;
        if (!resendable(e) || Date.now() + delay > deadline) throw this.fail(this.sendError(request, e, true));
      }
    }
  }

  /** A failed request as the sink's error, with what the broker answered. */
  private sendError(request: Request, error: unknown, resent = false): KafkaSinkError {
    const said = brokerErrors(error);
    const answered = said.length === 0 ? '' : ` (the broker answered ${said.join(', ')})`;
    return wrapClientError(error, `sending ${request.messages} message(s) to Kafka${answered}${resent ? ', resent for up to ' + RESEND_BUDGET_MS / 1000 + ' s' : ''}`, this.settings.brokersText);
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

/** Bytes of the messages' keys and values. */
function messageBytes(messages: readonly ProducerMessage[]): number {
  let bytes = 0;
  for (const m of messages) bytes += (m.key?.length ?? 0) + (m.value?.length ?? 0);
  return bytes;
}

function newRecovery(): Recovery {
  let end!: () => void;
  const over = new Promise<void>((resolve) => (end = resolve));
  return { failed: [], over, end, resending: false };
}

/**
 * One Produce v7 request: no transactional id, acks, timeout, then per topic its partitions' record batches. With
 * `frame`, the connection's join of the request goes into it (its record batches are there already).
 */
function produce(connection: Connection, request: Request, acks: number, timeoutMs: number, frame: Buffer | undefined): Promise<unknown> {
  const body = (): Writer => {
    const writer = Writer.create().appendInt16(-1).appendInt16(acks).appendInt32(timeoutMs).appendInt32(request.topics.size);
    for (const [topic, partitions] of request.topics) {
      writer.appendString(topic, false).appendInt32(partitions.length);
      // the batches go in as they are: the connection joins the request into one buffer (the frame, where they are)
      for (const { partition, batch } of partitions) writer.appendInt32(partition).appendInt32(batch.length).append(batch);
    }
    return writer;
  };
  return new Promise((resolve, reject) => {
    const send = (): void =>
      connection.send(PRODUCE_API_KEY, PRODUCE_VERSION, body, produceV7.parseResponse, false, false, (error: Error | null | undefined, response: unknown) => (error ? reject(error) : resolve(response)));
    if (frame === undefined) return send();
    let batchBytes = 0;
    for (const partitions of request.topics.values()) for (const { batch } of partitions) batchBytes += batch.length;
    RequestFrames.joinInto(frame, batchBytes, send);
  });
}
