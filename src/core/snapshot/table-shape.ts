import type mysql from 'mysql2/promise';
import { BugIndicatingError, TidemarkError } from '../errors/index.js';
import { charsetMaxLength, inet4Text, inet6Text, uuidText } from '../pipeline/mounter/index.js';
import type { ColumnInfo } from '../sink/api.js';
import { textDecoderOf } from '../upstream/charsets.js';
import type { Value } from '../upstream/rows.js';

/**
 * A table as the initial snapshot reads it: its columns exactly as the mounter describes binlog rows of the same
 * table, the key its chunks follow, and how each value read with SELECT becomes the value the binlog decoder and
 * the mounter give, so that a sink cannot tell a snapshot row from a binlog one.
 *
 * Rows are read with the text protocol and mysql2's own conversions (no typeCast function: one would run for every
 * value): integers and YEAR as numbers, BIGINT and DECIMAL as text, temporal values as the server's text (TIMESTAMP
 * in the session's UTC), binary strings as bytes. The SELECT list casts the few columns whose text differs from the
 * binlog's value or that mysql2 would read inexactly (FLOAT, DOUBLE, GEOMETRY, UUID/INET6/INET4, text in other
 * character sets than utf8mb3/utf8mb4), and toValues converts, in place, only the columns that need it.
 */
export interface TableShape {
  readonly schema: string;
  readonly table: string;
  /** Equal (deepEqual) to columnsOf(TABLE_MAP) of the same table read from the binlog (binlog_row_metadata=FULL). */
  readonly columns: readonly ColumnInfo[];
  /**
   * Indexes (into columns) of the key the snapshot chunks by, in key order: the primary key, else the first UNIQUE
   * key whose columns are all NOT NULL (no prefix parts, not MariaDB's hash-based long UNIQUE, not IGNORED);
   * undefined when none.
   */
  readonly key: readonly number[] | undefined;
  /**
   * Every key column's values, as toValues gives them, compare with compareKeys exactly as the server orders them:
   * integers (BIGINT as bigint, unsigned too), YEAR, BIT, DATE/DATETIME/TIMESTAMP, BINARY/VARBINARY, and
   * CHAR/VARCHAR in utf8mb4_bin, utf8mb3_bin or ascii_bin (PAD SPACE, by code point). False for any other key
   * (DECIMAL, floats, TIME, ENUM/SET, UUID/INET, other collations — latin1_bin and the NO PAD ones too).
   */
  readonly orderable: boolean;
  /**
   * The SELECT list in `columns` order: quoted columns, and a CAST where a type needs one. Expressions have no alias,
   * so `ORDER BY` a quoted column name still orders by the column itself.
   */
  readonly selectList: string;
  /** The key columns' SELECT expressions, in key order ('' without a key). */
  readonly keySelectList: string;
  /** A row of `keySelectList` (as mysql2 returns it, QUERY_OPTIONS) made into the key's values, as toValues gives them. */
  keyValues(row: unknown[]): Value[];
  /** `db`.`table`. */
  readonly qualified: string;
  /**
   * One row as mysql2 returns it (text protocol, QUERY_OPTIONS, on a connection with CONNECTION_OPTIONS) made into
   * the binlog's values, in place: the array is mysql2's own, new for every row, and is returned.
   */
  toValues(row: unknown[]): Value[];
  /** The mysql2 typeCast of the query: `true`, mysql2's own conversions (see QUERY_OPTIONS). */
  readonly typeCast: true;
}

/**
 * The mysql2 options of the snapshot's SELECT (with `rowsAsArray`): numbers that fit a double as numbers, BIGINT as
 * text, temporal values as the server's text; mysql2's own conversions, no function per value.
 */
export const QUERY_OPTIONS = { rowsAsArray: true, supportBigNumbers: true, bigNumberStrings: true, dateStrings: true, typeCast: true } as const;

/**
 * The mysql2 connection options the snapshot's connection needs: mysql2 reads `decimalNumbers` (DECIMAL as text)
 * and `jsonStrings` (MariaDB's JSON as text) from the connection only, never from a query. The session needs
 * `SET SESSION time_zone = '+00:00'` (TIMESTAMP in UTC) and a sql_mode without PAD_CHAR_TO_FULL_LENGTH;
 * readTableShape checks all of it.
 */
