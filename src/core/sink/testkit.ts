/**
 * The sink conformance suite (DESIGN §6): every sink plugin runs it against its real backend, from its own
 * test file:
 *
 *     describeSinkConformance('mysql', { factory, uri: () => new URL(`mysql://root@127.0.0.1:3308/`), readBack });
 *
 * It drives a sink the way a changefeed does: a CREATE DATABASE and CREATE TABLE DDL first (so a sink that
 * applies DDL creates its own tables), then transactions in commit order per table, `flush` as the only
 * acknowledgement, a replay of the at-least-once window after a "restart", a DDL barrier, and `close`.
 * When the backend can read its state back (`readBack`), the suite compares it with the state the
 * transactions imply, value by value in the canonical text form of `canonical()`.
 *
 * It registers node:test `describe`/`it` blocks, so it is only imported by test files.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import type { ColumnInfo, ColumnValue, DDLEvent, RowChangedEvent, Sink, SinkContext, SinkFactory, TableName, Ts } from './api.js';

/** A table's state as the backend holds it: canonical primary-key text → canonical column values in `columns` order. */
export type TableState = Map<string, readonly (string | null)[]>;

export interface ConformanceTable {
  readonly name: TableName;
  readonly columns: readonly ColumnInfo[];
  /** The CREATE TABLE statement the suite sends through `writeDDL`. */
  readonly createSql: string;
}

export interface SinkBackend<C> {
  readonly factory: SinkFactory<C>;
  /** A URI for a fresh destination. Called once per test. */
  uri(): URL | Promise<URL>;
  /**
   * The backend's current state of a table, after `flush` resolved (and, for a log like Kafka, after
   * replaying it): rows keyed by `pkKey()` of their primary-key values, values as `canonical()` gives them.
   * Without it the suite checks the calls only.
   */
  readBack?(table: ConformanceTable, uri: URL): Promise<TableState>;
  /** A URI parameter the factory must refuse, default `no-such-parameter`. */
  readonly unknownParameter?: string;
  /** Per-test timeout in ms (default 60 s). */
  readonly timeoutMs?: number;
}

/** The canonical text of a value: null stays null, Buffer is `0x` + lowercase hex, booleans 1/0, numbers and bigints in decimal. */
export function canonical(value: ColumnValue): string | null {
  if (value === null) return null;
  if (Buffer.isBuffer(value)) return `0x${value.toString('hex')}`;
  if (typeof value === 'boolean') return value ? '1' : '0';
  return String(value);
}

/** The key of a row in `TableState`: canonical primary-key values joined by `|`. */
export function pkKey(columns: readonly ColumnInfo[], values: readonly ColumnValue[]): string {
  const parts: string[] = [];
  columns.forEach((column, i) => {
    if (column.primaryKey) parts.push(canonical(values[i] ?? null) ?? 'NULL');
  });
  return parts.join('|');
}

const noopLogger = { debug() {}, info() {}, warn() {}, error() {} };

function conformanceTables(schema: string): ConformanceTable[] {
  const columns: ColumnInfo[] = [
    { name: 'id', mysqlType: 'bigint', primaryKey: true, nullable: false },
    { name: 'name', mysqlType: 'varchar(64)', primaryKey: false, nullable: true },
    { name: 'amount', mysqlType: 'decimal(20,4)', primaryKey: false, nullable: true },
    { name: 'big', mysqlType: 'bigint unsigned', primaryKey: false, nullable: true },
    { name: 'at', mysqlType: 'datetime(6)', primaryKey: false, nullable: true },
    { name: 'raw', mysqlType: 'varbinary(16)', primaryKey: false, nullable: true },
  ];
  const create = (table: string): string =>
    `CREATE TABLE \`${schema}\`.\`${table}\` (id BIGINT NOT NULL PRIMARY KEY, name VARCHAR(64) NULL, amount DECIMAL(20,4) NULL, big BIGINT UNSIGNED NULL, at DATETIME(6) NULL, raw VARBINARY(16) NULL)`;
  return ['orders', 'payments'].map((table, i) => ({ name: { schema, table, tableId: 9000 + i }, columns, createSql: create(table) }));
}

/** A deterministic workload: inserts, updates (one of them of the primary key), deletes, in several transactions per table. */
export interface Workload {
  readonly transactions: readonly { readonly commitTs: Ts; readonly table: ConformanceTable; readonly rows: readonly RowChangedEvent[] }[];
  /** The state every table must end in. */
  readonly expected: Map<string, TableState>;
  readonly lastTs: Ts;
}

