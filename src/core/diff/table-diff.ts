import type mysql from 'mysql2/promise';
import { TidemarkError } from '../errors/index.js';
import { TableFilter } from '../config/table-filter.js';
import { parseMySqlUri, redactUri } from '../config/uri.js';
import { connectMySql } from '../upstream/connect.js';
import { Upstream } from '../upstream/upstream.js';

/** The mysql sink's own parameters: a sink URI given as --downstream is taken as it is, these ignored. */
const SINK_PARAMS = ['worker-count', 'max-txn-row', 'batch-dml-enable', 'safe-mode', 'safe-mode-duration', 'time-zone', 'read-timeout', 'write-timeout', 'multi-stmt-enable', 'force-replicate'];

export interface DiffOptions {
  readonly upstream: string;
  readonly downstream: string;
  /** Table-filter rules (`db.*`, `!db.tmp*`); default every non-system table of the upstream. */
  readonly tables?: readonly string[];
  readonly chunkSize?: number;
  /** How many differing rows to list per table. */
  readonly maxRowsReported?: number;
}

export type RowDifference =
  | { readonly kind: 'missing-downstream'; readonly key: readonly unknown[] }
  | { readonly kind: 'extra-downstream'; readonly key: readonly unknown[] }
  | { readonly kind: 'changed'; readonly key: readonly unknown[] };

export interface TableDiff {
  readonly table: string;
  readonly equal: boolean;
  readonly upstreamRows: number;
  readonly downstreamRows: number;
  readonly chunks: number;
  readonly differentChunks: number;
  /** Why the table could not be compared chunk by chunk, or is missing downstream. */
  readonly problem?: string;
  readonly differences: readonly RowDifference[];
}

export interface DiffReport {
  readonly equal: boolean;
  readonly tables: readonly TableDiff[];
}

interface Column {
  readonly name: string;
}

const q = (name: string): string => `\`${name.replaceAll('`', '``')}\``;

/**
 * Compares tables of two MySQL-compatible databases (`cdc diff`, like sync-diff-inspector): each table is
 * cut into chunks along its primary key; a chunk's fingerprint is COUNT(*) and BIT_XOR(CRC32(row)) on each
 * side, so only chunks that differ are read row by row to name the differing keys.
 */
export async function diffTables(options: DiffOptions): Promise<DiffReport> {
  const up = await connect(options.upstream, 'upstream');
  let down: mysql.Connection | undefined;
  try {
    down = await connect(options.downstream, 'downstream');
    const filter = new TableFilter(options.tables ?? ['*.*']);
    const [tables] = await up.query<mysql.RowDataPacket[]>(
      "SELECT TABLE_SCHEMA AS s, TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_SCHEMA, TABLE_NAME",
    );
    const results: TableDiff[] = [];
    for (const row of tables) {
      const schema = String(row['s']);
      const table = String(row['t']);
      if (!filter.match(schema, table)) continue;
      results.push(await diffTable(up, down, schema, table, options.chunkSize ?? 10_000, options.maxRowsReported ?? 20));
    }
    return { equal: results.every((r) => r.equal), tables: results };
  } finally {
    await up.end().catch(() => undefined);
    await down?.end().catch(() => undefined);
  }
}

async function connect(uri: string, which: 'upstream' | 'downstream'): Promise<mysql.Connection> {
  // the same parsing and TLS (ssl-mode, ssl-ca/cert/key) as the changefeed's connections to either side
  const target = which === 'upstream' ? Upstream.of(uri).target : parseMySqlUri(uri, which, SINK_PARAMS);
  try {
    return await connectMySql(target, { connectTimeout: 5000, supportBigNumbers: true, bigNumberStrings: true, dateStrings: true }, which);
  } catch (error) {
    if (error instanceof TidemarkError) throw error;
    throw new TidemarkError('ErrServiceUnreachable', `cannot connect to the ${which} ${redactUri(uri)}: ${(error as Error).message}`, { cause: error });
  }
}

async function columnsOf(conn: mysql.Connection, schema: string, table: string): Promise<{ columns: Column[]; key: string[] }> {
  const [cols] = await conn.query<mysql.RowDataPacket[]>(
    'SELECT COLUMN_NAME AS c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION',
    [schema, table],
  );
  const [keys] = await conn.query<mysql.RowDataPacket[]>(
    "SELECT COLUMN_NAME AS c FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION",
    [schema, table],
  );
  return { columns: cols.map((c) => ({ name: String(c['c']) })), key: keys.map((k) => String(k['c'])) };
}

