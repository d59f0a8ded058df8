import type mysql from 'mysql2/promise';
import { TidemarkError } from '../errors/index.js';
import type { ColumnInfo } from '../sink/api.js';
import type { Value } from '../upstream/rows.js';

/**
 * A table as the initial snapshot reads it: its columns exactly as the mounter describes binlog rows of the same
 * table (so a sink cannot tell a snapshot row from a binlog one), the key its chunks follow, and how each value
 * read with SELECT becomes the value the binlog decoder gives.
 */
export interface TableShape {
  readonly schema: string;
  readonly table: string;
  /** As columnsOf(TABLE_MAP) gives them for the table's binlog rows (binlog_row_metadata=FULL). */
  readonly columns: readonly ColumnInfo[];
  /** Indexes (into columns) of the primary key, else the first UNIQUE key of NOT NULL columns; undefined when none. */
  readonly key: readonly number[] | undefined;
  /** Every key column's values compare with compareKeys as the server orders them (see ORDERABLE). */
  readonly orderable: boolean;
  /** The SELECT list, in `columns` order. */
  readonly selectList: string;
  /** `db`.`table`. */
  readonly qualified: string;
  /**
   * One row as mysql2 gives it (text protocol, `rowsAsArray` and QUERY_OPTIONS) made, in place, into the binlog
   * decoder's values: only BIGINT (text to bigint), FLOAT (to its float32 value) and BIT (bytes to bigint) change.
   */
  toValues(row: unknown[]): Value[];
}

/**
 * The mysql2 options of the SELECT: numbers that fit a double as numbers, BIGINT and DECIMAL as text, temporal
 * values as the server's text, binary strings as bytes (GEOMETRY is selected as its bytes, see selectList).
 */
export const QUERY_OPTIONS = { rowsAsArray: true, supportBigNumbers: true, bigNumberStrings: true, dateStrings: true, decimalNumbers: false, jsonStrings: true } as const;

const quote = (ident: string): string => `\`${ident.replaceAll('`', '``')}\``;

/** How a value mysql2 gives becomes the binlog decoder's (only for the types where they differ). */
type Convert = (raw: unknown) => Value;

const asBigInt: Convert = (raw) => (raw === null ? null : BigInt(raw as string));
/** FLOAT is read as CAST(… AS DOUBLE), its exact value; the binlog gives the float32 as a double. */
const asFloat: Convert = (raw) => (raw === null ? null : Math.fround(Number(raw)));
const asBits: Convert = (raw) => {
  if (raw === null) return null;
  let v = 0n;
  for (const b of raw as Buffer) v = (v << 8n) | BigInt(b);
  return v;
};

const INTEGERS = new Set(['tinyint', 'smallint', 'mediumint', 'int']);
const TEMPORAL = new Set(['date', 'datetime', 'timestamp']);
const BINARY_STRINGS = new Set(['binary', 'varbinary']);
const GEOMETRY = new Set(['geometry', 'point', 'linestring', 'polygon', 'multipoint', 'multilinestring', 'multipolygon', 'geometrycollection']);

/**
 * Key types whose values, as toValues gives them, order in JS as on the server: integers and BIT (number,
 * bigint), YEAR, DATE/DATETIME/TIMESTAMP (fixed-width text), BINARY/VARBINARY (bytes). Text keys follow their
 * collation (case, accents, padding), DECIMAL and floats their numeric value: those tables are read in one pass.
 */
function orderable(dataType: string): boolean {
  return INTEGERS.has(dataType) || dataType === 'bigint' || dataType === 'year' || dataType === 'bit' || TEMPORAL.has(dataType) || BINARY_STRINGS.has(dataType);
}

interface ColumnRow {
  readonly name: string;
  readonly dataType: string;
  /**
   * information_schema's COLUMN_TYPE. MariaDB keeps definitions in utf8mb3: an ENUM or SET member with a 4-byte
   * character (an emoji) reads as '?' there (and in SHOW CREATE TABLE), while the binlog's TABLE_MAP has it.
   */
  readonly columnType: string;
  nullable: boolean;
  primary: boolean;
  charLength: number | null;
  precision: number | null;
  scale: number | null;
  fsp: number | null;
}

/** The type as the mounter writes it (mysqlTypeOf): no display widths or ZEROFILL, lengths in characters. */
function mysqlType(c: ColumnRow): string {
  const unsigned = /\bunsigned\b/i.test(c.columnType) ? ' unsigned' : '';
  const t = c.dataType;
  if (INTEGERS.has(t) || t === 'bigint' || t === 'float' || t === 'double') return `${t}${unsigned}`;
  if (t === 'decimal') return `decimal(${c.precision},${c.scale})${unsigned}`;
  if (t === 'time' || t === 'datetime' || t === 'timestamp') return c.fsp !== null && c.fsp > 0 ? `${t}(${c.fsp})` : t;
  if (t === 'char' || t === 'varchar' || t === 'binary' || t === 'varbinary') return `${t}(${c.charLength})`;
  if (t === 'enum' || t === 'set' || t === 'bit') return c.columnType.toLowerCase().startsWith(t) ? `${t}${c.columnType.slice(t.length)}` : c.columnType;
  return t;
}

