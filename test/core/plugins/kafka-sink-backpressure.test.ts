import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KafkaSink, parseConfig, type KafkaProducer, type ProducerMessage } from '../../../plugins/sink-kafka/src/index.js';
import type { ColumnInfo, RowChangedEvent } from '../../../src/core/sink/api.js';

const MiB = 1 << 20;
const table = { schema: 'shop', table: 'docs', tableId: 1 };
const columns: ColumnInfo[] = [
  { name: 'id', mysqlType: 'bigint', primaryKey: true, nullable: false },
  { name: 'body', mysqlType: 'varchar(8000)', primaryKey: false, nullable: true },
];
const body = 'x'.repeat(4000);
const insert = (id: number): RowChangedEvent => ({ table, commitTs: 4294967396n + BigInt(id), commitTime: 1700000000123, seq: id, kind: 'insert', columns, before: null, after: [BigInt(id), body] });

/** A broker that acknowledges a request only when the test says: what the sink holds unacknowledged can be seen. */
class HeldProducer implements KafkaProducer {
  readonly client = 'platformatic' as const;
  constructor(
    readonly sendsInFlight = 1,
    /** The topic's max.message.bytes as the broker tells it (undefined: the sink may not ask). */
    private readonly topicMaxMessageBytes?: number,
  ) {}
  /** Each request: its messages as the sink gave them (views of its slabs), and their values as they were sent. */
  readonly requests: { bytes: number; messages: readonly ProducerMessage[]; values: readonly (Buffer | null)[]; acknowledge: () => void }[] = [];
  acknowledged = 0;

  ensureTopic(): Promise<{ partitions: number; maxMessageBytes: number | undefined }> {
    return Promise.resolve({ partitions: 3, maxMessageBytes: this.topicMaxMessageBytes });
  }

  send(messages: readonly ProducerMessage[]): Promise<void> {
    const bytes = messages.reduce((n, m) => n + (m.value?.length ?? 0) + (m.key?.length ?? 0), 0);
    // the values as sent, as a real producer writes them into its request: once a request is acknowledged the sink
    // lets its messages go, and their slab is written again
    const values = messages.map((m) => (m.value === null ? null : Buffer.from(m.value)));
    return new Promise((resolve) => this.requests.push({ bytes, messages, values, acknowledge: resolve }));
  }

  acknowledgeNext(): void {
    this.requests[this.acknowledged++].acknowledge();
  }