export const CONNECTION_OPTIONS = { timezone: 'Z', supportBigNumbers: true, bigNumberStrings: true, dateStrings: true, decimalNumbers: false, jsonStrings: true } as const;

const quote = (ident: string): string => `\`${ident.replaceAll('`', '``')}\``;

/** An ENUM/SET member as the mounter quotes it in a column type: quotes doubled, backslashes escaped. */
const quoteMember = (s: string): string => `'${s.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`;

/** How the value mysql2 gives for a column becomes the binlog's (only for the columns where they differ). */
type Convert = (raw: unknown) => Value;

const toBigInt: Convert = (raw) => (raw === null ? null : BigInt(raw as string));

/**
 * FLOAT is selected as CAST(… AS DOUBLE): the server prints the float32's exact value (FLOAT's own text has 6 digits).
 * mysql2 reads numbers of up to 17 characters by accumulating their digits in a double, which is off by one unit in
 * the last place when the digits exceed 2^53 ('9.100000381469727' reads as 9.100000381469728); the value is a
 * float32, so Math.fround gives it back exactly.
 */
const toFloat32: Convert = (raw) => (raw === null ? null : Math.fround(raw as number));

/** DOUBLE is selected as CAST(… AS CHAR), its shortest exact text, and read by Number (not mysql2's parser, see above). */
const toDouble: Convert = (raw) => (raw === null ? null : Number(raw));

/** BIT: the bytes, big-endian, as a bigint (one BigInt for up to 6 bytes). */
const bitsToBigInt: Convert = (raw) => {
  if (raw === null) return null;
  const b = raw as Buffer;
  if (b.length <= 6) {
    let v = 0;
    for (let i = 0; i < b.length; i++) v = v * 256 + b[i];
    return BigInt(v);
  }
  let v = 0n;
  for (let i = 0; i < b.length; i++) v = (v << 8n) | BigInt(b[i]);
  return v;
};

/** DECIMAL … ZEROFILL: the server pads the text with zeros, the binlog's value has none ('0' before a point). */
const stripZeros: Convert = (raw) => {
  if (raw === null) return null;
  const s = raw as string;
  let i = 0;
  while (i < s.length - 1 && s.charCodeAt(i) === 48 && s.charCodeAt(i + 1) !== 46) i++;
  return i === 0 ? s : s.slice(i);
};

/**
 * Text in a character set other than utf8mb3/utf8mb4 is selected as its bytes (CAST(… AS BINARY)) and decoded by
 * the binlog decoder's own function for the column's collation (upstream/charsets.ts): the same text whichever
 * way a row arrives, also for bytes the character set does not define.
 */
const foreignTextOf = (collationId: number | undefined): Convert => {
  const decode = textDecoderOf(collationId);
  return (raw) => (raw === null ? null : decode(raw as Buffer, 0, (raw as Buffer).length));
};
/** MariaDB's UUID, INET6 and INET4, selected as their bytes and rendered by the mounter's own functions. */
const uuid: Convert = (raw) => (raw === null ? null : uuidText(raw as Buffer));
const inet6: Convert = (raw) => (raw === null ? null : inet6Text(raw as Buffer));
const inet4: Convert = (raw) => (raw === null ? null : inet4Text(raw as Buffer));

/** Character sets whose text the server sends (as utf8mb4) exactly as the binlog decoder decodes the column's bytes. */
const UTF8_CHARSETS = new Set(['utf8mb4', 'utf8mb3', 'utf8', 'ascii']);
/** Binary collations with PAD SPACE that order by code point: what compareKeys implements for strings. */
const BIN_PAD_SPACE = new Set(['utf8mb4_bin', 'utf8mb3_bin', 'utf8_bin', 'ascii_bin']);

const INTEGERS = new Set(['tinyint', 'smallint', 'mediumint', 'int', 'bigint']);
const TEMPORAL = new Set(['date', 'datetime', 'timestamp']);
const TEXT_TYPES = new Set(['char', 'varchar', 'tinytext', 'text', 'mediumtext', 'longtext']);
const GEOMETRY = new Set(['geometry', 'point', 'linestring', 'polygon', 'multipoint', 'multilinestring', 'multipolygon', 'geometrycollection']);

