import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseReplicaConfig, parseReplicaConfigToml, parseStoredReplicaConfig, readReplicaConfigText, replicaConfigToInput } from '../../../src/core/config/replica-config.js';
import { parseDuration } from '../../../src/core/config/duration.js';
import { TableFilter } from '../../../src/core/config/table-filter.js';

describe('changefeed.toml', () => {
  it('fills TiCDC\'s defaults and freezes the result', () => {
    const config = parseReplicaConfig({});
    assert.equal(config['memory-quota'], 256 * 1024 * 1024);
    assert.deepEqual(config.filter.rules, ['*.*']);
    assert.equal(config['sync-point-interval'], 600_000);
    assert.equal(config['changefeed-error-stuck-duration'], 1_800_000);
    assert.ok(Object.isFrozen(config) && Object.isFrozen(config.filter) && Object.isFrozen(config.filter.rules));
  });

  it('parses TOML with sections and dispatchers, and round-trips through its stored form', () => {
    const config = parseReplicaConfigToml(
      `case-sensitive = true
memory-quota = 16777216
enable-sync-point = true
sync-point-interval = "30s"
[filter]
rules = ["shop.*", "!shop.tmp*"]
ignore-txn-start-ts = [42]
[sink]
protocol = "canal-json"
dispatchers = [{ matcher = ["shop.*"], topic = "{schema}_{table}", partition = "index-value" }]
`,
      'changefeed.toml',
    );
    assert.equal(config['sync-point-interval'], 30_000);
    assert.deepEqual(config.filter['ignore-txn-start-ts'], ['42']);
    assert.equal((config.sink['dispatchers'] as { partition?: string }[])[0]?.partition, 'index-value');
    assert.deepEqual(parseReplicaConfig(JSON.parse(JSON.stringify(replicaConfigToInput(config)))), config);
  });

  it('refuses TiCDC\'s [mounter] by name with why; a stored config of an earlier version that holds it still parses', () => {
    assert.throws(() => parseReplicaConfigToml('[mounter]\nworker-num = 16\n', 'changefeed.toml'), {
      code: 'ErrConfigUnknownKey',
      message: /key "mounter" of TiCDC's changefeed\.toml in changefeed\.toml is not used by Tidemark: .*remove the \[mounter\] section/,
    });
    const stored = { ...JSON.parse(JSON.stringify(replicaConfigToInput(parseReplicaConfig({ 'force-replicate': true })))), mounter: { 'worker-num': 16 } };
    assert.equal(parseStoredReplicaConfig(stored, 'changefeed cf config')['force-replicate'], true);
    assert.throws(() => parseStoredReplicaConfig({ ...stored, 'memroy-quota': 1 }, 'changefeed cf config'), { code: 'ErrConfigUnknownKey' });
  });

  it('names unknown keys with their section, and bad values', () => {
    assert.throws(() => parseReplicaConfig({ 'memroy-quota': 1 }), { code: 'ErrConfigUnknownKey', message: /unknown key "memroy-quota"/ });
    assert.throws(() => parseReplicaConfig({ filter: { tables: [] } }), { code: 'ErrConfigUnknownKey', message: /unknown key "filter.tables"/ });
    assert.throws(() => parseReplicaConfig({ 'sync-point-interval': '5s' }), { code: 'ErrConfigInvalid', message: /"sync-point-interval".*below the minimum of 30s/ });
    assert.throws(() => parseReplicaConfig({ 'sync-point-interval': 'soon' }), { code: 'ErrConfigInvalid', message: /"soon" is not a duration/ });
    assert.throws(() => parseReplicaConfig({ filter: { rules: ['db'] } }), { code: 'ErrConfigInvalid', message: /invalid table filter rule "db".*expected schema\.table/ });
    assert.throws(() => parseReplicaConfigToml('memory-quota = ', 'x.toml'), { code: 'ErrConfigInvalid', message: /x\.toml is not valid TOML/ });
    // the CLI reads a config file with the same function: TOML, or JSON by its name
    assert.deepEqual(readReplicaConfigText('{"filter": {"rules": ["a.*"]}}', 'config file cf.json'), { filter: { rules: ['a.*'] } });
    assert.throws(() => readReplicaConfigText('{"filter": ', 'config file cf.json'), { code: 'ErrConfigInvalid', message: /^config file cf\.json is not valid JSON: / });
  });

  it('parses Go-style durations', () => {
    const cases: [string, number | undefined][] = [['500ms', 500], ['30s', 30_000], ['10m', 600_000], ['1h30m', 5_400_000], ['1.5s', 1500], ['', undefined], ['10', undefined], ['5d', undefined]];
    for (const [text, ms] of cases) assert.equal(parseDuration(text), ms, text);
  });
});

