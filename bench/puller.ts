/**
 * Puller decode throughput on the real upstream: pre-generates a binlog of narrow (5 columns) and wide
 * (30 columns) rows, then reads it from the start position decoded into row changes with ts
 * (BinlogReader + readTransactions), and prints rows/s and peak RSS. Each shape is read `runs` times over new
 * connections (the first read of a process runs mostly before the JIT has compiled the decoder); every run is
 * printed, and the median. For scale, MariaDB's own tools read the same binlog range in the same run:
 * `mariadb-binlog --read-from-remote-server -v` (its C decoder, to /dev/null) and `--raw` (the wire).
 * usage: node --import tsx bench/puller.ts [narrowRows=500000] [wideRows=100000] [runs=3]   (needs scripts/services.sh up upstream)
 */
import mysql from 'mysql2/promise';
import { BinlogReader } from '../src/core/upstream/binlog-reader.js';
import { readTransactions } from '../src/core/upstream/transaction-reader.js';
import { decodeLocatedRows } from '../src/core/upstream/rows.js';
import { binlogCeilings, binlogRange, masterPos, type BinlogPos } from './harness/measure.js';

const [narrowRows = 500_000, wideRows = 100_000, runs = 3] = process.argv.slice(2).map(Number);
const addr = process.env['TIDEMARK_UPSTREAM_ADDR'] ?? '127.0.0.1:3307';
const [host, port] = [addr.slice(0, addr.lastIndexOf(':')), Number(addr.slice(addr.lastIndexOf(':') + 1))];
const conn = await mysql.createConnection({ host, port, user: 'root', multipleStatements: true });
const db = `tm_bench_puller_${process.pid}`;
let peakRss = 0;
const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 20);

async function generate(table: string, columns: number, rows: number): Promise<{ start: BinlogPos; end: BinlogPos }> {
  const cols = Array.from({ length: columns - 1 }, (_, i) => (i % 3 === 0 ? `c${i} BIGINT` : i % 3 === 1 ? `c${i} VARCHAR(40)` : `c${i} DECIMAL(12,2)`));
  await conn.query(`CREATE TABLE ${db}.${table} (id INT PRIMARY KEY, ${cols.join(', ')})`);
  const start = await masterPos(conn);
  const batch = 2000;
  for (let done = 0; done < rows; done += batch) {
    const values = Array.from({ length: Math.min(batch, rows - done) }, (_, r) => {
      const id = done + r;
      return `(${id}, ${Array.from({ length: columns - 1 }, (_, i) => (i % 3 === 0 ? id * 7 : i % 3 === 1 ? `'value-${id % 1000}-abcdefghij'` : `${id % 10000}.25`)).join(', ')})`;
    });
    await conn.query(`INSERT INTO ${db}.${table} VALUES ${values.join(',')}`);
  }
  return { start, end: await masterPos(conn) };
}

/** Seconds to read `rows` decoded row changes from `start`. */
async function measure(start: BinlogPos, rows: number, run: number): Promise<number> {
  const reader = await BinlogReader.open({ host, port, user: 'root', password: '', serverId: 9000 + ((process.pid + run) % 500) }, start.file, start.pos);
  const t0 = process.hrtime.bigint();
  let seen = 0;
  try {
    for await (const e of readTransactions(reader)) if (e.kind === 'rows' && (seen += decodeLocatedRows(e.layout).length) >= rows) break;
  } finally {
    reader.close();
  }
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

try {
  await conn.query(`CREATE DATABASE ${db}`);
  const results = [];
  for (const [name, columns, rows] of [['narrow', 5, narrowRows], ['wide', 30, wideRows]] as const) {
    const { start, end } = await generate(name, columns, rows);
    const rates: number[] = [];
    for (let run = 0; run < runs; run++) rates.push(Math.round(rows / (await measure(start, rows, run))));
    const median = [...rates].sort((a, b) => a - b)[Math.floor(rates.length / 2)];
    const ceilings = await binlogCeilings(host, port, start, end, (await binlogRange(conn, start, end)).files);
    const mariadbDecode = Math.round(rows / ceilings.decodeSeconds);
    const wire = Math.round(rows / ceilings.rawSeconds);
    results.push({ bench: 'puller', shape: name, columns, rows, runs: rates, rowsPerSecond: median, mariadbDecodeRowsPerSecond: mariadbDecode, rawReadRowsPerSecond: wire });
  }
  clearInterval(sampler);
  for (const r of results) {
    console.log(`puller ${r.shape.padEnd(6)} ${String(r.columns).padStart(2)} cols: median ${r.rowsPerSecond.toLocaleString('en')} rows/s over ${r.rows} rows (runs: ${r.runs.map((x) => x.toLocaleString('en')).join(', ')})`);
    console.log(`  same range: mariadb-binlog -v ${r.mariadbDecodeRowsPerSecond.toLocaleString('en')} rows/s (Tidemark ${(r.rowsPerSecond / r.mariadbDecodeRowsPerSecond).toFixed(2)}x), --raw ${r.rawReadRowsPerSecond.toLocaleString('en')} rows/s`);
  }
  console.log(`peak RSS ${Math.round(peakRss / 1048576)} MiB`);
  for (const r of results) console.log(JSON.stringify({ ...r, peakRssMiB: Math.round(peakRss / 1048576) }));
} finally {
  clearInterval(sampler);
  await conn.query(`DROP DATABASE IF EXISTS ${db}`);
  await conn.end();
}
