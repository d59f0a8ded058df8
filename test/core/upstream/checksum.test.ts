import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { crc32 } from 'node:zlib';
import { checksumMatches } from '../../../src/core/upstream/protocol/connection.js';

/** A binlog event: 19-byte header (timestamp, type, server id, size, log_pos, flags), body, CRC32 trailer. */
function event(body: Buffer): Buffer {
  const e = Buffer.alloc(19 + body.length + 4);
  e.writeUInt32LE(1_700_000_000, 0);
  e[4] = 16; // XID
  e.writeUInt32LE(1, 5);
  e.writeUInt32LE(e.length, 9);
  e.writeUInt32LE(4 + e.length, 13);
  body.copy(e, 19);
  e.writeUInt32LE(crc32(e.subarray(0, e.length - 4)), e.length - 4);
  return e;
}

describe('binlog event CRC32 verification', () => {
  const good = event(Buffer.from('0102030405060708', 'hex'));
  const cases: [string, (e: Buffer) => void, boolean][] = [
    ['an intact event', () => undefined, true],
    ['a flipped bit in the body', (e) => (e[20] ^= 0x01), false],
    ['a changed header byte (the event size)', (e) => (e[9] ^= 0x80), false],
    ['a changed checksum byte', (e) => (e[e.length - 1] ^= 0xff), false],
    ['a zeroed checksum', (e) => e.writeUInt32LE(0, e.length - 4), false],
  ];
  for (const [name, damage, ok] of cases) {
    it(`${name}: ${ok ? 'accepted' : 'rejected'}`, () => {
      const copy = Buffer.from(good);
      damage(copy);
      assert.equal(checksumMatches(copy), ok);
    });
  }
  it('the known CRC32 of "123456789" (0xcbf43926), so the polynomial is the binlog one', () => {
    assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
  });
});
