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
  /** One row as mysql2 gives it (`rowsAsArray`, `typeCast` below) as the binlog decoder's values. */
  toValues(row: unknown[]): Value[];
  /** The mysql2 typeCast of the SELECT: text, or bytes for binary values. */
  readonly typeCast: unknown;
}

const quote = (ident: string): string => `\`${ident.replaceAll('`', '``')}\``;

/** How a column's text (or bytes) becomes its value. */
type Convert = (raw: unknown) => Value;

const asNumber: Convert = (raw) => (raw === null ? null : Number(raw));
const asBigInt: Convert = (raw) => (raw === null ? null : BigInt(raw as string));
const asText: Convert = (raw) => (raw === null ? null : (raw as string));
const asBytes: Convert = (raw) => (raw === null ? null : (raw as Buffer));
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
const BLOBS = new Set(['tinyblob', 'blob', 'mediumblob', 'longblob']);
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
  name: string;
  dataType: string;
  columnType: string;
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

function converter(c: ColumnRow): Convert {
  const t = c.dataType;
  if (INTEGERS.has(t) || t === 'year') return asNumber;
  if (t === 'bigint') return asBigInt;
  if (t === 'float') return asFloat;
  if (t === 'double') return asNumber;
  if (t === 'bit') return asBits;
  if (BINARY_STRINGS.has(t) || BLOBS.has(t) || GEOMETRY.has(t)) return asBytes;
  return asText;
}

/** Text for every value but binary strings, BLOBs, BIT and GEOMETRY, which come as bytes (mysql2 field types). */
const BYTE_FIELDS = new Set(['BIT', 'GEOMETRY', 'TINY_BLOB', 'MEDIUM_BLOB', 'LONG_BLOB', 'BLOB', 'VAR_STRING', 'STRING']);
const BINARY_CHARSET = 63;
function typeCast(field: { type: string; characterSet?: number; string(): string | null; buffer(): Buffer | null }, _next: () => unknown): unknown {
  if (field.type === 'BIT' || field.type === 'GEOMETRY' || (BYTE_FIELDS.has(field.type) && field.characterSet === BINARY_CHARSET)) return field.buffer();
  return field.string();
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
  const converters = defs.map(converter);
  const selectList = defs.map((c) => (c.dataType === 'float' ? `CAST(${quote(c.name)} AS DOUBLE)` : quote(c.name))).join(', ');
  const width = converters.length;
  return {
    schema,
    table,
    columns,
    key,
    orderable: key !== undefined && key.every((i) => orderable(defs[i].dataType)),
    selectList,
    qualified: `${quote(schema)}.${quote(table)}`,
    typeCast,
    toValues(row: unknown[]): Value[] {
      const values = new Array<Value>(width);
      for (let i = 0; i < width; i++) values[i] = converters[i](row[i]);
      return values;
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
