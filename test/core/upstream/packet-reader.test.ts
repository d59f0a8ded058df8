import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_PACKET, PacketReader, framePacket } from '../../../src/core/upstream/protocol/packet-reader.js';

/** A payload of `n` bytes whose content says where each byte came from. */
function payload(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

/** Feeds `stream` in chunks cut at `cuts` (ascending offsets) and collects every payload. */
function readCut(stream: Buffer, cuts: number[]): { payloads: Buffer[]; sequence: number } {
  const reader = new PacketReader();
  const payloads: Buffer[] = [];
  let from = 0;
  for (const to of [...cuts, stream.length]) {
    // a copy per chunk, as the socket gives: pieces kept from one chunk must not depend on the next
    payloads.push(...reader.push(Buffer.from(stream.subarray(from, to))));
    from = to;
  }
  return { payloads, sequence: reader.sequence };
}

describe('MySQL packet framing (PacketReader)', () => {
  const payloads = [payload(0, 1), payload(1, 2), payload(7, 3), payload(300, 4), payload(70_000, 5), payload(5, 6)];
  const stream = Buffer.concat(payloads.map((p, i) => framePacket(p, i)));

  it('gives the same payloads wherever the chunks are cut, headers included', () => {
    for (let cut = 1; cut < 340; cut++) {
      const { payloads: got, sequence } = readCut(stream, [cut]);
      assert.deepEqual(got, payloads, `one cut at ${cut}`);
      assert.equal(sequence, payloads.length - 1);
    }
    // a packet spread over many small chunks, and cuts two bytes apart inside a header
    const many = Array.from({ length: 600 }, (_, i) => 200 + i * 117).filter((c) => c < stream.length);
    assert.deepEqual(readCut(stream, many).payloads, payloads, 'many cuts');
    assert.deepEqual(readCut(stream, [4 + 0 + 1, 4 + 0 + 3, 4 + 0 + 4 + 2]).payloads, payloads, 'cuts inside headers');
    assert.deepEqual(readCut(stream, Array.from({ length: stream.length - 1 }, (_, i) => i + 1)).payloads, payloads, 'a byte per chunk');
  });

  it('joins a payload of 16 MiB and more from its continuation packets', () => {
    for (const size of [MAX_PACKET, MAX_PACKET + 1, 2 * MAX_PACKET + 10]) {
      const big = payload(size, 9);
      const framed = Buffer.concat([framePacket(big, 0), framePacket(payload(3, 7), 5)]);
      const cuts = Array.from({ length: Math.floor(framed.length / 65_536) }, (_, i) => (i + 1) * 65_536 - 1);
      const { payloads: got } = readCut(framed, cuts);
      assert.equal(got.length, 2, `${size}: one payload and the next`);
      assert.ok(got[0].equals(big), `${size}: the joined payload is the original`);
      assert.deepEqual(got[1], payload(3, 7));
    }
  });

  it('keeps an incomplete packet until the rest arrives', () => {
    const reader = new PacketReader();
    const framed = framePacket(payload(100, 1), 3);
    assert.deepEqual(reader.push(framed.subarray(0, 2)), []);
    assert.deepEqual(reader.push(framed.subarray(2, 50)), []);
    assert.deepEqual(reader.push(framed.subarray(50)), [payload(100, 1)]);
    assert.equal(reader.sequence, 3);
  });
});
