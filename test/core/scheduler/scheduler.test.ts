import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TableState } from '../../../src/core/p2p/messages.js';
import { TableScheduler, type DispatchOp } from '../../../src/core/scheduler/scheduler.js';

const tables = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);
const none = new Set<string>();

/** Plays the processors: acknowledges every op the way a capture would. */
function settle(s: TableScheduler, ops: DispatchOp[]): void {
  for (const op of ops) {
    const state: TableState = op.kind === 'remove' ? 'stopped' : op.isSecondary ? 'prepared' : 'replicating';
    s.report(op.capture, [{ changefeed: 'cf', tableId: op.tableId, state, checkpointTs: '1', resolvedTs: '1' }]);
  }
}

/** Runs schedule/settle until nothing more is sent. */
function converge(s: TableScheduler, input: Parameters<TableScheduler['schedule']>[0], rounds = 50): number {
  let total = 0;
  for (let i = 0; i < rounds; i++) {
    const ops = s.schedule(input);
    if (ops.length === 0) return total;
    total += ops.length;
    settle(s, ops);
  }
  throw new Error('the scheduler did not converge');
}

function spread(s: TableScheduler): number[] {
  return [...s.loads().values()].sort((a, b) => a - b);
}

describe('table scheduler', () => {
  it('spreads 30 tables over 3 captures within ±1, each table on exactly one capture', () => {
    const s = new TableScheduler();
    converge(s, { tables: tables(30), captures: ['a', 'b', 'c'], draining: none });
    assert.deepEqual(spread(s), [10, 10, 10]);
    assert.ok([...s.sets.values()].every((set) => set.phase === 'replicating' && set.primary !== undefined && set.secondary === undefined));
  });

  it('rebalances onto a joining capture with two-phase moves, at most N in flight', () => {
    const s = new TableScheduler({ maxMovesInFlight: 2 });
    converge(s, { tables: tables(30), captures: ['a', 'b', 'c'], draining: none });
    const input = { tables: tables(30), captures: ['a', 'b', 'c', 'd'], draining: none };
    const first = s.schedule(input);
    assert.equal(first.length, 2, 'two moves start');
    assert.ok(first.every((op) => op.kind === 'add' && op.capture === 'd' && op.isSecondary), 'a move starts by preparing a secondary on the new capture');
    assert.deepEqual(s.schedule(input), [], 'no more moves while two are in flight');
    settle(s, first); // secondaries prepared
    const stops = s.schedule(input);
    assert.ok(stops.filter((op) => op.kind === 'remove').length === 2, 'then the old primaries are stopped');
    settle(s, stops);
    const commits = s.schedule(input);
    assert.deepEqual(commits.filter((op) => op.kind === 'add' && !op.isSecondary).map((op) => op.capture), ['d', 'd'], 'then the secondaries take over');
    settle(s, commits);
    converge(s, input);
    const loads = spread(s);
    assert.ok(loads[loads.length - 1] - loads[0] <= 1, `unbalanced: ${loads.join(',')}`);
    assert.equal(s.loads().get('d'), 7);
  });

  it('balances 100,000 tables onto two joining captures in a few rounds of moves (one in flight per 25 tables)', () => {
    const s = new TableScheduler();
    const all = tables(100_000);
    converge(s, { tables: all, captures: ['a'], draining: none });
    const input = { tables: all, captures: ['a', 'b', 'c'], draining: none };
    let rounds = 0;
    let most = 0;
    for (;;) {
      const ops = s.schedule(input);
      if (ops.length === 0) break;
      most = Math.max(most, ops.filter((op) => op.kind === 'add' && op.isSecondary).length);
      settle(s, ops);
      if (++rounds > 100) assert.fail('not balanced in 100 rounds');
    }
    assert.deepEqual(spread(s), [33_333, 33_333, 33_334]);
    assert.equal(most, 4000, 'at most 100,000 / 25 moves started in one pass');
    // a wave of moves is three rounds (prepare the secondary, stop the primary, hand over): 66,667 moves 4,000 at a
    // time is 17 waves and a shorter tail (with 4 moves in flight, 50,000 rounds: hours of heartbeats)
    assert.ok(rounds <= 60, `${rounds} rounds`);
  });

  it('counts a table being moved where it goes: a pass while moves are in flight starts no more than balance needs', () => {
    const s = new TableScheduler({ maxMovesInFlight: 1000 });
    converge(s, { tables: tables(100), captures: ['a'], draining: none });
    const input = { tables: tables(100), captures: ['a', 'b', 'c'], draining: none };
    const first = s.schedule(input);
    assert.equal(first.length, 66, 'a gives 33 to b and 33 to c');
    assert.deepEqual(s.schedule(input), [], 'the next pass, before any report, starts no more (the moving tables count at b and c)');
    settle(s, first);
    converge(s, input);
    assert.deepEqual(spread(s), [33, 33, 34]);
    assert.equal(s.schedule(input).length, 0);
  });

  it('moves every table off a draining capture and gives it no new ones', () => {
    const s = new TableScheduler();
    converge(s, { tables: tables(12), captures: ['a', 'b', 'c'], draining: none });
    converge(s, { tables: tables(14), captures: ['a', 'b', 'c'], draining: new Set(['b']) });
    assert.equal(s.loads().get('b') ?? 0, 0);
    assert.deepEqual(spread(s), [7, 7]);
  });

  it('restarts the tables of a dead capture elsewhere, and promotes a prepared secondary at once', () => {
    const s = new TableScheduler();
    converge(s, { tables: tables(9), captures: ['a', 'b', 'c'], draining: none });
    const ops = s.schedule({ tables: tables(9), captures: ['a', 'b'], draining: none });
    assert.equal(ops.length, 3);
    assert.ok(ops.every((op) => op.kind === 'add' && !op.isSecondary && op.capture !== 'c'));
    settle(s, ops);
    assert.deepEqual(spread(s), [4, 5]);

    const m = new TableScheduler({ maxMovesInFlight: 1 });
    converge(m, { tables: tables(4), captures: ['a'], draining: none });
    const move = m.schedule({ tables: tables(4), captures: ['a', 'b'], draining: none });
    settle(m, move); // the secondary on b is prepared; now a dies before it stops
    const after = m.schedule({ tables: tables(4), captures: ['b'], draining: none });
    const moved = move[0].tableId;
    assert.equal(m.sets.get(moved)?.primary, 'b', 'the prepared secondary became the primary');
    assert.ok(after.every((op) => op.tableId !== moved || op.kind !== 'add' || op.capture === 'b'));
  });

  it('removes tables that leave the changefeed', () => {
    const s = new TableScheduler();
    converge(s, { tables: tables(6), captures: ['a', 'b'], draining: none });
    const ops = s.schedule({ tables: [1, 2, 3], captures: ['a', 'b'], draining: none });
    assert.deepEqual(ops.map((op) => `${op.kind}:${op.tableId}`).sort(), ['remove:4', 'remove:5', 'remove:6']);
    settle(s, ops);
    assert.deepEqual([...s.sets.keys()].sort(), [1, 2, 3]);
  });
});

