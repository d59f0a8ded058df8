import type { ColumnValue } from 'tidemark/sink';

/** How a column's values are encoded, from its information_schema COLUMN_TYPE. */
export type ColumnKind =
  | 'int'
  | 'bit'
  | 'float'
  | 'double'
  | 'decimal'
  | 'char'
  | 'text'
  | 'bytes'
  | 'blob'
  | 'date'
  | 'datetime'
  | 'timestamp'
  | 'time'
  | 'year'
  | 'json'
  | 'enum'
  | 'set'
  | 'other';

export interface ColumnType {
  /** The COLUMN_TYPE as given, e.g. "decimal(65,30)", "bigint(20) unsigned". */
  readonly full: string;
  /** The type name alone, e.g. "bigint". */
  readonly base: string;
  readonly kind: ColumnKind;
  readonly unsigned: boolean;
  /** Values are bytes (BINARY, VARBINARY, BLOB, GEOMETRY); not MariaDB's UUID/INET6/INET4, which come as text. */
  readonly binary: boolean;
  /** DECIMAL precision and scale; the length of CHAR/BIT. */
  readonly precision: number;
  readonly scale: number;
  /** Fractional-second digits of TIME, DATETIME, TIMESTAMP. */
  readonly fsp: number;
  /** MySQL protocol type code (mysql.TypeXxx), as open-protocol's "t" carries it. */
  readonly mysqlCode: number;
  /** java.sql.Types code, as canal-json's sqlType carries it (TiCDC's mapping). */
  readonly javaType: number;
  /** ENUM/SET members. */
  readonly elements: readonly string[];
}

interface BaseSpec {
  readonly kind: ColumnKind;
  readonly code: number;
  readonly java: number;
  readonly unsignedJava?: number;
  readonly binary?: boolean;
}

// java.sql.Types: BIT -7, TINYINT -6, SMALLINT 5, INTEGER 4, BIGINT -5, REAL 7, DOUBLE 8, DECIMAL 3, CHAR 1, VARCHAR 12,
// DATE 91, TIME 92, TIMESTAMP 93, BLOB 2004, CLOB 2005. Unsigned integers are promoted one size, as TiCDC and Canal do.
const bases: Record<string, BaseSpec> = {
  tinyint: { kind: 'int', code: 1, java: -6, unsignedJava: 5 },
  bool: { kind: 'int', code: 1, java: -6, unsignedJava: 5 },
  boolean: { kind: 'int', code: 1, java: -6, unsignedJava: 5 },
  smallint: { kind: 'int', code: 2, java: 5, unsignedJava: 4 },
  mediumint: { kind: 'int', code: 9, java: 4, unsignedJava: 4 },
  int: { kind: 'int', code: 3, java: 4, unsignedJava: -5 },
  integer: { kind: 'int', code: 3, java: 4, unsignedJava: -5 },
  bigint: { kind: 'int', code: 8, java: -5, unsignedJava: 3 },
  float: { kind: 'float', code: 4, java: 7 },
  double: { kind: 'double', code: 5, java: 8 },
  real: { kind: 'double', code: 5, java: 8 },
  decimal: { kind: 'decimal', code: 246, java: 3 },
  numeric: { kind: 'decimal', code: 246, java: 3 },
  bit: { kind: 'bit', code: 16, java: -7 },
  char: { kind: 'char', code: 254, java: 1 },
  varchar: { kind: 'char', code: 15, java: 12 },
  binary: { kind: 'bytes', code: 254, java: 2004, binary: true },
  varbinary: { kind: 'bytes', code: 15, java: 2004, binary: true },
  tinytext: { kind: 'text', code: 249, java: 2005 },
  text: { kind: 'text', code: 252, java: 2005 },
  mediumtext: { kind: 'text', code: 250, java: 2005 },
  longtext: { kind: 'text', code: 251, java: 2005 },
  tinyblob: { kind: 'blob', code: 249, java: 2004, binary: true },
  blob: { kind: 'blob', code: 252, java: 2004, binary: true },
  mediumblob: { kind: 'blob', code: 250, java: 2004, binary: true },
  longblob: { kind: 'blob', code: 251, java: 2004, binary: true },
  date: { kind: 'date', code: 10, java: 91 },
  datetime: { kind: 'datetime', code: 12, java: 93 },
  timestamp: { kind: 'timestamp', code: 7, java: 93 },
  time: { kind: 'time', code: 11, java: 92 },
  year: { kind: 'year', code: 13, java: 12 },
  json: { kind: 'json', code: 245, java: 12 },
  enum: { kind: 'enum', code: 247, java: 4 },
  set: { kind: 'set', code: 248, java: -7 },
  geometry: { kind: 'other', code: 255, java: 2004, binary: true },
  point: { kind: 'other', code: 255, java: 2004, binary: true },
  linestring: { kind: 'other', code: 255, java: 2004, binary: true },
  polygon: { kind: 'other', code: 255, java: 2004, binary: true },
  // MariaDB's UUID/INET6/INET4 reach the sink as their text (the mounter renders them): CHAR-like, as MariaDB's
  // client protocol sends them (MYSQL_TYPE_STRING)
  uuid: { kind: 'other', code: 254, java: 1 },
  inet6: { kind: 'other', code: 254, java: 1 },
  inet4: { kind: 'other', code: 254, java: 1 },
};