function converter(c: ColumnRow): Convert | undefined {
  const t = c.dataType;
  if (t === 'bigint') return asBigInt;
  if (t === 'float') return asFloat;
  if (t === 'bit') return asBits;
  return undefined;
}

/** The SELECT expression of a column: FLOAT as its exact double, GEOMETRY as its bytes (SRID and WKB, as the binlog has them). */
function selectExpression(c: ColumnRow): string {
  if (c.dataType === 'float') return `CAST(${quote(c.name)} AS DOUBLE)`;
  if (GEOMETRY.has(c.dataType)) return `CAST(${quote(c.name)} AS BINARY)`;
  return quote(c.name);
}

/** Reads the table's definition from information_schema; a table that does not exist is an error naming it. */
export async function readTableShape(conn: mysql.Connection, schema: string, table: string): Promise<TableShape> {
  const [rows] = await conn.query<mysql.RowDataPacket[]>(
    `SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, COLUMN_KEY, CHARACTER_MAXIMUM_LENGTH, NUMERIC_PRECISION, NUMERIC_SCALE, DATETIME_PRECISION
       FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`,
    [schema, table],
  );
  if (rows.length === 0) throw new TidemarkError('ErrSnapshotFailed', `snapshot: table ${schema}.${table} does not exist upstream (dropped since the changefeed was created?)`, { retryable: false });
  const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
  const defs: ColumnRow[] = rows.map((r) => ({
    name: String(r['COLUMN_NAME']),
    dataType: String(r['DATA_TYPE']).toLowerCase(),
    columnType: String(r['COLUMN_TYPE']),
    nullable: r['IS_NULLABLE'] === 'YES',
    primary: r['COLUMN_KEY'] === 'PRI',
    charLength: num(r['CHARACTER_MAXIMUM_LENGTH']),
    precision: num(r['NUMERIC_PRECISION']),
    scale: num(r['NUMERIC_SCALE']),
    fsp: num(r['DATETIME_PRECISION']),
  }));
  const [indexRows] = await conn.query<mysql.RowDataPacket[]>(
    `SELECT INDEX_NAME, NON_UNIQUE, SEQ_IN_INDEX, COLUMN_NAME, SUB_PART FROM information_schema.STATISTICS
      WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY INDEX_NAME = 'PRIMARY' DESC, INDEX_NAME, SEQ_IN_INDEX`,
    [schema, table],
  );
  const indexes = new Map<string, { unique: boolean; columns: string[]; prefix: boolean }>();
  for (const r of indexRows) {
    const name = String(r['INDEX_NAME']);
    let index = indexes.get(name);
    if (index === undefined) indexes.set(name, (index = { unique: Number(r['NON_UNIQUE']) === 0, columns: [], prefix: false }));
    index.columns.push(String(r['COLUMN_NAME']));
    if (r['SUB_PART'] !== null && r['SUB_PART'] !== undefined) index.prefix = true;
  }
  const position = new Map(defs.map((c, i) => [c.name, i]));
  let key: number[] | undefined;
  for (const index of indexes.values()) {
    if (!index.unique || index.prefix) continue;
    const at = index.columns.map((n) => position.get(n));
    if (at.some((i) => i === undefined || defs[i].nullable)) continue;
    key = at as number[];
    break;
  }
  const columns: ColumnInfo[] = defs.map((c) => ({ name: c.name, mysqlType: mysqlType(c), primaryKey: c.primary, nullable: c.nullable }));
  const converted: number[] = [];
  const converters: Convert[] = [];
  defs.forEach((c, i) => {
    const convert = converter(c);
    if (convert !== undefined) {
      converted.push(i);
      converters.push(convert);
    }
  });
  const selectList = defs.map(selectExpression).join(', ');
  return {
    schema,
    table,
    columns,
    key,
    orderable: key !== undefined && key.every((i) => orderable(defs[i].dataType)),
    selectList,
    qualified: `${quote(schema)}.${quote(table)}`,
    toValues(row: unknown[]): Value[] {
      for (let j = 0; j < converted.length; j++) {
        const i = converted[j];
        row[i] = converters[j](row[i]);
      }
      return row as Value[];
    },
  };
}

/** Orders two key tuples of an orderable shape as the server does (NULL first, as in an index). */
export function compareKeys(a: readonly Value[], b: readonly Value[]): number {
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (x === y) continue;
    if (x === null) return -1;
    if (y === null) return 1;
    if (Buffer.isBuffer(x) && Buffer.isBuffer(y)) {
      const c = Buffer.compare(x, y);
      if (c !== 0) return c;
      continue;
    }
    if (x < y) return -1;
    if (x > y) return 1;
  }
  return 0;
}
