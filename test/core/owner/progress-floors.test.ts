import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ProgressFloors, type KnownCheckpoint } from '../../../src/core/owner/progress-floors.js';
import type { ReplicationSet } from '../../../src/core/scheduler/scheduler.js';

const set = (tableId: number, primary: string | undefined, phase: ReplicationSet['phase'] = 'replicating'): ReplicationSet => ({ tableId, primary, secondary: undefined, phase });
const push = (processor: string, checkpointTs: bigint, resolvedTs = checkpointTs) => ({ changefeed: 'default/cf', processor, checkpointTs: String(checkpointTs), resolvedTs: String(resolvedTs), checkpointTime: 1_700_000_000_000 });

describe("the owner's progress floors (a processor's push between heartbeats: one floor, not a report per table)", () => {
  it('raises the tables the last heartbeat listed as replicating on that capture, never lowers one', () => {
    const floors = new ProgressFloors();
    const checkpoints = new Map<number, KnownCheckpoint>([[1, { ts: 100n, time: 1 }], [2, { ts: 500n, time: 5 }]]);
    const resolved = new Map<number, bigint>();
    floors.heartbeat('c1', 'p1', new Set([1, 2]));
    floors.push('c1', push('p1', 300n, 320n));
    for (const id of [1, 2]) floors.raise(id, set(id, 'c1'), checkpoints, resolved);
    assert.deepEqual(checkpoints.get(1), { ts: 300n, time: 1_700_000_000_000 });
    assert.deepEqual(checkpoints.get(2), { ts: 500n, time: 5 }, 'a table already past the floor keeps its checkpoint');
    assert.equal(resolved.get(1), 320n);
    // a lower push after a higher one changes nothing
    floors.push('c1', push('p1', 200n));
    floors.raise(1, set(1, 'c1'), checkpoints, resolved);
    assert.equal(checkpoints.get(1)?.ts, 300n);
  });

  it('does not raise a table the heartbeat did not list, one whose primary is elsewhere, or one being removed', () => {
    const floors = new ProgressFloors();
    const checkpoints = new Map<number, KnownCheckpoint>([[1, { ts: 100n, time: 1 }], [3, { ts: 100n, time: 1 }], [4, { ts: 100n, time: 1 }]]);
    floors.heartbeat('c1', 'p1', new Set([1, 4]));
    floors.push('c1', push('p1', 300n));
    floors.raise(3, set(3, 'c1'), checkpoints, new Map()); // not listed as replicating there (e.g. still preparing)
    floors.raise(1, set(1, 'c2'), checkpoints, new Map()); // moved: its primary is another capture
    floors.raise(4, set(4, 'c1', 'stopping-primary'), checkpoints, new Map());
    assert.deepEqual([...checkpoints.values()].map((c) => c.ts), [100n, 100n, 100n]);
    floors.raise(4, set(4, 'c1', 'preparing-secondary'), checkpoints, new Map()); // the primary still replicates it
    assert.equal(checkpoints.get(4)?.ts, 300n);
  });

  it("ignores a restarted processor's floor until its own heartbeat lists its tables (it may have lost some)", () => {
    const floors = new ProgressFloors();
    const checkpoints = new Map<number, KnownCheckpoint>([[1, { ts: 100n, time: 1 }]]);
    floors.heartbeat('c1', 'p1', new Set([1]));
    floors.push('c1', push('p2', 900n)); // a new incarnation, with no table 1, pushes its reader position
    floors.raise(1, set(1, 'c1'), checkpoints, new Map());
    assert.equal(checkpoints.get(1)?.ts, 100n);
    floors.push('c1', push('p1', 300n));
    floors.heartbeat('c1', 'p2', new Set()); // p2's heartbeat: table 1 is not there; p1's floor is dropped
    floors.raise(1, set(1, 'c1'), checkpoints, new Map());
    assert.equal(checkpoints.get(1)?.ts, 100n);
    assert.equal(floors.size, 0);
    // a capture that names no processor (an older version) gets no floor
    floors.heartbeat('c3', undefined, new Set([1]));
    floors.push('c3', push('p9', 900n));
    assert.equal(floors.size, 0);
  });

  it('forgets captures that are gone', () => {
    const floors = new ProgressFloors();
    floors.heartbeat('c1', 'p1', new Set([1]));
    floors.push('c1', push('p1', 300n));
    floors.prune((c) => c !== 'c1');
    const checkpoints = new Map<number, KnownCheckpoint>([[1, { ts: 100n, time: 1 }]]);
    floors.raise(1, set(1, 'c1'), checkpoints, new Map());
    assert.equal(checkpoints.get(1)?.ts, 100n);
  });
});
