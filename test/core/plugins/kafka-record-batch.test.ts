import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { jsCRC32C, readRecordsBatch, Reader } from '@platformatic/kafka';
import { BatchArena, encodeRecordBatch, nextSequence } from '../../../plugins/sink-kafka/src/producer/record-batch.js';
import type { ProducerMessage } from '../../../plugins/sink-kafka/src/producer/producer.js';
import { supportedCompressions } from '../../../plugins/sink-kafka/src/config.js';

const producer = { producerId: 4242n, producerEpoch: 3 };

/** Messages whose key and value lengths cross each varint width (1, 2 and 3 bytes), with null keys and a tombstone. */
function messages(): ProducerMessage[] {
  const sizes = [0, 1, 63, 64, 127, 128, 8191, 8192, 70_000];
  const out: ProducerMessage[] = sizes.map((n, i) => ({ topic: 't', partition: 2, key: Buffer.from(`key-${i}`), value: Buffer.alloc(n, 97 + (i % 26)) }));
  out.push({ topic: 't', partition: 2, key: null, value: Buffer.from('no key') });
  out.push({ topic: 't', partition: 2, key: Buffer.from('deleted'), value: null });
  // enough records for offset deltas past one varint byte
  for (let i = 0; i < 200; i++) out.push({ topic: 't', partition: 2, key: Buffer.from(`k${i}`), value: Buffer.from(`v${i}`) });
  return out;
}

/** A decoded key or value as a plain Buffer (the reader gives views), null kept. */
const plain = (b: Buffer | null): Buffer | null => (b === null ? null : Buffer.from(b));

/** Decodes with @platformatic/kafka's reader: an implementation independent of the writer under test. */
function decode(batch: Buffer): ReturnType<typeof readRecordsBatch> {
  const reader = Reader.from(batch);
  const decoded = readRecordsBatch(reader);
  assert.equal(reader.position, batch.length, 'the batch is read to its end');
  return decoded;
}

