/**
 * The sink conformance suite (DESIGN §6): every sink plugin runs it against its real backend, from its own
 * test file:
 *
 *     describeSinkConformance('mysql', { factory, uri: () => new URL(`mysql://root@127.0.0.1:3308/`), readBack });
 *
 * It drives a sink the way a changefeed does: a CREATE DATABASE and CREATE TABLE DDL first (so a sink that
 * applies DDL creates its own tables), then transactions in commit order per table, `flush` as the only
 * acknowledgement (also with rows written while a flush is still pending, as the table sink stage does), a
 * replay of the at-least-once window after a "restart", a DDL barrier, `close`, and an aborted context.
 * Every check asserts on behaviour: after each acknowledgement the suite reads the backend's state back
 * (`readBack`, required) and compares it with the state the transactions imply, value by value in the
 * canonical text form of `canonical()`; an aborted context must make a call reject with an error that names
 * the abort.
 *
 * Each check can fail: test/core/sink/conformance-catches-broken-sinks.test.ts runs the suite against
 * test/fixtures/plugins/sink-broken once per deliberate fault and asserts which checks (`CONFORMANCE_CHECKS`)
 * catch it.
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
   * Required. The backend's current state of a table, after `flush` resolved (and, for a log like Kafka, after
   * replaying it): rows keyed by `pkKey()` of their primary-key values, values as `canonical()` gives them, in
   * `table.columns` order (a column the backend does not hold reads as null). A table the backend has never
   * seen is an empty state. Without it the order and replay checks could only check that nothing throws, so
   * the suite refuses to register.
   */
  readBack(table: ConformanceTable, uri: URL): Promise<TableState>;
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

/** The suite's checks by the names node:test reports, so a test can say which checks catch which fault. */
export const CONFORMANCE_CHECKS = {
  parseConfig: 'parseConfig is pure and refuses an unknown parameter by name',
  commitOrder: 'applies transactions in commit order: the backend state equals what they imply after flush',
  flushMonotone: 'flush is monotone: a flush to a lower ts never un-acknowledges, an empty flush changes nothing',
  writesDuringFlush: 'writes during a pending flush: both flushes resolve, in order, and every row lands once, in commit order',
  replay: 'a replay of the at-least-once window after a restart leaves the same state (idempotent)',
  ddlBarrier: 'a DDL barrier: rows before it, the DDL, rows after it with the new column',
  close: 'close is idempotent and leaves no sockets or timers behind',
  abortedBeforeCreate: 'an aborted context stops the sink: create or the next call rejects naming the abort, close still resolves',
  abortedWhileRunning: 'a context aborted while the sink runs: the next call rejects naming the abort, close still resolves',
} as const;

export type ConformanceCheck = keyof typeof CONFORMANCE_CHECKS;

const noopLogger = { debug() {}, info() {}, warn() {}, error() {} };

const COLUMNS: readonly ColumnInfo[] = [
  { name: 'id', mysqlType: 'bigint', primaryKey: true, nullable: false },
  { name: 'name', mysqlType: 'varchar(64)', primaryKey: false, nullable: true },
  { name: 'amount', mysqlType: 'decimal(20,4)', primaryKey: false, nullable: true },
  { name: 'big', mysqlType: 'bigint unsigned', primaryKey: false, nullable: true },
  { name: 'at', mysqlType: 'datetime(6)', primaryKey: false, nullable: true },
  { name: 'raw', mysqlType: 'varbinary(16)', primaryKey: false, nullable: true },
];

function conformanceTables(schema: string): ConformanceTable[] {
  const create = (table: string): string =>
    `CREATE TABLE \`${schema}\`.\`${table}\` (id BIGINT NOT NULL PRIMARY KEY, name VARCHAR(64) NULL, amount DECIMAL(20,4) NULL, big BIGINT UNSIGNED NULL, at DATETIME(6) NULL, raw VARBINARY(16) NULL)`;
  return ['orders', 'payments'].map((table, i) => ({ name: { schema, table, tableId: 9000 + i }, columns: COLUMNS, createSql: create(table) }));
}

