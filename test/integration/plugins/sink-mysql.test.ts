import assert from 'node:assert/strict';
import mysql from 'mysql2/promise';
import { after, before, describe, it } from 'node:test';
import { factory, type MySqlSinkError } from '../../../plugins/sink-mysql/src/index.js';
import { readFileSync } from 'node:fs';
import { diffTables } from '../../../src/core/diff/table-diff.js';
import { SinkRegistry } from '../../../src/core/sink/registry.js';
import { BinlogReader, EventType } from '../../../src/core/upstream/binlog-reader.js';
import { decodeTableMap, type TableMap } from '../../../src/core/upstream/events.js';
import { decodeRows, type RowsEvent } from '../../../src/core/upstream/rows.js';
import { mountRow } from '../../../src/core/pipeline/mounter/index.js';
import type { ColumnInfo, ColumnValue, DDLEvent, RowChangedEvent, Sink, TableName } from '../../../src/core/sink/api.js';
import { canonical, describeSinkConformance, pkKey, type TableState } from '../../../src/core/sink/testkit.js';
import { leakCheck } from '../../helpers/leak-check.js';
import { mysqlUri, requireService, serviceAddress, uniqueName } from '../../helpers/services.js';
import { TcpProxy } from '../../helpers/tcp-proxy.js';
import { typeFamilies } from '../../helpers/type-matrix.js';
import { waitFor } from '../../helpers/wait-for.js';

let conn: mysql.Connection;
const leaks = leakCheck();
const downstream = (): string => serviceAddress('downstream').addr;
/** Everything the sinks log, to check that no password shows up in it. */
const logged: string[] = [];
const log = (message: string, fields?: Readonly<Record<string, unknown>>): void => {
  logged.push(`${message} ${JSON.stringify(fields ?? {}, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))}`);
};
const ctx = () => ({ signal: new AbortController().signal, changefeedId: 'mysql-sink-test', logger: { debug: log, info: log, warn: log, error: log } });
const open = async (query = ''): Promise<Sink> => {
  const uri = new URL(`mysql://root@${downstream()}/${query}`);
  return factory.create(uri, factory.parseConfig(uri), ctx());
};
const ddl = (schema: string, kind: DDLEvent['kind'], query: string, commitTs = 1n): DDLEvent => ({ commitTs, commitTime: 0, schema, query, kind, tables: [] });
/** Database `db` with table `locked` holding the row (1, 'first'), written through the sink (for the row-lock tests). */
async function lockableRow(sink: Sink, db: string): Promise<{ table: TableName; columns: ColumnInfo[] }> {
  await sink.writeDDL(ddl(db, 'create-database', `CREATE DATABASE ${db}`));
  await sink.writeDDL(ddl(db, 'create-table', 'CREATE TABLE locked (id INT PRIMARY KEY, v VARCHAR(16))'));
  const table: TableName = { schema: db, table: 'locked', tableId: 1 };
  const columns = [col('id', 'int', true), col('v', 'varchar(16)')];
  await sink.writeRows(table, [{ table, commitTs: 2n, commitTime: 0, seq: 0, kind: 'insert', columns, before: null, after: [1, 'first'] }]);
  await sink.flush(2n);
  return { table, columns };
}
let nextServerId = 7500 + (process.pid % 1000) * 2;

/**
 * Runs `sql` on the upstream and reads `table`'s row events back over Tidemark's replication connection, up
 * to its last DELETE (the statements end with one). Unlike test/helpers/binlog.ts roundTrip it does not count
 * commits, so other sessions' transactions on the shared upstream do not end the read early.
 */
async function upstreamRows(up: mysql.Connection, sql: readonly string[], schema: string, table: string): Promise<{ events: RowsEvent[]; map: TableMap }> {
  const [status] = await up.query<mysql.RowDataPacket[]>('SHOW MASTER STATUS');
  for (const statement of sql) await up.query(statement);
  const { host, port } = serviceAddress('upstream');
  const reader = await BinlogReader.open({ host, port, user: 'root', password: '', serverId: nextServerId++ }, String(status[0]['File']), Number(status[0]['Position']), AbortSignal.timeout(20_000));
  const maps = new Map<bigint, TableMap>();
  const events: RowsEvent[] = [];
  try {
    for await (const e of reader) {
      if (e.type === EventType.TABLE_MAP) {
        const m = decodeTableMap(e.body);
        maps.set(m.tableId, m);
      } else if ((e.type >= EventType.WRITE_ROWS_V1 && e.type <= EventType.DELETE_ROWS_V1) || (e.type >= EventType.WRITE_ROWS_V2 && e.type <= EventType.DELETE_ROWS_V2)) {
        const rows = decodeRows(e.type, e.body, maps);
        const map = maps.get(rows.tableId);
        if (map?.schema !== schema || map.table !== table) continue;
        events.push(rows);
        if (rows.kind === 'delete') return { events, map: maps.get(rows.tableId)! };
      }
    }
  } finally {
    reader.close();
  }
  throw new Error(`the binlog ended before the DELETE of ${table}`);
}

const col = (name: string, mysqlType: string, primaryKey = false): ColumnInfo => ({ name, mysqlType, primaryKey, nullable: !primaryKey });

before(async () => {
  await requireService('downstream');
  await requireService('upstream');
  conn = await mysql.createConnection({ uri: mysqlUri('downstream'), supportBigNumbers: true, bigNumberStrings: true, dateStrings: true });
});
after(async () => {
  const [dbs] = await conn.query<mysql.RowDataPacket[]>("SHOW DATABASES LIKE 'tm\\_%'");
  for (const row of dbs) {
    const name = String(Object.values(row)[0]);
    if (name.startsWith('tm_conf_') || name.startsWith('tm_mysink_')) await conn.query(`DROP DATABASE \`${name}\``);
  }
  await conn.end();
  await leaks.check();
});

