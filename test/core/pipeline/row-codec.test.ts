import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SORTED_ROW_CODEC, decodeRow, rowBytes, rowCommitTime, rowKind, rowMapVersion, rowOf, setRowCommitTime } from '../../../src/core/pipeline/row-codec.js';
import { decodeLocatedRows } from '../../../src/core/upstream/rows.js';
import { locatedRows, testTableMap } from '../../helpers/binlog-rows.js';

describe('SortedRow: a row change as its binlog bytes', () => {
  const map = testTableMap('t', ['int', 'bigint', 'text', 'bytes']);
  const rows = [
    { before: [1, 9007199254740993n, 'ü ‘quoted’ 😀', Buffer.from([0, 255, 1])], after: [1, -9223372036854775808n, '', Buffer.alloc(0)] },
    { before: [2, null, null, null], after: [2, 5n, 'x'.repeat(3000), Buffer.alloc(3000, 7)] },
  ];

  for (const kind of ['insert', 'update', 'delete'] as const) {
    it(`${kind}: each row of a rows event decodes to what the whole event decodes to, with its header`, () => {
      const images = rows.map((r) => ({ before: kind === 'insert' ? null : r.before, after: kind === 'delete' ? null : r.after }));
      const layout = locatedRows(map, kind, images);
      assert.deepEqual(decodeLocatedRows(layout), images, 'the event itself decodes to the rows it was built from');
      layout.ends.forEach((_, i) => {
        // a version of four bytes, written byte by byte
        const version = 77 + i * 0x9a_bc_de_00;
        const row = rowOf(layout, i, version);
        assert.equal(rowCommitTime(row), 0, 'no commit time until the commit');
        setRowCommitTime(row, 1_700_000_000_123);
        assert.deepEqual(decodeRow(row, map), { kind, mapVersion: version, commitTime: 1_700_000_000_123, ...images[i] });
        assert.deepEqual([rowKind(row), rowMapVersion(row), rowCommitTime(row)], [kind, version, 1_700_000_000_123]);
      });
    });
  }

  it('stays its bytes through a spill and is reckoned at about its binlog size', () => {
    const layout = locatedRows(map, 'update', rows);
    const row = rowOf(layout, 1, 3);
    const back = SORTED_ROW_CODEC.decode(Buffer.from(SORTED_ROW_CODEC.encode(row)));
    assert.deepEqual(decodeRow(back, map), decodeRow(row, map));
    const binlogBytes = layout.ends[1] - layout.ends[0];
    assert.ok(rowBytes(row) > binlogBytes && rowBytes(row) < binlogBytes + 100, `${rowBytes(row)} bytes for a ${binlogBytes}-byte row`);
    // a value that is bytes is a copy, not a view of the row (which may be a view of a reused spill block)
    const decoded = decodeRow(back, map);
    back.fill(0);
    assert.deepEqual(decoded.after![3], Buffer.alloc(3000, 7));
  });
});
