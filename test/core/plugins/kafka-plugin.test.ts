import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { SinkRegistry } from '../../../src/core/sink/registry.js';
import { factory, parseConfig } from '../../../plugins/sink-kafka/src/index.js';

const root = new URL('../../../plugins/sink-kafka', import.meta.url).pathname;
const pjson = JSON.parse(readFileSync(`${root}/package.json`, 'utf8')) as object;

describe('the kafka sink plugin (built, loaded from its package.json)', () => {
  const registry = SinkRegistry.fromPlugins([{ name: '@tidemark/sink-kafka', root, pjson }]);

  it('registers the kafka scheme and validates URIs with its parseConfig', async () => {
    assert.deepEqual(registry.schemes, ['kafka']);
    const config = (await registry.validate('kafka://127.0.0.1:9092/orders?protocol=canal-json&partition-num=6&compression=gzip')) as Record<string, unknown>;
    assert.equal(config['topic'], 'orders');
    assert.equal(config['protocol'], 'canal-json');
    assert.equal(config['partitionNum'], 6);
    assert.equal(config['compression'], 'gzip');
    await assert.rejects(registry.validate('kafka://127.0.0.1:9092/orders?protocol=avro'), {
      code: 'ErrSinkURIInvalid',
      message: /invalid protocol "avro" in kafka sink URI: one of canal-json, open-protocol, debezium, maxwell/,
    });
    await assert.rejects(registry.validate('kafka://127.0.0.1:9092/orders?protocol=maxwell&acks=all'), { message: /unknown parameter "acks" in kafka sink URI; allowed: protocol, / });
  });

  it("refuses a protocol's own parameter with another protocol (URI or [sink] protocol), naming the protocols it applies to", () => {
    const check = (query: string, sink: Record<string, unknown> = {}): void => factory.validateSinkConfig(parseConfig(new URL(`kafka://127.0.0.1:9092/t?${query}`)), sink, []);
    for (const [param, owner, other] of [
      ['tombstones-on-delete=false', 'debezium', 'maxwell'],
      ['include-schema-changes=false', 'debezium', 'canal-json'],
      ['schema-change-topic=ddl', 'debezium', 'open-protocol'],
      ['enable-tidb-extension=true', 'canal-json', 'debezium'],
      ['max-batch-size=8', 'open-protocol', 'maxwell'],
    ] as const) {
      const key = param.split('=')[0];
      check(`protocol=${owner}&${param}`);
      check(param, { protocol: owner });
      const message = new RegExp(`^kafka sink URI: ${key} applies to protocol ${owner} only, not ${other}; remove it or change the protocol$`);
      assert.throws(() => check(`protocol=${other}&${param}`), { code: 'ErrSinkURIInvalid', message });
      assert.throws(() => check(param, { protocol: other }), { code: 'ErrSinkURIInvalid', message });
    }
  });

  it('owns protocol and dispatchers of [sink]; another key there is refused naming what [sink] takes', async () => {
    await registry.validate('kafka://127.0.0.1:9092/t', { protocol: 'maxwell', dispatchers: [{ matcher: ['a.*'], partition: 'ts' }], 'safe-mode': false });
    await assert.rejects(registry.validate('kafka://127.0.0.1:9092/t?protocol=maxwell', { 'column-selectors': [] }), {
      code: 'ErrConfigUnknownKey',
      message: 'unknown key "sink.column-selectors" in the changefeed config for a kafka:// sink; [sink] takes safe-mode, transaction-atomicity, and the kafka sink\'s protocol, dispatchers',
    });
  });
});
