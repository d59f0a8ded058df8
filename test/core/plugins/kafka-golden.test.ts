import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { createEncoder, packOpenProtocol, unpackOpenProtocol, type Protocol } from '../../../plugins/sink-kafka/src/index.js';
import type { ColumnInfo, ColumnValue, RowChangedEvent } from '../../../src/core/sink/api.js';

/**
 * Golden tests: Tidemark's messages for a fixed workload against messages of the reference implementations
 * (test/fixtures/kafka-golden: a real Debezium 3.5 connector's, the documented canal-json and Maxwell examples).
 * What is compared is the layout a consumer binds to: field names in order, nesting and JSON types (a field that
 * is null on either side matches any type). Departures on purpose are listed per protocol (the plugin's README).
 */
const fixture = (name: string): unknown[] =>
  readFileSync(new URL(`../../fixtures/kafka-golden/${name}`, import.meta.url), 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as unknown);

/** The layout of a JSON value: objects as [key, layout] in order, arrays by their first element, scalars by type. */
type Layout = string | { readonly [key: string]: Layout } | readonly Layout[];
function layout(value: unknown, skip: (path: string) => boolean = () => false, path = ''): Layout {
  if (value === null) return 'null';
  if (Array.isArray(value)) return value.length === 0 ? [] : [layout(value[0], skip, `${path}[]`)];
  if (typeof value === 'object') {
    const out: Record<string, Layout> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) if (!skip(`${path}.${k}`)) out[k] = layout(v, skip, `${path}.${k}`);
    return out;
  }
  return typeof value;
}
/** Differences of two layouts as paths ("" when equal); null on either side matches anything. */
function differences(ours: Layout, theirs: Layout, path = ''): string[] {
  if (ours === 'null' || theirs === 'null') return [];
  if (typeof ours === 'string' || typeof theirs === 'string') return ours === theirs ? [] : [`${path}: ${JSON.stringify(ours)} vs ${JSON.stringify(theirs)}`];
  if (Array.isArray(ours) || Array.isArray(theirs)) {
    if (!Array.isArray(ours) || !Array.isArray(theirs)) return [`${path}: array vs object`];
    return ours.length === 0 || theirs.length === 0 ? [] : differences(ours[0] as Layout, theirs[0] as Layout, `${path}[]`);
  }
  const a = Object.keys(ours);
  const b = Object.keys(theirs);
  if (a.join(',') !== b.join(',')) return [`${path}: keys ${a.join(',')} vs ${b.join(',')}`];
  return a.flatMap((k) => differences((ours as Record<string, Layout>)[k], (theirs as Record<string, Layout>)[k], `${path}.${k}`));
}

const table = { schema: 'test', table: 'golden', tableId: 1 };
const columns: ColumnInfo[] = [
  { name: 'id', mysqlType: 'int', primaryKey: true, nullable: false },
  { name: 'c_bigint', mysqlType: 'bigint', primaryKey: false, nullable: true },
  { name: 'c_char', mysqlType: 'char(10)', primaryKey: false, nullable: true },
];
const after: ColumnValue[] = [2, 9223372036854775807n, 'abc'];
const before: ColumnValue[] = [2, 1n, 'x'];
const row = (kind: RowChangedEvent['kind']): RowChangedEvent => ({ table, commitTs: 100n, commitTime: 1_700_000_000_000, seq: 0, kind, columns, before: kind === 'insert' ? null : before, after: kind === 'delete' ? null : after });
const encode = (protocol: Protocol, kind: RowChangedEvent['kind']): unknown =>
  JSON.parse(createEncoder(protocol, { enableTidbExtension: false, now: () => 1_700_000_000_999, serverName: 'cf' }).encodeRow(row(kind)).value.toString()) as unknown;

