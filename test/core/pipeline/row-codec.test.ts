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

describe('SortedRow: a row change decoded or compact', () => {
  it('both forms give the same row; a compact row stays compact through a spill and takes its bytes in memory', async () => {
    const { SORTED_ROW_CODEC, decodedRow, encodeRow, setRowCommitTime } = await import('../../../src/core/pipeline/row-codec.js');
    const before = [1, 'a', null];
    const after = [1, 'ü', Buffer.from([0, 255])];
    const object = { kind: 'update' as const, mapVersion: 3, commitTime: 0, before, after, bytes: 300 };
    const compact = encodeRow('update', 3, before, after);
    setRowCommitTime(object, 1_700_000_000_321);
    setRowCommitTime(compact, 1_700_000_000_321);
    const expected = { kind: 'update', mapVersion: 3, commitTime: 1_700_000_000_321, before, after };
    assert.deepEqual({ ...decodedRow(object), bytes: undefined }, { ...expected, bytes: undefined });
    assert.deepEqual(decodedRow(compact), expected);
    assert.equal(SORTED_ROW_CODEC.size(object), 300);
    assert.equal(SORTED_ROW_CODEC.size(compact), compact.length + 32);
    for (const row of [object, compact]) {
      const back = SORTED_ROW_CODEC.decode(SORTED_ROW_CODEC.encode(row));
      assert.ok(Buffer.isBuffer(back), 'read back from a spill it is compact');
      assert.deepEqual(decodedRow(back), expected);
    }
  });
});