export function conformanceWorkload(tables: readonly ConformanceTable[], firstTs: Ts, rowsPerTable = 40): Workload {
  const transactions: { commitTs: Ts; table: ConformanceTable; rows: RowChangedEvent[] }[] = [];
  const expected = new Map<string, TableState>();
  let ts = firstTs;
  for (const table of tables) expected.set(table.name.table, new Map());
  const value = (id: number, version: number): ColumnValue[] => [
    BigInt(id),
    version % 5 === 4 ? null : `row ${id} v${version} ‘ü’`,
    `${id * 3 + version}.${String(version * 7 % 10000).padStart(4, '0')}`,
    18446744073709551615n - BigInt(id * 1000 + version),
    `2024-02-29 23:59:${String(id % 60).padStart(2, '0')}.${String(version * 123457 % 1000000).padStart(6, '0')}`,
    Buffer.from([id & 0xff, version & 0xff, 0x00, 0xff]),
  ];
  const commitTime = 1_700_000_000_000;
  for (let round = 0; round < 4; round++) {
    for (const table of tables) {
      const state = expected.get(table.name.table)!;
      ts += 1n;
      const rows: RowChangedEvent[] = [];
      const push = (kind: RowChangedEvent['kind'], before: ColumnValue[] | null, after: ColumnValue[] | null): void => {
        rows.push({ table: table.name, commitTs: ts, commitTime: commitTime + Number(ts - firstTs), seq: rows.length, kind, columns: table.columns, before, after });
        if (before !== null) state.delete(pkKey(table.columns, before));
        if (after !== null) state.set(pkKey(table.columns, after), after.map(canonical));
      };
      if (round === 0) {
        for (let id = 1; id <= rowsPerTable; id++) push('insert', null, value(id, 0));
      } else if (round === 1) {
        for (let id = 1; id <= rowsPerTable; id += 2) push('update', value(id, 0), value(id, 1));
        for (let id = 2; id <= rowsPerTable; id += 8) push('delete', value(id, 0), null);
      } else if (round === 2) {
        // the same row changed twice in one transaction, a primary-key change, and a re-insert of a deleted key
        push('update', value(1, 1), value(1, 2));
        push('update', value(1, 2), value(1, 3));
        push('update', value(3, 1), value(rowsPerTable + 100, 1));
        push('insert', null, value(2, 4));
      } else {
        for (let id = 5; id <= rowsPerTable; id += 4) push('delete', value(id, 1), null);
        push('insert', null, value(rowsPerTable + 1, 0));
      }
      transactions.push({ commitTs: ts, table, rows });
    }
  }
  return { transactions, expected, lastTs: ts };
}

function ddl(kind: DDLEvent['kind'], schema: string, query: string, commitTs: Ts, tables: readonly TableName[]): DDLEvent {
  return { commitTs, commitTime: 1_700_000_000_000, schema, query, kind, tables };
}

