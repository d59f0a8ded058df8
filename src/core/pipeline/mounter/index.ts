import type { ColumnInfo, RowChangedEvent, TableName, Ts } from '../../sink/api.js';
import { ColumnType, binlogCorrupt, realType, stringColumnBytes, type FixedBinaryType, type TableMap } from '../../upstream/events.js';
import type { RowsLayout, Value } from '../../upstream/rows.js';
import { BugIndicatingError } from '../../errors/index.js';
import { decodeRow, rowMapVersion, type SortedRow } from '../row-codec.js';
import { SharedRows } from './shared-rows.js';

const BINARY = 63;

/**
 * Bytes per character of the character sets that take more than one, by collation id (below 1024): MariaDB's
 * ids (information_schema.COLLATION_CHARACTER_SET_APPLICABILITY joined with CHARACTER_SETS.MAXLEN on 10.11),
 * and MySQL 8's own (utf8mb3_tolower_ci 76, gb18030 248–250, utf8mb4_0900 255–323). Every other id is a
 * single-byte character set (latin1, ascii, cp1250, binary, …).
 */
const MULTIBYTE_COLLATIONS: readonly (readonly [first: number, last: number, maxLength: number])[] = [
  [1, 1, 2], // big5_chinese_ci
  [12, 12, 3], // ujis_japanese_ci
  [13, 13, 2], // sjis_japanese_ci
  [19, 19, 2], // euckr_korean_ci
  [24, 24, 2], // gb2312_chinese_ci
  [28, 28, 2], // gbk_chinese_ci
  [33, 33, 3], // utf8mb3_general_ci
  [35, 35, 2], // ucs2_general_ci
  [45, 46, 4], // utf8mb4_general_ci, utf8mb4_bin
  [54, 55, 4], // utf16_general_ci, utf16_bin
  [56, 56, 4], // utf16le_general_ci
  [60, 61, 4], // utf32_general_ci, utf32_bin
  [62, 62, 4], // utf16le_bin
  [76, 76, 3], // MySQL: utf8mb3_tolower_ci
  [83, 83, 3], // utf8mb3_bin
  [84, 88, 2], // big5_bin, euckr_bin, gb2312_bin, gbk_bin, sjis_bin
  [90, 90, 2], // ucs2_bin
  [91, 91, 3], // ujis_bin
  [95, 96, 2], // cp932_japanese_ci, cp932_bin
  [97, 98, 3], // eucjpms_japanese_ci, eucjpms_bin
  [101, 124, 4], // utf16_unicode_ci … utf16_vietnamese_ci
  [128, 151, 2], // ucs2_unicode_ci … ucs2_vietnamese_ci
  [159, 159, 2], // ucs2_general_mysql500_ci
  [160, 183, 4], // utf32_unicode_ci … utf32_vietnamese_ci
  [192, 215, 3], // utf8mb3_unicode_ci … utf8mb3_vietnamese_ci
  [223, 223, 3], // utf8mb3_general_mysql500_ci
  [224, 247, 4], // utf8mb4_unicode_ci … utf8mb4_vietnamese_ci
  [248, 250, 4], // MySQL: gb18030_chinese_ci, gb18030_bin, gb18030_unicode_520_ci
  [255, 323, 4], // MySQL 8: utf8mb4_0900_ai_ci … (the utf8mb4 collations of 8.0)
  [576, 578, 3], // MariaDB: utf8mb3_croatian_ci, utf8mb3_myanmar_ci, utf8mb3_thai_520_w2
  [608, 610, 4], // MariaDB: utf8mb4_croatian_ci, utf8mb4_myanmar_ci, utf8mb4_thai_520_w2
  [640, 642, 2], // MariaDB: ucs2_croatian_ci, ucs2_myanmar_ci, ucs2_thai_520_w2
  [672, 674, 4], // MariaDB: utf16_croatian_ci, utf16_myanmar_ci, utf16_thai_520_w2
  [736, 738, 4], // MariaDB: utf32_croatian_ci, utf32_myanmar_ci, utf32_thai_520_w2
];
/** MariaDB's UCA 14.0.0 collations (ids 2048 and up) by id >> 8: utf8mb3, utf8mb4, ucs2, utf16, utf32. */
const UCA1400_MAX_LENGTH = [3, 4, 2, 4, 4];

/** The most bytes one character takes in the character set of collation `id` (1 when unknown). */
export function charsetMaxLength(id: number | undefined): number {
  if (id === undefined) return 1;
  if (id >= 2048) return UCA1400_MAX_LENGTH[(id >> 8) - 8] ?? 1;
  // MariaDB's NO PAD collations are their PAD SPACE twin's id + 1024
  const base = id >= 1024 ? id - 1024 : id;
  for (const [first, last, maxLength] of MULTIBYTE_COLLATIONS) {
    if (base < first) break;
    if (base <= last) return maxLength;
  }
  return 1;
}

