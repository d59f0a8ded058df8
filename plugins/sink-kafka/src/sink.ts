import type { ColumnValue, DDLEvent, RowChangedEvent, Sink, SinkContext, TableName, Ts } from 'tidemark/sink';
import { DEFAULT_PARTITION_NUM, type KafkaConfig, type Protocol } from './config.js';
import { DispatchRouter, TablePartitionDispatcher, type DispatchRule, type PartitionDispatcher } from './dispatcher/index.js';
import { createEncoder, packOpenProtocol, type EncodedEvent, type EncoderOptions, type RowEncoder } from './encoder/index.js';
import { MessageBytes } from './encoder/message-bytes.js';
import { KafkaSinkError } from './errors.js';
import type { KafkaProducer, ProducerMessage } from './producer/index.js';

/**
 * Bytes and messages per produce request. A request carries one record batch per partition, and a topic's
 * max.message.bytes bounds a batch: a partition's share of a request stays under three quarters of the topic's limit
 * as the broker told it (up to CHUNK_BYTES), or under PARTITION_CHUNK_BYTES when the sink could not ask (below the
 * brokers' default 1 MB). Fewer, bigger requests cost the broker less: Debezium's 3 KiB messages went 1.11x faster
 * (median of 9 pairs) into a topic the sink created (10 MiB limit) with requests of 2 MiB than of 768 KiB, at
 * 10-20 MiB more peak RSS (BENCHMARKS.md, session 28).
 */
const CHUNK_BYTES = 2048 * 1024;
const PARTITION_CHUNK_BYTES = 768 * 1024;
const CHUNK_MESSAGES = 8192;
/**
 * Bytes of messages cut into produce requests and not yet acknowledged at which writeRows waits (backpressure):
 * about 5 requests, as many as the producer keeps in flight (client=platformatic), a bound in bytes whatever the
 * size of a message (a Debezium message with its schema is about 3 KiB; counting requests, 9 of them held 28 MiB).
 */
const MAX_UNACKNOWLEDGED_BYTES = 4 << 20;
/** Watermarks at most this often (TiCDC: about once a second). */
export const CHECKPOINT_INTERVAL_MS = 1000;
/** How long close() tries to deliver what was accepted before it hard-stops. */
const CLOSE_DEADLINE_MS = 3000;
/** Kafka's per-record overhead counted against max-message-bytes (record batch v2 headers, roughly). */
const RECORD_OVERHEAD = 70;

export interface KafkaSinkOptions {
  readonly config: KafkaConfig;
  readonly protocol: Protocol;
  readonly rules: readonly DispatchRule[];
  readonly producer: KafkaProducer;
  readonly context: SinkContext;
  readonly encoder?: Partial<EncoderOptions>;
  /** Minimum time between watermarks (default CHECKPOINT_INTERVAL_MS). */
  readonly checkpointIntervalMs?: number;
}

export interface KafkaSinkStats {
  protocol: Protocol;
  client: string;
  rows: number;
  messages: number;
  bytes: number;
  flushes: number;
  checkpointTs: string;
  topics: Record<string, number>;
}

interface OpenBatch {
  events: EncodedEvent[];
  bytes: number;
}

/**
 * The Kafka sink: rows are encoded in the changefeed's order, routed by the dispatchers to a topic and a
 * partition, and queued; chunks of the queue go to the producer as requests, several in flight when the producer
 * takes overlapping sends (it keeps each partition's order) and one at a time otherwise, while writeRows keeps
 * encoding. flush(upTo) sends what is queued and resolves when the broker acknowledged all of it — every change
 * ≤ upTo included. A failed send fails the sink: every later call rejects with that error (retryable: the
 * changefeed restarts from its checkpoint).
 */
