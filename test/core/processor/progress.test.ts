import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_POSITION_TABLES, ProcessorProgress, type ProgressSource } from '../../../src/core/processor/progress.js';
import type { TablePipeline } from '../../../src/core/processor/table-pipeline.js';

/** The fields of a table pipeline the progress reads (pure bookkeeping: no sorter or sink behind them). */
function pipeline(key: string, id: number, checkpointTs: bigint): TablePipeline {
  return {
    key, ownerTableId: id, state: 'replicating', stopRequested: false, catchUpTs: 0n, floorTs: 0n, checkpointTs, checkpointTime: 0,
    rowsPerSecond: null, sorter: { stats: { spilledBytes: 0 } }, stats: { inserts: 0, updates: 0, deletes: 0 }, sampleRate: () => undefined,
  } as unknown as TablePipeline;
}

function source(tables: Map<string, TablePipeline>): ProgressSource {
  return {
    changefeedKey: 'default/cf', basename: 'mysql-bin', tables, readerTs: 100n, readerTime: 0, floors: () => ({ checkpointTs: 1n, checkpointTime: 0, resolvedTs: 100n }),
    resolvedOf: () => 100n,
  };
}

describe('a processor\'s heartbeat reports and task position', () => {
  it('lists every table when asked (or at its first answer), then only the tables whose state changed, and a stopped table once', () => {
    /** Counts the walks over every table (a delta makes none: it looks at the tables it was told of). */
    class CountedMap<K, V> extends Map<K, V> {
      walks = 0;
      override values(): MapIterator<V> {
        this.walks++;
        return super.values();
      }
    }
    const tables = new CountedMap(Array.from({ length: 5000 }, (_, i) => [`db.t${i}`, pipeline(`db.t${i}`, i + 1, 10n)] as const));
    const progress = new ProcessorProgress(source(tables));
    const first = progress.reports(false);
    assert.equal(first.full, true, 'the first answer lists every table whatever was asked');
    assert.equal(first.tables.length, 5000);
    const idle = progress.reports(false);
    assert.deepEqual(idle, { tables: [], full: false }, 'an idle heartbeat of 5,000 tables lists none');

    const moving = tables.get('db.t7')!;
    moving.state = 'preparing';
    (moving as { catchUpTs: bigint }).catchUpTs = 50n;
    progress.tableChanged(moving);
    const stopped = tables.get('db.t9')!;
    tables.delete('db.t9');
    progress.tableStopped(stopped);
    const delta = progress.reports(false);
    assert.equal(delta.full, false);
    // preparing → prepared (the reader is past its catch-up ts), and the stopped table once
    assert.deepEqual(delta.tables.map((r) => [r.table, r.state]), [['db.t7', 'prepared'], ['db.t9', 'stopped']]);
    assert.deepEqual(progress.reports(false).tables, []);
    assert.equal(tables.walks, 1, 'only the first (full) answer walked every table');

    const full = progress.reports(true);
    assert.equal(full.full, true);
    assert.equal(full.tables.length, 4999);
  });

  it('the task position counts every table and lists the furthest behind, built only for those', () => {
    const tables = new Map(Array.from({ length: 10_000 }, (_, i) => [`db.t${i}`, pipeline(`db.t${i}`, i + 1, BigInt(1_000_000 - i))] as const));
    let built = 0;
    for (const t of tables.values()) {
      const plain = t as unknown as { sampleRate: () => void };
      plain.sampleRate = () => void built++;
    }
    const progress = new ProcessorProgress(source(tables));
    const position = progress.position(0);
    assert.equal(position['table-count'], 10_000);
    assert.equal(position.tables?.length, MAX_POSITION_TABLES);
    assert.equal(built, MAX_POSITION_TABLES, 'entries built only for the tables listed');
    assert.deepEqual(position.tables?.[0], { ...position.tables?.[0], table: 'db.t9800' }, 'by name among the furthest behind (t9800…t9999)');
    assert.ok(position.tables?.every((t) => BigInt(t.checkpoint_ts) <= BigInt(1_000_000 - 9800)));
  });

  it('with more tables than it lists, the task position chooses them again at most every 10 s (the choice walks every table)', () => {
    const tables = new Map(Array.from({ length: 1000 }, (_, i) => [`db.t${i}`, pipeline(`db.t${i}`, i + 1, BigInt(10_000 + i))] as const));
    const progress = new ProcessorProgress(source(tables));
    const listed = (now: number) => progress.position(now).tables?.map((t) => t.table) ?? [];
    assert.ok(listed(0).includes('db.t0'));
    assert.ok(!listed(0).includes('db.t999'));
    (tables.get('db.t999') as { checkpointTs: bigint }).checkpointTs = 1n; // falls furthest behind
    tables.delete('db.t0');
    const soon = listed(5000);
    assert.ok(!soon.includes('db.t999'), 'not chosen again yet');
    assert.ok(!soon.includes('db.t0'), 'a removed table is left out at once');
    assert.equal(progress.position(5000)['table-count'], 999);
    assert.ok(listed(10_000).includes('db.t999'), 'chosen again after 10 s');
  });
});
