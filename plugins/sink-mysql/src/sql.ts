import mysql from 'mysql2/promise';
import type { ColumnInfo, ColumnValue, RowChangedEvent, Ts } from 'tidemark/sink';
import { SqlWriter } from './sql-writer.js';

/** The writer of value lists and keys (used synchronously, from `begin` to `take`). */
export const writer = new SqlWriter();

/** A multi-row statement stops growing past this many bytes of values; with multi-stmt-enable, a round trip carries up to MULTI_STATEMENT_BYTES. */
export const STATEMENT_BYTES = 1 << 20;
export const MULTI_STATEMENT_BYTES = 4 << 20;

/** Statements joined for multi-statement round trips, each group at most MULTI_STATEMENT_BYTES (a single bigger statement alone). */
export function groupStatements(statements: readonly string[]): string[] {
  const groups: string[] = [];
  let current: string[] = [];
  let bytes = 0;
  for (const sql of statements) {
    if (current.length > 0 && bytes + sql.length > MULTI_STATEMENT_BYTES) {
      groups.push(current.join(';\n'));
      current = [];
      bytes = 0;
    }
    current.push(sql);
    bytes += sql.length + 2;
  }
  if (current.length > 0) groups.push(current.join(';\n'));
  return groups;
}

export function quoteIdent(name: string): string {
  return `\`${name.replaceAll('`', '``')}\``;
}


/** A value as an SQL literal, exactly: integers (bigint) unquoted, binary as X'…', text escaped by mysql2. */
export function literal(value: ColumnValue): string {
  if (value === null) return 'NULL';
  switch (typeof value) {
    case 'bigint':
      return value.toString();
    case 'number':
      return Number.isFinite(value) ? String(value) : 'NULL';
    case 'boolean':
      return value ? '1' : '0';
    case 'string':
      return mysql.escape(value);
    default:
      return `X'${value.toString('hex')}'`;
  }
}

const columnNames = new WeakMap<readonly ColumnInfo[], string>();

/**
 * Whether rows of two column lists go into one statement: the same column names in the same order. The mounter
 * shares one array per TABLE_MAP, but each transaction has its own TABLE_MAP, so identity alone would cut batches
 * at every transaction.
 */
export function sameColumns(a: readonly ColumnInfo[], b: readonly ColumnInfo[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  const names = (columns: readonly ColumnInfo[]): string => {
    let text = columnNames.get(columns);
    if (text === undefined) {
      text = columns.map((c) => c.name).join('\u0000');
      columnNames.set(columns, text);
    }
    return text;
  };
  return names(a) === names(b);
}

export interface TableShape {
  readonly qualified: string;
  /** Positions of the columns rows are matched on (primary key, else a NOT NULL unique key, else all with force-replicate). */
  readonly key: readonly number[];
  /** Matched on every column (no usable key): NULL-safe comparison and LIMIT 1. */
  readonly allColumns: boolean;
}

/**
 * Inserts rows[from…] (with the columns of rows[from]) as SQL value lists `(…), (…)`: while they are inserts with
 * those columns, one row only unless `batch`, and until the values pass STATEMENT_BYTES. `end` is the first row
 * not taken.
 */
export function insertValues(rows: readonly RowChangedEvent[], from: number, batch: boolean): { values: string; end: number } {
  const columns = rows[from].columns;
  writer.begin();
  let j = from;
  while (j < rows.length && rows[j].kind === 'insert' && sameColumns(rows[j].columns, columns) && (batch || j === from) && writer.length < STATEMENT_BYTES) {
    if (j > from) writer.comma();
    writer.tuple(rows[j++].after!);
  }
  return { values: writer.take(), end: j };
}

/**
 * A big upstream transaction of inserts (too many values for one prepared statement) rendered as SQL when it is
 * queued: a queue of these holds a few flat strings instead of tens of thousands of row objects, which V8 would
 * copy in every young-generation collection while they wait (GC was a fifth of the capture's main thread in a
 * MySQL backlog of such transactions).
 */
export interface RenderedInserts {
  readonly columns: readonly ColumnInfo[];
  /** The value lists of the transaction's INSERT (or REPLACE) statements, each up to STATEMENT_BYTES. */
  readonly values: readonly string[];
  readonly rows: number;
  /** Characters of the value lists. */
  readonly bytes: number;
  readonly firstCommitTs: Ts;
  readonly lastCommitTs: Ts;
}

/** The rows as RenderedInserts, or undefined when they are not all inserts with the same columns. */
export function renderInserts(rows: readonly RowChangedEvent[]): RenderedInserts | undefined {
  for (const row of rows) if (row.kind !== 'insert' || !sameColumns(row.columns, rows[0].columns)) return undefined;
  const values: string[] = [];
  let bytes = 0;
  let i = 0;
  while (i < rows.length) {
    const next = insertValues(rows, i, true);
    values.push(next.values);
    bytes += next.values.length;
    i = next.end;
  }
  return { columns: rows[0].columns, values, rows: rows.length, bytes, firstCommitTs: rows[0].commitTs, lastCommitTs: rows[rows.length - 1].commitTs };
}
