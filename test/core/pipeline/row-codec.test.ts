import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeRow, encodeRow, setCommitTime } from '../../../src/core/pipeline/row-codec.js';

describe('row codec (sorter payloads)', () => {
  it('round-trips every value form exactly', () => {
    const before = [null, 1, -2.5, 9007199254740993n, 18446744073709551615n, -9223372036854775808n, 'ü ‘quoted’ 😀', '', Buffer.from([0, 255, 1]), Buffer.alloc(0), '123456789012345678901234567890.123456789'];
    const after = before.slice().reverse();
    for (const [kind, b, a] of [['insert', null, after], ['update', before, after], ['delete', before, null]] as const) {
      const payload = encodeRow(kind, 77, b, a);
      setCommitTime(payload, 1_700_000_000_123);
      assert.deepEqual(decodeRow(payload), { kind, mapVersion: 77, commitTime: 1_700_000_000_123, before: b, after: a });
    }
  });
  it('grows its scratch buffer for big values and stays exact', () => {
    const big = 'x'.repeat(300_000);
    const blob = Buffer.alloc(200_000, 7);
    assert.deepEqual(decodeRow(encodeRow('insert', 1, null, [big, blob])).after, [big, blob]);
    assert.deepEqual(decodeRow(encodeRow('insert', 2, null, [1])).after, [1]);
  });
});
