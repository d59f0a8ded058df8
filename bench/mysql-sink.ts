/**
 * MySQL sink throughput into the real downstream MariaDB, next to the downstream's own ceiling in the same run.
 * usage: node --import tsx bench/mysql-sink.ts [rows=200000] [tables=4] [txnRows=10] [modes=plain,safe]
 *
 * Rows are pre-generated RowChangedEvents of a narrow sysbench-like table (BIGINT pk, INT, CHAR(60), CHAR(60)),
 * handed to the sink one upstream transaction of `txnRows` rows per writeRows call, tables interleaved, with a
 * flush every 10,000 rows, as a changefeed does. Workloads: insert-only (fresh tables) and update-heavy (every
 * row updated once, in the same transaction shapes). Modes: plain (safe-mode-duration=0: INSERT, UPDATE) and
 * safe (safe-mode=true: REPLACE, DELETE + REPLACE). The ceiling is a plain mysql2 loader of the same rows:
 * one connection per table, multi-row INSERTs of 256 rows (the sink's max-txn-row), autocommit, once as escaped
 * text (`query`) and twice prepared (`execute`, before and after the sink runs); ratios are against the best.
 */
import mysql from 'mysql2/promise';
import { factory } from '../plugins/sink-mysql/src/index.js';
import type { ColumnInfo, ColumnValue, RowChangedEvent, TableName } from '../src/core/sink/api.js';

const args = process.argv.slice(2);
const rows = Number(args[0] ?? 200_000);
const tableCount = Number(args[1] ?? 4);
const txnRows = Number(args[2] ?? 10);
const modes = (args[3] ?? 'plain,safe').split(',');
const addr = process.env['TIDEMARK_DOWNSTREAM_ADDR'] ?? '127.0.0.1:3308';
const db = `tm_bench_sink_${process.pid}`;
const admin = await mysql.createConnection({ uri: `mysql://root@${addr}/`, multipleStatements: true });
const noop = (): void => undefined;
const ctx = { signal: new AbortController().signal, changefeedId: 'bench', logger: { debug: noop, info: noop, warn: noop, error: noop } };

const columns: ColumnInfo[] = [
  { name: 'id', mysqlType: 'bigint', primaryKey: true, nullable: false },
  { name: 'k', mysqlType: 'int', primaryKey: false, nullable: false },
  { name: 'c', mysqlType: 'char(60)', primaryKey: false, nullable: false },
  { name: 'pad', mysqlType: 'char(60)', primaryKey: false, nullable: false },
];
const tables: TableName[] = Array.from({ length: tableCount }, (_, i) => ({ schema: db, table: `t${i}`, tableId: i + 1 }));
const perTable = Math.ceil(rows / tableCount);
const image = (id: number, version: number): ColumnValue[] => [BigInt(id), (id * 7 + version) % 100_000, `${id}-${version}-`.padEnd(60, 'c'), `pad-${id}`.padEnd(60, 'p')];

/** Transactions in commit order, tables interleaved: [table index, rows]. */
function workload(kind: 'insert' | 'update'): [number, RowChangedEvent[]][] {
  const out: [number, RowChangedEvent[]][] = [];
  let ts = 1000n;
  for (let start = 0; start < perTable; start += txnRows) {
    for (const [t, table] of tables.entries()) {
      ts++;
      const txn: RowChangedEvent[] = [];
      for (let id = start; id < Math.min(start + txnRows, perTable); id++) {
        txn.push({ table, commitTs: ts, commitTime: 0, seq: txn.length, kind, columns, before: kind === 'insert' ? null : image(id, 0), after: image(id, kind === 'insert' ? 0 : 1) });
      }
      out.push([t, txn]);
    }
  }
  return out;
}

async function resetTables(): Promise<void> {
  await admin.query(`DROP DATABASE IF EXISTS ${db}; CREATE DATABASE ${db}`);
  for (const t of tables) await admin.query(`CREATE TABLE ${db}.${t.table} (id BIGINT NOT NULL PRIMARY KEY, k INT NOT NULL, c CHAR(60) NOT NULL, pad CHAR(60) NOT NULL)`);
}

