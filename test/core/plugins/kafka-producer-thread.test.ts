import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../../plugins/sink-kafka/src/index.js';
import { fromThreadError, packMessages, threadError, unpackMessages } from '../../../plugins/sink-kafka/src/producer/thread-protocol.js';
import { KafkaSinkError } from '../../../plugins/sink-kafka/src/errors.js';

describe('the Kafka producer thread: what crosses to it', () => {
  it('packs messages into one buffer of their own and unpacks them equal: topics, partitions, null keys and values, empty values', () => {
    const messages = [
      { topic: 'a', partition: 0, key: Buffer.from('k1'), value: Buffer.from('{"v":1}') },
      { topic: 'b', partition: 7, key: null, value: Buffer.from('x'.repeat(70_000)) },
      { topic: 'a', partition: 2, key: Buffer.from('k3'), value: null },
      { topic: 'c.d-e', partition: 4_000_000, key: Buffer.alloc(0), value: Buffer.alloc(0) },
    ];
    const { data, topics } = packMessages(messages);
    assert.deepEqual(topics, ['a', 'b', 'c.d-e']);
    assert.ok(data instanceof ArrayBuffer);
    assert.equal(data.byteLength, 4 * 14 + 2 + 7 + 70_000 + 2, 'headers and bytes, nothing of a shared pool');
    const copy = data.slice(0); // what the other thread gets
    assert.deepEqual(unpackMessages(copy, topics, messages.length), messages);
  });

  it('a count that does not match the bytes is an error, not a silent short send', () => {
    const { data, topics } = packMessages([
      { topic: 't', partition: 0, key: null, value: Buffer.from('1') },
      { topic: 't', partition: 1, key: null, value: Buffer.from('2') },
    ]);
    assert.throws(() => unpackMessages(data, topics, 1), { code: 'ErrKafkaSendFailed', message: /holds 30 bytes, 1 message\(s\) read 15/ });
  });

  it("errors keep their code, message, hint and retryability across the thread; others become a retryable send failure", () => {
    const original = new KafkaSinkError('ErrKafkaUnreachable', 'Kafka broker 127.0.0.1:1 unreachable', { hint: 'check that the broker runs', details: { broker: '127.0.0.1:1' } });
    const back = fromThreadError(structuredClone(threadError(original)));
    assert.ok(back instanceof KafkaSinkError);
    assert.deepEqual(back.toJSON(), original.toJSON());
    const refused = fromThreadError(structuredClone(threadError(new KafkaSinkError('ErrKafkaAuthFailed', 'refused'))));
    assert.equal(refused.retryable, false);
    const other = fromThreadError(structuredClone(threadError(new TypeError('boom'))));
    assert.deepEqual([other.code, other.retryable, other.message], ['ErrKafkaSendFailed', true, 'the Kafka producer thread failed: boom']);
  });

  it('producer-thread is main unless the URI says worker; another value is refused naming what is allowed', () => {
    assert.equal(parseConfig(new URL('kafka://127.0.0.1:9092/t?protocol=canal-json')).producerThread, 'main');
    assert.equal(parseConfig(new URL('kafka://127.0.0.1:9092/t?protocol=canal-json&producer-thread=worker')).producerThread, 'worker');
    assert.throws(() => parseConfig(new URL('kafka://127.0.0.1:9092/t?producer-thread=threads')), { code: 'ErrSinkURIInvalid', message: 'invalid producer-thread "threads" in kafka sink URI: one of worker, main' });
  });
});
