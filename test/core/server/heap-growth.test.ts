import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { heapGrowthFlag } from '../../../src/core/server/heap-growth.js';

describe('heap-growth: the V8 flag the server sets', () => {
  it('turns the factor into --heap-growing-percent', () => {
    assert.equal(heapGrowthFlag(1.5, []), '--heap-growing-percent=50');
    assert.equal(heapGrowthFlag(1.1, []), '--heap-growing-percent=10');
    assert.equal(heapGrowthFlag(4, ['--max-semi-space-size=4']), '--heap-growing-percent=300');
  });

  it("leaves node's own --heap-growing-percent alone (given on node's command line)", () => {
    assert.equal(heapGrowthFlag(1.5, ['--max-old-space-size=2048', '--heap-growing-percent=0']), undefined);
    assert.equal(heapGrowthFlag(1.5, ['--heap_growing_percent=80']), undefined);
  });
});
