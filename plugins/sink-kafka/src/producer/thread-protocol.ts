import { KafkaSinkError, type KafkaSinkErrorCode } from '../errors.js';
import type { KafkaConfig } from '../config.js';
import type { ProducerMessage, TopicInfo, TopicSpec } from './producer.js';

/**
 * What the sink's thread and the producer's worker thread say to each other (producer-thread=worker): calls
 * with an id, each answered once. A send carries its messages packed into one ArrayBuffer that is transferred,
 * not copied: per message a 14-byte header (u16 topic index into `topics`, u32 partition, i32 key length and
 * i32 value length, -1 for null), then the key's and the value's bytes.
 */
export type ThreadCall =
  | { readonly op: 'ensureTopic'; readonly id: number; readonly topic: string; readonly spec: TopicSpec }
  | { readonly op: 'send'; readonly id: number; readonly topics: readonly string[]; readonly count: number; readonly data: ArrayBuffer }
  | { readonly op: 'close'; readonly id: number };

/** id 0 answers the start (the producer opened in the worker, or why not). */
export type ThreadReply =
  | { readonly id: number; readonly ok: true; readonly result?: TopicInfo }
  | { readonly id: number; readonly ok: false; readonly error: ThreadError };

export interface ThreadError {
  readonly code: KafkaSinkErrorCode;
  readonly message: string;
  readonly retryable: boolean;
  readonly hint: string | undefined;
  readonly details: Readonly<Record<string, unknown>> | undefined;
}

export interface ThreadStart {
  readonly config: KafkaConfig;
}

const HEADER = 14;

/** Packs messages into one buffer of its own (transferable); the topics in the order of their indexes. */
export function packMessages(messages: readonly ProducerMessage[]): { data: ArrayBuffer; topics: string[] } {
  const topics: string[] = [];
  const topicIndex = new Map<string, number>();
  let total = 0;
  for (const m of messages) total += HEADER + (m.key?.length ?? 0) + (m.value?.length ?? 0);
  // not from the pool: the whole ArrayBuffer is these messages, so it can be transferred
  const out = Buffer.allocUnsafeSlow(total);
  let at = 0;
  for (const m of messages) {
    let t = topicIndex.get(m.topic);
    if (t === undefined) {
      t = topics.length;
      topics.push(m.topic);
      topicIndex.set(m.topic, t);
    }
    out.writeUInt16LE(t, at);
    out.writeUInt32LE(m.partition, at + 2);
    out.writeInt32LE(m.key === null ? -1 : m.key.length, at + 6);
    out.writeInt32LE(m.value === null ? -1 : m.value.length, at + 10);
    at += HEADER;
    if (m.key !== null) at += m.key.copy(out, at);
    if (m.value !== null) at += m.value.copy(out, at);
  }
  return { data: out.buffer, topics };
}

/** The messages of a packed buffer, keys and values as views of it (no copy). */
export function unpackMessages(data: ArrayBuffer, topics: readonly string[], count: number): ProducerMessage[] {
  const buf = Buffer.from(data);
  const messages = new Array<ProducerMessage>(count);
  let at = 0;
  for (let i = 0; i < count; i++) {
    const topic = topics[buf.readUInt16LE(at)];
    const partition = buf.readUInt32LE(at + 2);
    const keyLength = buf.readInt32LE(at + 6);
    const valueLength = buf.readInt32LE(at + 10);
    at += HEADER;
    const key = keyLength < 0 ? null : buf.subarray(at, (at += keyLength));
    const value = valueLength < 0 ? null : buf.subarray(at, (at += valueLength));
    messages[i] = { topic, partition, key, value };
  }
  if (at !== buf.length) throw new KafkaSinkError('ErrKafkaSendFailed', `a packed produce call holds ${buf.length} bytes, ${count} message(s) read ${at}`);
  return messages;
}

export function threadError(error: unknown): ThreadError {
  if (error instanceof KafkaSinkError) return { code: error.code, message: error.message, retryable: error.retryable, hint: error.hint, details: error.details };
  return { code: 'ErrKafkaSendFailed', message: `the Kafka producer thread failed: ${(error as Error)?.message ?? String(error)}`, retryable: true, hint: undefined, details: undefined };
}

export function fromThreadError(error: ThreadError): KafkaSinkError {
  return new KafkaSinkError(error.code, error.message, { retryable: error.retryable, ...(error.hint === undefined ? {} : { hint: error.hint }), ...(error.details === undefined ? {} : { details: { ...error.details } }) });
}