interface ColumnDef {
  readonly name: string;
  /** information_schema's DATA_TYPE, lower case. */
  readonly dataType: string;
  /** information_schema's COLUMN_TYPE (display widths, ZEROFILL, ENUM/SET members in utf8mb3). */
  readonly columnType: string;
  readonly unsigned: boolean;
  readonly zerofill: boolean;
  readonly nullable: boolean;
  /** COLUMN_KEY = 'PRI': in the primary key, or in the UNIQUE NOT NULL key the server promotes when there is none. */
  readonly primary: boolean;
  readonly octets: number | null;
  readonly characters: number | null;
  readonly precision: number | null;
  readonly scale: number | null;
  readonly fsp: number | null;
  readonly charset: string | null;
  readonly collation: string | null;
  collationId?: number | undefined;
  /** The SELECT expression, when not the quoted column (MariaDB's implicit ROW_START/ROW_END). */
  readonly expression?: string;
}

/** The type as the mounter writes it (mysqlTypeOf, from the TABLE_MAP): no display widths, lengths in characters. */
function mysqlType(c: ColumnDef): string {
  const t = c.dataType;
  const unsigned = c.unsigned ? ' unsigned' : '';
  if (INTEGERS.has(t) || t === 'float' || t === 'double') return `${t}${unsigned}`;
  if (t === 'decimal') return `decimal(${c.precision},${c.scale})${unsigned}`;
  if (t === 'time' || t === 'datetime' || t === 'timestamp') return c.fsp !== null && c.fsp > 0 ? `${t}(${c.fsp})` : t;
  if (t === 'bit') return `bit(${c.precision})`;
  if (t === 'binary' || t === 'varbinary') return `${t}(${c.octets})`;
  if (t === 'char' || t === 'varchar') {
    // the binlog has the length in bytes; the mounter divides by the character set's bytes per character
    const length = c.collationId !== undefined && c.octets !== null ? Math.floor(c.octets / charsetMaxLength(c.collationId)) : c.characters;
    return `${t}(${length})`;
  }
  if (t === 'enum' || t === 'set') return `${t}(${parseMembers(c.columnType).map(quoteMember).join(',')})`;
  // year, date, the TEXT and BLOB types (MariaDB's JSON is longtext), geometry subtypes, uuid, inet6, inet4
  return t;
}

/**
 * The members of an ENUM/SET COLUMN_TYPE: `enum('a','it''s','x\\ny')`. MariaDB writes a quote doubled and escapes
 * backslash, NUL, LF and CR with a backslash (other characters as they are).
 */
function parseMembers(columnType: string): string[] {
  const members: string[] = [];
  let i = columnType.indexOf('(') + 1;
  while (i > 0 && i < columnType.length && columnType[i] === "'") {
    let member = '';
    for (i++; i < columnType.length; i++) {
      const ch = columnType[i];
      if (ch === "'") {
        if (columnType[i + 1] !== "'") break;
        member += "'";
        i++;
      } else if (ch === '\\' && i + 1 < columnType.length) {
        const next = columnType[++i];
        member += next === 'n' ? '\n' : next === 'r' ? '\r' : next === '0' ? '\0' : next === 'Z' ? '\x1a' : next === 't' ? '\t' : next === 'b' ? '\b' : next;
      } else member += ch;
    }
    members.push(member);
    i++; // the closing quote
    if (columnType[i] === ',') i++;
  }
  return members;
}

/**
 * Whether this text column is in a character set other than UTF-8's, read as bytes and decoded as the binlog's
 * are. ENUM and SET are not: the binlog gives their members' text from the TABLE_MAP, decoded in the column's
 * character set, which is the server's own text of them.
 */
function foreignText(c: ColumnDef): boolean {
  return c.charset !== null && !UTF8_CHARSETS.has(c.charset) && TEXT_TYPES.has(c.dataType);
}

function selectExpression(c: ColumnDef): string {
  if (c.expression !== undefined) return c.expression;
  const column = quote(c.name);
  const t = c.dataType;
  // see toFloat32 and toDouble
  if (t === 'float') return `CAST(${column} AS DOUBLE)`;
  if (t === 'double') return `CAST(${column} AS CHAR)`;
  if (GEOMETRY.has(t) || foreignText(c)) return `CAST(${column} AS BINARY)`;
  if (t === 'uuid' || t === 'inet6') return `CAST(${column} AS BINARY(16))`;
  if (t === 'inet4') return `CAST(${column} AS BINARY(4))`;
  return column;
}

