import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeLocatedRows, type Value } from '../../../src/core/upstream/rows.js';
import { decodeRow } from '../../../src/core/pipeline/row-codec.js';
import { locatedRows, sortedRow, testTableMap } from '../../helpers/binlog-rows.js';

/**
 * An update's after image takes the before image's value of every column whose bytes did not change, and decodes
 * the others: whatever changed (a value of another length, NULL to a value and back, a wide text), each image must
 * still read as written.
 */
describe('update images: unchanged columns taken from the before image', () => {
  const map = testTableMap('t', ['int', 'bigint', 'text', 'bytes', 'text', 'int']);
  const long = 'x'.repeat(300);
  const cases: [string, Value[], Value[]][] = [
    ['nothing changed', [1, 10n, 'abc', Buffer.from('b1'), long, 7], [1, 10n, 'abc', Buffer.from('b1'), long, 7]],
    ['a number only', [2, 10n, 'abc', Buffer.from('b1'), long, 7], [2, 11n, 'abc', Buffer.from('b1'), long, 7]],
    ['a text of another length, the columns after it unchanged', [3, 10n, 'abc', Buffer.from('b1'), long, 7], [3, 10n, 'abcdef', Buffer.from('b1'), long, 7]],
    ['a text of the same length', [4, 10n, 'abc', null, long, 7], [4, 10n, 'abd', null, long, 7]],
    ['NULL to a value and a value to NULL', [5, null, 'abc', null, long, null], [5, 12n, null, Buffer.from('b2'), long, 8]],
    ['the last byte of a long text', [6, 10n, 'abc', Buffer.from('b1'), long, 7], [6, 10n, 'abc', Buffer.from('b1'), `${'x'.repeat(299)}y`, 7]],
    ['the key', [7, 10n, 'abc', Buffer.from('b1'), long, 7], [70, 10n, 'abc', Buffer.from('b1'), long, 7]],
  ];

  it('reads both images as written, case by case and in one rows event', () => {
    const all = decodeLocatedRows(locatedRows(map, 'update', cases.map(([, before, after]) => ({ before, after }))));
    cases.forEach(([name, before, after], i) => {
      assert.deepEqual(all[i].before, before, `${name}: before`);
      assert.deepEqual(all[i].after, after, `${name}: after`);
      const one = decodeRow(sortedRow(map, 'update', before, after), map);
      assert.deepEqual(one.before, before, `${name}: before, through the sorter's row`);
      assert.deepEqual(one.after, after, `${name}: after, through the sorter's row`);
    });
  });

  it('an unchanged binary value is still a buffer of its own in each image', () => {
    const [row] = decodeLocatedRows(locatedRows(map, 'update', [{ before: cases[0][1], after: cases[0][2] }]));
    assert.ok(Buffer.isBuffer(row.before![3]) && Buffer.isBuffer(row.after![3]));
    assert.notEqual(row.before![3], row.after![3], 'a consumer that changes one image does not change the other');
  });
});