describe('table filter (TiDB syntax)', () => {
  const cases: [string[], string, string, boolean][] = [
    [['*.*'], 'shop', 'orders', true],
    [['*.*'], 'mysql', 'user', false],
    [['shop.*'], 'shop', 'orders', true],
    [['shop.*'], 'Shop', 'Orders', true],
    [['shop.*'], 'other', 'orders', false],
    [['shop.*', '!shop.tmp*'], 'shop', 'tmp_1', false],
    [['shop.*', '!shop.tmp*'], 'shop', 'orders', true],
    [['!shop.tmp*', 'shop.*'], 'shop', 'tmp_1', true],
    [['*.t?'], 'a', 't1', true],
    [['*.t?'], 'a', 't12', false],
    [['db[0-9].tbl'], 'db3', 'tbl', true],
    [['db[!0-9].tbl'], 'db3', 'tbl', false],
    [['`my.db`.`t`'], 'my.db', 't', true],
    [['`my.db`.`t`'], 'myxdb', 't', false],
  ];
  for (const [rules, schema, table, expected] of cases) {
    it(`${JSON.stringify(rules)} ${expected ? 'matches' : 'skips'} ${schema}.${table}`, () => {
      assert.equal(new TableFilter(rules).match(schema, table), expected);
    });
  }
  it('is case-sensitive when asked', () => {
    assert.equal(new TableFilter(['shop.*'], true).match('Shop', 'x'), false);
  });
});

describe('[snapshot] mode', () => {
  it('defaults to never; schema is accepted from TOML', () => {
    assert.equal(parseReplicaConfig({}).snapshot.mode, 'never');
    assert.equal(parseReplicaConfigToml('[snapshot]\nmode = "schema"\n', 'cf.toml').snapshot.mode, 'schema');
  });
  it('an unknown mode names the value and the allowed ones', () => {
    assert.throws(() => parseReplicaConfigToml('[snapshot]\nmode = "everything"\n', 'cf.toml'), (e: Error & { code?: string }) => e.code === 'ErrConfigInvalid' && /"snapshot.mode" in cf.toml: "everything" is not a snapshot mode; allowed: never, schema/.test(e.message));
  });
  it('initial takes chunk-rows and parallelism, with defaults', () => {
    const config = parseReplicaConfigToml('[snapshot]\nmode = "initial"\nchunk-rows = 500\n', 'cf.toml');
    assert.deepEqual(config.snapshot, { mode: 'initial', 'chunk-rows': 500, parallelism: 4 });
    assert.deepEqual(parseReplicaConfig({}).snapshot, { mode: 'never', 'chunk-rows': 8192, parallelism: 4 });
  });
  it('a chunk size or parallelism out of range names the key, the value and what is allowed', () => {
    const cases: [unknown, RegExp][] = [
      [{ 'chunk-rows': 0 }, /invalid value for "snapshot.chunk-rows" in cf: must be at least 1 row per chunk/],
      [{ 'chunk-rows': 2.5 }, /invalid value for "snapshot.chunk-rows" in cf: must be a whole number of rows/],
      [{ 'chunk-rows': '100' }, /invalid value for "snapshot.chunk-rows" in cf: must be a whole number of rows/],
      [{ parallelism: 0 }, /invalid value for "snapshot.parallelism" in cf: must be at least 1 chunk read at a time/],
      [{ parallelism: 65 }, /invalid value for "snapshot.parallelism" in cf: must be at most 64 chunk reads at a time/],
    ];
    for (const [section, pattern] of cases) assert.throws(() => parseReplicaConfig({ snapshot: section }, 'cf'), (e: Error & { code?: string }) => e.code === 'ErrConfigInvalid' && pattern.test(e.message), JSON.stringify(section));
  });
  it('an unknown key in [snapshot] is named', () => {
    assert.throws(() => parseReplicaConfig({ snapshot: { 'chunk-size': 10 } }), (e: Error & { code?: string }) => e.code === 'ErrConfigUnknownKey' && /"snapshot.chunk-size"/.test(e.message));
  });
});
