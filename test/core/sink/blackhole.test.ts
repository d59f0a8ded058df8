import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { blackholeRecording, clearBlackholeRecordings, factory } from '../../../plugins/sink-blackhole/src/index.js';
import type { ColumnInfo, ColumnValue, DDLEvent, RowChangedEvent, Sink, SinkContext, TableName } from '../../../src/core/sink/api.js';

const columns: ColumnInfo[] = [
  { name: 'id', mysqlType: 'bigint', primaryKey: true, nullable: false },
  { name: 'v', mysqlType: 'varbinary(4)', primaryKey: false, nullable: true },
];
const orders: TableName = { schema: 'shop', table: 'orders', tableId: 1 };
const row = (kind: RowChangedEvent['kind'], ts: bigint, before: ColumnValue[] | null, after: ColumnValue[] | null): RowChangedEvent => ({ table: orders, commitTs: ts, commitTime: 0, seq: 0, kind, columns, before, after });
const ddl = (kind: DDLEvent['kind'], ts: bigint, tables: TableName[] = [orders]): DDLEvent => ({ commitTs: ts, commitTime: 0, schema: 'shop', query: `${kind} …`, kind, tables });
const logger = { debug() {}, info() {}, warn() {}, error() {} };
const context = (controller = new AbortController()): SinkContext => ({ signal: controller.signal, changefeedId: 'cf-blackhole', logger });
const open = async (query: string, controller?: AbortController): Promise<Sink> => {
  const uri = new URL(`blackhole://${query}`);
  return factory.create(uri, factory.parseConfig(uri), context(controller));
};
/** A recorded table as plain values: id → v (as hex), in key order. */
const recorded = (name: string): [ColumnValue, string | null][] =>
  [...(blackholeRecording(name)?.tables.get('shop.orders')?.values() ?? [])]
    .map((r): [ColumnValue, string | null] => [r.get('id') ?? null, (r.get('v') as Buffer | null)?.toString('hex') ?? null])
    .sort(([a], [b]) => Number(a) - Number(b));