const GEOMETRY_TYPES = ['geometry', 'point', 'linestring', 'polygon', 'multipoint', 'multilinestring', 'multipolygon', 'geometrycollection'];

/** A CHAR/VARCHAR length in characters from its length in bytes (the binlog's) and its collation. */
function characters(bytes: number, collation: number | undefined): number {
  return Math.floor(bytes / charsetMaxLength(collation));
}

/**
 * The MySQL type of a column as information_schema's COLUMN_TYPE writes it, from the TABLE_MAP (type, metadata and
 * optional metadata): lengths in characters, DECIMAL precision and scale, fractional seconds, ENUM/SET members,
 * `unsigned`. What the binlog does not carry is left out: integer display widths and ZEROFILL (as MySQL 8 writes
 * COLUMN_TYPE: `int`, not MariaDB's `int(11)`), FLOAT(M,D)/DOUBLE(M,D) digits. MariaDB's UUID, INET6 and INET4
 * come from the TABLE_MAP's `dataTypes` (the binlog shows them as BINARY(16)/BINARY(4)).
 */
export function mysqlTypeOf(map: TableMap, i: number): string {
  const meta = map.meta[i];
  const unsigned = map.unsigned[i] === true ? ' unsigned' : '';
  const collation = map.charsets.get(i);
  const binary = collation === BINARY;
  const dataType = map.dataTypes?.get(i);
  if (dataType !== undefined) return dataType;
  switch (realType(map.types[i], meta)) {
    case ColumnType.TINY: return `tinyint${unsigned}`;
    case ColumnType.SHORT: return `smallint${unsigned}`;
    case ColumnType.INT24: return `mediumint${unsigned}`;
    case ColumnType.LONG: return `int${unsigned}`;
    case ColumnType.LONGLONG: return `bigint${unsigned}`;
    case ColumnType.FLOAT: return `float${unsigned}`;
    case ColumnType.DOUBLE: return `double${unsigned}`;
    case ColumnType.NEWDECIMAL: return `decimal(${meta >> 8},${meta & 0xff})${unsigned}`;
    case ColumnType.YEAR: return 'year';
    case ColumnType.DATE: return 'date';
    case ColumnType.TIME2: return meta > 0 ? `time(${meta})` : 'time';
    case ColumnType.DATETIME2: return meta > 0 ? `datetime(${meta})` : 'datetime';
    case ColumnType.TIMESTAMP2: return meta > 0 ? `timestamp(${meta})` : 'timestamp';
    case ColumnType.BIT: return `bit(${(meta >> 8) * 8 + (meta & 0xff)})`;
    case ColumnType.VARCHAR: case ColumnType.VAR_STRING: return binary ? `varbinary(${meta})` : `varchar(${characters(meta, collation)})`;
    case ColumnType.STRING: {
      const bytes = stringColumnBytes(meta);
      return binary ? `binary(${bytes})` : `char(${characters(bytes, collation)})`;
    }
    case ColumnType.ENUM: return `enum(${(map.enumValues.get(i) ?? []).map(quote).join(',')})`;
    case ColumnType.SET: return `set(${(map.setValues.get(i) ?? []).map(quote).join(',')})`;
    case ColumnType.BLOB: return binary ? ['', 'tinyblob', 'blob', 'mediumblob', 'longblob'][meta] ?? 'blob' : ['', 'tinytext', 'text', 'mediumtext', 'longtext'][meta] ?? 'text';
    case ColumnType.JSON: return 'json';
    case ColumnType.GEOMETRY: return GEOMETRY_TYPES[map.geometryTypes?.get(i) ?? 0] ?? 'geometry';
    default: return `type${map.types[i]}`;
  }
}

/** An ENUM/SET member as COLUMN_TYPE quotes it: quotes doubled, backslashes escaped. */
function quote(s: string): string {
  return `'${s.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`;
}

const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'));

/** A UUID's 16 bytes as MariaDB prints it: `123e4567-e89b-12d3-a456-426614174000`. */
export function uuidText(b: Buffer): string {
  let text = '';
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) text += '-';
    text += HEX[b[i] ?? 0];
  }
  return text;
}

/** An INET4's 4 bytes as dotted decimal: `10.0.0.1`. */
export function inet4Text(b: Buffer, at = 0): string {
  return `${b[at] ?? 0}.${b[at + 1] ?? 0}.${b[at + 2] ?? 0}.${b[at + 3] ?? 0}`;
}

/**
 * An INET6's 16 bytes as MariaDB prints it (Inet6::to_string): lower-case hex words without leading zeros, the
 * longest run of zero words (the first of equal ones, even a single word) as `::`, and IPv4-compatible
 * (`::1.2.3.4`) and IPv4-mapped (`::ffff:1.2.3.4`) addresses with their last 32 bits in dotted decimal.
 */