async function count(): Promise<number> {
  let n = 0;
  for (const t of tables) n += Number((await admin.query<mysql.RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${db}.${t.table}`))[0][0]['n']);
  return n;
}

async function throughSink(query: string, txns: [number, RowChangedEvent[]][]): Promise<number> {
  const uri = new URL(`mysql://root@${addr}/?${query}`);
  const sink = await factory.create(uri, factory.parseConfig(uri), ctx);
  const started = performance.now();
  let n = 0;
  let sinceFlush = 0;
  for (const [t, txn] of txns) {
    await sink.writeRows(tables[t], txn);
    n += txn.length;
    sinceFlush += txn.length;
    if (sinceFlush >= 10_000) {
      await sink.flush(txn[0].commitTs);
      sinceFlush = 0;
    }
  }
  await sink.flush(txns.at(-1)![1][0].commitTs);
  const seconds = (performance.now() - started) / 1000;
  await sink.close();
  return n / seconds;
}

/** The ceiling: one connection per table, multi-row INSERTs of 256 rows of the same values, as escaped text or prepared. */
async function ceiling(prepared: boolean): Promise<number> {
  const conns = await Promise.all(tables.map(() => mysql.createConnection({ uri: `mysql://root@${addr}/` })));
  const started = performance.now();
  await Promise.all(
    tables.map(async (t, i) => {
      for (let start = 0; start < perTable; start += 256) {
        const end = Math.min(start + 256, perTable);
        if (prepared) {
          const params: (string | number)[] = [];
          for (let id = start; id < end; id++) params.push(id, (id * 7) % 100_000, `${id}-0-`.padEnd(60, 'c'), `pad-${id}`.padEnd(60, 'p'));
          await conns[i].execute(`INSERT INTO ${db}.${t.table} (id, k, c, pad) VALUES ${Array.from({ length: end - start }, () => '(?, ?, ?, ?)').join(', ')}`, params);
        } else {
          const values: string[] = [];
          for (let id = start; id < end; id++) values.push(`(${image(id, 0).map((v) => mysql.escape(typeof v === 'bigint' ? v.toString() : v)).join(', ')})`);
          await conns[i].query(`INSERT INTO ${db}.${t.table} (id, k, c, pad) VALUES ${values.join(', ')}`);
        }
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  await Promise.all(conns.map((c) => c.end()));
  return (perTable * tableCount) / seconds;
}

const inserts = workload('insert');
const updates = workload('update');
const fmt = (n: number): string => Math.round(n).toLocaleString('en');
const result: Record<string, number> = {};
// warm-up (JIT, pool, buffer pool, the workload arrays promoted to V8's old space): the whole insert and update
// workload through the sink once, then the ceiling, then the measured runs. With only a tenth of the inserts as
// warm-up, whichever mode ran first measured 0.50–0.58 of the ceiling and the second 0.74–0.83 in the same run.
await resetTables();
await throughSink('safe-mode-duration=0', inserts);
await throughSink('safe-mode-duration=0', updates);
await resetTables();
result['ceilingText'] = await ceiling(false);
await resetTables();
result['ceilingPrepared'] = await ceiling(true);
for (const mode of modes) {
  const query = mode === 'safe' ? 'safe-mode=true' : 'safe-mode-duration=0';
  await resetTables();
  result[`${mode}Insert`] = await throughSink(query, inserts);
  if ((await count()) !== perTable * tableCount) throw new Error(`${mode}: the downstream has ${await count()} rows, not ${perTable * tableCount}`);
  result[`${mode}Update`] = await throughSink(query, updates);
}
await resetTables();
result['ceilingPrepared2'] = await ceiling(true); // again at the end: the machine is shared, so bracket the sink runs
await admin.query(`DROP DATABASE IF EXISTS ${db}`);
await admin.end();
const ceil = Math.max(result['ceilingText'], result['ceilingPrepared'], result['ceilingPrepared2']);
console.log(`mysql sink: ${fmt(rows)} rows over ${tableCount} tables, transactions of ${txnRows} rows`);
console.log(`  ceiling (plain mysql2 multi-row INSERTs of 256, ${tableCount} connections): text ${fmt(result['ceilingText'])}, prepared ${fmt(result['ceilingPrepared'])} / ${fmt(result['ceilingPrepared2'])} rows/s; ratios against the best`);
for (const mode of modes) {
  console.log(`  ${mode.padEnd(5)} insert-only ${fmt(result[`${mode}Insert`])} rows/s (${(result[`${mode}Insert`] / ceil).toFixed(2)} of ceiling), update-heavy ${fmt(result[`${mode}Update`])} rows/s (${(result[`${mode}Update`] / ceil).toFixed(2)})`);
}
console.log(JSON.stringify({ bench: 'mysql-sink', rows, tables: tableCount, txnRows, ...Object.fromEntries(Object.entries(result).map(([k, v]) => [k, Math.round(v)])) }));