function converter(c: ColumnDef): Convert | undefined {
  const t = c.dataType;
  if (t === 'bigint') return toBigInt;
  if (t === 'float') return toFloat32;
  if (t === 'double') return toDouble;
  if (t === 'bit') return bitsToBigInt;
  if (t === 'decimal' && c.zerofill) return stripZeros;
  if (t === 'uuid') return uuid;
  if (t === 'inet6') return inet6;
  if (t === 'inet4') return inet4;
  if (foreignText(c)) return foreignTextOf(c.collationId);
  return undefined;
}

/** Whether a key column's values, as toValues gives them, order under compareKeys as on the server. */
function orderableColumn(c: ColumnDef): boolean {
  const t = c.dataType;
  if (INTEGERS.has(t) || t === 'year' || t === 'bit' || TEMPORAL.has(t) || t === 'binary' || t === 'varbinary') return true;
  return (t === 'char' || t === 'varchar') && c.collation !== null && BIN_PAD_SPACE.has(c.collation);
}

/** information_schema text (a string, or bytes for a binary column). */
function str(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string') return v;
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  return typeof v === 'number' || typeof v === 'bigint' ? v.toString() : JSON.stringify(v);
}
const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

/**
 * The session must give what toValues expects: TIMESTAMP in UTC, text as utf8mb4, CHAR without padding, and
 * mysql2's conversions (DECIMAL and JSON as text, no typeCast function of the connection's).
 */
async function checkConnection(conn: mysql.Connection): Promise<void> {
  const config = (conn as { config?: { jsonStrings?: unknown; decimalNumbers?: unknown; typeCast?: unknown } }).config;
  const problems: string[] = [];
  if (config !== undefined) {
    if (config.jsonStrings !== true) problems.push('jsonStrings is not true (JSON would be parsed)');
    if (config.decimalNumbers === true) problems.push('decimalNumbers is true (DECIMAL would be a float)');
    if (typeof config.typeCast === 'function') problems.push('the connection has a typeCast function (it replaces mysql2\'s conversions)');
  }
  const [rows] = await conn.query<mysql.RowDataPacket[]>({ sql: 'SELECT @@session.time_zone AS tz, @@session.character_set_results AS results, @@session.sql_mode AS mode', rowsAsArray: false });
  const tz = str(rows[0]?.['tz']);
  const results = str(rows[0]?.['results']);
  const mode = str(rows[0]?.['mode']) ?? '';
  if (tz === null || !/^(?:[+-]0?0:00|UTC)$/.test(tz)) problems.push(`the session time_zone is ${tz} (TIMESTAMP must read in UTC: SET SESSION time_zone = '+00:00')`);
  if (results !== null && results !== 'utf8mb4') problems.push(`character_set_results is ${results}, not utf8mb4`);
  if (/\bPAD_CHAR_TO_FULL_LENGTH\b/i.test(mode)) problems.push('sql_mode has PAD_CHAR_TO_FULL_LENGTH (CHAR values would be padded)');
  if (problems.length > 0) throw new BugIndicatingError(`the snapshot connection cannot read rows as the binlog gives them: ${problems.join('; ')}`);
}

/** Collation ids by name (MariaDB ≥ 10.10 names UCA 14 collations only in COLLATION_CHARACTER_SET_APPLICABILITY). */
async function collationIds(conn: mysql.Connection, names: readonly string[]): Promise<Map<string, number>> {
  const ids = new Map<string, number>();
  if (names.length === 0) return ids;
  let rows: mysql.RowDataPacket[];
  try {
    [rows] = await conn.query<mysql.RowDataPacket[]>({ sql: 'SELECT FULL_COLLATION_NAME AS name, ID AS id FROM information_schema.COLLATION_CHARACTER_SET_APPLICABILITY WHERE FULL_COLLATION_NAME IN (?)', values: [names], rowsAsArray: false });
  } catch {
    [rows] = await conn.query<mysql.RowDataPacket[]>({ sql: 'SELECT COLLATION_NAME AS name, ID AS id FROM information_schema.COLLATIONS WHERE COLLATION_NAME IN (?)', values: [names], rowsAsArray: false });
  }
  for (const r of rows) if (r['id'] !== null && r['id'] !== undefined) ids.set(String(r['name']), Number(r['id']));
  return ids;
}