/** Registers the conformance tests for one sink plugin. */
export function describeSinkConformance<C>(name: string, backend: SinkBackend<C>): void {
  const timeout = backend.timeoutMs ?? 60_000;
  describe(`sink conformance: ${name}`, { timeout: timeout * 6 }, () => {
    const open: Sink[] = [];
    let counter = 0;
    const schemaName = (): string => `tm_conf_${process.pid}_${Date.now().toString(36)}_${counter++}`;
    const context = (controller = new AbortController()): SinkContext => ({ signal: controller.signal, changefeedId: `conformance-${name}`, logger: noopLogger });

    async function createSink(uri: URL, controller?: AbortController): Promise<Sink> {
      const sink = await backend.factory.create(uri, backend.factory.parseConfig(uri), context(controller));
      open.push(sink);
      return sink;
    }

    async function bootstrap(sink: Sink, schema: string, tables: readonly ConformanceTable[], ts: Ts): Promise<void> {
      await sink.writeDDL(ddl('create-database', schema, `CREATE DATABASE \`${schema}\``, ts, []));
      for (const table of tables) await sink.writeDDL(ddl('create-table', schema, table.createSql, ts, [table.name]));
    }

    async function assertState(tables: readonly ConformanceTable[], uri: URL, expected: Map<string, TableState>): Promise<void> {
      if (backend.readBack === undefined) return;
      for (const table of tables) {
        const actual = await backend.readBack(table, uri);
        const want = expected.get(table.name.table)!;
        const sorted = (state: TableState): [string, readonly (string | null)[]][] => [...state].sort(([a], [b]) => a.localeCompare(b));
        assert.deepEqual(sorted(actual), sorted(want), `${name}: state of ${table.name.schema}.${table.name.table} differs from what the transactions imply`);
      }
    }

    before(() => {
      counter = 0;
    });
    after(async () => {
      for (const sink of open) await sink.close();
    });

    it('parseConfig is pure and refuses an unknown parameter by name', { timeout }, async () => {
      const base = await backend.uri();
      const bad = new URL(base);
      const param = backend.unknownParameter ?? 'no-such-parameter';
      bad.searchParams.set(param, '1');
      assert.throws(() => backend.factory.parseConfig(bad), (error: unknown) => error instanceof Error && error.message.includes(param), `parseConfig should name "${param}"`);
      const config = backend.factory.parseConfig(base);
      assert.deepEqual(backend.factory.parseConfig(base), config, 'parseConfig of the same URI gives the same config');
    });

    it('applies transactions in commit order: the backend state equals what they imply after flush', { timeout }, async () => {
      const schema = schemaName();
      const uri = await backend.uri();
      const tables = conformanceTables(schema);
      const sink = await createSink(uri);
      await bootstrap(sink, schema, tables, 100n);
      const workload = conformanceWorkload(tables, 100n);
      // flush after every second transaction, as resolved-ts advances
      for (const [i, txn] of workload.transactions.entries()) {
        await sink.writeRows(txn.table.name, txn.rows);
        if (i % 2 === 1) await sink.flush(txn.commitTs);
      }
      await sink.flush(workload.lastTs);
      await sink.writeCheckpoint(workload.lastTs, tables.map((t) => t.name));
      await assertState(tables, uri, workload.expected);
      await sink.close();
    });

    it('flush with nothing buffered resolves, and flush is monotone', { timeout }, async () => {
      const schema = schemaName();
      const uri = await backend.uri();
      const tables = conformanceTables(schema);
      const sink = await createSink(uri);
      await bootstrap(sink, schema, tables, 10n);
      await sink.flush(10n);
      await sink.flush(10n);
      await sink.flush(5n);
      await sink.close();
    });

    it('a replay of the at-least-once window after a restart leaves the same state (idempotent)', { timeout }, async () => {
      const schema = schemaName();
      const uri = await backend.uri();
      const tables = conformanceTables(schema);
      const workload = conformanceWorkload(tables, 200n);
      const first = await createSink(uri);
      await bootstrap(first, schema, tables, 200n);
      // the first incarnation writes everything, but its last checkpoint was after the first half
      const half = Math.floor(workload.transactions.length / 2);
      for (const txn of workload.transactions) await first.writeRows(txn.table.name, txn.rows);
      await first.flush(workload.lastTs);
      await first.close();
      // the restarted sink gets every transaction after the checkpoint again
      const second = await createSink(uri);
      for (const txn of workload.transactions.slice(half)) await second.writeRows(txn.table.name, txn.rows);
      await second.flush(workload.lastTs);
      await assertState(tables, uri, workload.expected);
      await second.close();
    });

    it('a DDL barrier: rows before it, the DDL, rows after it with the new column', { timeout }, async () => {
      const schema = schemaName();
      const uri = await backend.uri();
      const [table] = conformanceTables(schema);
      const sink = await createSink(uri);
      await bootstrap(sink, schema, [table], 300n);
      const cols = table.columns;
      const rowAt = (ts: Ts, id: number, columns: readonly ColumnInfo[], after: ColumnValue[]): RowChangedEvent => ({ table: table.name, commitTs: ts, commitTime: 1_700_000_000_000, seq: 0, kind: 'insert', columns, before: null, after });
      await sink.writeRows(table.name, [rowAt(301n, 1, cols, [1n, 'before', '1.0000', 1n, '2024-01-01 00:00:00.000000', Buffer.from([1])])]);
      await sink.flush(301n);
      await sink.writeDDL(ddl('alter-table', schema, `ALTER TABLE \`${schema}\`.\`${table.name.table}\` ADD COLUMN note VARCHAR(32) NULL`, 302n, [table.name]));
      const wider: ColumnInfo[] = [...cols, { name: 'note', mysqlType: 'varchar(32)', primaryKey: false, nullable: true }];
      await sink.writeRows(table.name, [rowAt(303n, 2, wider, [2n, 'after', '2.0000', 2n, '2024-01-01 00:00:01.000000', Buffer.from([2]), 'new column'])]);
      await sink.flush(303n);
      if (backend.readBack !== undefined) {
        const state = await backend.readBack({ ...table, columns: wider }, uri);
        assert.deepEqual(state.get('2'), ['2', 'after', '2.0000', '2', '2024-01-01 00:00:01.000000', '0x02', 'new column']);
        assert.equal(state.get('1')?.[6] ?? null, null, 'a row written before ADD COLUMN has no value for it');
      }
      await sink.close();
    });

    it('close is idempotent and leaves no sockets or timers behind', { timeout }, async () => {
      const uri = await backend.uri();
      const kinds = new Set(['TCPSocketWrap', 'Timeout', 'Immediate']);
      const countHandles = (): number => process.getActiveResourcesInfo().filter((k) => kinds.has(k)).length;
      const beforeCount = countHandles();
      const schema = schemaName();
      const tables = conformanceTables(schema);
      const sink = await backend.factory.create(uri, backend.factory.parseConfig(uri), context());
      await bootstrap(sink, schema, tables, 400n);
      await sink.flush(400n);
      await sink.close();
      await sink.close();
      let left = countHandles();
      for (let i = 0; i < 40 && left > beforeCount; i++) {
        await delay(50);
        left = countHandles();
      }
      assert.ok(left <= beforeCount, `${name}: ${left - beforeCount} socket/timer handle(s) left after close`);
    });

    it('an aborted context stops the sink: create or the next write rejects, close still resolves', { timeout }, async () => {
      const uri = await backend.uri();
      const controller = new AbortController();
      controller.abort(new Error('changefeed stopped'));
      let sink: Sink | undefined;
      try {
        sink = await backend.factory.create(uri, backend.factory.parseConfig(uri), context(controller));
      } catch {
        return; // refusing to start under an aborted signal is conforming
      }
      await sink.close();
    });
  });
}