  /** Acknowledges request i, whatever came before it (a broker answering out of order, from the sink's view). */
  acknowledgeOne(i: number): void {
    this.requests[i].acknowledge();
    this.acknowledged++;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** A debezium sink on `producer`, with a fixed clock. */
function debeziumSink(producer: KafkaProducer): KafkaSink {
  const logger = { debug() {}, info() {}, warn() {}, error() {} };
  return new KafkaSink({
    config: parseConfig(new URL('kafka://127.0.0.1:9092/docs?protocol=debezium')),
    protocol: 'debezium',
    rules: [],
    producer,
    context: { signal: new AbortController().signal, changefeedId: 'cf', logger },
    encoder: { now: () => 1700000000999 },
  });
}

/** Lets the sink's promise chains run. */
const settle = async (): Promise<void> => {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
};

describe('kafka sink backpressure: bounded in bytes, whatever the size of a message', () => {
  it('a call of 2,000 Debezium messages of about 6 KiB (12 MiB) to a topic whose limit the sink may not ask is cut into requests of at most about 768 KiB, and holds at most about 4 MiB not yet acknowledged; every row arrives once, in order', async () => {
    const producer = new HeldProducer();
    const sink = debeziumSink(producer);
    // how far the sink has encoded: each row tells when it is read
    let encoded = 0;
    const rows = Array.from({ length: 2000 }, (_, i) => {
      const row = insert(i + 1);
      return Object.defineProperty(row, 'after', { get: () => ((encoded = Math.max(encoded, i + 1)), [BigInt(i + 1), body]) });
    });
    /** Bytes encoded and not yet acknowledged by the broker. */
    const held = (): number => {
      const acknowledgedRows = producer.requests.slice(0, producer.acknowledged).reduce((n, r) => n + r.messages.length, 0);
      const messageBytes = producer.requests[0].bytes / producer.requests[0].messages.length;
      return (encoded - acknowledgedRows) * messageBytes;
    };
    let written = false;
    const writing = sink.writeRows(table, rows).then(() => (written = true));
    await settle();
    assert.equal(written, false, 'the call waits for the broker');
    assert.equal(producer.requests.length, 1, 'one request at a time');
    let peak = held();
    while (!written) {
      producer.acknowledgeNext();
      await settle();
      peak = Math.max(peak, held());
    }
    await writing;
    const flushed = sink.flush(rows.at(-1)!.commitTs);
    await settle();
    while (producer.acknowledged < producer.requests.length) {
      producer.acknowledgeNext();
      await settle();
    }
    await flushed;
    // the bound, the request just cut and the rows queued for the next one
    assert.ok(peak <= 4 * MiB + 2 * 0.8 * MiB, `at most ${(peak / MiB).toFixed(1)} MiB encoded and not acknowledged`);
    assert.ok(producer.requests.length >= 15, `${producer.requests.length} requests`);
    for (const r of producer.requests) assert.ok(r.bytes <= 0.8 * MiB, `a request of ${(r.bytes / MiB).toFixed(1)} MiB`);
    const ids = producer.requests.flatMap((r) => r.values.map((value) => (JSON.parse(value!.toString()) as { payload: { after: { id: number } } }).payload.after.id));
    assert.deepEqual(ids, rows.map((_, i) => i + 1), 'every row once, in order');
    await sink.close();
  });

  it("requests follow the topic's max.message.bytes: up to 2 MiB into a topic of 10 MiB, under 768 KiB into one of 1 MB, a partition's batch under the limit whatever the message size", async () => {
    /** Writes the rows, acknowledging every request as it comes; returns the requests' bytes. */
    const requestsOf = async (topicMax: number | undefined, rows: readonly RowChangedEvent[]): Promise<number[]> => {
      const producer = new HeldProducer(5, topicMax);
      const sink = debeziumSink(producer);
      let done = false;
      const writing = sink.writeRows(table, rows).then(() => sink.flush(rows.at(-1)!.commitTs)).then(() => (done = true));
      while (!done) {
        await settle();
        while (producer.acknowledged < producer.requests.length) producer.acknowledgeNext();
      }
      await writing;
      await sink.close();
      const ids = producer.requests.flatMap((r) => r.values.map((value) => (JSON.parse(value!.toString()) as { payload: { after: { id: number } } }).payload.after.id));
      assert.deepEqual(ids, rows.map((r) => Number(r.after![0])), 'every row once, in order');
      return producer.requests.map((r) => r.bytes);
    };
    const narrow = Array.from({ length: 1000 }, (_, i) => insert(i + 1));
    const created = await requestsOf(10 * MiB, narrow);
    assert.ok(created.every((b) => b <= 2.05 * MiB), `requests of ${created.map((b) => (b / MiB).toFixed(2)).join(', ')} MiB`);
    assert.ok(created.filter((b) => b > 1.5 * MiB).length >= 2, `requests of ${created.map((b) => (b / MiB).toFixed(2)).join(', ')} MiB: the topic takes 2 MiB batches`);
    const brokerDefault = await requestsOf(1_048_588, narrow);
    assert.ok(brokerDefault.every((b) => b <= 0.78 * MiB), `requests of ${brokerDefault.map((b) => (b / MiB).toFixed(2)).join(', ')} MiB into a topic of 1 MB`);
    // messages of about 100 KiB into a topic of 256 KiB: a batch never passes it (one of three quarters, plus one more, would)
    const big = Array.from({ length: 40 }, (_, i) => ({ ...insert(i + 1), after: [BigInt(i + 1), 'y'.repeat(50_000)] }));
    const small = await requestsOf(256 * 1024, big);
    assert.ok(small.every((b) => b <= 256 * 1024), `requests of ${small.map((b) => Math.round(b / 1024)).join(', ')} KiB into a topic of 256 KiB`);
  });

  it('a producer that takes overlapping sends gets requests before the first is acknowledged; flush resolves only when every request is, in whatever order they are', async () => {
    const producer = new HeldProducer(5);
    const sink = debeziumSink(producer);
    const rows = Array.from({ length: 600 }, (_, i) => insert(i + 1));
    await sink.writeRows(table, rows);
    await settle();
    assert.ok(producer.requests.length >= 3, `${producer.requests.length} requests sent before any acknowledgement`);
    let flushed = false;
    const flushing = sink.flush(rows.at(-1)!.commitTs).then(() => (flushed = true));
    await settle();
    const sent = producer.requests.length;
    // every request but the first acknowledged: the rows of the first are not, so the flush must wait
    for (let i = sent - 1; i >= 1; i--) producer.acknowledgeOne(i);
    await settle();
    assert.equal(flushed, false, 'a flush does not resolve while an earlier request is unacknowledged');
    producer.acknowledgeOne(0);
    await settle();
    // the rows queued after the last full request went out once the first was acknowledged
    for (let i = sent; i < producer.requests.length; i++) {
      assert.equal(flushed, false, 'the flush waits for the request of its last rows');
      producer.acknowledgeOne(i);
      await settle();
    }
    assert.equal(flushed, true);
    await flushing;
    const ids = producer.requests.flatMap((r) => r.values.map((value) => (JSON.parse(value!.toString()) as { payload: { after: { id: number } } }).payload.after.id));
    assert.deepEqual(ids, rows.map((_, i) => i + 1), 'every row once, in order of the requests');
    await sink.close();
  });

  it('under load a flush sends less than a request only when the first request in flight is acknowledged, together with the rows written meanwhile', async () => {
    const producer = new HeldProducer(5);
    const sink = debeziumSink(producer);
    const rows = Array.from({ length: 130 }, (_, i) => insert(i + 1));
    await sink.writeRows(table, rows.slice(0, 60));
    let first = false;
    const firstFlush = sink.flush(rows[59].commitTs).then(() => (first = true));
    await settle();
    assert.equal(producer.requests.length, 1, 'nothing in flight: the flush sends at once');
    await sink.writeRows(table, rows.slice(60, 90));
    let second = false;
    const secondFlush = sink.flush(rows[89].commitTs).then(() => (second = true));
    await settle();
    assert.equal(producer.requests.length, 1, 'a request in flight: the second flush waits for it');
    await sink.writeRows(table, rows.slice(90));
    producer.acknowledgeOne(0);
    await settle();
    assert.equal(first, true);
    assert.equal(second, false);
    assert.equal(producer.requests.length, 2);
    assert.equal(producer.requests[1].messages.length, 70, "the second request carries the second flush's rows and those written while it waited");
    producer.acknowledgeOne(1);
    await settle();
    assert.equal(second, true);
    await Promise.all([firstFlush, secondFlush]);
    await sink.close();
  });

  it('a message stays as encoded until the broker acknowledged it; then its slab is written again by later messages', async () => {
    const producer = new HeldProducer(5);
    const sink = debeziumSink(producer);
    /** Each message's bytes when the producer got it. */
    const copies = new Map<ProducerMessage, Buffer>();
    const rows = Array.from({ length: 6000 }, (_, i) => ({ ...insert(i + 1), after: [BigInt(i + 1), `row ${i + 1}`] }));
    let written = false;
    const writing = sink.writeRows(table, rows).then(() => (written = true));
    let checked = 0;
    for (;;) {
      await settle();
      // every request not yet acknowledged still holds the bytes it was given
      for (let i = producer.acknowledged; i < producer.requests.length; i++) {
        for (const m of producer.requests[i].messages) {
          const copy = copies.get(m) ?? Buffer.from(m.value!);
          copies.set(m, copy);
          assert.ok(m.value!.equals(copy), `request ${i}: a message changed before it was acknowledged`);
          checked++;
        }
      }
      if (producer.acknowledged < producer.requests.length) producer.acknowledgeNext();
      else if (written) break;
    }
    await writing;
    const flushing = sink.flush(rows.at(-1)!.commitTs);
    await settle();
    while (producer.acknowledged < producer.requests.length) producer.acknowledgeNext();
    await flushing;
    assert.ok(checked > 6000, `${checked} checks`);
    const ids = producer.requests.flatMap((r) => r.messages.map((m) => m.value!));
    assert.equal(ids.length, 6000);
    // slabs of acknowledged messages were used again: fewer slabs than 6,000 messages of ~2.5 KiB would fill
    const slabs = new Set(ids.map((v) => v.buffer));
    const fresh = Math.ceil(ids.reduce((n, v) => n + v.length, 0) / (64 * 1024));
    assert.ok(slabs.size < fresh / 2, `${slabs.size} slabs for ${fresh} slabs' worth of messages`);
    await sink.close();
  });
});
