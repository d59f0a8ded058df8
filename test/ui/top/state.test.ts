import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  initialState, lagLevel, reduce, snapshotInProgress, snapshotTotals, tablePageStale, tableWindow, visibleChangefeeds, visibleTables,
  type ChangefeedRow, type KeyPress, type TableRow, type TableSnapshotRow, type TopState,
} from '../../../src/ui/top/state.js';

const NOW = 1_700_000_000_000;

function cf(id: string, state: string, lagMs: number | null, rate: number | null = null): ChangefeedRow {
  return { id, namespace: 'default', state, checkpointTs: '1', checkpointCoordinate: 'mysql-bin.000001:4', checkpointTime: lagMs === null ? null : NOW - lagMs, rowsPerSecond: rate, error: null };
}

function table(name: string, lagMs: number): TableRow {
  return {
    table: name, captureId: 'cap-1', resolvedTs: '2', resolvedCoordinate: 'mysql-bin.000001:9', resolvedTime: NOW - 10,
    checkpointTs: '1', checkpointCoordinate: 'mysql-bin.000001:4', checkpointTime: NOW - lagMs, rowsPerSecond: 100, spilledBytes: 0,
  };
}

function withSnapshot(changefeeds: ChangefeedRow[], tables: TableRow[] | null = null): TopState {
  return reduce(initialState(NOW), {
    type: 'snapshot',
    snapshot: { clusterId: 'default', server: 'http://x', captures: [{ id: 'c', address: 'a:1', isOwner: true }], changefeeds, tables, takenAt: NOW },
  }).state;
}

function press(state: TopState, ...keys: (string | Partial<KeyPress>)[]): { state: TopState; effects: ReturnType<typeof reduce>['effects'] } {
  let effects: ReturnType<typeof reduce>['effects'] = [];
  for (const k of keys) {
    const result = reduce(state, { type: 'key', key: typeof k === 'string' ? { input: k } : { input: '', ...k } });
    state = result.state;
    effects = [...effects, ...result.effects];
  }
  return { state, effects };
}