describe('table scheduler: rebuild after owner failover', () => {
  it('keeps every replicating table where it is and schedules only the missing ones', () => {
    const s = new TableScheduler();
    const report = (tableId: number, state: TableState) => ({ changefeed: 'cf', tableId, state, checkpointTs: '1', resolvedTs: '1' });
    s.rebuild(new Map([
      ['a', [report(1, 'replicating'), report(2, 'replicating')]],
      ['b', [report(3, 'replicating'), report(2, 'prepared')]],
    ]));
    assert.deepEqual(s.capturesOf(1), { primary: 'a', secondary: undefined });
    assert.deepEqual(s.capturesOf(2), { primary: 'a', secondary: 'b' });
    const ops = s.schedule({ tables: [1, 2, 3, 4], captures: ['a', 'b', 'c'], draining: none });
    assert.deepEqual(ops.filter((op) => op.kind === 'add' && !op.isSecondary).map((op) => op.tableId), [4], 'only the unreported table is added');
    assert.ok(!ops.some((op) => op.tableId === 1 || op.tableId === 3), 'replicating tables are not touched');
  });

  it('promotes a secondary whose primary is gone', () => {
    const s = new TableScheduler();
    s.rebuild(new Map([['b', [{ changefeed: 'cf', tableId: 7, state: 'prepared', checkpointTs: '1', resolvedTs: '1' }]]]));
    const ops = s.schedule({ tables: [7], captures: ['b'], draining: none });
    assert.deepEqual(ops, [{ kind: 'add', tableId: 7, capture: 'b', isSecondary: false }]);
  });
});

