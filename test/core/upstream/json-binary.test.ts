import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeJsonBinary } from '../../../src/core/upstream/json-binary.js';

const hex = (s: string) => Buffer.from(s.replaceAll(' ', ''), 'hex');

describe('MySQL binary JSON to text', () => {
  const cases: [string, Buffer, string][] = [
    ['null literal', hex('04 00'), 'null'],
    ['true literal', hex('04 01'), 'true'],
    ['int16 -2', hex('05 feff'), '-2'],
    ['uint16 65535', hex('06 ffff'), '65535'],
    ['int32 -2147483648', hex('07 00000080'), '-2147483648'],
    ['uint64 beyond 2^53', hex('0a ffffffffffffffff'), '18446744073709551615'],
    ['int64 min', hex('09 0000000000000080'), '-9223372036854775808'],
    ['double 2.5', hex('0b 0000000000000440'), '2.5'],
    ['string with an emoji and a quote', Buffer.concat([hex('0c 06'), Buffer.from('"😀"', 'utf8')]), '"\\"😀\\""'],
    // small array [1, "ab", null]: count 3, size, entries (type + inline value or offset), then "ab" at offset 13
    ['small array with inline and offset values', hex('02 0300 1000 050100 0c0d00 040000 02 6162'), '[1, "ab", null]'],
    // small object {"a": true, "bc": 7}: count 2, size, key entries (offset, length), value entries, keys
    ['small object with inline values', hex('00 0200 1500 1200 0100 1300 0200 040100 050700 61 6263'), '{"a": true, "bc": 7}'],
    // large array [70000] with an inline int32
    ['large array with an inline int32', hex('03 01000000 0d000000 07 70110100'), '[70000]'],
    // nested: [[true]]: outer small array holds a small array at offset 7
    ['nested array', hex('02 0100 0e00 020700 0100 0700 040100'), '[[true]]'],
  ];
  for (const [name, bytes, text] of cases) {
    it(name, () => assert.equal(decodeJsonBinary(bytes), text));
  }
  it('names a corrupt value type', () => assert.throws(() => decodeJsonBinary(hex('0e 00')), { code: 'ErrBinlogCorrupt' }));
});
