import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatTable } from '../../src/cli/table.js';

describe('formatTable (the CLI lists)', () => {
  it('aligns each column to its widest cell, header included', () => {
    const text = formatTable(['ID', 'ROLE', 'ADDRESS', 'CLUSTER'], [
      ['0a1b2c3d-0000-4000-8000-000000000001', 'owner', '127.0.0.1:8300', 'default'],
      ['0a1b2c3d-0000-4000-8000-000000000002', '', '10.0.0.12:18300', 'default'],
    ]);
    const lines = text.split('\n');
    assert.equal(lines.length, 3);
    // every column starts at the same offset on every line
    for (const name of ['ROLE', 'ADDRESS', 'CLUSTER']) {
      const at = lines[0].indexOf(name);
      assert.ok(at > 0);
      for (const line of lines.slice(1)) assert.equal(line[at - 1], ' ', `${name} column starts after a space: ${JSON.stringify(line)}`);
    }
    assert.equal(lines[1].indexOf('127.0.0.1:8300'), lines[0].indexOf('ADDRESS'));
    assert.equal(lines[2].indexOf('10.0.0.12:18300'), lines[0].indexOf('ADDRESS'));
    assert.equal(lines[1].indexOf('default'), lines[0].indexOf('CLUSTER'));
    assert.equal(lines[2].indexOf('default'), lines[0].indexOf('CLUSTER'));
    assert.ok(!lines.some((l) => l.endsWith(' ')), 'no trailing spaces');
  });
});