/** Version `version` of the conformance row `id`, in the column order of the conformance tables. */
function sampleRow(id: number, version: number): ColumnValue[] {
  return [
    BigInt(id),
    version % 5 === 4 ? null : `row ${id} v${version} ‘ü’`,
    `${id * 3 + version}.${String(version * 7 % 10000).padStart(4, '0')}`,
    18446744073709551615n - BigInt(id * 1000 + version),
    `2024-02-29 23:59:${String(id % 60).padStart(2, '0')}.${String(version * 123457 % 1000000).padStart(6, '0')}`,
    Buffer.from([id & 0xff, version & 0xff, 0x00, 0xff]),
  ];
}

/** Applies row changes to the state they imply: a pre-image removes its key, a post-image sets its key. */
function applyRows(state: TableState, rows: readonly RowChangedEvent[]): void {
  for (const row of rows) {
    if (row.before !== null) state.delete(pkKey(row.columns, row.before));
    if (row.after !== null) state.set(pkKey(row.columns, row.after), row.after.map(canonical));
  }
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
  const commitTime = 1_700_000_000_000;
  for (let round = 0; round < 4; round++) {
    for (const table of tables) {
      ts += 1n;
      const rows: RowChangedEvent[] = [];
      const push = (kind: RowChangedEvent['kind'], before: ColumnValue[] | null, after: ColumnValue[] | null): void => {
        rows.push({ table: table.name, commitTs: ts, commitTime: commitTime + Number(ts - firstTs), seq: rows.length, kind, columns: table.columns, before, after });
      };
      if (round === 0) {
        for (let id = 1; id <= rowsPerTable; id++) push('insert', null, sampleRow(id, 0));
      } else if (round === 1) {
        for (let id = 1; id <= rowsPerTable; id += 2) push('update', sampleRow(id, 0), sampleRow(id, 1));
        for (let id = 2; id <= rowsPerTable; id += 8) push('delete', sampleRow(id, 0), null);
      } else if (round === 2) {
        // the same row changed twice in one transaction, a primary-key change, and a re-insert of a deleted key
        push('update', sampleRow(1, 1), sampleRow(1, 2));
        push('update', sampleRow(1, 2), sampleRow(1, 3));
        push('update', sampleRow(3, 1), sampleRow(rowsPerTable + 100, 1));
        push('insert', null, sampleRow(2, 4));
      } else {
        for (let id = 5; id <= rowsPerTable; id += 4) push('delete', sampleRow(id, 1), null);
        push('insert', null, sampleRow(rowsPerTable + 1, 0));
      }
      applyRows(expected.get(table.name.table)!, rows);
      transactions.push({ commitTs: ts, table, rows });
    }
  }
  return { transactions, expected, lastTs: ts };
}

function ddl(kind: DDLEvent['kind'], schema: string, query: string, commitTs: Ts, tables: readonly TableName[]): DDLEvent {
  return { commitTs, commitTime: 1_700_000_000_000, schema, query, kind, tables };
}

/** One transaction of `table` at `ts`: its changes as [kind, before, after], in order. */
function transaction(table: ConformanceTable, ts: Ts, changes: readonly (readonly [RowChangedEvent['kind'], ColumnValue[] | null, ColumnValue[] | null])[], columns = table.columns): RowChangedEvent[] {
  return changes.map(([kind, before, after], seq) => ({ table: table.name, commitTs: ts, commitTime: 1_700_000_000_000, seq, kind, columns, before, after }));
}

type Settled<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: unknown };

/** Runs `call` (which may also throw synchronously) and tells how it settled. */
async function settle<T>(call: () => Promise<T>): Promise<Settled<T>> {
  try {
    return { ok: true, value: await call() };
  } catch (error) {
    return { ok: false, error };
  }
}