describe('kafka record batch: the sink writes batches of magic 2 itself', () => {
  it('every record reads back with its key, value, offset delta and the batch header (producer id, epoch, sequence, count, timestamps)', () => {
    const all = messages();
    const batch = encodeRecordBatch(all, 0, all.length, producer, 1234, 1_700_000_000_123, 'none');
    const decoded = decode(batch);
    assert.equal(decoded.magic, 2);
    assert.equal(decoded.length, batch.length - 12);
    assert.equal(decoded.producerId, 4242n);
    assert.equal(decoded.producerEpoch, 3);
    assert.equal(decoded.firstSequence, 1234);
    assert.equal(decoded.lastOffsetDelta, all.length - 1);
    assert.equal(decoded.firstTimestamp, 1_700_000_000_123n);
    assert.equal(decoded.maxTimestamp, 1_700_000_000_123n);
    assert.equal(decoded.records.length, all.length);
    decoded.records.forEach((r, i) => {
      const m = all[i];
      assert.equal(r.offsetDelta, i);
      assert.equal(r.timestampDelta, 0n);
      // a null key or value is length -1 on the wire (the reader gives null), an empty one length 0
      assert.deepEqual(plain(r.key), m.key, `key of record ${i}`);
      assert.deepEqual(plain(r.value), m.value, `value of record ${i}`);
      assert.equal(r.headers.length, 0);
    });
  });

  it('the checksum is CRC-32C from the attributes to the end, as a plain table implementation computes it', () => {
    const all = messages();
    const batch = encodeRecordBatch(all, 0, all.length, producer, 0, 1_700_000_000_000, 'none');
    assert.equal(batch.readUInt32BE(17), jsCRC32C(batch.subarray(21)));
    batch[batch.length - 5] ^= 1; // one bit of a value
    assert.notEqual(batch.readUInt32BE(17), jsCRC32C(batch.subarray(21)));
  });

  it('a slice of the messages makes a batch of its own, deltas from 0', () => {
    const all = messages();
    const decoded = decode(encodeRecordBatch(all, 5, 9, producer, 7, 1_700_000_000_000, 'none'));
    assert.equal(decoded.records.length, 4);
    assert.deepEqual(
      decoded.records.map((r) => r.offsetDelta),
      [0, 1, 2, 3],
    );
    assert.deepEqual(plain(decoded.records[0].key), all[5].key);
    assert.throws(() => encodeRecordBatch(all, 3, 3, producer, 0, 0, 'none'), /at least one record/);
  });

  for (const compression of supportedCompressions('platformatic').filter((c) => c !== 'none')) {
    it(`compression=${compression}: the records are compressed, the attributes say so, and they read back`, () => {
      const all = messages();
      const batch = encodeRecordBatch(all, 0, all.length, producer, 9, 1_700_000_000_000, compression);
      const uncompressed = encodeRecordBatch(all, 0, all.length, producer, 9, 1_700_000_000_000, 'none');
      assert.ok(batch.length < uncompressed.length, `${batch.length} bytes compressed, ${uncompressed.length} not`);
      const decoded = decode(batch);
      assert.notEqual(decoded.attributes & 0b111, 0);
      assert.equal(batch.readUInt32BE(17), jsCRC32C(batch.subarray(21)));
      assert.equal(decoded.records.length, all.length);
      decoded.records.forEach((r, i) => assert.deepEqual(plain(r.value), all[i].value, `value of record ${i}`));
    });
  }

  it('batches cut from an arena are the same bytes, side by side without overlap; a batch the arena has no room for is allocated', () => {
    const all = messages();
    const alone = [encodeRecordBatch(all, 0, 100, producer, 0, 1_700_000_000_000, 'none'), encodeRecordBatch(all, 100, all.length, producer, 100, 1_700_000_000_000, 'none'), encodeRecordBatch(all, 0, all.length, producer, 7, 1_700_000_000_000, 'none')];
    // room for the first two, not the third
    const arena = new BatchArena(Buffer.alloc(alone[0].length + alone[1].length + 8, 0xee));
    const cut = [encodeRecordBatch(all, 0, 100, producer, 0, 1_700_000_000_000, 'none', arena), encodeRecordBatch(all, 100, all.length, producer, 100, 1_700_000_000_000, 'none', arena), encodeRecordBatch(all, 0, all.length, producer, 7, 1_700_000_000_000, 'none', arena)];
    assert.deepEqual(cut, alone);
    assert.equal(cut[0].buffer, arena.buffer.buffer, 'the first batch is a view of the arena');
    assert.equal(cut[1].buffer, arena.buffer.buffer, 'the second too');
    assert.ok(cut[1].byteOffset >= cut[0].byteOffset + cut[0].length, 'after the first');
    assert.notEqual(cut[2].buffer, arena.buffer.buffer, 'the third did not fit: a buffer of its own');
    assert.equal(decode(cut[1]).records.length, all.length - 100);
  });

  it('seek: the next batch starts exactly there (a request frame lays its batches out where the request puts them)', () => {
    const all = messages();
    const alone = encodeRecordBatch(all, 0, 100, producer, 0, 1_700_000_000_000, 'none');
    const arena = new BatchArena(Buffer.alloc(alone.length + 200, 0xee));
    arena.seek(77);
    const placed = encodeRecordBatch(all, 0, 100, producer, 0, 1_700_000_000_000, 'none', arena);
    assert.equal(placed.byteOffset - arena.buffer.byteOffset, 77);
    assert.deepEqual(placed, alone);
    assert.equal(arena.buffer[76], 0xee, 'the bytes before it are left alone');
  });

  it('sequences wrap from 2^31 - 1 to 0, as Kafka numbers them', () => {
    assert.equal(nextSequence(0, 5), 5);
    assert.equal(nextSequence(0x7fffffff, 1), 0);
    assert.equal(nextSequence(0x7ffffffe, 5), 3);
  });
});