export class KafkaSink implements Sink {
  private readonly encoder: RowEncoder;
  /** The encoder's message bytes: messages are held while queued, let go once acknowledged (their slabs are used again). */
  private readonly bytes = new MessageBytes();
  private readonly router: DispatchRouter;
  private readonly partitionCounts = new Map<string, number>();
  /** Per topic: max-message-bytes, lowered to the topic's max.message.bytes when that is smaller (as TiCDC). */
  private readonly maxBytes = new Map<string, number>();
  private readonly usedTopics = new Set<string>();
  private readonly openBatches = new Map<string, (OpenBatch | undefined)[]>();
  private queue: ProducerMessage[] = [];
  private queueBytes = 0;
  /** Per topic, a partition's share of a request at most and the bytes queued for each partition (see CHUNK_BYTES). */
  private readonly partitionShares = new Map<string, { readonly limit: number; readonly bytes: number[] }>();
  /** Messages queued since the start, and of them cut into requests: a flush waits until its messages are cut. */
  private enqueued = 0;
  private cut = 0;
  private tail: Promise<void> = Promise.resolve();
  private inFlight: Promise<void>[] = [];
  /** Bytes of the requests in inFlight (cut, not yet acknowledged). */
  private inFlightBytes = 0;
  private failure: KafkaSinkError | undefined;
  private closed = false;
  private lastCheckpointTs: Ts = -1n;
  private lastCheckpointAt = 0;
  private readonly counters = { rows: 0, messages: 0, bytes: 0, flushes: 0 };
  private readonly onAbort: () => void;
  /** debezium: a tombstone after each delete (tombstones-on-delete). */
  private readonly tombstones: boolean;
  /** debezium: the schema-change topic, named after the topic prefix (the changefeed id, `source.name`). */
  readonly schemaChangeTopic: string;

