import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GlobalReactorState } from '../../../src/core/orchestrator/global-state.js';
import { changefeedInfoKey, changefeedStatusKey, taskPositionKey } from '../../../src/core/orchestrator/etcd-keys.js';
import { FeedStateManager, STATUS_WRITE_INTERVAL_MS } from '../../../src/core/owner/feed-state-manager.js';

const enc = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value));
const meta = (revision: number) => ({ createRevision: BigInt(revision), modRevision: BigInt(revision), version: 1n });

/** A reactor state holding one running changefeed at checkpoint 100 and the task position of a live capture far ahead. */
function cluster(): GlobalReactorState {
  const state = new GlobalReactorState('default');
  state.update(changefeedInfoKey('default', 'default', 'cf'), enc({ 'upstream-id': 'u1', namespace: 'default', 'changefeed-id': 'cf', 'sink-uri': 'blackhole://', 'create-time': '2026-12-05T00:00:00Z', config: {}, state: 'normal', 'admin-job-type': 0, 'start-ts': '100', 'target-ts': '0', error: null, warning: null, 'creator-version': 'v', epoch: '1' }), meta(1), false);
  state.update(changefeedStatusKey('default', 'default', 'cf'), enc({ 'checkpoint-ts': '100', 'resolved-ts': '100', 'min-table-barrier-ts': '100', 'admin-job-type': 0 }), meta(2), false);
  // the surviving capture's tables are at 900; the tables of the capture that died (its position is gone) are at 100
  state.update(taskPositionKey('default', 'default', 'alive', 'cf'), enc({ 'checkpoint-ts': '900', 'resolved-ts': '900' }), meta(3), false);
  return state;
}

/** Applies the queued patches to the status key and returns its checkpoint. */
function statusCheckpoint(state: GlobalReactorState): string {
  const key = changefeedStatusKey('default', 'default', 'cf');
  let value: Uint8Array | undefined = enc(state.changefeeds.get('default/cf')!.status);
  for (const group of state.takePatches()) for (const patch of group) if (patch.key === key) value = patch.apply(value).value;
  return (JSON.parse(new TextDecoder().decode(value)) as { 'checkpoint-ts': string })['checkpoint-ts'];
}

describe('FeedStateManager: the changefeed checkpoint', () => {
  it('stays put while the owner has no progress of its own (a new owner after failover), whatever the task positions say', () => {
    const state = cluster();
    let now = 1_000_000;
    const manager = new FeedStateManager(() => now);
    manager.tick(state, state.changefeeds.get('default/cf')!, undefined);
    now += STATUS_WRITE_INTERVAL_MS * 2;
    manager.tick(state, state.changefeeds.get('default/cf')!, undefined);
    assert.equal(statusCheckpoint(state), '100', 'the positions of the live captures do not cover the dead capture\'s tables');
  });

  it('moves to the runtime\'s minimum over the table set, and never back', () => {
    const state = cluster();
    let now = 1_000_000;
    const manager = new FeedStateManager(() => now);
    manager.tick(state, state.changefeeds.get('default/cf')!, { checkpointTs: 150n, checkpointTime: undefined, resolvedTs: 200n, barrierTs: 300n });
    assert.equal(statusCheckpoint(state), '150');
    now += STATUS_WRITE_INTERVAL_MS * 2;
    state.update(changefeedStatusKey('default', 'default', 'cf'), enc({ 'checkpoint-ts': '150', 'resolved-ts': '200', 'min-table-barrier-ts': '300', 'admin-job-type': 0 }), meta(4), false);
    manager.tick(state, state.changefeeds.get('default/cf')!, { checkpointTs: 120n, checkpointTime: undefined, resolvedTs: 200n, barrierTs: 300n });
    assert.equal(statusCheckpoint(state), '150', 'a lower minimum (a table added back at an older checkpoint) does not move it back');
    now += STATUS_WRITE_INTERVAL_MS * 2;
    manager.tick(state, state.changefeeds.get('default/cf')!, { checkpointTs: 400n, checkpointTime: undefined, resolvedTs: 400n, barrierTs: 300n });
    assert.equal(statusCheckpoint(state), '400');
  });
});
