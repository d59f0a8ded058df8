import { crc32c } from '@node-rs/crc32';
import { compressionsAlgorithms } from '@platformatic/kafka';
import type { Compression } from '../config.js';
import type { ProducerMessage } from './producer.js';

/**
 * Kafka's record batch (magic 2), written in one pass into one buffer of the exact size: the 61-byte header, then
 * the records (each: length, attributes, timestamp delta, offset delta, key, value, no headers; lengths as
 * zigzag varints). The client it replaces built a writer and its buffers per record and copied the batch twice
 * more; this costs one copy of each key and value and one checksum (CRC-32C, from attributes to the end).
 */
export interface BatchProducer {
  /** The idempotent producer's id and epoch (InitProducerId); -1n and -1 for a producer without idempotence. */
  readonly producerId: bigint;
  readonly producerEpoch: number;
}

export const BATCH_HEADER_BYTES = 61;
/** Where the checksummed part begins (attributes): after base offset 8, length 4, leader epoch 4, magic 1, crc 4. */
const CRC_FROM = 21;
const MAGIC = 2;

/** Bytes of a varint holding `u` (unsigned, < 2^35). */
function varintBytes(u: number): number {
  return u < 0x80 ? 1 : u < 0x4000 ? 2 : u < 0x200000 ? 3 : u < 0x10000000 ? 4 : 5;
}

/** Zigzag of a length or delta (≥ -1): -1 → 1, n → 2n. */
function zigzag(n: number): number {
  return n < 0 ? -2 * n - 1 : 2 * n;
}

function writeVarint(out: Buffer, at: number, u: number): number {
  while (u >= 0x80) {
    out[at++] = (u & 0x7f) | 0x80;
    u = Math.floor(u / 128);
  }
  out[at++] = u;
  return at;
}

/** Bytes of the record of `m` at offset delta `delta`, without its own length prefix. */
function recordBodyBytes(m: ProducerMessage, delta: number): number {
  const key = m.key === null ? -1 : m.key.length;
  const value = m.value === null ? -1 : m.value.length;
  // attributes, timestamp delta 0, offset delta, key length, key, value length, value, header count 0
  return 1 + 1 + varintBytes(zigzag(delta)) + varintBytes(zigzag(key)) + Math.max(key, 0) + varintBytes(zigzag(value)) + Math.max(value, 0) + 1;
}

/** Writes the records of messages[from..to) at `at`; returns where they end. */
function writeRecords(out: Buffer, at: number, messages: readonly ProducerMessage[], from: number, to: number): number {
  for (let i = from; i < to; i++) {
    const m = messages[i];
    const delta = i - from;
    at = writeVarint(out, at, zigzag(recordBodyBytes(m, delta)));
    out[at++] = 0; // attributes
    out[at++] = 0; // timestamp delta: every record of the batch has the batch's timestamp
    at = writeVarint(out, at, zigzag(delta));
    if (m.key === null) out[at++] = 1;
    else {
      at = writeVarint(out, at, zigzag(m.key.length));
      at += m.key.copy(out, at);
    }
    if (m.value === null) out[at++] = 1;
    else {
      at = writeVarint(out, at, zigzag(m.value.length));
      at += m.value.copy(out, at);
    }
    out[at++] = 0; // headers
  }
  return at;
}

/** Bytes of the records of messages[from..to) (each with its length prefix). */
function recordsBytes(messages: readonly ProducerMessage[], from: number, to: number): number {
  let total = 0;
  for (let i = from; i < to; i++) {
    const body = recordBodyBytes(messages[i], i - from);
    total += varintBytes(zigzag(body)) + body;
  }
  return total;
}

/**
 * The record batch of messages[from..to) (one partition's, in order), numbered from `baseSequence` for the
 * idempotent producer, every record stamped `timestampMs`, the records compressed as configured.
 */
export function encodeRecordBatch(messages: readonly ProducerMessage[], from: number, to: number, producer: BatchProducer, baseSequence: number, timestampMs: number, compression: Compression, arena?: BatchArena): Buffer {
  const count = to - from;
  if (count <= 0) throw new RangeError(`a record batch needs at least one record (from ${from} to ${to})`);
  const recordsLength = recordsBytes(messages, from, to);
  let out: Buffer;
  let end: number;
  let attributes = 0;
  if (compression === 'none') {
    out = arena?.take(BATCH_HEADER_BYTES + recordsLength) ?? Buffer.allocUnsafe(BATCH_HEADER_BYTES + recordsLength);
    end = writeRecords(out, BATCH_HEADER_BYTES, messages, from, to);
  } else {
    const algorithm = compressionsAlgorithms[compression];
    const records = Buffer.allocUnsafe(recordsLength);
    writeRecords(records, 0, messages, from, to);
    const compressed = algorithm.compressSync(records);
    attributes |= algorithm.bitmask;
    out = arena?.take(BATCH_HEADER_BYTES + compressed.length) ?? Buffer.allocUnsafe(BATCH_HEADER_BYTES + compressed.length);
    end = BATCH_HEADER_BYTES + compressed.copy(out, BATCH_HEADER_BYTES);
  }
  if (end !== out.length) throw new RangeError(`record batch: wrote ${end} bytes of ${out.length}`);
  const timestamp = BigInt(timestampMs);
  out.writeBigInt64BE(0n, 0); // base offset: the broker assigns it
  out.writeInt32BE(out.length - 12, 8); // length: from the leader epoch on
  out.writeInt32BE(-1, 12); // partition leader epoch: set by the broker
  out.writeInt8(MAGIC, 16);
  out.writeInt16BE(attributes, 21);
  out.writeInt32BE(count - 1, 23); // last offset delta
  out.writeBigInt64BE(timestamp, 27); // first timestamp
  out.writeBigInt64BE(timestamp, 35); // max timestamp
  out.writeBigInt64BE(producer.producerId, 43);
  out.writeInt16BE(producer.producerEpoch, 51);
  out.writeInt32BE(baseSequence, 53);
  out.writeInt32BE(count, 57);
  out.writeUInt32BE(crc32c(out.subarray(CRC_FROM)) >>> 0, 17);
  return out;
}

/**
 * One buffer that a request's record batches are cut from (its frame, RequestFrames), used again once the broker
 * acknowledged them. Batches live until their acknowledgement (a failed request is resent as it was), long enough
 * for the garbage collector to move them to the old generation: allocated anew for every request, they made it run
 * a full collection every few hundred milliseconds in a Debezium backlog.
 */
export class BatchArena {
  private at = 0;

  constructor(readonly buffer: Buffer) {}

  /** `size` bytes of the arena, or undefined when it has not that much left (the caller allocates them). */
  take(size: number): Buffer | undefined {
    if (this.at + size > this.buffer.length) return undefined;
    const out = this.buffer.subarray(this.at, this.at + size);
    this.at = (this.at + size + 7) & ~7;
    return out;
  }

  /** The next batch starts exactly at `at` (a request frame lays its batches out where the request puts them). */
  seek(at: number): void {
    this.at = at;
  }
}

/** The sequence after `count` records from `sequence` (Kafka wraps sequences from 2^31 - 1 to 0). */
export function nextSequence(sequence: number, count: number): number {
  return (sequence + count) % 0x80000000;
}