const cache = new Map<string, ColumnType>();

function parseElements(args: string): string[] {
  const out: string[] = [];
  const re = /'((?:[^']|'')*)'/g;
  for (let m = re.exec(args); m !== null; m = re.exec(args)) out.push(m[1].replaceAll("''", "'"));
  return out;
}

/** The encoding facts of a COLUMN_TYPE, cached by its text (a table's columns share them). */
export function columnType(mysqlType: string): ColumnType {
  const hit = cache.get(mysqlType);
  if (hit !== undefined) return hit;
  const lower = mysqlType.trim().toLowerCase();
  const match = /^([a-z0-9]+)\s*(?:\((.*)\))?(.*)$/s.exec(lower);
  const base = match?.[1] ?? lower;
  const args = match?.[2] ?? '';
  const rest = match?.[3] ?? '';
  const spec = bases[base] ?? { kind: 'other', code: 253, java: 12 };
  const unsigned = /\bunsigned\b/.test(rest);
  const numbers = args.split(',').map((a) => Number(a.trim()));
  const isTemporal = spec.kind === 'time' || spec.kind === 'datetime' || spec.kind === 'timestamp';
  const type: ColumnType = Object.freeze({
    full: mysqlType,
    base,
    kind: spec.kind,
    unsigned,
    binary: spec.binary === true,
    precision: spec.kind === 'decimal' ? (Number.isInteger(numbers[0]) ? numbers[0] : 10) : Number.isInteger(numbers[0]) ? numbers[0] : spec.kind === 'bit' ? 1 : 0,
    scale: spec.kind === 'decimal' && Number.isInteger(numbers[1]) ? numbers[1] : 0,
    fsp: isTemporal && Number.isInteger(numbers[0]) ? numbers[0] : 0,
    mysqlCode: spec.code,
    javaType: unsigned && spec.unsignedJava !== undefined ? spec.unsignedJava : spec.java,
    elements: spec.kind === 'enum' || spec.kind === 'set' ? Object.freeze(parseElements(args)) : Object.freeze([]),
  });
  cache.set(mysqlType, type);
  return type;
}

/** Shortest decimal text that reads back as the same float32 (Go's FormatFloat(v, 'g', -1, 32)). */
export function float32Text(value: number): string {
  if (!Number.isFinite(value) || value === 0) return String(value);
  const f = Math.fround(value);
  for (let p = 1; p <= 9; p++) {
    const text = f.toPrecision(p);
    if (Math.fround(Number(text)) === f) return String(Number(text));
  }
  return String(f);
}

/** A number without exponent (Go's FormatFloat(v, 'f', -1, 64)), as canal-json prints floats. */
export function plainNumberText(text: string): string {
  const e = text.indexOf('e');
  if (e < 0) return text;
  const negative = text.startsWith('-');
  const mantissa = text.slice(negative ? 1 : 0, e);
  const exponent = Number(text.slice(e + 1));
  const dot = mantissa.indexOf('.');
  const digits = mantissa.replace('.', '');
  const pointAt = (dot < 0 ? mantissa.length : dot) + exponent;
  let out: string;
  if (pointAt <= 0) out = `0.${'0'.repeat(-pointAt)}${digits}`;
  else if (pointAt >= digits.length) out = digits + '0'.repeat(pointAt - digits.length);
  else out = `${digits.slice(0, pointAt)}.${digits.slice(pointAt)}`;
  return negative ? `-${out}` : out;
}

/** The plain text of a non-null, non-binary value: strings as they are, bigints and numbers in decimal, booleans 1/0. */
export function scalarText(value: Exclude<ColumnValue, null | Buffer>): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'boolean') return value ? '1' : '0';
  return String(value);
}

/** A number or bigint value as a JSON number literal (exact: bigints keep every digit). */
export function jsonNumber(value: ColumnValue, type: ColumnType): string {
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return 'null';
    return type.kind === 'float' ? float32Text(value) : String(value);
  }
  if (typeof value === 'boolean') return value ? '1' : '0';
  if (Buffer.isBuffer(value)) return bitsToBigInt(value).toString();
  if (typeof value === 'string' && /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(value)) return value;
  return JSON.stringify(value);
}

export function bitsToBigInt(bytes: Buffer): bigint {
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  return n;
}
