import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  captureKey, changefeedInfoKey, changefeedStatusKey, ownerKey, parseKey, taskPositionKey, upstreamKey,
} from '../../../src/core/orchestrator/etcd-keys.js';
import { GlobalReactorState } from '../../../src/core/orchestrator/global-state.js';

describe('etcd key layout (DESIGN §3)', () => {
  it('builds the seed documents\' keys and parses them back', () => {
    const cases = [
      [captureKey('default', 'c1'), '/tidb/cdc/default/__cdc_meta__/capture/c1', { kind: 'capture', captureId: 'c1' }],
      [ownerKey('default', '7668682413630766278'), '/tidb/cdc/default/__cdc_meta__/owner/6a6ca20657bf3cc6', { kind: 'owner', leaseHex: '6a6ca20657bf3cc6' }],
      [changefeedInfoKey('default', 'default', 'cf'), '/tidb/cdc/default/default/changefeed/info/cf', { kind: 'changefeedInfo', namespace: 'default', changefeedId: 'cf' }],
      [changefeedStatusKey('c', 'ns', 'cf'), '/tidb/cdc/c/ns/changefeed/status/cf', { kind: 'changefeedStatus', namespace: 'ns', changefeedId: 'cf' }],
      [taskPositionKey('c', 'ns', 'cap', 'cf'), '/tidb/cdc/c/ns/task/position/cap/cf', { kind: 'taskPosition', namespace: 'ns', captureId: 'cap', changefeedId: 'cf' }],
      [upstreamKey('c', 'ns', '1'), '/tidb/cdc/c/ns/upstream/1', { kind: 'upstream', namespace: 'ns', upstreamId: '1' }],
    ] as const;
    for (const [built, expected, parsed] of cases) {
      assert.equal(built, expected);
      const cluster = expected.split('/')[3];
      assert.deepEqual(parseKey(cluster, built), parsed);
    }
  });

  it('treats keys of other clusters and other shapes as unknown', () => {
    assert.equal(parseKey('a', captureKey('b', 'x')).kind, 'unknown');
    assert.equal(parseKey('a', '/tidb/cdc/a/__cdc_meta__/other/x').kind, 'unknown');
    assert.equal(parseKey('a', '/tidb/cdc/a/ns/changefeed/info').kind, 'unknown');
  });
});

describe('GlobalReactorState', () => {
  const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
  const meta = (rev: number) => ({ createRevision: BigInt(rev), modRevision: BigInt(rev) });
  const info = {
    'upstream-id': 'u1', namespace: 'default', 'changefeed-id': 'cf', 'sink-uri': 'blackhole://', 'create-time': '2026-12-05T00:00:00Z',
    'start-ts': '100', 'target-ts': '0', 'admin-job-type': 0, config: {}, state: 'normal', error: null, warning: null, 'creator-version': 'v', epoch: '1',
  };

  it('tracks captures and takes the candidate with the smallest create revision as owner', () => {
    const state = new GlobalReactorState('default');
    state.update(captureKey('default', 'a'), enc(JSON.stringify({ id: 'a', address: 'h:1', version: 'v', pid: 1, 'start-timestamp': 1 })), meta(5), true);
    state.update(captureKey('default', 'b'), enc(JSON.stringify({ id: 'b', address: 'h:2', version: 'v', pid: 2, 'start-timestamp': 2 })), meta(6), true);
    state.update('/tidb/cdc/default/__cdc_meta__/owner/2', enc('b'), meta(9), false);
    state.update('/tidb/cdc/default/__cdc_meta__/owner/1', enc('a'), meta(8), false);
    assert.equal(state.ownerCaptureId, 'a');
    state.update('/tidb/cdc/default/__cdc_meta__/owner/1', undefined, undefined, false);
    assert.equal(state.ownerCaptureId, 'b');
    state.update(captureKey('default', 'a'), undefined, undefined, false);
    assert.deepEqual([...state.captures.keys()], ['b']);
  });

  it('groups changefeed keys and forgets a changefeed whose keys are all gone', () => {
    const state = new GlobalReactorState('default');
    state.update(changefeedInfoKey('default', 'default', 'cf'), enc(JSON.stringify(info)), meta(1), false);
    state.update(taskPositionKey('default', 'default', 'cap', 'cf'), enc('{"checkpoint-ts":"1","resolved-ts":"1"}'), meta(2), false);
    assert.deepEqual(state.changefeeds.get('default/cf')?.info, info);
    assert.equal(state.changefeeds.get('default/cf')?.taskPositions.size, 1);
    state.update(changefeedInfoKey('default', 'default', 'cf'), undefined, undefined, false);
    state.update(taskPositionKey('default', 'default', 'cap', 'cf'), undefined, undefined, false);
    assert.equal(state.changefeeds.size, 0);
  });
});
