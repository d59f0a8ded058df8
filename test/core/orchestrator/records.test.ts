import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { changefeedStatusKey, taskPositionKey, upstreamKey } from '../../../src/core/orchestrator/etcd-keys.js';
import { GlobalReactorState } from '../../../src/core/orchestrator/global-state.js';
import { PatchSkip } from '../../../src/core/orchestrator/reactor.js';
import { changefeedStatusRecord, decodeRecord, deletePatch, patchChangefeedStatus, taskPositionRecord } from '../../../src/core/orchestrator/records.js';

const enc = (v: unknown): Uint8Array => new TextEncoder().encode(typeof v === 'string' ? v : JSON.stringify(v));
const dec = (b: Uint8Array | undefined): unknown => (b === undefined ? undefined : JSON.parse(new TextDecoder().decode(b)));
const meta = { createRevision: 1n, modRevision: 1n };
const status = { 'checkpoint-ts': '150', 'resolved-ts': '200', 'min-table-barrier-ts': '300', 'admin-job-type': 0 as const };

describe('etcd records (the typed mirror)', () => {
  it('decodes each record where it enters the mirror; a value that does not decode is absent, named once, and cleared when fixed', () => {
    const heard: string[] = [];
    const state = new GlobalReactorState('default', (key, error) => heard.push(`${key}: ${error}`));
    const key = changefeedStatusKey('default', 'default', 'cf');
    state.update(key, enc({ ...status, 'checkpoint-ts': 150 }), meta, false);
    assert.equal(state.changefeeds.get('default/cf')?.status, undefined);
    assert.match(state.invalid.get(key) ?? '', /^changefeed status at checkpoint-ts: Expected string, received number$/);
    state.update(key, enc({ ...status, 'checkpoint-ts': 150 }), meta, false);
    state.update(key, enc('{not json'), meta, false);
    assert.equal(heard.length, 2, 'the same problem again is not reported again');
    assert.match(heard[1], /changefeed status: not JSON/);
    state.update(key, enc(status), meta, false);
    assert.deepEqual(state.changefeeds.get('default/cf')?.status, status);
    assert.equal(state.invalid.size, 0);

    const upstream = upstreamKey('default', 'default', 'u1');
    state.update(upstream, enc({ id: 'u1', uri: 'mysql://root@h:3306' }), meta, false);
    assert.equal(state.upstreams.size, 0, 'an upstream without its binlog basename is not usable');
    assert.match(state.invalid.get(upstream) ?? '', /upstream at basename: Required/);
  });

  it('keeps fields it does not know (a newer capture\'s), also through a patch', () => {
    const withExtra = { ...status, 'future-field': { a: 1 } };
    const decoded = decodeRecord(changefeedStatusRecord, enc(withExtra));
    assert.ok(decoded.ok);
    const patch = patchChangefeedStatus('k', (old) => old && { ...old, 'checkpoint-ts': '160' });
    const result = patch.apply(enc(withExtra));
    assert.deepEqual(dec(result.value), { ...withExtra, 'checkpoint-ts': '160' });
    assert.equal(result.changed, true);
  });

  it('a patch that returns the value it got changes nothing; one over a value it cannot read skips its group', () => {
    const bytes = enc(status);
    const same = patchChangefeedStatus('k', (old) => old).apply(bytes);
    assert.equal(same.changed, false);
    assert.equal(same.value, bytes);
    assert.throws(() => patchChangefeedStatus('k', () => status).apply(enc({ 'checkpoint-ts': 'x' })), PatchSkip);
    assert.deepEqual(deletePatch('k').apply(enc('{not json')), { value: undefined, changed: true });
    assert.deepEqual(deletePatch('k').apply(undefined), { value: undefined, changed: false });
  });

  it('task positions: the table entries the owner reads are checked', () => {
    const position = { 'checkpoint-ts': '5', 'resolved-ts': '6', tables: [{ table: 'a.b', checkpoint_ts: '5', checkpoint_time: null, rows_per_second: 3 }] };
    const state = new GlobalReactorState('default');
    state.update(taskPositionKey('default', 'default', 'cap', 'cf'), enc(position), meta, false);
    assert.deepEqual(state.changefeeds.get('default/cf')?.taskPositions.get('cap'), position);
    const bad = decodeRecord(taskPositionRecord, enc({ ...position, tables: [{ table: 'a.b', checkpoint_ts: 'five', checkpoint_time: null }] }));
    assert.equal(bad.ok, false);
    assert.match(bad.ok ? '' : bad.error, /task position at tables\.0\.checkpoint_ts: expected a decimal timestamp/);
  });
});
