/**
 * The harness's workloads: table shapes, fast backlog generation on the upstream (MariaDB's sequence tables,
 * multi-row INSERT … SELECT, UPDATE … WHERE id BETWEEN) and the rows of the fixed-rate generator.
 */
import type mysql from 'mysql2/promise';

export const SCENARIOS = ['insert-narrow', 'update-heavy', 'wide', 'many-tables', 'big-txn', 'ddl'] as const;
export type Scenario = (typeof SCENARIOS)[number];

export interface Shape {
  /** column definitions after `id INT PRIMARY KEY` */
  readonly columns: string;
  readonly names: readonly string[];
  /** SELECT expressions over `seq` for INSERT … SELECT */
  readonly selectExprs: string;
  /** a literal row (without the id) for multi-row VALUES */
  readonly literal: (id: number) => string;
}

export const NARROW: Shape = {
  columns: 'a BIGINT NOT NULL, b VARCHAR(40) NOT NULL, c DECIMAL(12,2) NOT NULL, d DATETIME NOT NULL',
  names: ['a', 'b', 'c', 'd'],
  selectExprs: "seq * 7, CONCAT('value-', seq % 1000, '-abcdefghij'), (seq % 10000) + 0.25, TIMESTAMP('2026-01-01') + INTERVAL (seq % 86400) SECOND",
  literal: (id) => `${id * 7}, 'value-${id % 1000}-abcdefghij', ${id % 10000}.25, '2026-01-01 ${String(Math.floor((id % 86400) / 3600)).padStart(2, '0')}:00:00'`,
};

/** 31 columns after the id: 10 BIGINT, 11 VARCHAR(80) filled to 80 characters, 10 DECIMAL(12,2): ~1 KB a row. */
export const WIDE: Shape = (() => {
  const defs: string[] = [];
  const names: string[] = [];
  const exprs: string[] = [];
  const lits: ((id: number) => string)[] = [];
  for (let i = 0; i < 10; i++) {
    names.push(`n${i}`);
    defs.push(`n${i} BIGINT NOT NULL`);
    exprs.push(`seq * ${i + 3}`);
    lits.push((id) => String(id * (i + 3)));
  }
  for (let i = 0; i < 11; i++) {
    names.push(`s${i}`);
    defs.push(`s${i} VARCHAR(80) NOT NULL`);
    exprs.push(`REPEAT(CHAR(65 + (seq + ${i}) % 26), 80)`);
    lits.push((id) => `'${String.fromCharCode(65 + ((id + i) % 26)).repeat(80)}'`);
  }
  for (let i = 0; i < 10; i++) {
    names.push(`m${i}`);
    defs.push(`m${i} DECIMAL(12,2) NOT NULL`);
    exprs.push(`(seq % ${1000 + i}) + 0.5`);
    lits.push((id) => `${id % (1000 + i)}.5`);
  }
  return { columns: defs.join(', '), names, selectExprs: exprs.join(', '), literal: (id) => lits.map((f) => f(id)).join(', ') };
})();

export function shapeOf(scenario: Scenario): Shape {
  return scenario === 'wide' ? WIDE : NARROW;
}

export function createTableSql(db: string, table: string, shape: Shape): string {
  return `CREATE TABLE \`${db}\`.\`${table}\` (id INT PRIMARY KEY, ${shape.columns})`;
}

/** The run's tables (`--tables`: update-heavy 8 unless given, many-tables 1,000, the others 1). */
export function tableNames(tables: number): string[] {
  return Array.from({ length: tables }, (_, i) => `t${i}`);
}

async function insertRange(conn: mysql.Connection, db: string, table: string, shape: Shape, from: number, to: number, chunk: number): Promise<void> {
  for (let a = from; a <= to; a += chunk) {
    const b = Math.min(to, a + chunk - 1);
    await conn.query(`INSERT INTO \`${db}\`.\`${table}\` (id, ${shape.names.join(', ')}) SELECT seq, ${shape.selectExprs} FROM \`${db}\`.seq_${a}_to_${b}`);
  }
}