describe('table scheduler: a move whose primary dies', () => {
  it('tells the secondary to take over (an add, not a silent phase change)', () => {
    const s = new TableScheduler({ maxMovesInFlight: 1 });
    converge(s, { tables: [1, 2], captures: ['a'], draining: none });
    const move = s.schedule({ tables: [1, 2], captures: ['a', 'b'], draining: none });
    assert.deepEqual(move, [{ kind: 'add', tableId: 1, capture: 'b', isSecondary: true }]);
    const ops = s.schedule({ tables: [1, 2], captures: ['b'], draining: none });
    assert.ok(ops.some((op) => op.kind === 'add' && op.tableId === 1 && op.capture === 'b' && !op.isSecondary), JSON.stringify(ops));
  });
});

describe('table scheduler: rebuild while a capture is still stopping a table', () => {
  it('gives it no second writer until it has stopped, then schedules it again', () => {
    const s = new TableScheduler();
    s.rebuild(new Map([['a', [{ changefeed: 'cf', tableId: 5, state: 'stopping', checkpointTs: '1', resolvedTs: '1' }]]]));
    assert.deepEqual(s.schedule({ tables: [5], captures: ['a', 'b'], draining: none }).filter((op) => op.kind === 'add'), [], 'no add while a is stopping it');
    s.report('a', [{ changefeed: 'cf', tableId: 5, state: 'stopped', checkpointTs: '9', resolvedTs: '9' }]);
    const ops = s.schedule({ tables: [5], captures: ['a', 'b'], draining: none });
    assert.equal(ops.filter((op) => op.kind === 'add' && op.tableId === 5).length, 1, 'scheduled again once stopped');
  });

});

describe('table scheduler: idle ticks', () => {
  it('an idle tick walks no table: a pass with the same inputs and sets as a pass that sent nothing is skipped, and any change runs one', () => {
    const s = new TableScheduler({ maxMovesInFlight: 2 });
    const wanted = tables(1500);
    let version = 1;
    const input = (captures: string[], draining = none) => ({ tables: wanted, tablesVersion: version, captures, draining });
    converge(s, input(['a', 'b']));
    const run = s.passes.run;
    for (let i = 0; i < 100; i++) assert.deepEqual(s.schedule(input(['a', 'b'])), []);
    assert.equal(s.passes.run, run, '100 idle ticks: no pass');
    assert.equal(s.passes.skipped, 100);

    // a capture joins: passes run until balanced again, moves included
    converge(s, input(['a', 'b', 'c']), 3000);
    assert.deepEqual(spread(s), [500, 500, 500]);
    // a table added to the changefeed: the version says so
    wanted.push(1501);
    version++;
    const added = s.schedule(input(['a', 'b', 'c']));
    assert.deepEqual(added.map((op) => [op.kind, op.tableId]), [['add', 1501]]);
    settle(s, added);
    assert.deepEqual(s.schedule(input(['a', 'b', 'c'])), []);
    // a capture lost a table (its processor restarted): it is added again
    const skipped = s.passes.skipped;
    assert.deepEqual(s.schedule(input(['a', 'b', 'c'])), []);
    assert.equal(s.passes.skipped, skipped + 1);
    s.lose(7);
    const again = s.schedule(input(['a', 'b', 'c']));
    assert.deepEqual(again.map((op) => [op.kind, op.tableId]), [['add', 7]]);
    settle(s, again);
    // a capture drains: its tables move off, at most two at a time, until none is left there
    const draining = new Set(['c']);
    converge(s, input(['a', 'b', 'c'], draining), 3000);
    assert.equal(s.loads().get('c') ?? 0, 0);
    // a report that changes nothing (a heartbeat of replicating tables) does not wake the scheduler
    const before = s.passes.run;
    s.report('a', [{ changefeed: 'cf', tableId: 1, state: 'replicating', checkpointTs: '2', resolvedTs: '2' }]);
    s.schedule(input(['a', 'b', 'c'], draining));
    assert.equal(s.passes.run, before);
  });
});
