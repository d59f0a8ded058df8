import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Writer } from '@platformatic/kafka';
import { RequestFrames, requestsFramed } from '../../../plugins/sink-kafka/src/producer/request-frames.js';

/**
 * What the client's connection does in `send`: a writer with the request header, the body appended, the length
 * put in front, then one join of it all. Returns the joined bytes.
 */
function clientJoin(body: Buffer): Buffer {
  const bodyWriter = Writer.create().appendInt16(-1).append(body);
  return Writer.create().appendInt16(0).appendInt16(7).appendInt32(1).appendFrom(bodyWriter).prependLength().buffer;
}

describe('RequestFrames: the connection joins a produce request into a kept frame', () => {
  const body = Buffer.alloc(100_000, 0x61);
  const header = (length: number): Buffer => {
    const h = Buffer.alloc(14);
    h.writeInt32BE(length - 4, 0);
    h.writeInt16BE(0, 4);
    h.writeInt16BE(7, 6);
    h.writeInt32BE(1, 8);
    h.writeInt16BE(-1, 12);
    return h;
  };

  it('within send, the join is written into the frame, byte for byte what the client joins itself', () => {
    const frames = new RequestFrames(256 * 1024, 2);
    const outside = clientJoin(body);
    assert.deepEqual(outside.subarray(0, 14), header(outside.length));
    let inside: Buffer | undefined;
    const before = requestsFramed();
    const answered = frames.send(body.length, () => (inside = clientJoin(body)));
    assert.ok(inside !== undefined);
    assert.equal(requestsFramed(), before + 1);
    assert.equal(inside.buffer.byteLength, 256 * 1024, 'a view of the kept frame');
    assert.deepEqual(inside, outside);
    answered(true);
  });

  it('a frame is used again only after its request was answered; a failed request drops its frame', () => {
    const frames = new RequestFrames(256 * 1024, 2);
    let first: Buffer | undefined;
    const answerFirst = frames.send(body.length, () => (first = clientJoin(body)));
    let second: Buffer | undefined;
    const answerSecond = frames.send(body.length, () => (second = clientJoin(Buffer.alloc(body.length, 0x62))));
    assert.notEqual(first?.buffer, second?.buffer, 'a frame in flight is not lent again');
    assert.equal(first?.[20], 0x61, 'the first frame keeps its bytes');
    answerFirst(true);
    answerFirst(true); // a second answer changes nothing
    let third: Buffer | undefined;
    frames.send(body.length, () => (third = clientJoin(body)));
    assert.equal(third?.buffer, first?.buffer, 'the answered frame is used again');
    answerSecond(false);
    let fourth: Buffer | undefined;
    frames.send(body.length, () => (fourth = clientJoin(body)));
    assert.notEqual(fourth?.buffer, second?.buffer, 'a failed request’s frame is not used again');
    assert.notEqual(fourth?.buffer, third?.buffer);
  });

  it('joins outside send, joins smaller than the body, and bodies too big for a frame go the client’s way', () => {
    const frames = new RequestFrames(256 * 1024, 2);
    const before = requestsFramed();
    // a join smaller than the announced body inside send (not the request): left alone, and the frame stays lent for the request
    let small: Buffer | undefined;
    let request: Buffer | undefined;
    frames.send(body.length, () => {
      small = clientJoin(Buffer.alloc(10, 0x63));
      request = clientJoin(body);
    });
    assert.equal(small?.length, 24);
    assert.notEqual(small?.buffer.byteLength, 256 * 1024);
    assert.equal(request?.buffer.byteLength, 256 * 1024);
    // a body that does not fit a frame
    const big = Buffer.alloc(300 * 1024, 0x64);
    let joinedBig: Buffer | undefined;
    frames.send(big.length, () => (joinedBig = clientJoin(big)));
    assert.equal(joinedBig?.length, big.length + 14);
    assert.notEqual(joinedBig?.buffer.byteLength, 256 * 1024);
    assert.equal(requestsFramed(), before + 1);
  });
});