async function diffTable(up: mysql.Connection, down: mysql.Connection, schema: string, table: string, chunkSize: number, maxRows: number): Promise<TableDiff> {
  const name = `${schema}.${table}`;
  const upCols = await columnsOf(up, schema, table);
  const downCols = await columnsOf(down, schema, table);
  const base = { table: name, upstreamRows: 0, downstreamRows: 0, chunks: 0, differentChunks: 0, differences: [] as RowDifference[] };
  if (downCols.columns.length === 0) return { ...base, equal: false, problem: 'the table does not exist downstream' };
  const upNames = upCols.columns.map((c) => c.name).join(',');
  const downNames = downCols.columns.map((c) => c.name).join(',');
  if (upNames !== downNames) return { ...base, equal: false, problem: `columns differ: upstream (${upNames}) vs downstream (${downNames})` };

  const fqn = `${q(schema)}.${q(table)}`;
  const cols = upCols.columns.map((c) => q(c.name));
  const rowHash = `CRC32(CONCAT_WS(0x01, ${cols.join(', ')}, CONCAT(${cols.map((c) => `ISNULL(${c})`).join(', ')})))`;
  const key = upCols.key.length > 0 ? upCols.key.map(q) : cols; // no primary key: whole rows order the table
  const keyTuple = `(${key.join(', ')})`;
  const marks = `(${key.map(() => '?').join(', ')})`;
  const fingerprint = async (conn: mysql.Connection, lo: unknown[] | undefined, hi: unknown[] | undefined): Promise<[number, string]> => {
    const where = [lo === undefined ? '' : `${keyTuple} > ${marks}`, hi === undefined ? '' : `${keyTuple} <= ${marks}`].filter(Boolean);
    const [rows] = await conn.query<mysql.RowDataPacket[]>(
      `SELECT COUNT(*) AS n, COALESCE(BIT_XOR(${rowHash}), 0) AS h FROM ${fqn}${where.length ? ` WHERE ${where.join(' AND ')}` : ''}`,
      [...(lo ?? []), ...(hi ?? [])],
    );
    return [Number(rows[0]['n']), String(rows[0]['h'])];
  };

  let upstreamRows = 0;
  let downstreamRows = 0;
  let chunks = 0;
  let differentChunks = 0;
  const differences: RowDifference[] = [];
  let lo: unknown[] | undefined;
  for (;;) {
    // the chunk's upper bound: the key of its last row upstream (none = the rest of the table)
    const [bound] = await up.query<mysql.RowDataPacket[]>({
      sql: `SELECT ${key.join(', ')} FROM ${fqn}${lo === undefined ? '' : ` WHERE ${keyTuple} > ${marks}`} ORDER BY ${key.join(', ')} LIMIT 1 OFFSET ${chunkSize - 1}`,
      values: lo ?? [],
      rowsAsArray: true,
    });
    const hi = bound[0] as unknown[] | undefined;
    const [[un, uh], [dn, dh]] = await Promise.all([fingerprint(up, lo, hi), fingerprint(down, lo, hi)]);
    upstreamRows += un;
    downstreamRows += dn;
    chunks++;
    if (un !== dn || uh !== dh) {
      differentChunks++;
      if (differences.length < maxRows) differences.push(...(await rowDifferences(up, down, fqn, key, keyTuple, marks, rowHash, lo, hi, maxRows - differences.length)));
    }
    if (hi === undefined) break;
    lo = hi;
  }
  return { table: name, equal: differentChunks === 0, upstreamRows, downstreamRows, chunks, differentChunks, differences };
}

async function rowDifferences(
  up: mysql.Connection, down: mysql.Connection, fqn: string, key: string[], keyTuple: string, marks: string, rowHash: string,
  lo: unknown[] | undefined, hi: unknown[] | undefined, limit: number,
): Promise<RowDifference[]> {
  const where = [lo === undefined ? '' : `${keyTuple} > ${marks}`, hi === undefined ? '' : `${keyTuple} <= ${marks}`].filter(Boolean);
  const sql = `SELECT ${key.join(', ')}, ${rowHash} FROM ${fqn}${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY ${key.join(', ')}`;
  const read = async (conn: mysql.Connection): Promise<Map<string, { key: unknown[]; hash: string }>> => {
    const [rows] = await conn.query<mysql.RowDataPacket[]>({ sql, values: [...(lo ?? []), ...(hi ?? [])], rowsAsArray: true });
    const map = new Map<string, { key: unknown[]; hash: string }>();
    for (const r of rows as unknown as unknown[][]) {
      const k = r.slice(0, key.length);
      map.set(JSON.stringify(k), { key: k, hash: String(r[key.length]) });
    }
    return map;
  };
  const [u, d] = await Promise.all([read(up), read(down)]);
  const out: RowDifference[] = [];
  for (const [k, row] of u) {
    if (out.length >= limit) return out;
    const other = d.get(k);
    if (other === undefined) out.push({ kind: 'missing-downstream', key: row.key });
    else if (other.hash !== row.hash) out.push({ kind: 'changed', key: row.key });
  }
  for (const [k, row] of d) {
    if (out.length >= limit) return out;
    if (!u.has(k)) out.push({ kind: 'extra-downstream', key: row.key });
  }
  return out;
}
