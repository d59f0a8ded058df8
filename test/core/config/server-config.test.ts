import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadServerConfig, resolveServerConfig } from '../../../src/core/config/server-config.js';
import { validateClusterId } from '../../../src/core/config/cluster-id.js';

describe('server config', () => {
  it('fills defaults, lets flags override the file, and freezes the result', () => {
    const config = resolveServerConfig({ addr: '127.0.0.1:9000', 'log-level': 'debug' }, { addr: '127.0.0.1:9100', pd: undefined });
    assert.equal(config.addr, '127.0.0.1:9100');
    assert.equal(config['log-level'], 'debug');
    assert.equal(config.pd, 'http://127.0.0.1:2379');
    assert.equal(config['cluster-id'], 'default');
    assert.equal(config['capture-session-ttl'], 10);
    assert.equal(config['heap-growth'], 2);
    assert.ok(Object.isFrozen(config));
  });

  it('names an unknown key and lists the allowed ones', () => {
    assert.throws(() => resolveServerConfig({ 'sorter-dir': '/x' } as never, {}, 'server.toml'), {
      code: 'ErrConfigUnknownKey',
      message: /unknown key "sorter-dir" in server\.toml; allowed: pd, addr, advertise-addr, data-dir, cluster-id/,
    });
  });

  it('finds .tidemarkrc.toml in the working directory when --config is not given, and nothing elsewhere', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tidemark-cfg-'));
    assert.deepEqual(await loadServerConfig(undefined, dir), { config: {}, file: undefined });
    writeFileSync(join(dir, '.tidemarkrc.toml'), 'addr = "127.0.0.1:9300"\ncluster-id = "east"\n');
    const found = await loadServerConfig(undefined, dir);
    assert.equal(found.file, join(dir, '.tidemarkrc.toml'));
    assert.deepEqual({ ...found.config }, { addr: '127.0.0.1:9300', 'cluster-id': 'east' });
    const yaml = join(dir, 'other.yaml');
    writeFileSync(yaml, 'addr: 127.0.0.1:9400\nlog-level: debug\n');
    assert.deepEqual((await loadServerConfig(yaml, dir)).config, { addr: '127.0.0.1:9400', 'log-level': 'debug' });
  });

  it('names a bad value with what it got', () => {
    assert.throws(() => resolveServerConfig({ addr: 'localhost' }, {}), { code: 'ErrConfigInvalid', message: /"addr".*host:port.*"localhost"/ });
    assert.throws(() => resolveServerConfig({ 'log-level': 'loud' as never }, {}), { code: 'ErrConfigInvalid', message: /"log-level"/ });
    assert.throws(() => resolveServerConfig({ 'heap-growth': 1 }, {}, 'server.toml'), { code: 'ErrConfigInvalid', message: /"heap-growth" in server\.toml: must be at least 1\.1 .*\(got 1\)/ });
    assert.throws(() => resolveServerConfig({}, { 'heap-growth': 8 }, 'flags'), { code: 'ErrConfigInvalid', message: /"heap-growth" in flags: must be at most 4 .*\(got 8\)/ });
  });
});

describe('cluster id', () => {
  const cases: [string, boolean][] = [
    ['default', true],
    ['prod-east-1', true],
    ['A1', true],
    ['a'.repeat(128), true],
    ['a'.repeat(129), false],
    ['', false],
    ['bad_id', false],
    ['-lead', false],
    ['trail-', false],
    ['double--dash', false],
    ['owner', false],
    ['changefeed', false],
  ];
  for (const [id, ok] of cases) {
    it(`${ok ? 'accepts' : 'rejects'} ${JSON.stringify(id.length > 20 ? `${id.slice(0, 8)}…(${id.length})` : id)}`, () => {
      if (ok) assert.equal(validateClusterId(id), id);
      else assert.throws(() => validateClusterId(id), { code: 'ErrClusterIdInvalid' });
    });
  }
});
