import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
import { MemoryQuota } from '../../../src/core/pipeline/sorter/memory-quota.js';

const MiB = 1 << 20;

/** Whether `p` settled after the pending microtasks and immediates ran. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  await new Promise((resolve) => setImmediate(resolve));
  return done;
}

describe('MemoryQuota: the binlog reader waits for the sink instead of holding a backlog', () => {
  it('the reader reads on while the binlog rows held are under the read-ahead; past it, it waits until half of it went to the sink', async () => {
    const quota = new MemoryQuota(256 * MiB, 16 * MiB, 10_000);
    const signal = new AbortController().signal;
    quota.force(15 * MiB);
    assert.equal(quota.readAheadFull, false, 'under the read-ahead: no wait');
    assert.equal(await settled(quota.readAhead(signal)), true);
    quota.force(2 * MiB);
    assert.equal(quota.readAheadFull, true, '17 MiB held, 16 MiB read-ahead: the reader waits');
    const wait = quota.readAhead(signal);
    quota.release(4 * MiB);
    assert.equal(await settled(wait), false, '13 MiB held: still more than half the read-ahead');
    quota.release(5 * MiB);
    assert.equal(await settled(wait), true, '8 MiB held: it reads on');
    assert.equal(await wait, 'room');
    assert.equal(quota.used, 8 * MiB);
    // the metrics' counts: one wait (a call with no need to wait is none), no stall
    assert.equal(quota.readAheadWaits, 1);
    assert.equal(quota.readAheadStalls, 0);
  });

  it('rows the snapshot read count against the quota but never hold the binlog reader back', () => {
    const quota = new MemoryQuota(256 * MiB, 16 * MiB, 10_000);
    quota.forceSnapshot(40 * MiB);
    quota.force(10 * MiB);
    assert.equal(quota.used, 50 * MiB);
    assert.equal(quota.binlogUsed, 10 * MiB);
    assert.equal(quota.readAheadFull, false, 'the snapshot bytes are not the binlog reader\'s');
    quota.force(7 * MiB);
    assert.equal(quota.readAheadFull, true, '17 MiB of binlog rows: it waits');
    quota.releaseSnapshot(40 * MiB);
    assert.equal(quota.used, 17 * MiB);
  });

  it('a reader that waits while nothing is given back reads on after the stall time, and waits again only after something was given back', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      const quota = new MemoryQuota(256 * MiB, 16 * MiB, 1_000);
      const signal = new AbortController().signal;
      quota.force(20 * MiB);
      const wait = quota.readAhead(signal);
      mock.timers.tick(900);
      quota.release(1 * MiB); // the sink takes rows: not a stall
      mock.timers.tick(900);
      assert.equal(await settled(wait), false, 'rows went to the sink within the stall time: it keeps waiting');
      mock.timers.tick(1_100);
      assert.equal(await settled(wait), true, 'nothing given back for the stall time: it reads on');
      assert.equal(await wait, 'stalled', 'the reader is told, to log it');
      assert.equal(quota.readAheadStalls, 1);
      assert.equal(quota.readAheadFull, false, 'stalled: the next transactions do not wait (the rows held cannot go yet)');
      quota.force(5 * MiB);
      quota.forceSnapshot(1 * MiB);
      quota.releaseSnapshot(1 * MiB);
      assert.equal(quota.readAheadFull, false, 'a snapshot piece written says nothing of the binlog rows held');
      quota.release(1 * MiB);
      assert.equal(quota.readAheadFull, true, 'rows went to the sink again: it waits again');
      const stop = new AbortController();
      const again = quota.readAhead(stop.signal);
      stop.abort(new Error('done'));
      await assert.rejects(again, /done/);
    } finally {
      mock.timers.reset();
    }
  });

  it('an aborted wait rejects with the signal\'s reason and leaves no timer', async () => {
    const quota = new MemoryQuota(256 * MiB, 16 * MiB, 60_000);
    const controller = new AbortController();
    quota.force(20 * MiB);
    const wait = quota.readAhead(controller.signal);
    controller.abort(new Error('processor stopped'));
    await assert.rejects(wait, /processor stopped/);
    // the wait is gone: a release does not resolve anything, and a new wait can start
    quota.release(15 * MiB);
    quota.force(15 * MiB);
    const again = quota.readAhead(AbortSignal.abort(new Error('again')));
    await assert.rejects(again, /again/);
  });
});
