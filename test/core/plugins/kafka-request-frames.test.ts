import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Writer } from '@platformatic/kafka';
import { PARTITION_HEAD_BYTES, PRODUCE_BODY_HEAD_BYTES, RequestFrames, requestHeaderBytes, requestsFramed, topicHeadBytes } from '../../../plugins/sink-kafka/src/producer/request-frames.js';

/** Bytes before `payload` in `clientJoin`'s request: length 4, api key 2, version 2, correlation id 4, then the body's int16. */
const PAYLOAD_AT = 14;

/**
 * What the client's connection does in `send`: a writer with the request header, the body appended, the length
 * put in front, then one join of it all.
 */
function clientJoin(payload: Buffer): Buffer {
  const body = Writer.create().appendInt16(-1).append(payload);
  return Writer.create().appendInt16(0).appendInt16(7).appendInt32(1).appendFrom(body).prependLength().buffer;
}

describe('RequestFrames: the connection joins a produce request into a kept frame, its record batches in place', () => {
  const payload = Buffer.alloc(100_000, 0x61);
  payload[0] = 0x7a;
  payload[payload.length - 1] = 0x7b;

  it('the offsets of a request body: header with the client id, body head, topic head, partition head', () => {
    assert.equal(requestHeaderBytes('tidemark'), 22);
    assert.equal(requestHeaderBytes('ü'), 16);
    assert.equal(PRODUCE_BODY_HEAD_BYTES, 12);
    assert.equal(topicHeadBytes('orders'), 12);
    assert.equal(PARTITION_HEAD_BYTES, 8);
  });

  it('a payload outside the frame is copied into it: byte for byte what the client joins itself', () => {
    const frame = Buffer.alloc(256 * 1024, 0xee);
    const outside = clientJoin(payload);
    const before = requestsFramed();
    let joined: Buffer | undefined;
    assert.equal(
      RequestFrames.joinInto(frame, payload.length, () => (joined = clientJoin(payload))),
      true,
    );
    assert.equal(joined?.buffer, frame.buffer, 'a view of the frame');
    assert.deepEqual(joined, outside);
    assert.deepEqual(requestsFramed(), { framed: before.framed + 1, inPlace: before.inPlace });
  });

  it('a payload already where the join puts it stays; only the parts around it are written', () => {
    const frame = Buffer.alloc(256 * 1024, 0xee);
    const placed = frame.subarray(PAYLOAD_AT, PAYLOAD_AT + payload.length);
    payload.copy(placed);
    const before = requestsFramed();
    let joined: Buffer | undefined;
    RequestFrames.joinInto(frame, payload.length, () => (joined = clientJoin(placed)));
    assert.equal(joined?.byteOffset, frame.byteOffset);
    assert.deepEqual(joined, clientJoin(payload));
    assert.deepEqual(requestsFramed(), { framed: before.framed + 1, inPlace: before.inPlace + 1 });
  });

  it('a part of the frame anywhere else: the client joins it (reading the frame only), the frame is left as it was', () => {
    const frame = Buffer.alloc(256 * 1024, 0xee);
    const misplaced = frame.subarray(PAYLOAD_AT + 8, PAYLOAD_AT + 8 + payload.length);
    payload.copy(misplaced);
    const copy = Buffer.from(frame);
    const before = requestsFramed();
    let joined: Buffer | undefined;
    assert.equal(
      RequestFrames.joinInto(frame, payload.length, () => (joined = clientJoin(misplaced))),
      false,
    );
    assert.notEqual(joined?.buffer, frame.buffer);
    assert.deepEqual(joined, clientJoin(payload));
    assert.ok(frame.equals(copy), 'nothing written into the frame');
    assert.deepEqual(requestsFramed(), before);
  });

  it('joins outside joinInto, joins smaller than the batches, and requests bigger than the frame are the client’s own', () => {
    const frame = Buffer.alloc(256 * 1024, 0xee);
    const before = requestsFramed();
    assert.notEqual(clientJoin(payload).buffer, frame.buffer);
    // a small join inside the send (not the request): left alone, and the frame stays lent for the request
    let small: Buffer | undefined;
    let request: Buffer | undefined;
    RequestFrames.joinInto(frame, payload.length, () => {
      small = clientJoin(Buffer.alloc(10, 0x63));
      request = clientJoin(payload);
    });
    assert.equal(small?.length, PAYLOAD_AT + 10);
    assert.notEqual(small?.buffer, frame.buffer);
    assert.equal(request?.buffer, frame.buffer);
    const big = Buffer.alloc(300 * 1024, 0x64);
    let joinedBig: Buffer | undefined;
    assert.equal(
      RequestFrames.joinInto(frame, big.length, () => (joinedBig = clientJoin(big))),
      false,
    );
    assert.equal(joinedBig?.length, big.length + PAYLOAD_AT);
    assert.deepEqual(requestsFramed(), { framed: before.framed + 1, inPlace: before.inPlace });
  });

  it('frames given back are taken again; at most `keep` are kept', () => {
    const frames = new RequestFrames(4096, 1);
    assert.equal(frames.usable, true);
    const a = frames.take();
    const b = frames.take();
    assert.notEqual(a, b);
    assert.equal(a.length, 4096);
    frames.give(a);
    frames.give(b); // beyond `keep`: dropped
    assert.equal(frames.take(), a);
    assert.notEqual(frames.take(), b);
  });
});