describe('blackhole sink', () => {
  after(() => clearBlackholeRecordings());

  it('validates record=<name>, naming the value and what is allowed; without it the config has no record', () => {
    assert.equal(factory.parseConfig(new URL('blackhole://?record=bench.run_1-a')).record, 'bench.run_1-a');
    assert.equal('record' in factory.parseConfig(new URL('blackhole://')), false);
    for (const bad of ['', 'a b', 'x/y', 'é', 'n'.repeat(129)]) {
      assert.throws(() => factory.parseConfig(new URL(`blackhole://?record=${encodeURIComponent(bad)}`)), {
        message: `invalid record "${bad}" in blackhole sink URI: a name of 1 to 128 letters, digits, '.', '_' or '-'`,
      });
    }
    assert.throws(() => factory.parseConfig(new URL('blackhole://?recrod=x')), { message: /unknown parameter "recrod" in blackhole sink URI; allowed: .*record/ });
  });

  it('records what each flush acknowledged, by primary key, shared by the sinks of one name, until cleared', async () => {
    const sink = await open('?record=shared');
    await sink.writeDDL(ddl('create-table', 1n));
    await sink.writeRows(orders, [row('insert', 2n, null, [1n, Buffer.from('01', 'hex')]), row('insert', 2n, null, [2n, Buffer.from('02', 'hex')])]);
    assert.deepEqual(recorded('shared'), [], 'rows not flushed are not acknowledged');
    await sink.flush(2n);
    assert.deepEqual(recorded('shared'), [[1n, '01'], [2n, '02']]);
    // a second sink of the same name (a restart): updates, a primary-key change and a delete apply on top
    const again = await open('?record=shared');
    await again.writeRows(orders, [row('update', 3n, [1n, Buffer.from('01', 'hex')], [1n, Buffer.from('11', 'hex')]), row('update', 3n, [2n, null], [7n, null]), row('delete', 4n, [1n, null], null)]);
    await again.flush(4n);
    await again.flush(3n);
    assert.deepEqual(recorded('shared'), [[7n, null]]);
    assert.equal(blackholeRecording('shared')?.flushedTs, 4n, 'a lower flush does not lower the acknowledged ts');
    await again.writeDDL(ddl('truncate-table', 5n));
    assert.deepEqual(recorded('shared'), [], 'TRUNCATE empties the table');
    assert.deepEqual(blackholeRecording('shared')?.ddls.map((d) => d.kind), ['create-table', 'truncate-table']);
    await sink.close();
    await again.close();
    clearBlackholeRecordings('shared');
    assert.equal(blackholeRecording('shared'), undefined);
  });

  it('without record keeps no rows: nothing is registered, only the counts', async () => {
    const sink = await open('');
    await sink.writeRows(orders, [row('insert', 2n, null, [1n, null])]);
    await sink.flush(2n);
    assert.deepEqual((sink as unknown as { pending: unknown[] }).pending, []);
    assert.deepEqual((sink.stats?.() as { tables: unknown }).tables, { 'shop.orders': { inserts: 1, updates: 0, deletes: 0 } });
    await sink.close();
  });

  it('counts snapshot reads separately (snapshotRows per table and in total), besides counting them as inserts', async () => {
    const sink = await open('?record=snap');
    const items: TableName = { schema: 'shop', table: 'items', tableId: 2 };
    const read = (snapshot: NonNullable<RowChangedEvent['snapshot']>, id: bigint, t = orders): RowChangedEvent => ({ ...row('insert', 2n, null, [id, null]), table: t, snapshot });
    await sink.writeRows(orders, [read('first', 1n), read('row', 2n)]);
    await sink.writeRows(orders, [read('row', 3n), read('last', 4n)]);
    await sink.writeRows(items, [read('only', 1n, items)]);
    // then changes of the binlog: not snapshot reads
    await sink.writeRows(orders, [row('insert', 3n, null, [5n, null]), row('update', 4n, [1n, null], [1n, Buffer.from('aa', 'hex')]), row('delete', 5n, [2n, null], null)]);
    await sink.flush(5n);
    const stats = sink.stats?.() as { tables: unknown; snapshotRows: unknown; snapshotRowsTotal: unknown };
    assert.deepEqual(stats.tables, { 'shop.orders': { inserts: 5, updates: 1, deletes: 1 }, 'shop.items': { inserts: 1, updates: 0, deletes: 0 } });
    assert.deepEqual(stats.snapshotRows, { 'shop.orders': 4, 'shop.items': 1 });
    assert.equal(stats.snapshotRowsTotal, 5);
    assert.deepEqual(recorded('snap'), [[1n, 'aa'], [3n, null], [4n, null], [5n, null]], 'snapshot rows are recorded like inserts');
    const none = await open('');
    await none.writeRows(orders, [row('insert', 2n, null, [1n, null])]);
    const noneStats = none.stats?.() as { snapshotRows: unknown; snapshotRowsTotal: unknown };
    assert.deepEqual([noneStats.snapshotRows, noneStats.snapshotRowsTotal], [{}, 0], 'no snapshot reads: none counted');
    await sink.close();
    await none.close();
  });

  it('refuses to start under an aborted signal, with an AbortError naming the reason', async () => {
    const controller = new AbortController();
    const reason = new Error('changefeed cf-blackhole removed');
    controller.abort(reason);
    await assert.rejects(open('', controller), (error: Error) => {
      assert.equal(error.name, 'AbortError');
      assert.equal(error.cause, reason);
      assert.match(error.message, /blackhole sink of changefeed cf-blackhole: create refused, the changefeed's signal was aborted: changefeed cf-blackhole removed/);
      return true;
    });
  });

  it('rejects every call once aborted (also one waiting in write-delay-ms), and still closes', async () => {
    const controller = new AbortController();
    const sink = await open('?write-delay-ms=60000&record=aborted', controller);
    const waiting = sink.writeRows(orders, [row('insert', 2n, null, [1n, null])]);
    controller.abort(new Error('capture stopping'));
    const refused = { name: 'AbortError', message: /refused, the changefeed's signal was aborted: capture stopping/ };
    await assert.rejects(waiting, { ...refused, message: /writeRows refused/ });
    await assert.rejects(sink.writeRows(orders, []), refused);
    await assert.rejects(sink.flush(3n), { ...refused, message: /flush refused/ });
    await assert.rejects(sink.writeDDL(ddl('alter-table', 4n)), refused);
    await assert.rejects(sink.writeCheckpoint(4n, [orders]), refused);
    await sink.close();
    await sink.close();
    assert.deepEqual(recorded('aborted'), []);
  });
});