describe('cdc top reducer', () => {
  it('colours lag: green under 1 s, yellow under 10 s, red beyond, grey when unknown', () => {
    assert.deepEqual([0, 999, 1000, 9999, 10_000, null].map(lagLevel), ['ok', 'ok', 'behind', 'behind', 'stalled', 'unknown']);
  });

  it('sorts by lag (worst first), then name, then rows/s, and keeps the selection in range', () => {
    const s = withSnapshot([cf('b', 'normal', 50, 10), cf('a', 'normal', 20_000, 5), cf('c', 'normal', 3000, 900)]);
    assert.deepEqual(visibleChangefeeds(s).map((c) => c.id), ['a', 'c', 'b']);
    const byName = press(s, 's').state;
    assert.equal(byName.sort, 'name');
    assert.deepEqual(visibleChangefeeds(byName).map((c) => c.id), ['a', 'b', 'c']);
    const byRate = press(byName, 's').state;
    assert.deepEqual(visibleChangefeeds(byRate).map((c) => c.id), ['c', 'b', 'a']);
    assert.equal(press(byRate, 's').state.sort, 'lag');
    const moved = press(s, { downArrow: true }, { downArrow: true }, { downArrow: true }, { downArrow: true }).state;
    assert.equal(moved.selected, 2, 'selection stops at the last row');
    assert.equal(press(moved, { upArrow: true }, { upArrow: true }, { upArrow: true }).state.selected, 0);
  });

  it('opens a changefeed on Enter, filters its tables with /, and goes back on Esc', () => {
    const s = withSnapshot([cf('feed', 'normal', 10)], [table('shop.orders', 10), table('shop.items', 20), table('crm.users', 30)]);
    const opened = press(s, { return: true });
    assert.deepEqual(opened.state.view, { kind: 'tables', changefeedId: 'feed', namespace: 'default' });
    assert.deepEqual(opened.effects, [{ kind: 'openChangefeed', changefeed: { id: 'feed', namespace: 'default' } }]);
    const filtered = press(opened.state, '/', 's', 'h', 'o', 'p', { return: true }).state;
    assert.equal(filtered.filter, 'shop');
    assert.equal(filtered.editingFilter, false);
    assert.equal(filtered.sort, 'lag', 'keys typed into the filter are not commands');
    assert.deepEqual(visibleTables(filtered).map((t) => t.table), ['shop.items', 'shop.orders']);
    const back = press(filtered, { escape: true });
    assert.deepEqual(back.state.view, { kind: 'changefeeds' });
    assert.equal(back.state.filter, '');
    assert.deepEqual(back.effects, [{ kind: 'openChangefeed', changefeed: null }]);
  });

  it('pauses and resumes only after a confirm, and only from states that allow it', () => {
    const s = withSnapshot([cf('running', 'normal', 10), cf('paused', 'stopped', null)]);
    const onRunning = { ...s, selected: visibleChangefeeds(s).findIndex((c) => c.id === 'running') };
    const asked = press(onRunning, 'p');
    assert.deepEqual(asked.state.confirm, { action: 'pause', changefeedId: 'running', namespace: 'default' });
    assert.deepEqual(asked.effects, []);
    const confirmed = press(asked.state, 'y');
    assert.deepEqual(confirmed.effects, [{ kind: 'pause', changefeedId: 'running', namespace: 'default' }]);
    assert.equal(confirmed.state.confirm, null);
    assert.deepEqual(press(asked.state, 'n').effects, [], 'anything but y cancels');

    const pausedIndex = visibleChangefeeds(s).findIndex((c) => c.id === 'paused');
    const onPaused = { ...s, selected: pausedIndex };
    assert.match(press(onPaused, 'p').state.message ?? '', /cannot pause paused: it is stopped/);
    assert.deepEqual(press(onPaused, 'r', 'y').effects, [{ kind: 'resume', changefeedId: 'paused', namespace: 'default' }]);
  });

  it('names the changefeed by id and namespace: the same id in two namespaces is paused and opened in the one selected', () => {
    const s = withSnapshot([cf('orders', 'normal', 10), { ...cf('orders', 'normal', 5000), namespace: 'team-b' }]);
    const onTeamB = { ...s, selected: visibleChangefeeds(s).findIndex((c) => c.namespace === 'team-b') };
    assert.deepEqual(press(onTeamB, 'p', 'y').effects, [{ kind: 'pause', changefeedId: 'orders', namespace: 'team-b' }]);
    const opened = press(onTeamB, { input: '', return: true });
    assert.deepEqual(opened.effects, [{ kind: 'openChangefeed', changefeed: { id: 'orders', namespace: 'team-b' } }]);
    // from the tables view, p acts on the open changefeed: the team-b one, not the default one with the same id
    assert.deepEqual(press(opened.state, 'p', 'y').effects, [{ kind: 'pause', changefeedId: 'orders', namespace: 'team-b' }]);
  });

  it('sums the initial snapshot over the tables, and sorts by the copy\'s rows/s while it is copied', () => {
    const copy = (name: string, snapshot: TableSnapshotRow): TableRow => ({ ...table(name, 10), snapshot });
    const orders = copy('shop.orders', { state: 'copying', method: 'chunks', rows: 45_000, estimatedRows: 100_000, chunks: 6, rowsPerSecond: 1200, etaSeconds: 46 });
    const events = copy('shop.events', { state: 'copying', method: 'one-pass', rows: 12_345, estimatedRows: null, chunks: 0, rowsPerSecond: 800, etaSeconds: null });
    const items = copy('shop.items', { state: 'done', method: 'chunks', rows: 2000, estimatedRows: 1950, chunks: 1, rowsPerSecond: null, etaSeconds: 0 });
    const plain = table('crm.users', 10);
    assert.deepEqual(snapshotTotals([orders, events, items, plain]), { tables: 3, done: 1, rows: 59_345, estimatedRows: null }, 'no estimate for events yet');
    assert.deepEqual(snapshotTotals([orders, items, plain]), { tables: 2, done: 1, rows: 47_000, estimatedRows: 102_000 }, 'a done table counts its rows');
    assert.equal(snapshotInProgress([orders, items]), true);
    assert.equal(snapshotInProgress([items, plain]), false, 'every snapshot done');
    assert.equal(snapshotInProgress([plain]), false);

    const byRate = press(withSnapshot([cf('feed', 'normal', 10)], [items, events, orders, plain]), 's', 's').state;
    assert.equal(byRate.sort, 'rows');
    assert.deepEqual(visibleTables(byRate).map((t) => t.table), ['shop.orders', 'shop.events', 'crm.users', 'shop.items']);
  });

  it('shows help on ? and quits on q', () => {
    const s = withSnapshot([]);
    assert.equal(press(s, '?').state.help, true);
    assert.equal(press(s, '?', 'x').state.help, false);
    assert.deepEqual(press(s, 'q').effects, [{ kind: 'quit' }]);
  });

  it('a long table list is read a page at a time: the selection spans every table, the page around it is asked for again when left', () => {
    const page = (offset: number, sort: 'lag' | 'name' = 'lag') =>
      reduce(press(withSnapshot([cf('feed', 'normal', 10)]), { return: true }).state, {
        type: 'snapshot',
        snapshot: {
          clusterId: 'default', server: 'http://x', captures: [], changefeeds: [cf('feed', 'normal', 10)], takenAt: NOW,
          tables: Array.from({ length: 60 }, (_, i) => table(`db.t${offset + i}`, 100_000 - offset - i)),
          tablePage: { offset, total: 100_000, sort, filter: '' },
        },
      }).state;
    const first = page(0);
    assert.deepEqual(tableWindow(first, 20), { offset: 0, limit: 60, sort: 'lag', filter: '' });
    assert.equal(visibleTables(first)[0].table, 'db.t0', 'the server\'s order is kept');
    const down = press(first, ...Array.from({ length: 30 }, () => ({ pageDown: true }))).state;
    assert.equal(down.selected, 300, 'the selection goes past the loaded page: the total counts');
    assert.equal(tablePageStale(first, 20), false);
    assert.equal(tablePageStale(down, 20), true, 'rows 281–300 are not loaded');
    assert.deepEqual(tableWindow(down, 20), { offset: 280, limit: 60, sort: 'lag', filter: '' });
    const reread = reduce(down, { type: 'snapshot', snapshot: { ...page(280).snapshot!, tablePage: { offset: 280, total: 100_000, sort: 'lag', filter: '' } } }).state;
    assert.equal(tablePageStale(reread, 20), false);
    assert.equal(tablePageStale(press(reread, 's').state, 20), true, 'another sort is read again');
    const end = press(reread, ...Array.from({ length: 20_000 }, () => ({ pageDown: true }))).state;
    assert.equal(end.selected, 99_999);
  });
});
