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

  it('integers, numbers and bigints are written as String() writes them, at every width and around 2^31, 10^8 and 2^53', () => {
    const bytes = new MessageBytes();
    const values = [0, 1, 9, 10, 99, 100, 12345678, 99999999, 1e8, 1e8 + 1, 2 ** 31 - 1, 2 ** 31, 2 ** 31 + 1, 4294967295, 1e9, 1e10 + 7, 1700000000123, 1e15, 2 ** 53 - 1, 1234567800000001];
    let seed = 7;
    for (let i = 0; i < 2_000; i++) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      values.push(Math.floor((seed / 2 ** 31) * 10 ** (1 + (i % 16))));
    }
    for (const v of [...values, ...values.map((v) => -v)]) {
      bytes.begin(32);
      bytes.ascii('[');
      bytes.integer(v);
      bytes.ascii(',');
      bytes.number(v + 0.5);
      bytes.ascii(',');
      bytes.bigint(BigInt(v) * 1000n);
      bytes.ascii(']');
      assert.equal(bytes.end().toString(), `[${String(v)},${String(v + 0.5)},${String(BigInt(v) * 1000n)}]`, `${v}`);
    }
  });

  it('a slab is written again only once it is no longer written and every view held of it was let go', () => {
    const bytes = new MessageBytes();
    const text = 'z'.repeat(1000);
    /** Messages until one lands in a new slab; returns them by slab, in order. */
    const fill = (): Buffer[] => {
      const out = [bytes.of(text)];
      while (out.at(-1)!.buffer === out[0].buffer) out.push(bytes.of(text));
      return out;
    };
    const first = fill(); // the last one opened the second slab
    const slabA = first[0].buffer;
    const inA = first.slice(0, -1);
    for (const m of first) bytes.hold(m);
    bytes.hold(Buffer.from('not from a slab')); // ignored
    bytes.release(Buffer.from('not from a slab'));
    // all of A but one let go: A is kept as it is
    for (const m of inA.slice(1)) bytes.release(m);
    const second = fill();
    assert.notEqual(second.at(-1)!.buffer, slabA, 'a slab with a view still held is not written again');
    assert.ok(inA[0].equals(Buffer.from(text)), 'the held view is intact');
    // the last view let go: the next slab is A again, from its start
    bytes.release(inA[0]);
    const third = fill();
    assert.equal(third.at(-1)!.buffer, slabA, 'A is written again');
    assert.equal(third.at(-1)!.byteOffset, 0);
    // the slab being written is not handed out again even when none of it is held
    const current = third.at(-1)!;
    bytes.hold(current);
    bytes.release(current);
    const next = bytes.of(text);
    assert.equal(next.buffer, current.buffer, 'still the slab being written');
    assert.ok(next.byteOffset > current.byteOffset, 'after the message before it');
  });
});