interface IndexDef {
  readonly name: string;
  readonly unique: boolean;
  readonly columns: { seq: number; name: string }[];
  usable: boolean;
}

/** The chunk key: the primary key, else the first usable UNIQUE key of NOT NULL columns (see TableShape.key). */
function chooseKey(defs: readonly ColumnDef[], statistics: readonly mysql.RowDataPacket[]): number[] | undefined {
  const indexes = new Map<string, IndexDef>();
  for (const r of statistics) {
    const name = String(r['INDEX_NAME']);
    let index = indexes.get(name);
    if (index === undefined) indexes.set(name, (index = { name, unique: Number(r['NON_UNIQUE']) === 0, columns: [], usable: true }));
    index.columns.push({ seq: Number(r['SEQ_IN_INDEX']), name: String(r['COLUMN_NAME']) });
    // a prefix orders differently from the column; a long UNIQUE is a hash (no range scan); IGNORED is not used
    if (r['SUB_PART'] !== null && r['SUB_PART'] !== undefined) index.usable = false;
    if (name !== 'PRIMARY' && String(r['INDEX_TYPE']).toUpperCase() === 'HASH') index.usable = false;
    if (String(r['IGNORED'] ?? 'NO').toUpperCase() === 'YES') index.usable = false;
  }
  const position = new Map(defs.map((c, i) => [c.name, i]));
  const promoted = defs.filter((c) => c.primary).map((c) => c.name).sort().join('\0');
  // the primary key, then the key the server promotes to primary (its columns are COLUMN_KEY = 'PRI'), then the rest in the server's order
  const rank = (index: IndexDef): number => (index.name === 'PRIMARY' ? 0 : index.columns.map((c) => c.name).sort().join('\0') === promoted ? 1 : 2);
  const candidates = [...indexes.values()].filter((index) => index.unique && index.usable).sort((a, b) => rank(a) - rank(b));
  for (const index of candidates) {
    const at = index.columns.sort((a, b) => a.seq - b.seq).map((c) => position.get(c.name));
    if (at.every((i) => i !== undefined && !defs[i].nullable)) return at as number[];
  }
  return undefined;
}

/**
 * Reads the table's definition (information_schema COLUMNS, TABLES, STATISTICS) over `conn`, the snapshot's own
 * connection (CONNECTION_OPTIONS, session time_zone '+00:00': checked here). A table that does not exist is a
 * TidemarkError naming it.
 */
