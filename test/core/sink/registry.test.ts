import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { SinkRegistry } from '../../../src/core/sink/registry.js';
import type { RowChangedEvent, TableName } from '../../../src/core/sink/api.js';

const root = new URL('../../../plugins/sink-blackhole', import.meta.url).pathname;
const pjson = JSON.parse(readFileSync(`${root}/package.json`, 'utf8')) as object;

function row(kind: RowChangedEvent['kind'], table: TableName, ts: bigint): RowChangedEvent {
  return { table, commitTs: ts, commitTime: 0, seq: 0, kind, columns: [{ name: 'id', mysqlType: 'int', primaryKey: true, nullable: false }], before: kind === 'insert' ? null : [1], after: kind === 'delete' ? null : [1] };
}

describe('SinkRegistry with the blackhole plugin (built, loaded from its package.json)', () => {
  const registry = SinkRegistry.fromPlugins([{ name: '@tidemark/sink-blackhole', root, pjson }]);

  it('finds the scheme, names the installed ones for an unknown one', () => {
    assert.deepEqual(registry.schemes, ['blackhole']);
    assert.throws(() => registry.resolve('kafak://x'), { code: 'ErrSinkUnknownScheme', message: /unknown sink scheme "kafak" in --sink-uri; installed: blackhole/ });
    assert.throws(() => registry.resolve('not a uri'), { code: 'ErrSinkURIInvalid' });
  });

  it('validates URI parameters with the plugin\'s parseConfig', async () => {
    assert.deepEqual(await registry.validate('blackhole://?delay-ms=5'), { delayMs: 5, writeDelayMs: 0, rowDelayUs: 0, failUntil: 0, failFatal: false });
    await assert.rejects(registry.validate('blackhole://?delay-ms=-1'), { code: 'ErrSinkURIInvalid', message: /invalid delay-ms "-1"/ });
    await assert.rejects(registry.validate('blackhole://?color=red'), { code: 'ErrSinkURIInvalid', message: /unknown parameter "color".*allowed: delay-ms/ });
  });

  it("refuses a [sink] key that neither Tidemark nor the sink reads (the Kafka sink's protocol on a blackhole)", async () => {
    await registry.validate('blackhole://', { 'safe-mode': true, 'transaction-atomicity': 'table' });
    await assert.rejects(registry.validate('blackhole://', { 'safe-mode': false, protocol: 'canal-json' }), {
      code: 'ErrConfigUnknownKey',
      message: 'unknown key "sink.protocol" in the changefeed config for a blackhole:// sink; [sink] takes safe-mode, transaction-atomicity',
    });
  });

  it('creates a sink that counts rows, acknowledges flushes and closes idempotently', async () => {
    const factory = await registry.factoryFor('blackhole://');
    const uri = new URL('blackhole://');
    const sink = await factory.create(uri, factory.parseConfig(uri), { signal: new AbortController().signal, changefeedId: 'cf', logger: console });
    const t: TableName = { schema: 'shop', table: 'orders', tableId: 1 };
    await sink.writeRows(t, [row('insert', t, 10n), row('insert', t, 10n), row('update', t, 11n), row('delete', t, 12n)]);
    await sink.flush(12n);
    const counts = (sink as unknown as { counts: Map<string, unknown>; flushedTs: bigint }).counts;
    assert.deepEqual(counts.get('shop.orders'), { inserts: 2, updates: 1, deletes: 1 });
    assert.equal((sink as unknown as { flushedTs: bigint }).flushedTs, 12n);
    await sink.close();
    await sink.close();
  });
});