  constructor(private readonly options: KafkaSinkOptions) {
    const { config, protocol } = options;
    this.encoder = createEncoder(protocol, { enableTidbExtension: config.enableTidbExtension, serverName: options.context.changefeedId, ...options.encoder, bytes: this.bytes });
    this.tombstones = protocol === 'debezium' && config.tombstonesOnDelete;
    // the topic prefix, with characters a topic name cannot hold as '_' (as Debezium's topic naming does)
    this.schemaChangeTopic = config.schemaChangeTopic ?? (options.encoder?.serverName ?? options.context.changefeedId).replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 249);
    this.router = new DispatchRouter(options.rules, config.topic, options.context.dispatchers);
    this.onAbort = () => {
      this.failure ??= new KafkaSinkError('ErrKafkaSinkClosed', `kafka sink of changefeed ${options.context.changefeedId} stopped: ${String((options.context.signal.reason as Error | undefined)?.message ?? 'aborted')}`);
    };
    options.context.signal.addEventListener('abort', this.onAbort, { once: true });
  }

  get protocol(): Protocol {
    return this.options.protocol;
  }

  /** The topic a table's rows go to (the dispatcher rules' topic expression, or the URI's topic). */
  topicOf(table: Pick<TableName, 'schema' | 'table'>): string {
    return this.router.topicOf(table);
  }

  /** May buffer; rows of one table in commit order. Rejects on a row larger than max-message-bytes (naming it). */
  async writeRows(table: TableName, rows: readonly RowChangedEvent[]): Promise<void> {
    this.assertUsable();
    if (rows.length === 0) return;
    const route = this.router.route(table.schema, table.table);
    const partitions = this.partitionCounts.get(route.topic) ?? (await this.ensureTopic(route.topic));
    const topicMax = this.maxBytes.get(route.topic);
    const max = topicMax ?? this.options.config.maxMessageBytes;
    const edges = this.encoder.encodeSnapshotEdge !== undefined;
    for (const row of rows) {
      const snapshot = row.snapshot;
      if (edges && (snapshot === 'first' || snapshot === 'only')) this.snapshotEdge(route, partitions, row, 'start');
      const event = this.encoder.encodeRow(row);
      const size = event.value.length + (event.key?.length ?? 0) + RECORD_OVERHEAD;
      if (size > max) throw tooLarge(row, size, topicMax === undefined ? `max-message-bytes=${max}` : `max.message.bytes=${max} of topic "${route.topic}"`, max, this.options.protocol);
      const partition = route.partition.dispatch(row, partitions);
      if (this.encoder.batching) this.appendBatched(route.topic, partition, event);
      else this.enqueue({ topic: route.topic, partition, key: event.key, value: event.value });
      if (this.tombstones && row.kind === 'delete' && event.key !== null) this.enqueue({ topic: route.topic, partition, key: event.key, value: null });
      if (edges && (snapshot === 'last' || snapshot === 'only')) this.snapshotEdge(route, partitions, row, 'complete');
      // a request as soon as there is one's worth, within a call too: a call of a thousand 3 KiB messages made one of 3 MiB
      if (this.queueBytes >= CHUNK_BYTES || this.queue.length >= CHUNK_MESSAGES) {
        this.cutChunk();
        this.assertUsable(); // a request before failed: the call stops here
      }
      // a request cut here, or while queueing (a partition's batch would have passed its share), waits for room
      if (this.inFlightBytes > MAX_UNACKNOWLEDGED_BYTES && this.inFlight.length > 1) await this.waitForRoom();
    }
    this.counters.rows += rows.length;
  }

  /** Waits while the requests not yet acknowledged hold too many bytes (all but the last one). */
  private async waitForRoom(): Promise<void> {
    while (this.inFlightBytes > MAX_UNACKNOWLEDGED_BYTES && this.inFlight.length > 1) {
      await this.inFlight[0];
      this.assertUsable();
    }
    this.assertUsable();
  }

  /**
   * The only acknowledgement: sends everything queued and resolves once the broker acknowledged it. What is queued
   * is less than a request: sent at once when no request is in flight, else when the first one in flight is
   * acknowledged, with the rows written meanwhile (under a steady load, requests of what arrived during a round
   * trip rather than one per flush; a small request costs the capture and the broker about as much as a full one).
   */
  async flush(_upTo: Ts): Promise<void> {
    this.assertUsable();
    this.closeBatches();
    const upTo = this.enqueued;
    while (this.cut < upTo && this.inFlight.length > 0) {
      await this.inFlight[0];
      this.assertUsable();
    }
    if (this.cut < upTo) this.cutChunk();
    await this.tail;
    this.counters.flushes++;
    this.assertUsable();
  }

  /** At the DDL barrier (rows before it flushed): canal-json to partition 0, the others to every partition; resolves when acknowledged. */
  async writeDDL(ddl: DDLEvent): Promise<void> {
    this.assertUsable();
    if (this.options.protocol === 'debezium') {
      // Debezium writes schema changes to the schema-change topic only (named after the topic prefix), never to data topics
      if (!this.options.config.includeSchemaChanges) return;
      const event = this.encoder.encodeDDL(ddl);
      const topic = this.schemaChangeTopic;
      if (!this.partitionCounts.has(topic)) await this.ensureTopic(topic);
      this.closeBatches();
      this.enqueueEvent(topic, 0, event);
      await this.flush(ddl.commitTs);
      return;
    }
    const event = this.encoder.encodeDDL(ddl);
    const topics = new Set(ddl.tables.length === 0 ? [this.options.config.topic] : ddl.tables.map((t) => this.router.topicOf(t)));
    if (ddl.kind === 'create-database' || ddl.kind === 'drop-database') topics.add(this.options.config.topic);
    this.closeBatches();
    for (const topic of topics) {
      const partitions = this.partitionCounts.get(topic) ?? (await this.ensureTopic(topic));
      const targets = this.encoder.ddlToAllPartitions ? partitions : 1;
      for (let p = 0; p < targets; p++) this.enqueueEvent(topic, p, event);
    }
    await this.flush(ddl.commitTs);
  }

  /**
   * A watermark to every partition of every topic used (and those of `tables`), for protocols that have one
   * (canal-json with enable-tidb-extension, open-protocol). Never goes backwards; at most once a second.
   */
  async writeCheckpoint(ts: Ts, tables: readonly TableName[]): Promise<void> {
    this.assertUsable();
    if (ts <= this.lastCheckpointTs) return;
    const now = Date.now();
    if (now - this.lastCheckpointAt < (this.options.checkpointIntervalMs ?? CHECKPOINT_INTERVAL_MS)) return;
    const event = this.encoder.encodeCheckpoint(ts);
    if (event === null) return;
    this.lastCheckpointTs = ts;
    this.lastCheckpointAt = now;
    const topics = new Set(this.usedTopics);
    for (const t of tables) topics.add(this.router.topicOf(t));
    if (topics.size === 0) topics.add(this.options.config.topic);
    this.closeBatches();
    for (const topic of topics) {
      const partitions = this.partitionCounts.get(topic) ?? (await this.ensureTopic(topic));
      for (let p = 0; p < partitions; p++) this.enqueueEvent(topic, p, event);
    }
    await this.flush(ts);
  }

  /** Healthcheck: the default topic exists (or is created) and its metadata answers. */
  async check(signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    this.assertUsable();
    await this.ensureTopic(this.options.config.topic);
  }

  stats(): KafkaSinkStats {
    return {
      protocol: this.options.protocol,
      client: this.options.producer.client,
      ...this.counters,
      checkpointTs: String(this.lastCheckpointTs < 0n ? 0n : this.lastCheckpointTs),
      topics: Object.fromEntries(this.partitionCounts),
    };
  }

  /** Idempotent: stops intake, delivers what was accepted within a short deadline, then closes the client. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.options.context.signal.removeEventListener('abort', this.onAbort);
    if (this.failure === undefined) {
      this.closeBatches();
      this.cutChunk();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.tail, new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_DEADLINE_MS)))]);
      clearTimeout(timer);
    }
    this.failure ??= new KafkaSinkError('ErrKafkaSinkClosed', 'the kafka sink is closed');
    await this.options.producer.close();
  }

  private assertUsable(): void {
    if (this.closed && this.failure === undefined) throw new KafkaSinkError('ErrKafkaSinkClosed', 'the kafka sink is closed');
    if (this.failure !== undefined) throw this.failure;
  }

  private async ensureTopic(topic: string): Promise<number> {
    const { config } = this.options;
    const info = await this.options.producer.ensureTopic(topic, {
      create: config.autoCreateTopic,
      partitions: config.partitionNum ?? DEFAULT_PARTITION_NUM,
      replicationFactor: config.replicationFactor,
      maxMessageBytes: config.maxMessageBytes,
    });
    if (config.partitionNum !== undefined && info.partitions < config.partitionNum) {
      throw new KafkaSinkError('ErrKafkaTopicInvalid', `topic "${topic}" has ${info.partitions} partition(s), fewer than partition-num=${config.partitionNum}`, { hint: 'lower partition-num or add partitions to the topic' });
    }
    const count = config.partitionNum ?? info.partitions;
    if (info.maxMessageBytes !== undefined && info.maxMessageBytes < config.maxMessageBytes) {
      this.options.context.logger.warn('kafka topic accepts smaller messages than max-message-bytes; using the topic limit', { topic, topicMaxMessageBytes: info.maxMessageBytes, maxMessageBytes: config.maxMessageBytes });
      this.maxBytes.set(topic, info.maxMessageBytes);
    }
    this.partitionCounts.set(topic, count);
    const limit = info.maxMessageBytes === undefined ? PARTITION_CHUNK_BYTES : Math.max(1, Math.min(CHUNK_BYTES, Math.floor((info.maxMessageBytes * 3) / 4)));
    this.partitionShares.set(topic, { limit, bytes: this.partitionShares.get(topic)?.bytes ?? [] });
    return count;
  }

  /**
   * A protocol's message before a table's first snapshot row or after its last (maxwell's bootstrap-start and
   * bootstrap-complete), queued in order with the rows. Under the `table` dispatcher (the default) it goes to the
   * partition of the table's rows; under any other (index-value, columns, ts, a plugin's) the table's snapshot rows
   * spread over the partitions, so it goes to every partition of the topic: each partition's share is bracketed.
   */
  private snapshotEdge(route: { readonly topic: string; readonly partition: PartitionDispatcher }, partitions: number, row: RowChangedEvent, edge: 'start' | 'complete'): void {
    const event = this.encoder.encodeSnapshotEdge!(row, edge);
    if (route.partition instanceof TablePartitionDispatcher) {
      this.enqueueInOrder(route.topic, route.partition.dispatch(row, partitions), event);
      return;
    }
    for (let p = 0; p < partitions; p++) this.enqueueInOrder(route.topic, p, event);
  }

  /** Queues an event behind the rows already queued for its partition (into the open batch when the protocol batches). */
  private enqueueInOrder(topic: string, partition: number, event: EncodedEvent): void {
    if (this.encoder.batching) this.appendBatched(topic, partition, event);
    else this.enqueue({ topic, partition, key: event.key, value: event.value });
  }

  private enqueue(message: ProducerMessage): void {
    const bytes = (message.value?.length ?? 0) + (message.key?.length ?? 0) + RECORD_OVERHEAD;
    let shares = this.partitionShares.get(message.topic);
    if (shares === undefined) this.partitionShares.set(message.topic, (shares = { limit: PARTITION_CHUNK_BYTES, bytes: [] }));
    let share = shares.bytes[message.partition] ?? 0;
    // the partition's batch would pass its share: what is queued goes first (a batch passes it only by being one message)
    if (share > 0 && share + bytes > shares.limit) {
      this.cutChunk();
      share = 0;
    }
    share += bytes;
    shares.bytes[message.partition] = share;
    this.bytes.hold(message.key);
    this.bytes.hold(message.value);
    this.usedTopics.add(message.topic);
    this.queue.push(message);
    this.enqueued++;
    this.queueBytes += bytes;
  }

  private enqueueEvent(topic: string, partition: number, event: EncodedEvent): void {
    if (this.encoder.batching) {
      const packed = packOpenProtocol([event]);
      this.enqueue({ topic, partition, key: packed.key, value: packed.value });
    } else this.enqueue({ topic, partition, key: event.key, value: event.value });
  }

  private appendBatched(topic: string, partition: number, event: EncodedEvent): void {
    let batches = this.openBatches.get(topic);
    if (batches === undefined) this.openBatches.set(topic, (batches = []));
    const eventBytes = event.value.length + (event.key?.length ?? 0) + 16;
    let batch = batches[partition];
    if (batch !== undefined && (batch.events.length >= this.options.config.maxBatchSize || batch.bytes + eventBytes > (this.maxBytes.get(topic) ?? this.options.config.maxMessageBytes))) {
      this.sealBatch(topic, partition, batch);
      batch = undefined;
    }
    if (batch === undefined) batches[partition] = batch = { events: [], bytes: 8 + RECORD_OVERHEAD };
    this.bytes.hold(event.key);
    this.bytes.hold(event.value);
    batch.events.push(event);
    batch.bytes += eventBytes;
    if (batch.events.length >= this.options.config.maxBatchSize) {
      this.sealBatch(topic, partition, batch);
      batches[partition] = undefined;
    }
  }

  private sealBatch(topic: string, partition: number, batch: OpenBatch): void {
    const packed = packOpenProtocol(batch.events);
    for (const event of batch.events) {
      this.bytes.release(event.key);
      this.bytes.release(event.value);
    }
    this.enqueue({ topic, partition, key: packed.key, value: packed.value });
  }

  private closeBatches(): void {
    for (const [topic, batches] of this.openBatches) {
      for (let p = 0; p < batches.length; p++) {
        const batch = batches[p];
        if (batch !== undefined) this.sealBatch(topic, p, batch);
        batches[p] = undefined;
      }
    }
  }

  /**
   * Moves the queue into one produce request: sent at once when the producer takes overlapping sends, else after
   * the one before is acknowledged. `tail` settles once it and every request before it are acknowledged.
   */
  private cutChunk(): void {
    if (this.queue.length === 0) return;
    const chunk = this.queue;
    const bytes = this.queueBytes;
    this.queue = [];
    this.queueBytes = 0;
    for (const shares of this.partitionShares.values()) shares.bytes.fill(0);
    this.cut += chunk.length;
    const send = async (): Promise<void> => {
      if (this.failure !== undefined) return;
      try {
        await this.options.producer.send(chunk);
        // acknowledged: nothing reads these messages any more
        for (const m of chunk) {
          this.bytes.release(m.key);
          this.bytes.release(m.value);
        }
        this.counters.messages += chunk.length;
        this.counters.bytes += bytes;
      } catch (error) {
        this.failure ??= error instanceof KafkaSinkError ? error : new KafkaSinkError('ErrKafkaSendFailed', `sending to Kafka failed: ${(error as Error).message}`, { cause: error });
        this.options.context.logger.warn('kafka sink send failed', { code: this.failure.code, message: this.failure.message });
      }
    };
    const previous = this.tail;
    const sent = this.options.producer.sendsInFlight > 1 ? Promise.all([send(), previous]).then(() => undefined) : previous.then(send);
    this.tail = sent;
    this.inFlight.push(sent);
    this.inFlightBytes += bytes;
    void sent.then(() => {
      this.inFlight = this.inFlight.filter((p) => p !== sent);
      this.inFlightBytes -= bytes;
    });
  }
}

function keyText(row: RowChangedEvent): string {
  const values: readonly ColumnValue[] = (row.kind === 'delete' ? row.before : row.after) ?? [];
  const parts: string[] = [];
  row.columns.forEach((c, i) => {
    if (!c.primaryKey) return;
    const v = values[i] ?? null;
    parts.push(`${c.name}=${v === null ? 'NULL' : Buffer.isBuffer(v) ? `0x${v.toString('hex')}` : String(v)}`);
  });
  return parts.length === 0 ? '(no primary key)' : parts.join(', ');
}

function tooLarge(row: RowChangedEvent, size: number, limit: string, max: number, protocol: Protocol): KafkaSinkError {
  const table = `${row.table.schema}.${row.table.table}`;
  const key = keyText(row);
  return new KafkaSinkError('ErrKafkaMessageTooLarge', `row ${row.kind} of ${table} with key ${key} at commit ts ${row.commitTs} is ${size} bytes as ${protocol}, over ${limit}`, {
    hint: "raise max-message-bytes in the sink URI (and the topic's max.message.bytes), or shrink the row",
    details: { table, key, size, maxMessageBytes: max },
  });
}
