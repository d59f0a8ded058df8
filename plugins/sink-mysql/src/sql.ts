import mysql from 'mysql2/promise';
import type { ColumnInfo, ColumnValue } from 'tidemark/sink';

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
