import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { SinkRegistry } from '../../../src/core/sink/registry.js';

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
});