/** Whether `error` is about the abort: it is the signal's reason, has it in its cause chain, or quotes its message. */
function namesAbort(error: unknown, reason: Error): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 8 && current !== null && current !== undefined; depth++) {
    if (current === reason) return true;
    if (current instanceof Error && current.message.includes(reason.message)) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

function show(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

const sortedState = (state: TableState): [string, readonly (string | null)[]][] => [...state].sort(([a], [b]) => a.localeCompare(b));

/**
 * Registers the conformance tests for one sink plugin. Throws at once when `backend.readBack` is missing:
 * without it the suite could not tell a sink that applies rows from one that drops them.
 */
export function describeSinkConformance<C>(name: string, backend: SinkBackend<C>): void {
  if (typeof (backend as Partial<SinkBackend<C>>).readBack !== 'function') {
    throw new TypeError(
      `describeSinkConformance("${name}"): backend.readBack is required, the suite compares the backend's state with what the transactions imply; a sink that keeps no data records what it acknowledged (as the blackhole's record= parameter does)`,
    );
  }
  const timeout = backend.timeoutMs ?? 60_000;
  describe(`sink conformance: ${name}`, { timeout: timeout * 10 }, () => {
    const open: Sink[] = [];
    let counter = 0;
    const schemaName = (): string => `tm_conf_${process.pid}_${Date.now().toString(36)}_${counter++}`;
    const context = (controller = new AbortController()): SinkContext => ({ signal: controller.signal, changefeedId: `conformance-${name}`, logger: noopLogger });
    const abortReason = (): Error => new Error(`changefeed conformance-${name} stopped (aborted by the conformance suite)`);

    async function createSink(uri: URL, controller?: AbortController): Promise<Sink> {
      const sink = await backend.factory.create(uri, backend.factory.parseConfig(uri), context(controller));
      open.push(sink);
      return sink;
    }

    async function bootstrap(sink: Sink, schema: string, tables: readonly ConformanceTable[], ts: Ts): Promise<void> {
      await sink.writeDDL(ddl('create-database', schema, `CREATE DATABASE \`${schema}\``, ts, []));
      for (const table of tables) await sink.writeDDL(ddl('create-table', schema, table.createSql, ts, [table.name]));
    }

    async function assertState(tables: readonly ConformanceTable[], uri: URL, expected: Map<string, TableState>, when: string): Promise<void> {
      for (const table of tables) {
        const actual = await backend.readBack(table, uri);
        const want = expected.get(table.name.table)!;
        assert.deepEqual(sortedState(actual), sortedState(want), `${name}: ${when}, the state of ${table.name.schema}.${table.name.table} differs from what the transactions imply`);
      }
    }

    /** Calls each in turn until one rejects: that call and its error, or undefined when every one resolved. */
    async function firstRefusal(calls: readonly (readonly [string, () => Promise<void>])[]): Promise<{ call: string; error: unknown } | undefined> {
      for (const [call, run] of calls) {
        const result = await settle(run);
        if (!result.ok) return { call, error: result.error };
      }
      return undefined;
    }

    before(() => {
      counter = 0;
    });
    after(async () => {
      // cleanup only (sinks of tests that failed half-way): whether close is idempotent is a check of its own
      for (const sink of open) await settle(() => sink.close());
    });

    it(CONFORMANCE_CHECKS.parseConfig, { timeout }, async () => {
      const base = await backend.uri();
      const bad = new URL(base);
      const param = backend.unknownParameter ?? 'no-such-parameter';
      bad.searchParams.set(param, '1');
      assert.throws(() => backend.factory.parseConfig(bad), (error: unknown) => error instanceof Error && error.message.includes(param), `parseConfig should name "${param}"`);
      const config = backend.factory.parseConfig(base);
      assert.deepEqual(backend.factory.parseConfig(base), config, 'parseConfig of the same URI gives the same config');
    });

    it(CONFORMANCE_CHECKS.commitOrder, { timeout }, async () => {
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
      await assertState(tables, uri, workload.expected, `after flush(${workload.lastTs})`);
      await sink.close();
    });

    it(CONFORMANCE_CHECKS.flushMonotone, { timeout }, async () => {
      const schema = schemaName();
      const uri = await backend.uri();
      const tables = conformanceTables(schema);
      const [orders, payments] = tables;
      const sink = await createSink(uri);
      await bootstrap(sink, schema, tables, 1n);
      await sink.flush(1n); // nothing buffered: resolves
      const expected = new Map<string, TableState>(tables.map((t) => [t.name.table, new Map()]));
      const transactions: [ConformanceTable, RowChangedEvent[]][] = [
        [orders, transaction(orders, 6n, [['insert', null, sampleRow(1, 0)], ['insert', null, sampleRow(2, 0)], ['insert', null, sampleRow(3, 0)]])],
        [payments, transaction(payments, 7n, [['insert', null, sampleRow(1, 0)]])],
        [orders, transaction(orders, 8n, [['update', sampleRow(2, 0), sampleRow(2, 1)]])],
        [orders, transaction(orders, 10n, [['delete', sampleRow(3, 0), null], ['insert', null, sampleRow(4, 0)]])],
      ];
      for (const [table, rows] of transactions) {
        await sink.writeRows(table.name, rows);
        applyRows(expected.get(table.name.table)!, rows);
      }
      await sink.flush(10n);
      await sink.flush(5n);
      await assertState(tables, uri, expected, 'after flush(10) then flush(5)');
      await sink.flush(10n);
      await assertState(tables, uri, expected, 'after a second flush(10) with nothing new');
      await sink.close();
    });

    it(CONFORMANCE_CHECKS.writesDuringFlush, { timeout }, async () => {
      // the table sink stage keeps up to 4 flushes in flight and goes on writing later transactions meanwhile:
      // a flush covers the rows handed over before it was called, rows written while it is pending are the next one's
      const schema = schemaName();
      const uri = await backend.uri();
      const [table] = conformanceTables(schema);
      const sink = await createSink(uri);
      await bootstrap(sink, schema, [table], 600n);
      const expected = new Map<string, TableState>([[table.name.table, new Map()]]);
      const write = async (rows: RowChangedEvent[]): Promise<void> => {
        await sink.writeRows(table.name, rows);
        applyRows(expected.get(table.name.table)!, rows);
      };
      // rows 1..5 at ts 601..605, one transaction each
      for (let id = 1; id <= 5; id++) await write(transaction(table, 600n + BigInt(id), [['insert', null, sampleRow(id, 0)]]));
      const resolved: Ts[] = [];
      // settle calls flush at once and handles a rejection from the start, so none goes unhandled while rows are written
      const pendingFlush = (upTo: Ts): Promise<Settled<void>> =>
        settle(async () => {
          await sink.flush(upTo);
          resolved.push(upTo);
        });
      const first = pendingFlush(605n);
      // not awaited: rows 6..10 at ts 606..610 are written while flush(605) is pending; the first of them also
      // updates row 5 (written before the flush), so applying them before the rows flush(605) covers shows
      await write(transaction(table, 606n, [['update', sampleRow(5, 0), sampleRow(5, 1)], ['insert', null, sampleRow(6, 0)]]));
      for (let id = 7; id <= 10; id++) await write(transaction(table, 600n + BigInt(id), [['insert', null, sampleRow(id, 0)]]));
      const second = pendingFlush(610n);
      const [firstResult, secondResult] = await Promise.all([first, second]);
      assert.ok(firstResult.ok, `${name}: flush(605) rejected after writeRows was called while it was pending: ${firstResult.ok ? '' : show(firstResult.error)}`);
      assert.ok(secondResult.ok, `${name}: flush(610) rejected after writeRows was called while flush(605) was pending: ${secondResult.ok ? '' : show(secondResult.error)}`);
      assert.deepEqual(resolved, [605n, 610n], `${name}: flush(610) resolved before flush(605); flushes must resolve in the order of their ts`);
      await assertState([table], uri, expected, 'after flush(605), writes while it was pending, and flush(610)');
      await sink.close();
    });

    it(CONFORMANCE_CHECKS.replay, { timeout }, async () => {
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
      await assertState(tables, uri, workload.expected, 'after the replay of the second half');
      await second.close();
    });

    it(CONFORMANCE_CHECKS.ddlBarrier, { timeout }, async () => {
      const schema = schemaName();
      const uri = await backend.uri();
      const [table] = conformanceTables(schema);
      const sink = await createSink(uri);
      await bootstrap(sink, schema, [table], 300n);
      const cols = table.columns;
      await sink.writeRows(table.name, transaction(table, 301n, [['insert', null, [1n, 'before', '1.0000', 1n, '2024-01-01 00:00:00.000000', Buffer.from([1])]]]));
      await sink.flush(301n);
      await sink.writeDDL(ddl('alter-table', schema, `ALTER TABLE \`${schema}\`.\`${table.name.table}\` ADD COLUMN note VARCHAR(32) NULL`, 302n, [table.name]));
      const wider: ColumnInfo[] = [...cols, { name: 'note', mysqlType: 'varchar(32)', primaryKey: false, nullable: true }];
      await sink.writeRows(table.name, transaction(table, 303n, [['insert', null, [2n, 'after', '2.0000', 2n, '2024-01-01 00:00:01.000000', Buffer.from([2]), 'new column']]], wider));
      await sink.flush(303n);
      const state = await backend.readBack({ ...table, columns: wider }, uri);
      const want: TableState = new Map([
        // a row written before ADD COLUMN keeps its values and has no value for the new column
        ['1', ['1', 'before', '1.0000', '1', '2024-01-01 00:00:00.000000', '0x01', null]],
        ['2', ['2', 'after', '2.0000', '2', '2024-01-01 00:00:01.000000', '0x02', 'new column']],
      ]);
      assert.deepEqual(sortedState(state), sortedState(want), `${name}: the rows on both sides of ADD COLUMN differ from what was written`);
      await sink.close();
    });

    it(CONFORMANCE_CHECKS.close, { timeout }, async () => {
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

    it(CONFORMANCE_CHECKS.abortedBeforeCreate, { timeout }, async () => {
      const uri = await backend.uri();
      const schema = schemaName();
      const [table] = conformanceTables(schema);
      const controller = new AbortController();
      const reason = abortReason();
      controller.abort(reason);
      const created = await settle(() => backend.factory.create(uri, backend.factory.parseConfig(uri), context(controller)));
      if (!created.ok) {
        // refusing to start under an aborted signal is conforming, for the abort
        assert.ok(namesAbort(created.error, reason), `${name}: create rejected under an aborted signal, but its error does not name the abort: ${show(created.error)}`);
        return;
      }
      const sink = created.value;
      open.push(sink);
      const refusal = await firstRefusal([
        ['writeRows', () => sink.writeRows(table.name, transaction(table, 501n, [['insert', null, sampleRow(1, 0)]]))],
        ['flush', () => sink.flush(501n)],
        ['writeDDL', () => sink.writeDDL(ddl('create-database', schema, `CREATE DATABASE \`${schema}\``, 502n, []))],
      ]);
      const closed = await settle(() => sink.close());
      assert.ok(refusal !== undefined, `${name}: create, writeRows, flush and writeDDL all resolved under an aborted signal`);
      assert.ok(namesAbort(refusal.error, reason), `${name}: ${refusal.call} rejected under an aborted signal, but its error does not name the abort: ${show(refusal.error)}`);
      assert.ok(closed.ok, `${name}: close rejected after the abort: ${closed.ok ? '' : show(closed.error)}`);
    });

    it(CONFORMANCE_CHECKS.abortedWhileRunning, { timeout }, async () => {
      const uri = await backend.uri();
      const schema = schemaName();
      const [table] = conformanceTables(schema);
      const controller = new AbortController();
      const sink = await createSink(uri, controller);
      await bootstrap(sink, schema, [table], 500n);
      await sink.writeRows(table.name, transaction(table, 501n, [['insert', null, sampleRow(1, 0)]]));
      await sink.flush(501n);
      const reason = abortReason();
      controller.abort(reason);
      const refusal = await firstRefusal([
        ['writeRows', () => sink.writeRows(table.name, transaction(table, 502n, [['insert', null, sampleRow(2, 0)]]))],
        ['flush', () => sink.flush(502n)],
        ['writeDDL', () => sink.writeDDL(ddl('alter-table', schema, `ALTER TABLE \`${schema}\`.\`${table.name.table}\` ADD COLUMN late INT NULL`, 503n, [table.name]))],
      ]);
      const closed = await settle(() => sink.close());
      assert.ok(refusal !== undefined, `${name}: writeRows, flush and writeDDL all resolved after the changefeed's signal was aborted`);
      assert.ok(namesAbort(refusal.error, reason), `${name}: ${refusal.call} rejected after the abort, but its error does not name it: ${show(refusal.error)}`);
      assert.ok(closed.ok, `${name}: close rejected after the abort: ${closed.ok ? '' : show(closed.error)}`);
    });
  });
}
