import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatCoordinate, makeTs, parseTs, tsFile, tsFileSeq, tsPosition } from '../../../src/core/model/ts.js';

describe('ts codec (DESIGN §2)', () => {
  const cases: [number, number, string, bigint][] = [
    [1, 4, 'mysql-bin.000001:4', 4294967300n],
    [42, 1234, 'mysql-bin.000042:1234', (42n << 32n) | 1234n],
    [999999, 0xffffffff, 'mysql-bin.999999:4294967295', (999999n << 32n) | 0xffffffffn],
  ];
  for (const [seq, pos, coordinate, ts] of cases) {
    it(`${coordinate} ⇄ ${ts}`, () => {
      assert.equal(makeTs(seq, pos), ts);
      assert.equal(tsFileSeq(ts), seq);
      assert.equal(tsPosition(ts), pos);
      assert.equal(formatCoordinate(ts), coordinate);
      assert.equal(parseTs(coordinate), ts);
      assert.equal(parseTs(String(ts)), ts);
      assert.equal(tsFile(ts, 'binlog'), `binlog.${String(seq).padStart(6, '0')}`);
    });
  }
  it('orders by file, then position', () => {
    assert.ok(makeTs(2, 4) > makeTs(1, 0xffffffff));
  });
  it('names bad input', () => {
    for (const bad of ['yesterday', 'mysql-bin:4', '-1', 'mysql-bin.000001:99999999999', String(1n << 64n)]) {
      assert.throws(() => parseTs(bad, '--start-ts'), { code: 'ErrInvalidTs', message: /--start-ts/ }, bad);
    }
  });
});
