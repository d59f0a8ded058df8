import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MessageBytes } from '../../../plugins/sink-kafka/src/encoder/message-bytes.js';

describe('encoded message bytes (slabs of their own)', () => {
  it('each message is its head then its text as UTF-8, exactly as Buffer.from would give, and stays so while later ones are written', () => {
    const bytes = new MessageBytes();
    const head = Buffer.from('{"schema":{"name":"Grüße"},"payload":{');
    const texts = ['"id":1}}', 'é😀 "q" \\ \n', '\uD800 lone surrogate', '', 'x'.repeat(20_000), 'y'.repeat(40_000), '€'.repeat(12_000)];
    const made: { out: Buffer; expected: Buffer }[] = [];
    for (let i = 0; i < 3_000; i++) {
      const text = `${texts[i % texts.length]}${i}`;
      const withHead = i % 3 !== 0;
      made.push({ out: bytes.of(text, withHead ? head : undefined), expected: Buffer.concat([withHead ? head : Buffer.alloc(0), Buffer.from(text)]) });
    }
    // every earlier message is intact after the slabs filled and turned over many times
    for (const [i, { out, expected }] of made.entries()) assert.ok(out.equals(expected), `message ${i}`);
    const views = made.map((m) => m.out).filter((b) => b.buffer.byteLength === 64 * 1024);
    assert.ok(views.length > 1_500, `small messages share slabs (${views.length} of ${made.length})`);
    const large = made.find((m) => m.expected.length > 8 * 1024)!;
    assert.equal(large.out.buffer.byteLength, large.out.length, 'a large message has a buffer of its own');
    // views of one slab never overlap
    const bySlab = new Map<ArrayBufferLike, Buffer[]>();
    for (const v of views) bySlab.set(v.buffer, [...(bySlab.get(v.buffer) ?? []), v]);
    for (const list of bySlab.values()) {
      const spans = list.map((v) => [v.byteOffset, v.byteOffset + v.length] as const).sort((a, b) => a[0] - b[0]);
      for (let i = 1; i < spans.length; i++) assert.ok(spans[i][0] >= spans[i - 1][1], 'no two messages share bytes');
    }
  });
});