export async function readTableShape(conn: mysql.Connection, schema: string, table: string): Promise<TableShape> {
  await checkConnection(conn);
  const [tables] = await conn.query<mysql.RowDataPacket[]>({ sql: 'SELECT TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', values: [schema, table], rowsAsArray: false });
  const [rows] = await conn.query<mysql.RowDataPacket[]>({
    sql: `SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, COLUMN_KEY, CHARACTER_MAXIMUM_LENGTH, CHARACTER_OCTET_LENGTH, NUMERIC_PRECISION, NUMERIC_SCALE,
                 DATETIME_PRECISION, CHARACTER_SET_NAME, COLLATION_NAME, GENERATION_EXPRESSION
            FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`,
    values: [schema, table],
    rowsAsArray: false,
  });
  if (tables.length === 0 || rows.length === 0) {
    throw new TidemarkError('ErrSnapshotFailed', `snapshot: table ${schema}.${table} does not exist upstream (dropped since the changefeed was created?)`, { retryable: false, details: { schema, table } });
  }
  const defs: ColumnDef[] = rows.map((r) => {
    const columnType = String(r['COLUMN_TYPE']);
    return {
      name: String(r['COLUMN_NAME']),
      dataType: String(r['DATA_TYPE']).toLowerCase(),
      columnType,
      unsigned: /\bunsigned\b/i.test(columnType),
      zerofill: /\bzerofill\b/i.test(columnType),
      nullable: r['IS_NULLABLE'] === 'YES',
      primary: r['COLUMN_KEY'] === 'PRI',
      octets: num(r['CHARACTER_OCTET_LENGTH']),
      characters: num(r['CHARACTER_MAXIMUM_LENGTH']),
      precision: num(r['NUMERIC_PRECISION']),
      scale: num(r['NUMERIC_SCALE']),
      fsp: num(r['DATETIME_PRECISION']),
      charset: str(r['CHARACTER_SET_NAME']),
      collation: str(r['COLLATION_NAME']),
    };
  });
  // MariaDB's system versioning without declared period columns: the binlog has ROW_START and ROW_END at the end
  // (ROW_END in the primary key), information_schema does not list them
  if (String(tables[0]['TABLE_TYPE']) === 'SYSTEM VERSIONED' && !rows.some((r) => str(r['GENERATION_EXPRESSION']) === 'ROW START')) {
    const implicit = { dataType: 'timestamp', columnType: 'timestamp(6)', unsigned: false, zerofill: false, nullable: false, octets: null, characters: null, precision: null, scale: null, fsp: 6, charset: null, collation: null };
    const keyed = defs.some((c) => c.primary);
    defs.push({ ...implicit, name: 'row_start', primary: false, expression: 'ROW_START' }, { ...implicit, name: 'row_end', primary: keyed, expression: 'ROW_END' });
  }
  const ids = await collationIds(conn, [...new Set(defs.map((c) => c.collation).filter((n): n is string => n !== null))]);
  for (const c of defs) {
    if (c.collation !== null) c.collationId = ids.get(c.collation);
  }
  const [statistics] = await conn.query<mysql.RowDataPacket[]>({ sql: 'SELECT * FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', values: [schema, table], rowsAsArray: false });
  const key = chooseKey(defs, statistics);

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
  const count = converted.length;
  const keyConverters = (key ?? []).map((i) => converter(defs[i]));
  return {
    schema,
    table,
    columns,
    key,
    orderable: key !== undefined && key.every((i) => orderableColumn(defs[i])),
    selectList: defs.map(selectExpression).join(', '),
    keySelectList: (key ?? []).map((i) => selectExpression(defs[i])).join(', '),
    keyValues(row: unknown[]): Value[] {
      for (let j = 0; j < keyConverters.length; j++) {
        const convert = keyConverters[j];
        if (convert !== undefined) row[j] = convert(row[j]);
      }
      return row as Value[];
    },
    qualified: `${quote(schema)}.${quote(table)}`,
    typeCast: true,
    toValues(row: unknown[]): Value[] {
      for (let j = 0; j < count; j++) {
        const i = converted[j];
        row[i] = converters[j](row[i]);
      }
      return row as Value[];
    },
  };
}

/** A UTF-16 code unit's rank in code point order: surrogates (characters above U+FFFF) after U+E000–U+FFFF. */
function unitRank(u: number): number {
  return u < 0xd800 ? u : u < 0xe000 ? u + 0x2000 : u - 0x800;
}

/** How the rest of a string from `from` compares with spaces (PAD SPACE): below a space is less. */
function againstSpaces(s: string, from: number): number {
  for (let i = from; i < s.length; i++) {
    const u = s.charCodeAt(i);
    if (u !== 0x20) return u < 0x20 ? -1 : 1;
  }
  return 0;
}

/** Two strings as a binary PAD SPACE collation orders them (utf8mb4_bin): by code point, the shorter padded with spaces. */
function compareText(a: string, b: string): number {
  const n = a.length < b.length ? a.length : b.length;
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return unitRank(x) < unitRank(y) ? -1 : 1;
  }
  if (a.length > n) return againstSpaces(a, n);
  if (b.length > n) return -againstSpaces(b, n);
  return 0;
}

/**
 * Compares two key tuples (values of an orderable shape's key columns, in key order) as the server orders them:
 * numbers and bigints by value, bytes as memcmp, strings as a binary PAD SPACE collation (by code point, trailing
 * spaces not significant; DATE/DATETIME/TIMESTAMP text is fixed-width digits), NULL first.
 */
export function compareKeys(a: readonly Value[], b: readonly Value[]): number {
  const n = a.length < b.length ? a.length : b.length;
  for (let i = 0; i < n; i++) {
    const x = a[i];
    const y = b[i];
    if (x === y) continue;
    if (x === null) return -1;
    if (y === null) return 1;
    let c: number;
    if (typeof x === 'string') c = compareText(x, y as string);
    else if (typeof x === 'object') c = Buffer.compare(x, y as Buffer);
    else c = x < (y as number | bigint) ? -1 : x > (y as number | bigint) ? 1 : 0;
    if (c !== 0) return c;
  }
  return a.length - b.length;
}