/** What exists before the start position: the tables, and for update-heavy the rows it updates. */
export async function setup(conn: mysql.Connection, scenario: Scenario, db: string, tables: readonly string[], rows: number): Promise<void> {
  const shape = shapeOf(scenario);
  // many tables (100,000 in a scale run): 500 CREATE TABLE statements a round trip where the connection allows it
  const batch = (conn.config as { multipleStatements?: boolean }).multipleStatements === true ? 500 : 1;
  for (let i = 0; i < tables.length; i += batch) await conn.query(tables.slice(i, i + batch).map((t) => createTableSql(db, t, shape)).join(';\n'));
  if (scenario === 'update-heavy') {
    const perTable = Math.min(Math.ceil(rows / tables.length), 50_000);
    for (const t of tables) await insertRange(conn, db, t, shape, 1, perTable, 50_000);
  }
}

/**
 * Drops a bench database. With thousands of tables, MariaDB's DROP DATABASE holds metadata locks for many minutes
 * (100,000 tables: over 13 minutes without dropping one) and every information_schema query waits behind it, so
 * the tables go first, 1,000 a statement.
 */
export async function dropDatabase(conn: mysql.Connection, db: string): Promise<void> {
  const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?', [db]);
  const names = rows.map((r) => String(r['name']));
  if (names.length > 1000) {
    for (let i = 0; i < names.length; i += 1000) await conn.query(`DROP TABLE IF EXISTS ${names.slice(i, i + 1000).map((n) => `\`${db}\`.\`${n}\``).join(', ')}`);
  }
  await conn.query(`DROP DATABASE IF EXISTS \`${db}\``);
}

/** The backlog: `rows` row changes after the start position; returns how many the statements changed. */
export async function generateBacklog(conn: mysql.Connection, scenario: Scenario, db: string, tables: readonly string[], rows: number): Promise<number> {
  const shape = shapeOf(scenario);
  const affected = (r: unknown): number => (r as mysql.ResultSetHeader).affectedRows;
  if (scenario === 'big-txn') {
    // one statement, one transaction
    await conn.query(`INSERT INTO \`${db}\`.\`${tables[0]}\` (id, ${shape.names.join(', ')}) SELECT seq, ${shape.selectExprs} FROM \`${db}\`.seq_1_to_${rows}`);
    return rows;
  }
  if (scenario === 'update-heavy') {
    const perTable = Math.min(Math.ceil(rows / tables.length), 50_000);
    const chunk = 5_000;
    let done = 0;
    for (let pass = 1; done < rows; pass++) {
      for (let a = 1; a <= perTable && done < rows; a += chunk) {
        for (const t of tables) {
          if (done >= rows) break;
          const b = Math.min(perTable, a + chunk - 1, a + rows - done - 1);
          const [r] = await conn.query(`UPDATE \`${db}\`.\`${t}\` SET a = a + ${pass}, b = CONCAT('updated-', ${pass}, '-', id), c = c + 1 WHERE id BETWEEN ${a} AND ${b}`);
          done += affected(r);
        }
      }
    }
    return done;
  }
  if (scenario === 'many-tables') {
    const per = Math.ceil(rows / tables.length);
    let done = 0;
    for (const t of tables) {
      const n = Math.min(per, rows - done);
      if (n <= 0) break;
      await insertRange(conn, db, t, shape, 1, n, 20_000);
      done += n;
    }
    return done;
  }
  const chunk = scenario === 'wide' ? 5_000 : 20_000;
  if (tables.length === 1) {
    await insertRange(conn, db, tables[0], shape, 1, rows, chunk);
    return rows;
  }
  // over several tables: a transaction of `chunk` rows into each table in turn, so the tables' rows interleave in the
  // binlog (as a workload writing to all of them at once would), each table getting its share
  const per = Math.ceil(rows / tables.length);
  let done = 0;
  for (let a = 1; done < rows; a += chunk) {
    for (const t of tables) {
      const b = Math.min(a + chunk - 1, per, a + rows - done - 1);
      if (b < a) continue;
      await insertRange(conn, db, t, shape, a, b, chunk);
      done += b - a + 1;
    }
  }
  return done;
}

/** One fixed-rate transaction: `n` new rows into `table` (multi-row VALUES) from id `firstId`. */
export function insertValuesSql(db: string, table: string, shape: Shape, firstId: number, n: number): string {
  const values = Array.from({ length: n }, (_, i) => `(${firstId + i}, ${shape.literal(firstId + i)})`);
  return `INSERT INTO \`${db}\`.\`${table}\` (id, ${shape.names.join(', ')}) VALUES ${values.join(', ')}`;
}