export function inet6Text(b: Buffer): string {
  const words: number[] = [];
  for (let i = 0; i < 8; i++) words.push(((b[2 * i] ?? 0) << 8) | (b[2 * i + 1] ?? 0));
  let gapAt = -1;
  let gapLength = 0;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > gapLength) {
      gapAt = i;
      gapLength = j - i;
    }
    i = j;
  }
  let text = '';
  for (let i = 0; i < 8; i++) {
    if (i === gapAt) {
      text += i === 0 ? '::' : ':';
      i += gapLength - 1;
    } else if (i === 6 && gapAt === 0 && (gapLength === 6 || (gapLength === 5 && words[5] === 0xffff))) {
      return text + inet4Text(b, 12);
    } else {
      text += words[i].toString(16);
      if (i < 7) text += ':';
    }
  }
  return text;
}

const RENDER: Readonly<Record<FixedBinaryType, (b: Buffer) => string>> = { uuid: uuidText, inet6: inet6Text, inet4: (b) => inet4Text(b) };

/** A row image with MariaDB's UUID/INET6/INET4 values as their text (the binlog has their bytes), in place. */
function renderDataTypes(map: TableMap, values: Value[] | null): Value[] | null {
  if (values === null || map.dataTypes === undefined) return values;
  for (const [column, type] of map.dataTypes) {
    const value = values[column];
    if (Buffer.isBuffer(value)) values[column] = RENDER[type](value);
  }
  return values;
}

const columnCache = new WeakMap<TableMap, readonly ColumnInfo[]>();

/**
 * The columns of a table as the binlog describes them: names from the full row metadata (a schema storage
 * by ts is needed when the server does not send them), MySQL types, primary key and nullability. Cached per
 * TABLE_MAP, so rows of the same table share one array.
 */
export function columnsOf(map: TableMap): readonly ColumnInfo[] {
  let columns = columnCache.get(map);
  if (columns === undefined) {
    const pk = new Set(map.primaryKey);
    columns = Array.from({ length: map.columnCount }, (_, i) => ({
      name: map.names?.[i] ?? `@${i + 1}`,
      mysqlType: mysqlTypeOf(map, i),
      primaryKey: pk.has(i),
      nullable: map.nullable[i] ?? true,
    }));
    columnCache.set(map, columns);
  }
  return columns;
}

/** A raw row change (the puller's) made into a typed RowChangedEvent once its transaction's commit ts is known. */
export function mountRow(
  raw: { readonly table: TableMap; readonly change: 'insert' | 'update' | 'delete'; readonly before: Value[] | null; readonly after: Value[] | null; readonly seq: number },
  table: TableName,
  commitTs: Ts,
  commitTime: number,
): RowChangedEvent {
  const { before, after } = raw.table.dataTypes === undefined ? raw : { before: renderDataTypes(raw.table, raw.before?.slice() ?? null), after: renderDataTypes(raw.table, raw.after?.slice() ?? null) };
  return { table, commitTs, commitTime, seq: raw.seq, kind: raw.change, columns: columnsOf(raw.table), before, after };
}

/**
 * The mounter of one processor (DESIGN §5): the one place a sorted row change becomes the RowChangedEvent a sink
 * gets. The puller takes each rows event's rows from it (`rowsOf`: their TABLE_MAP version travels with each row,
 * also through the spill files); `mount` decodes the row's binlog image once, with that TABLE_MAP, and gives it
 * its table name, commit ts and columns (cached per map). With the capture's SharedRows (the log service's, for
 * the upstream), a row the shared binlog read gave to several changefeeds is built once and, while the
 * changefeeds are near one another, decoded once for all of them.
 */
export class Mounter {
  constructor(private readonly shared: SharedRows = new SharedRows()) {}

  /** The rows of a rows event as the sorter's payloads. */
  rowsOf(layout: RowsLayout): readonly SortedRow[] {
    return this.shared.rowsOf(layout);
  }

  /** The version a row read with this TABLE_MAP carries. */
  versionOf(map: TableMap): number {
    return this.shared.versions.versionOf(map);
  }

  mount(table: TableName, commitTs: Ts, seq: number, row: SortedRow): RowChangedEvent {
    const version = rowMapVersion(row);
    const map = this.shared.versions.mapOf(version);
    if (map === undefined) throw new BugIndicatingError(`no TABLE_MAP version ${version} for a row of ${table.schema}.${table.table}`);
    let decoded = this.shared.take(row);
    if (decoded === undefined) {
      try {
        decoded = decodeRow(row, map);
      } catch (error) {
        // bytes the decoder cannot read (damaged or hostile input): a typed error naming the row's table
        throw binlogCorrupt(error, `a row of ${table.schema}.${table.table} (commit ts ${String(commitTs)})`);
      }
      // the decoded images are new arrays: UUID/INET6/INET4 values become text in them
      renderDataTypes(map, decoded.before);
      renderDataTypes(map, decoded.after);
      this.shared.decoded(row, decoded);
    }
    return { table, commitTs, commitTime: decoded.commitTime, seq, kind: decoded.kind, columns: columnsOf(map), before: decoded.before, after: decoded.after };
  }
}
