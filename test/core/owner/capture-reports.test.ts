import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CaptureReports } from '../../../src/core/owner/capture-reports.js';
import { responseParts, type HeartbeatResponse, type TableProgressReport, type TableState } from '../../../src/core/p2p/messages.js';

const report = (tableId: number, state: TableState = 'replicating'): TableProgressReport => ({ changefeed: 'default/cf', tableId, table: `db.t${tableId}`, state, checkpointTs: '100', resolvedTs: '100' });

/** Folds the messages a capture sends for one answer, as the owner gets them. */
function foldAll(reports: CaptureReports, parts: readonly HeartbeatResponse[]): boolean[] {
  return parts.map((p) => reports.fold('c1', p.tables, p.processors?.['default/cf'], p.delta?.includes('default/cf') === true, p.continued?.includes('default/cf') === true, 1000).whole);
}

describe('the owner\'s lists of each capture\'s tables (heartbeat answers folded in)', () => {
  it('a full answer in parts replaces the list at its first part, is whole only at its last, and then lists every table', () => {
    const reports = new CaptureReports();
    foldAll(reports, [{ changefeeds: ['default/cf'], delta: [], tables: [report(1), report(2), report(99)], draining: false, processors: { 'default/cf': 'p1' } }]);
    const tables = Array.from({ length: 10 }, (_, i) => report(i + 1, i === 3 ? 'preparing' : 'replicating'));
    const parts = responseParts({ changefeeds: ['default/cf'], delta: [], tables, draining: false, processors: { 'default/cf': 'p1' } }, 4);
    assert.equal(parts.length, 3);
    const whole = foldAll(reports, parts);
    assert.deepEqual(whole, [false, false, true], 'whole at the last part only');
    const list = reports.get('c1')!;
    assert.deepEqual([...list.tables.keys()].sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 'table 99 of the old list is gone, every table of the new one is in');
    assert.deepEqual([...list.replicating].sort((a, b) => a - b), [1, 2, 3, 5, 6, 7, 8, 9, 10]);
    assert.equal(list.fullAt, 1000);
  });

  it('a delta folds in; a stopped table leaves; another processor incarnation starts the list again', () => {
    const reports = new CaptureReports();
    reports.fold('c1', [report(1), report(2), report(3)], 'p1', false, false);
    reports.fold('c1', [report(2, 'stopped'), report(4, 'prepared')], 'p1', true, false);
    assert.deepEqual([...reports.get('c1')!.tables.keys()], [1, 3, 4]);
    assert.deepEqual([...reports.get('c1')!.replicating], [1, 3]);
    reports.fold('c1', [report(5)], 'p2', true, false);
    assert.deepEqual([...reports.get('c1')!.tables.keys()], [5], 'a restarted processor lists what it has');
    reports.prune((c) => c !== 'c1');
    assert.equal(reports.get('c1'), undefined, 'a capture that is gone is forgotten');
  });
});