describe('golden: layouts against the reference implementations', () => {
  it('debezium: envelope, source and schemas as a real Debezium 3.5 MariaDB connector writes them', () => {
    const [reference] = fixture('debezium-mariadb-3.5.jsonl') as { value: { schema: { fields: { field: string; fields?: unknown[] }[] }; payload: Record<string, unknown> } }[];
    const ours = encode('debezium', 'insert') as typeof reference.value;
    // on purpose: source.commit_ts (the changefeed ts); the row's columns differ (another table)
    const skip = (p: string): boolean => p === '.source.commit_ts' || p === '.before' || p === '.after';
    assert.deepEqual(differences(layout(ours.payload, skip), layout(reference.value.payload, skip)), []);
    const fieldsOf = (schema: { fields: { field: string; type?: string; optional?: boolean }[] }): string[] => schema.fields.map((f) => `${f.field}:${f.type}:${f.optional}`);
    assert.deepEqual(fieldsOf(ours.schema as never), fieldsOf(reference.value.schema as never), 'envelope fields, types, optionality, in order');
    const source = (v: typeof reference.value): { fields: { field: string }[] } => v.schema.fields.find((f) => f.field === 'source') as never;
    assert.deepEqual(fieldsOf(source(ours) as never).filter((f) => !f.startsWith('commit_ts:')), fieldsOf(source(reference.value) as never), 'source fields, types, optionality, in order');
  });

  it('canal-json: the FlatMessage fields of the documented example, in order, with their types; full mysqlType', () => {
    const [reference] = fixture('canal-json-documented.jsonl');
    const ours = encode('canal-json', 'insert') as { mysqlType: Record<string, string> };
    const skip = (p: string): boolean => /^\.(sqlType|mysqlType|data\[\])\./.test(p); // per-column maps: another table
    assert.deepEqual(differences(layout(ours, skip), layout(reference, skip)), []);
    assert.deepEqual(ours.mysqlType, { id: 'int', c_bigint: 'bigint', c_char: 'char(10)' });
  });

  it('maxwell: the documented insert and update, except `commit` (on purpose) and `xoffset` (added)', () => {
    const [insert, update] = fixture('maxwell-documented.jsonl');
    const skip = (p: string): boolean => p === '.commit' || p === '.xoffset' || /^\.(data|old)\./.test(p);
    assert.deepEqual(differences(layout(encode('maxwell', 'insert'), skip), layout(insert, skip)), []);
    assert.deepEqual(differences(layout(encode('maxwell', 'update'), skip), layout(update, skip)), []);
  });

  it('open-protocol: the documented key and value of each event, in the documented batch frame; columns as t, h, f, v', () => {
    const reference = new Map((fixture('open-protocol-documented.jsonl') as { what: string; key: unknown; value: unknown }[]).map((r) => [r.what, r]));
    const encoder = createEncoder('open-protocol', { enableTidbExtension: false, serverName: 'cf' });
    const events = [
      encoder.encodeDDL({ commitTs: 90n, commitTime: 1_700_000_000_000, schema: 'test', query: 'CREATE TABLE test.golden(id int primary key, c_bigint bigint, c_char char(10))', kind: 'create-table', tables: [table] }),
      encoder.encodeCheckpoint(95n)!,
      encoder.encodeRow(row('insert')),
      encoder.encodeRow(row('update')),
      encoder.encodeRow(row('delete')),
    ];
    // the frame: key = version 1 (int64 BE), then (length int64 BE, key)…; value = (length, value)…
    const { key, value } = packOpenProtocol(events);
    assert.equal(key.readBigInt64BE(0), 1n, 'protocol version 1');
    assert.equal(key.readBigInt64BE(8), BigInt(events[0].key!.length), "the first key's length");
    assert.equal(value.readBigInt64BE(0), BigInt(events[0].value.length), "the first value's length");
    const unpacked = unpackOpenProtocol(key, value);
    assert.equal(unpacked.length, events.length);
    const json = (b: Buffer): unknown => (b.length === 0 ? null : (JSON.parse(b.toString()) as unknown));
    const [ddl, resolved, insert, update, del] = unpacked.map((e) => ({ key: json(e.key), value: json(e.value) }));
    const same = (ours: { key: unknown; value: unknown }, what: string, skipColumns: boolean): void => {
      const theirs = reference.get(what)!;
      const skip = (p: string): boolean => skipColumns && /^\.[upd]\./.test(p);
      assert.deepEqual(differences(layout(ours.key), layout(theirs.key)), [], `${what}: key`);
      assert.deepEqual(differences(layout(ours.value, skip), layout(theirs.value, skip)), [], `${what}: value`);
    };
    same(ddl, 'ddl', false);
    assert.equal(resolved.value, null, 'resolved: no value');
    same(resolved, 'resolved', false);
    same(insert, 'insert', true);
    same(del, 'delete', true);
    assert.deepEqual(Object.keys(update.value as object), ['u', 'p'], 'update: the new row ("u") and the old ("p")');
    // every column object: the documented fields in the documented order and types, "h" only on the handle key
    const column = layout(reference.get('column')!.value) as Record<string, Layout>;
    for (const [image, columnsOf] of [['u', insert], ['u', update], ['p', update], ['d', del]] as const) {
      const objects = (columnsOf.value as Record<string, Record<string, Record<string, unknown>>>)[image];
      assert.deepEqual(Object.keys(objects), ['id', 'c_bigint', 'c_char'], `${image}: every column`);
      for (const [name, object] of Object.entries(objects)) {
        const want = name === 'id' ? column : Object.fromEntries(Object.entries(column).filter(([k]) => k !== 'h'));
        // ("v" is of any type: the column type's)
        assert.deepEqual(differences(layout(object), { ...want, v: 'null' }), [], `${image}.${name}`);
        assert.deepEqual(Object.keys(object), Object.keys(want), `${image}.${name}: fields in order`);
      }
    }
  });

  it('the comparison fails on a renamed, moved or retyped field', () => {
    const [reference] = fixture('canal-json-documented.jsonl') as Record<string, unknown>[];
    const { es, ...rest } = reference;
    assert.notDeepEqual(differences(layout({ ...rest, es }), layout(reference)), [], 'moved');
    assert.notDeepEqual(differences(layout({ ...reference, es: String(es) }), layout(reference)), [], 'retyped');
    assert.notDeepEqual(differences(layout({ ...rest, esx: es }), layout(reference)), [], 'renamed');
  });
});