// the conformance suite again without the safe window: plain INSERT/UPDATE, and a replay falls back to safe mode on duplicate keys
describeSinkConformance('mysql (safe-mode-duration=0)', {
  factory,
  uri: () => new URL(`mysql://root@${downstream()}/?worker-count=2&safe-mode-duration=0`),
  readBack: async (table) => {
    const [rows] = await conn.query<mysql.RowDataPacket[]>(`SELECT ${table.columns.map((c) => `\`${c.name}\``).join(', ')} FROM \`${table.name.schema}\`.\`${table.name.table}\``);
    const state: TableState = new Map();
    for (const row of rows) {
      const values = table.columns.map((c) => row[c.name] as ColumnValue);
      state.set(pkKey(table.columns, values), values.map(canonical));
    }
    return state;
  },
});

describe('mysql sink', () => {
  it('validates its URI with messages that name the key, the value and what is allowed, never the password', () => {
    const bad = (query: string, pattern: RegExp) => assert.throws(() => factory.parseConfig(new URL(`mysql://root:s3cret@127.0.0.1:3306/${query}`)), (e: Error) => pattern.test(e.message) && !e.message.includes('s3cret'));
    bad('?worker-count=0', /invalid worker-count "0" in mysql sink URI: an integer from 1 to 1024/);
    bad('?max-txn-row=x', /invalid max-txn-row "x"/);
    bad('?safe-mode=yes', /invalid safe-mode "yes" in mysql sink URI: true or false/);
    bad('?read-timeout=soon', /invalid read-timeout "soon" in mysql sink URI: a duration such as 500ms, 30s, 2m/);
    bad('?colour=red', /unknown parameter "colour" in mysql sink URI; allowed: worker-count, max-txn-row/);
    bad('?ssl-cert=/a.pem', /ssl-cert and ssl-key in mysql sink URI go together/);
    bad('db1', /takes no database path/);
    const config = factory.parseConfig(new URL('tidb://u%40x:p%3Aw@10.0.0.2:4000/?worker-count=8&safe-mode=true&time-zone=Asia/Shanghai'));
    assert.deepEqual({ user: config.user, password: config.password, port: config.port, workers: config.workerCount, safe: config.safeMode, tz: config.timeZone, tidb: config.tidb }, { user: 'u@x', password: 'p:w', port: 4000, workers: 8, safe: true, tz: 'Asia/Shanghai', tidb: true });
  });

  it('refuses a table without a primary or NOT NULL unique key unless force-replicate, naming it', async () => {
    const db = uniqueName('tm_mysink');
    await conn.query(`CREATE DATABASE ${db}`);
    await conn.query(`CREATE TABLE ${db}.nokey (a INT, b VARCHAR(10))`);
    await conn.query(`CREATE TABLE ${db}.uk (a INT NOT NULL, b VARCHAR(10), UNIQUE KEY (a))`);
    const columns: ColumnInfo[] = [
      { name: 'a', mysqlType: 'int', primaryKey: false, nullable: true },
      { name: 'b', mysqlType: 'varchar(10)', primaryKey: false, nullable: true },
    ];
    const row = (table: TableName, kind: RowChangedEvent['kind'], before: ColumnValue[] | null, after: ColumnValue[] | null, ts: bigint): RowChangedEvent => ({ table, commitTs: ts, commitTime: 0, seq: 0, kind, columns, before, after });
    const nokey: TableName = { schema: db, table: 'nokey', tableId: 1 };
    const uk: TableName = { schema: db, table: 'uk', tableId: 2 };

    const strict = await factory.create(new URL(`mysql://root@${downstream()}/`), factory.parseConfig(new URL(`mysql://root@${downstream()}/`)), ctx());
    await strict.writeRows(nokey, [row(nokey, 'insert', null, [1, 'x'], 10n)]);
    await assert.rejects(strict.flush(10n), (e: Error & { retryable?: boolean }) => /table .*\.nokey has no primary key and no NOT NULL unique key.*force-replicate=true/.test(e.message) && e.retryable === false);
    await strict.close();

    // a NOT NULL unique key is used to match rows
    const ok = await factory.create(new URL(`mysql://root@${downstream()}/`), factory.parseConfig(new URL(`mysql://root@${downstream()}/?safe-mode-duration=0`)), ctx());
    await ok.writeRows(uk, [row(uk, 'insert', null, [1, 'x'], 10n), row(uk, 'update', [1, 'x'], [1, 'y'], 11n), row(uk, 'insert', null, [2, 'z'], 12n), row(uk, 'delete', [2, 'z'], null, 13n)]);
    await ok.flush(13n);
    await ok.close();
    const [ukRows] = await conn.query<mysql.RowDataPacket[]>(`SELECT a, b FROM ${db}.uk`);
    assert.deepEqual(ukRows.map((r) => [r['a'], r['b']]), [[1, 'y']]);

    const forced = await factory.create(new URL(`mysql://root@${downstream()}/`), factory.parseConfig(new URL(`mysql://root@${downstream()}/?force-replicate=true&safe-mode-duration=0`)), ctx());
    await forced.writeRows(nokey, [row(nokey, 'insert', null, [1, 'x'], 10n), row(nokey, 'insert', null, [1, 'x'], 10n), row(nokey, 'update', [1, 'x'], [1, 'q'], 11n), row(nokey, 'delete', [null, null], null, 12n)]);
    await forced.flush(12n);
    await forced.close();
    const [rows] = await conn.query<mysql.RowDataPacket[]>(`SELECT a, b FROM ${db}.nokey ORDER BY b`);
    assert.deepEqual(rows.map((r) => [r['a'], r['b']]), [[1, 'q'], [1, 'x']], 'matched on every column, one row at a time');

    // the changefeed's own force-replicate (changefeed.toml, TiCDC's key) does the same without the URI parameter
    const byChangefeed = await factory.create(new URL(`mysql://root@${downstream()}/`), factory.parseConfig(new URL(`mysql://root@${downstream()}/?safe-mode-duration=0`)), { ...ctx(), forceReplicate: true });
    await byChangefeed.writeRows(nokey, [row(nokey, 'insert', null, [2, 'w'], 20n)]);
    await byChangefeed.flush(20n);
    await byChangefeed.close();
    const [after] = await conn.query<mysql.RowDataPacket[]>(`SELECT a, b FROM ${db}.nokey WHERE a = 2`);
    assert.deepEqual(after.map((r) => [r['a'], r['b']]), [[2, 'w']]);
  });

  it('[sink] safe-mode = true in changefeed.toml writes REPLACE from the first row, as safe-mode=true in the URI does', async () => {
    const db = uniqueName('tm_mysink');
    await conn.query(`CREATE DATABASE ${db}`);
    await conn.query(`CREATE TABLE ${db}.t (id INT PRIMARY KEY, v VARCHAR(10))`);
    await conn.query(`INSERT INTO ${db}.t VALUES (1, 'old')`);
    const columns: ColumnInfo[] = [
      { name: 'id', mysqlType: 'int', primaryKey: true, nullable: false },
      { name: 'v', mysqlType: 'varchar(10)', primaryKey: false, nullable: true },
    ];
    const t: TableName = { schema: db, table: 't', tableId: 1 };
    const insert = (id: number, v: string, ts: bigint): RowChangedEvent => ({ table: t, commitTs: ts, commitTime: 0, seq: 0, kind: 'insert', columns, before: null, after: [id, v] });
    const uri = new URL(`mysql://root@${downstream()}/?safe-mode-duration=0`);
    for (const [sinkConfig, retries] of [[{}, 1], [{ 'safe-mode': true }, 0]] as const) {
      const sink = (await factory.create(uri, factory.parseConfig(uri), { ...ctx(), sinkConfig })) as Sink & { counters: { safeModeRetries: number } };
      await sink.writeRows(t, [insert(1, `v${retries}`, 10n)]);
      await sink.flush(10n);
      assert.equal(sink.counters.safeModeRetries, retries, `sinkConfig ${JSON.stringify(sinkConfig)}: an INSERT that met the existing key and was retried as REPLACE, or a REPLACE at once`);
      await sink.close();
      const [rows] = await conn.query<mysql.RowDataPacket[]>(`SELECT v FROM ${db}.t WHERE id = 1`);
      assert.equal(rows[0]?.['v'], `v${retries}`);
    }
  });

  it('updates that keep their keys go as one INSERT … ON DUPLICATE KEY UPDATE when the key is the only unique key, else as DELETE and INSERT', async () => {
    const db = uniqueName('tm_mysink');
    await conn.query(`CREATE DATABASE ${db}`);
    await conn.query(`CREATE TABLE ${db}.pk (id INT PRIMARY KEY, v VARCHAR(10), n INT)`);
    await conn.query(`CREATE TABLE ${db}.uk (id INT PRIMARY KEY, u VARCHAR(10), n INT, UNIQUE KEY (u))`);
    await conn.query(`INSERT INTO ${db}.pk VALUES (1, 'a', 1), (2, 'b', 2), (3, 'c', 3)`);
    await conn.query(`INSERT INTO ${db}.uk VALUES (1, 'a', 1), (2, 'b', 2)`);
    const columns = (second: string): ColumnInfo[] => [col('id', 'int', true), col(second, 'varchar(10)'), col('n', 'int')];
    const update = (t: TableName, second: string, seq: number, before: [number, string, number], after: [number, string, number]): RowChangedEvent => ({ table: t, commitTs: 20n, commitTime: 0, seq, kind: 'update', columns: columns(second), before, after });
    const pk: TableName = { schema: db, table: 'pk', tableId: 1 };
    const uk: TableName = { schema: db, table: 'uk', tableId: 2 };
    const uri = new URL(`mysql://root@${downstream()}/?safe-mode-duration=0`);
    const sink = (await factory.create(uri, factory.parseConfig(uri), ctx())) as Sink & { counters: { statements: number } };
    try {
      // one transaction: the same row twice (the last wins), a row missing downstream (written whole)
      await sink.writeRows(pk, [update(pk, 'v', 0, [1, 'a', 1], [1, 'x', 1]), update(pk, 'v', 1, [2, 'b', 2], [2, 'y', 2]), update(pk, 'v', 2, [1, 'x', 1], [1, 'x', 9]), update(pk, 'v', 3, [7, 'g', 7], [7, 'h', 7])]);
      await sink.flush(20n);
      assert.equal(sink.counters.statements, 1, 'the four updates in one statement');
      // with a second unique key: a swap of its values, as DELETE and INSERT runs
      await sink.writeRows(uk, [update(uk, 'u', 0, [1, 'a', 1], [1, 'c', 1]), update(uk, 'u', 1, [2, 'b', 2], [2, 'a', 2]), update(uk, 'u', 2, [1, 'c', 1], [1, 'b', 1])]);
      await sink.flush(20n);
      assert.equal(sink.counters.statements, 1 + 4, 'two runs of a DELETE and an INSERT (the second starts at the row written again)');
    } finally {
      await sink.close();
    }
    const [pkRows] = await conn.query<mysql.RowDataPacket[]>(`SELECT id, v, n FROM ${db}.pk ORDER BY id`);
    assert.deepEqual(pkRows.map((r) => [r['id'], r['v'], r['n']]), [[1, 'x', 9], [2, 'y', 2], [3, 'c', 3], [7, 'h', 7]]);
    const [ukRows] = await conn.query<mysql.RowDataPacket[]>(`SELECT id, u, n FROM ${db}.uk ORDER BY id`);
    assert.deepEqual(ukRows.map((r) => [r['id'], r['u'], r['n']]), [[1, 'b', 1], [2, 'a', 2]]);
  });

  it('a DDL of a table makes the sink read its keys again (a table without a primary key, its unique key moved)', async () => {
    const db = uniqueName('tm_mysink');
    const sink = await open('?safe-mode-duration=0');
    try {
      await sink.writeDDL(ddl(db, 'create-database', `CREATE DATABASE ${db}`));
      await sink.writeDDL(ddl(db, 'create-table', 'CREATE TABLE nk (a INT NOT NULL, b INT NOT NULL, UNIQUE KEY ua (a))'));
      const nk: TableName = { schema: db, table: 'nk', tableId: 1 };
      const columns = [col('a', 'int'), col('b', 'int')].map((c) => ({ ...c, nullable: false }));
      const row = (kind: 'insert' | 'delete', ts: bigint, image: [number, number]): RowChangedEvent => ({ table: nk, commitTs: ts, commitTime: 0, seq: 0, kind, columns, before: kind === 'delete' ? image : null, after: kind === 'insert' ? image : null });
      await sink.writeRows(nk, [row('insert', 2n, [1, 1])]);
      await sink.flush(2n);
      await sink.writeDDL({ ...ddl(db, 'alter-table', 'ALTER TABLE nk DROP INDEX ua, ADD UNIQUE KEY ub (b)', 3n), tables: [nk] });
      // a is no longer unique: the row (1, 2) is deleted by its b, not by an a it shares with (1, 1)
      await sink.writeRows(nk, [row('insert', 4n, [1, 2])]);
      await sink.writeRows(nk, [row('delete', 5n, [1, 2])]);
      await sink.flush(5n);
    } finally {
      await sink.close();
    }
    const [rows] = await conn.query<mysql.RowDataPacket[]>(`SELECT a, b FROM ${db}.nk`);
    assert.deepEqual(rows.map((r) => [r['a'], r['b']]), [[1, 1]]);
  });

  it('a DDL the downstream rejects rejects with its message (retryable), and a replayed CREATE is tolerated', async () => {
    const db = uniqueName('tm_mysink');
    const sink = await factory.create(new URL(`mysql://root@${downstream()}/`), factory.parseConfig(new URL(`mysql://root@${downstream()}/`)), ctx());
    const ddl = (query: string, kind: DDLEvent['kind']): DDLEvent => ({ commitTs: 5n, commitTime: 0, schema: db, query, kind, tables: [] });
    await sink.writeDDL(ddl(`CREATE DATABASE ${db}`, 'create-database'));
    await sink.writeDDL(ddl('CREATE TABLE t (id INT PRIMARY KEY)', 'create-table'));
    await sink.writeDDL(ddl('CREATE TABLE t (id INT PRIMARY KEY)', 'create-table'));
    await assert.rejects(sink.writeDDL(ddl('ALTER TABLE t ADD COLUMN x NOT_A_TYPE', 'alter-table')), (e: Error & { retryable?: boolean }) => /the downstream rejected DDL "ALTER TABLE t ADD COLUMN x NOT_A_TYPE": (Unknown data type|.*SQL syntax)/.test(e.message) && e.retryable !== false);
    await sink.close();
  });

  it('a new owner\'s replay of an ALTER the old owner executed is tolerated; after a clean DDL the same error is the downstream\'s rejection again', async () => {
    const db = uniqueName('tm_mysink');
    const uri = new URL(`mysql://root@${downstream()}/`);
    const ddl = (query: string, kind: DDLEvent['kind'], commitTs: bigint): DDLEvent => ({ commitTs, commitTime: 0, schema: db, query, kind, tables: [] });
    const before = await factory.create(uri, factory.parseConfig(uri), ctx());
    await before.writeDDL(ddl(`CREATE DATABASE ${db}`, 'create-database', 1n));
    await before.writeDDL(ddl('CREATE TABLE t (id INT PRIMARY KEY)', 'create-table', 2n));
    await before.writeDDL(ddl('ALTER TABLE t ADD COLUMN x INT NULL, ADD INDEX ix (x)', 'alter-table', 3n));
    await before.close(); // the owner died before the checkpoint passed ts 3
    const after = await factory.create(uri, factory.parseConfig(uri), ctx());
    try {
      await after.writeDDL(ddl('ALTER TABLE t ADD COLUMN x INT NULL, ADD INDEX ix (x)', 'alter-table', 3n));
      await after.writeDDL(ddl('ALTER TABLE t ADD COLUMN y INT NULL', 'alter-table', 4n));
      const [columns] = await conn.query<mysql.RowDataPacket[]>('SELECT column_name AS c FROM information_schema.columns WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position', [db, 't']);
      assert.deepEqual(columns.map((r) => r['c']), ['id', 'x', 'y']);
      await assert.rejects(after.writeDDL(ddl('ALTER TABLE t ADD COLUMN y INT NULL', 'alter-table', 5n)), (e: Error & { code?: string }) => e.code === 'ErrMySQLDDLError' && /Duplicate column name 'y'/.test(e.message));
    } finally {
      await after.close();
      await conn.query(`DROP DATABASE IF EXISTS ${db}`);
    }
  });

  it('asks for whole transactions per table unless [sink] transaction-atomicity = "none"', async () => {
    const uri = new URL(`mysql://root@${downstream()}/`);
    for (const [sinkConfig, want] of [[undefined, 'table'], [{ 'transaction-atomicity': 'table' }, 'table'], [{ 'transaction-atomicity': 'none' }, 'none']] as const) {
      const sink = await factory.create(uri, factory.parseConfig(uri), { ...ctx(), ...(sinkConfig === undefined ? {} : { sinkConfig }) });
      assert.equal(sink.transactionAtomicity, want);
      await sink.close();
    }
  });

  it('an unreachable downstream is a clear error at create', async () => {
    const uri = new URL('mysql://root:pw@127.0.0.1:1/');
    await assert.rejects(factory.create(uri, factory.parseConfig(uri), ctx()), (e: Error) => /cannot connect to the downstream 127\.0\.0\.1:1 as root/.test(e.message) && !e.message.includes('pw'));
  });

  it('a wrong password is refused by the downstream, and the password shows in no message or log line', async () => {
    const uri = new URL(`mysql://root:Wr0ngPassw0rd@${downstream()}/`);
    await assert.rejects(factory.create(uri, factory.parseConfig(uri), ctx()), (e: MySqlSinkError) => e.code === 'ErrMySQLConnectionError' && /Access denied for user 'root'/.test(e.message) && !e.message.includes('Wr0ngPassw0rd') && !JSON.stringify(e).includes('Wr0ngPassw0rd'));
    assert.throws(() => factory.parseConfig(new URL(`mysql://root:Wr0ngPassw0rd@${downstream()}/?worker-count=-1`)), (e: Error) => e.message === 'invalid worker-count "-1" in mysql sink URI: an integer from 1 to 1024');
    assert.ok(logged.every((line) => !line.includes('Wr0ngPassw0rd') && !line.includes('s3cret')), 'no log line carries a password');
  });

  for (const mode of ['safe-mode=true', 'safe-mode-duration=0']) {
    it(`the type matrix of the upstream binlog round-trips bit-exact into the downstream (${mode})`, async () => {
      const db = uniqueName('tm_mysink');
      const up = await mysql.createConnection({ uri: mysqlUri('upstream'), multipleStatements: true, timezone: 'Z', supportBigNumbers: true, bigNumberStrings: true, dateStrings: true });
      const sink = await open(`?worker-count=4&${mode}`);
      try {
        await up.query("SET time_zone = '+00:00', sql_mode = ''");
        await up.query(`CREATE DATABASE ${db}`);
        await sink.writeDDL(ddl(db, 'create-database', `CREATE DATABASE ${db}`));
        let ts = 10n;
        for (const [f, family] of typeFamilies.entries()) {
          const create = `CREATE TABLE f${f} (id INT PRIMARY KEY, ${family.columns})`;
          await up.query(`CREATE TABLE ${db}.f${f} (id INT PRIMARY KEY, ${family.columns})`);
          await sink.writeDDL(ddl(db, 'create-table', create, ts));
          const width = family.rows[0][1].length;
          const statements = [
            ...family.rows.map(([sql], r) => `INSERT INTO ${db}.f${f} VALUES (${r + 1}, ${sql})`),
            `INSERT INTO ${db}.f${f} VALUES (0, ${Array.from({ length: width }, () => 'NULL').join(', ')})`,
            `UPDATE ${db}.f${f} SET id = id + 100`,
            ...family.rows.map(([sql], r) => `INSERT INTO ${db}.f${f} VALUES (${r + 1}, ${sql})`),
            `DELETE FROM ${db}.f${f} WHERE id = 100`,
          ];
          const { events, map } = await upstreamRows(up, statements, db, `f${f}`);
          const name: TableName = { schema: db, table: `f${f}`, tableId: f };
          for (const event of events) {
            ts++;
            const rows = event.rows.map((r, seq) => mountRow({ table: map, change: event.kind, before: r.before, after: r.after, seq }, name, ts, 0));
            await sink.writeRows(name, rows);
          }
          await sink.flush(ts);
          const read = async (c: mysql.Connection): Promise<unknown[]> => (await c.query<mysql.RowDataPacket[]>({ sql: `SELECT * FROM ${db}.f${f} ORDER BY id`, rowsAsArray: true }))[0];
          const want = await read(up);
          assert.equal(want.length, family.rows.length * 2, `${family.name}: the upstream has the rows`);
          assert.deepEqual(await read(conn), want, `${family.name}: downstream rows equal the upstream's`);
        }
        const report = await diffTables({ upstream: mysqlUri('upstream'), downstream: mysqlUri('downstream'), tables: [`${db}.*`] });
        assert.equal(report.tables.length, typeFamilies.length);
        assert.ok(report.equal, `cdc diff: ${JSON.stringify(report.tables.filter((t) => !t.equal))}`);
      } finally {
        await sink.close();
        await up.query(`DROP DATABASE IF EXISTS ${db}`);
        await up.end();
      }
    });
  }

  it('worker-count=8: many transactions over the same keys of several tables end in the last writes, each table in commit order', async () => {
    const db = uniqueName('tm_mysink');
    const sink = await open('?worker-count=8&safe-mode-duration=0&max-txn-row=64');
    await sink.writeDDL(ddl(db, 'create-database', `CREATE DATABASE ${db}`));
    const columns = [col('k', 'int', true), col('u', 'int'), col('v', 'bigint unsigned')];
    const tables: TableName[] = [];
    for (let t = 0; t < 4; t++) {
      await sink.writeDDL(ddl(db, 'create-table', `CREATE TABLE t${t} (k INT PRIMARY KEY, u INT NOT NULL, v BIGINT UNSIGNED, UNIQUE KEY (u))`));
      tables.push({ schema: db, table: `t${t}`, tableId: t });
    }
    // the model: per table, key → [u, v]; u is unique and swapped between keys now and then (a unique-key conflict inside a transaction)
    const state = tables.map(() => new Map<number, [number, bigint]>());
    let seed = 7;
    const random = (n: number): number => (seed = (seed * 1103515245 + 12345) % 2147483648) % n;
    let ts = 100n;
    for (let i = 0; i < 600; i++) {
      const t = i % tables.length;
      const model = state[t];
      const rows: RowChangedEvent[] = [];
      ts++;
      const push = (kind: RowChangedEvent['kind'], before: ColumnValue[] | null, after: ColumnValue[] | null): void => {
        rows.push({ table: tables[t], commitTs: ts, commitTime: 0, seq: rows.length, kind, columns, before, after });
      };
      for (let n = 0; n < 3; n++) {
        const k = random(20);
        const old = model.get(k);
        const v = 18446744073709551615n - BigInt(i * 10 + n);
        if (old === undefined) {
          const u = 1000 + i * 10 + n;
          push('insert', null, [k, u, v]);
          model.set(k, [u, v]);
        } else if (random(5) === 0) {
          push('delete', [k, old[0], old[1]], null);
          model.delete(k);
        } else {
          push('update', [k, old[0], old[1]], [k, old[0], v]);
          model.set(k, [old[0], v]);
        }
      }
      await sink.writeRows(tables[t], rows);
      if (i % 97 === 0) await sink.flush(ts);
    }
    await sink.flush(ts);
    for (const [t, table] of tables.entries()) {
      const [rows] = await conn.query<mysql.RowDataPacket[]>(`SELECT k, u, v FROM ${db}.${table.table} ORDER BY k`);
      const want = [...state[t]].sort(([a], [b]) => a - b).map(([k, [u, v]]) => [k, u, v.toString()]);
      assert.deepEqual(rows.map((r) => [r['k'], r['u'], r['v']]), want, `${table.table} ends in the last writes`);
    }
    await sink.close();
  });

  it('a transaction too big for one prepared statement (its SQL written when queued) lands whole, every value exact; again outside the safe window, as REPLACE', async () => {
    const db = uniqueName('tm_mysink');
    const sink = (await open('?worker-count=2&safe-mode-duration=0')) as Sink & { counters: { transactions: number; statements: number; safeModeRetries: number } };
    await sink.writeDDL(ddl(db, 'create-database', `CREATE DATABASE ${db}`));
    await sink.writeDDL(ddl(db, 'create-table', 'CREATE TABLE big (id INT PRIMARY KEY, s VARCHAR(80) NULL, b VARBINARY(8) NULL, n BIGINT UNSIGNED NULL, m BIGINT NULL, d DECIMAL(12,2) NULL, f DOUBLE NULL)'));
    const table: TableName = { schema: db, table: 'big', tableId: 1 };
    const columns = [col('id', 'int', true), col('s', 'varchar(80)'), col('b', 'varbinary(8)'), col('n', 'bigint unsigned'), col('m', 'bigint'), col('d', 'decimal(12,2)'), col('f', 'double')];
    const texts = ["it's", 'back\\slash', 'line\nbreak\ttab', 'quote"d', 'nul\0zero', 'héllo wörld', '日本語のテキスト', '😀 emoji', ''];
    // 12,000 rows × 7 values: more than a prepared statement binds (65,535), and over a megabyte of SQL (several statements)
    const image = (id: number, round: number): ColumnValue[] => [
      id,
      id % 11 === 0 ? null : `${texts[id % texts.length]}-${round}-${'x'.repeat(id % 50)}`,
      id % 13 === 0 ? null : Buffer.from([id & 255, 0, 39, 92, round]),
      18446744073709551615n - BigInt(id * 3 + round),
      id % 2 === 0 ? -BigInt(id) * 1_000_000_007n : BigInt(id + round),
      `${id % 2 === 0 ? '-' : ''}${id}.${String((id + round) % 100).padStart(2, '0')}`,
      id % 7 === 0 ? null : id / 8 + round,
    ];
    const transaction = (round: number, commitTs: bigint): RowChangedEvent[] =>
      Array.from({ length: 12_000 }, (_, i) => ({ table, commitTs, commitTime: 0, seq: i, kind: 'insert' as const, columns, before: null, after: image(i + 1, round) }));
    /** The rows downstream that differ from round `round`'s (the first few, as JSON), and how many rows there are. */
    const differences = async (round: number): Promise<{ rows: number; differ: string[] }> => {
      const [rows] = await conn.query<mysql.RowDataPacket[]>(`SELECT id, s, HEX(b) AS b, n, m, d, f FROM ${db}.big ORDER BY id`);
      const differ: string[] = [];
      for (const [i, r] of rows.entries()) {
        const v = image(i + 1, round);
        const want = [v[0], v[1], v[2] === null ? null : (v[2] as Buffer).toString('hex').toUpperCase(), v[3] === null ? null : String(v[3]), String(v[4]), v[5], v[6]];
        const got = [r['id'], r['s'], r['b'], r['n'], r['m'], r['d'], r['f']];
        if (JSON.stringify(got) !== JSON.stringify(want) && differ.length < 5) differ.push(`got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
      }
      return { rows: rows.length, differ };
    };
    await sink.writeRows(table, transaction(1, 10n));
    await sink.flush(10n);
    assert.deepEqual(await differences(1), { rows: 12_000, differ: [] });
    assert.equal(sink.counters.transactions, 1, 'one downstream transaction');
    assert.ok(sink.counters.statements >= 2, `several statements (${sink.counters.statements})`);
    // the same keys again (a replay after a restart, outside the safe window): a duplicate key, then the rows as REPLACE
    await sink.writeRows(table, transaction(2, 11n));
    await sink.flush(11n);
    assert.deepEqual(await differences(2), { rows: 12_000, differ: [] });
    assert.equal(sink.counters.safeModeRetries, 1);
    await sink.close();
  });

  it('write-timeout: a write the downstream holds longer rejects, retryable, naming the timeout; its connection is dropped', async () => {
    const db = uniqueName('tm_mysink');
    const sink = await open('?safe-mode-duration=0&write-timeout=1s');
    const blocker = await mysql.createConnection({ uri: mysqlUri('downstream') });
    try {
      const { table, columns } = await lockableRow(sink, db);
      await blocker.query('BEGIN');
      await blocker.query(`SELECT * FROM ${db}.locked WHERE id = 1 FOR UPDATE`);
      const started = Date.now();
      await sink.writeRows(table, [{ table, commitTs: 3n, commitTime: 0, seq: 0, kind: 'update', columns, before: [1, 'first'], after: [1, 'second'] }]);
      await assert.rejects(sink.flush(3n), (e: Error & { code?: string; retryable?: boolean }) => e.code === 'ErrMySQLConnectionError' && e.retryable === true && /no answer from the downstream .* within write-timeout \(1 s\)/.test(e.message));
      // The timeout is the subject. Its message says the write-timeout fired, not the 50 s innodb_lock_wait_timeout;
      // a lower bound measured from before the write cannot fail on a slow machine.
      const waited = Date.now() - started;
      assert.ok(waited >= 900, `rejected after ${waited} ms, before the 1 s write-timeout`);
      await blocker.query('COMMIT');
      const [rows] = await conn.query<mysql.RowDataPacket[]>(`SELECT v FROM ${db}.locked`);
      assert.ok(['first', 'second'].includes(String(rows[0]['v'])));
    } finally {
      await blocker.end();
      await sink.close();
      await conn.query(`DROP DATABASE IF EXISTS ${db}`);
    }
  });

  it('flush does not resolve while a downstream row lock holds the transaction, and resolves after its COMMIT', async () => {
    const db = uniqueName('tm_mysink');
    const sink = await open('?safe-mode-duration=0');
    const { table, columns } = await lockableRow(sink, db);
    const blocker = await mysql.createConnection({ uri: mysqlUri('downstream') });
    try {
      await blocker.query('BEGIN');
      await blocker.query(`SELECT * FROM ${db}.locked WHERE id = 1 FOR UPDATE`);
      await sink.writeRows(table, [{ table, commitTs: 3n, commitTime: 0, seq: 0, kind: 'update', columns, before: [1, 'first'], after: [1, 'second'] }]);
      let flushed = false;
      const flush = sink.flush(3n).then(() => {
        flushed = true;
      });
      await waitFor(async () => {
        // the sink's statement is running downstream (held by the lock: it cannot finish before the COMMIT below)
        const [waits] = await conn.query<mysql.RowDataPacket[]>('SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND INFO LIKE ?', [`%\`${db}\`.\`locked\`%`]);
        return Number(waits[0]['n']) > 0;
      }, { what: "the sink's transaction waiting for the row lock", timeoutMs: 20_000 });
      assert.equal(flushed, false, 'flush resolved while the UPDATE waits for its lock');
      const [during] = await conn.query<mysql.RowDataPacket[]>(`SELECT v FROM ${db}.locked`);
      assert.deepEqual(during.map((r) => r['v']), ['first']);
      await blocker.query('COMMIT');
      await flush;
      const [rows] = await conn.query<mysql.RowDataPacket[]>(`SELECT v FROM ${db}.locked`);
      assert.deepEqual(rows.map((r) => r['v']), ['second'], 'after flush the update is committed');
    } finally {
      await blocker.end();
      await sink.close();
    }
  });

  it('a downstream that goes away: writes reject with a retryable ErrMySQLConnectionError carrying the driver text', async () => {
    const db = uniqueName('tm_mysink');
    const { host, port } = serviceAddress('downstream');
    const proxy = await TcpProxy.start(host, port);
    const uri = new URL(`mysql://root@127.0.0.1:${proxy.port}/?worker-count=2&safe-mode-duration=0`);
    const sink = await factory.create(uri, factory.parseConfig(uri), ctx());
    try {
      await sink.writeDDL(ddl(db, 'create-database', `CREATE DATABASE ${db}`));
      await sink.writeDDL(ddl(db, 'create-table', 'CREATE TABLE t (id INT PRIMARY KEY)'));
      const table: TableName = { schema: db, table: 't', tableId: 1 };
      const columns = [col('id', 'int', true)];
      const insert = (id: number, ts: bigint): RowChangedEvent => ({ table, commitTs: ts, commitTime: 0, seq: 0, kind: 'insert', columns, before: null, after: [id] });
      await sink.writeRows(table, [insert(1, 2n)]);
      await sink.flush(2n);
      proxy.cut();
      await sink.writeRows(table, [insert(2, 3n)]);
      await assert.rejects(sink.flush(3n), (e: MySqlSinkError) => {
        assert.equal(e.code, 'ErrMySQLConnectionError');
        assert.equal(e.retryable, true);
        assert.match(e.message, /^writing 1 row\(s\) of tm_mysink\S+\.t \(commit ts 3…3\) failed downstream: the connection to the downstream failed \(\S+: .+\); the changefeed retries from its checkpoint$/);
        return true;
      });
      // the failure sticks: later calls reject too, so the changefeed restarts the sink from its checkpoint
      await assert.rejects(sink.writeRows(table, [insert(3, 4n)]), { code: 'ErrMySQLConnectionError' });
      const [rows] = await conn.query<mysql.RowDataPacket[]>(`SELECT id FROM ${db}.t`);
      assert.deepEqual(rows.map((r) => r['id']), [1], 'only the row flushed before the cut is downstream');
    } finally {
      await sink.close();
      await proxy.close();
    }
  });

  it('writeSyncpoint records (changefeed, primary_ts, secondary_ts, created_at) in tidb_cdc.syncpoint_v1 after the rows before it', async () => {
    const db = uniqueName('tm_mysink');
    const changefeedId = uniqueName('syncpoint');
    const uri = new URL(`mysql://root@${downstream()}/`);
    const sink = await factory.create(uri, factory.parseConfig(uri), { ...ctx(), changefeedId });
    try {
      await sink.writeDDL(ddl(db, 'create-database', `CREATE DATABASE ${db}`));
      await sink.writeDDL(ddl(db, 'create-table', 'CREATE TABLE t (id INT PRIMARY KEY)'));
      const table: TableName = { schema: db, table: 't', tableId: 1 };
      await sink.writeRows(table, [{ table, commitTs: 7n, commitTime: 0, seq: 0, kind: 'insert', columns: [col('id', 'int', true)], before: null, after: [7] }]);
      await sink.writeSyncpoint!(18446744073709551615n, 0);
      await sink.writeSyncpoint!(18446744073709551615n, 0); // a replay overwrites
      const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT primary_ts, secondary_ts, created_at FROM tidb_cdc.syncpoint_v1 WHERE changefeed = ?', [changefeedId]);
      assert.equal(rows.length, 1);
      assert.equal(rows[0]['primary_ts'], '18446744073709551615');
      const [[pos]] = await conn.query<mysql.RowDataPacket[]>('SELECT @@gtid_current_pos AS p, NOW(6) AS now');
      const secondary = String(rows[0]['secondary_ts']);
      assert.ok(secondary === String(pos['p']) || /^\d{4}-\d{2}-\d{2} /.test(secondary), `secondary_ts ${secondary}`);
      assert.ok(String(rows[0]['created_at']) <= String(pos['now']));
      const [data] = await conn.query<mysql.RowDataPacket[]>(`SELECT id FROM ${db}.t`);
      assert.deepEqual(data.map((r) => r['id']), [7], 'the rows before the syncpoint are committed');
      await conn.query('DELETE FROM tidb_cdc.syncpoint_v1 WHERE changefeed = ?', [changefeedId]);
    } finally {
      await sink.close();
    }
  });

  it('writeSyncpoint deletes the changefeed\'s syncpoints older than sync-point-retention, and only its own', async () => {
    const changefeedId = uniqueName('retention');
    const other = uniqueName('retention-other');
    const uri = new URL(`mysql://root@${downstream()}/`);
    const sink = await factory.create(uri, factory.parseConfig(uri), { ...ctx(), changefeedId, syncPointRetentionMs: 3_600_000 });
    try {
      await sink.writeSyncpoint!(100n, 0); // creates the table
      const old = "INSERT INTO tidb_cdc.syncpoint_v1 (ticdc_cluster_id, changefeed, primary_ts, secondary_ts, created_at) VALUES ('default', ?, ?, '', NOW(6) - INTERVAL ? MINUTE)";
      await conn.query(old, [changefeedId, '1', 61]);
      await conn.query(old, [changefeedId, '2', 59]);
      await conn.query(old, [other, '1', 120]);
      await sink.writeSyncpoint!(200n, 0);
      const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT changefeed, primary_ts FROM tidb_cdc.syncpoint_v1 WHERE changefeed IN (?, ?)', [changefeedId, other]);
      assert.deepEqual(rows.map((r) => `${String(r['changefeed'])}@${String(r['primary_ts'])}`).sort(), [`${changefeedId}@2`, `${changefeedId}@100`, `${changefeedId}@200`, `${other}@1`].sort());
    } finally {
      await conn.query('DELETE FROM tidb_cdc.syncpoint_v1 WHERE changefeed IN (?, ?)', [changefeedId, other]);
      await sink.close();
    }
  });

  it('loads from its built package for mysql:// and tidb://, validates through the registry and writes', async () => {
    const root = new URL('../../../plugins/sink-mysql', import.meta.url).pathname;
    const registry = SinkRegistry.fromPlugins([{ name: '@tidemark/sink-mysql', root, pjson: JSON.parse(readFileSync(`${root}/package.json`, 'utf8')) as object }]);
    assert.deepEqual([...registry.schemes].sort(), ['mysql', 'tidb']);
    await assert.rejects(registry.validate('mysql://root:s3cret@127.0.0.1:3306/?batch-dml-enable=maybe'), (e: Error) => /invalid batch-dml-enable "maybe" in mysql sink URI: true or false/.test(e.message) && !e.message.includes('s3cret'));
    const db = uniqueName('tm_mysink');
    const uri = new URL(`tidb://root@${downstream()}/?worker-count=2`);
    const built = await registry.factoryFor(uri.href);
    const sink = await built.create(uri, built.parseConfig(uri), ctx());
    try {
      await sink.writeDDL(ddl(db, 'create-database', `CREATE DATABASE ${db}`));
      await sink.writeDDL(ddl(db, 'create-table', 'CREATE TABLE t (id BIGINT UNSIGNED PRIMARY KEY, b VARBINARY(4))'));
      const table: TableName = { schema: db, table: 't', tableId: 1 };
      await sink.writeRows(table, [{ table, commitTs: 2n, commitTime: 0, seq: 0, kind: 'insert', columns: [col('id', 'bigint unsigned', true), col('b', 'varbinary(4)')], before: null, after: [18446744073709551615n, Buffer.from([0, 0xff])] }]);
      await sink.flush(2n);
      const [rows] = await conn.query<mysql.RowDataPacket[]>(`SELECT id, HEX(b) AS b FROM ${db}.t`);
      assert.deepEqual(rows.map((r) => [r['id'], r['b']]), [['18446744073709551615', '00FF']]);
    } finally {
      await sink.close();
    }
  });
});
