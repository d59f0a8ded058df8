import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { heapGrowthFlag, pretenuringFlag } from '../../../src/core/server/heap-tuning.js';

describe('heap tuning: the V8 flags the server sets', () => {
  it('turns the factor into --heap-growing-percent', () => {
    assert.equal(heapGrowthFlag(1.5, []), '--heap-growing-percent=50');
    assert.equal(heapGrowthFlag(1.1, []), '--heap-growing-percent=10');
    assert.equal(heapGrowthFlag(4, ['--max-semi-space-size=4']), '--heap-growing-percent=300');
  });

  it("leaves node's own --heap-growing-percent alone (given on node's command line)", () => {
    assert.equal(heapGrowthFlag(1.5, ['--max-old-space-size=2048', '--heap-growing-percent=0']), undefined);
    assert.equal(heapGrowthFlag(1.5, ['--heap_growing_percent=80']), undefined);
  });

  it("turns allocation-site pretenuring off unless node's command line sets it either way", () => {
    assert.equal(pretenuringFlag([]), '--no-allocation-site-pretenuring');
    assert.equal(pretenuringFlag(['--max-semi-space-size=4', '--allocation-site-pretenuring-threshold=1']), '--no-allocation-site-pretenuring');
    for (const given of ['--allocation-site-pretenuring', '--no-allocation-site-pretenuring', '--allocation_site_pretenuring', '--no_allocation_site_pretenuring', '--noallocation-site-pretenuring']) {
      assert.equal(pretenuringFlag([given]), undefined, given);
    }
  });
});
