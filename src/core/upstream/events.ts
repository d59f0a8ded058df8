import { TidemarkError } from '../errors/index.js';
import { textDecoderOf } from './charsets.js';

/** Reads a length-encoded integer; returns [value, bytes used]. */
export function readLenenc(buf: Buffer, offset: number): [number, number] {
  const first = buf[offset];
  if (first === undefined) throw new TidemarkError('ErrBinlogCorrupt', `length-encoded integer at ${offset} is past the end (${buf.length} bytes)`);
  if (first < 0xfb) return [first, 1];
  if (first === 0xfc) return [buf.readUInt16LE(offset + 1), 3];
  if (first === 0xfd) return [buf.readUIntLE(offset + 1, 3), 4];
  if (first === 0xfe) return [Number(buf.readBigUInt64LE(offset + 1)), 9];
  throw new TidemarkError('ErrBinlogCorrupt', `invalid length-encoded integer 0x${first.toString(16)} at ${offset}`);
}

export interface QueryEvent {
  readonly schema: string;
  readonly query: string;
}

/** QUERY_EVENT: BEGIN, COMMIT, DDL, with the default schema it ran in. */
export function decodeQuery(body: Buffer): QueryEvent {
  const schemaLength = body[8];
  const statusLength = body.readUInt16LE(11);
  const schemaStart = 13 + statusLength;
  return {
    schema: body.toString('utf8', schemaStart, schemaStart + schemaLength),
    query: body.toString('utf8', schemaStart + schemaLength + 1),
  };
}

/** XID_EVENT: the commit of an InnoDB transaction. */
export function decodeXid(body: Buffer): bigint {
  return body.readBigUInt64LE(0);
}

/** Column type codes of the binlog (mysql_com.h enum_field_types). */
export const ColumnType = {
  DECIMAL: 0, TINY: 1, SHORT: 2, LONG: 3, FLOAT: 4, DOUBLE: 5, NULL: 6, TIMESTAMP: 7, LONGLONG: 8, INT24: 9, DATE: 10,
  TIME: 11, DATETIME: 12, YEAR: 13, NEWDATE: 14, VARCHAR: 15, BIT: 16, TIMESTAMP2: 17, DATETIME2: 18, TIME2: 19,
  JSON: 245, NEWDECIMAL: 246, ENUM: 247, SET: 248, TINY_BLOB: 249, MEDIUM_BLOB: 250, LONG_BLOB: 251, BLOB: 252,
  VAR_STRING: 253, STRING: 254, GEOMETRY: 255,
} as const;

export interface TableMap {
  readonly tableId: bigint;
  readonly schema: string;
  readonly table: string;
  readonly columnCount: number;
  readonly types: Uint8Array;
  /** Per-column metadata (see decodeTableMap). */
  readonly meta: Uint16Array;
  readonly nullable: readonly boolean[];
  /** From optional metadata (binlog_row_metadata=FULL / MINIMAL); undefined when the server sent none. */
  readonly names: readonly string[] | undefined;
  /** Unsigned flag per column (numeric columns only). */
  readonly unsigned: readonly boolean[];
  readonly primaryKey: readonly number[];
  readonly enumValues: ReadonlyMap<number, readonly string[]>;
  readonly setValues: ReadonlyMap<number, readonly string[]>;
  /** Character set (collation id) per string column, when sent; 63 = binary. */
  readonly charsets: ReadonlyMap<number, number>;
  /** GEOMETRY subtype per geometry column (optional metadata GEOMETRY_TYPE: 0 geometry, 1 point, 2 linestring, …), when sent. */
  readonly geometryTypes?: ReadonlyMap<number, number>;
  /**
   * MariaDB data types the binlog shows as fixed-length binary (see FixedBinaryType), per column. The binlog
   * cannot tell them from BINARY(16)/BINARY(4): they come from the table's definition (withDataTypes).
   */
  readonly dataTypes?: ReadonlyMap<number, FixedBinaryType>;
}

/**
 * MariaDB's data types stored as fixed-length binary: its TABLE_MAP sends UUID and INET6 as BINARY(16) and INET4
 * as BINARY(4) (type STRING, charset binary), with no optional metadata to tell them apart.
 */
export type FixedBinaryType = 'uuid' | 'inet6' | 'inet4';
const FIXED_BINARY_LENGTH: Readonly<Record<FixedBinaryType, number>> = { uuid: 16, inet6: 16, inet4: 4 };

/** The declared length of a CHAR/BINARY column (type STRING) from its metadata, in bytes. */
export function stringColumnBytes(meta: number): number {
  const real = meta >> 8;
  let length = meta & 0xff;
  if ((real & 0x30) !== 0x30) length |= ((real & 0x30) ^ 0x30) << 4;
  return length;
}

function fixedBinaryCandidate(map: TableMap, i: number): boolean {
  if (realType(map.types[i], map.meta[i]) !== ColumnType.STRING || map.charsets.get(i) !== 63) return false;
  const length = stringColumnBytes(map.meta[i]);
  return length === 16 || length === 4;
}

/** Whether a column may be a MariaDB UUID, INET6 or INET4 (BINARY(16)/BINARY(4) in the binlog): its definition tells. */
export function hasFixedBinaryCandidates(map: TableMap): boolean {
  for (let i = 0; i < map.columnCount; i++) if (fixedBinaryCandidate(map, i)) return true;
  return false;
}

/**
 * The TABLE_MAP with `dataTypes` from the table's definition (information_schema DATA_TYPE or the DDL's base
 * type, by column): only for binary columns of the type's length whose name, when the binlog has names, is the
 * definition's. Without such a column (or without a definition) the map itself.
 */
export function withDataTypes(map: TableMap, definition: readonly { readonly name: string; readonly dataType: string }[] | undefined): TableMap {
  if (definition === undefined || definition.length !== map.columnCount) return map;
  const dataTypes = new Map<number, FixedBinaryType>();
  for (let i = 0; i < map.columnCount; i++) {
    const type = definition[i].dataType.toLowerCase();
    if (type !== 'uuid' && type !== 'inet6' && type !== 'inet4') continue;
    if (map.names !== undefined && map.names[i] !== definition[i].name) continue;
    if (fixedBinaryCandidate(map, i) && stringColumnBytes(map.meta[i]) === FIXED_BINARY_LENGTH[type]) dataTypes.set(i, type);
  }
  return dataTypes.size === 0 ? map : { ...map, dataTypes };
}

const NUMERIC = new Set<number>([ColumnType.TINY, ColumnType.SHORT, ColumnType.INT24, ColumnType.LONG, ColumnType.LONGLONG, ColumnType.FLOAT, ColumnType.DOUBLE, ColumnType.NEWDECIMAL, ColumnType.DECIMAL, ColumnType.YEAR]);

/** The real type of a column: ENUM and SET travel as STRING with the real type in the metadata. */
export function realType(type: number, meta: number): number {
  if (type === ColumnType.STRING) {
    const real = meta >> 8;
    if (real === ColumnType.ENUM || real === ColumnType.SET) return real;
  }
  return type;
}

/**
 * The columns the charset metadata (kinds 2 and 3) lists. MySQL lists the string types; MariaDB lists every
 * column whose field has a character set other than through ENUM/SET, which includes GEOMETRY (binary): a
 * TEXT after a GEOMETRY column would otherwise take the GEOMETRY's charset.
 */
function isCharacterColumn(type: number, mariadb: boolean): boolean {
  return type === ColumnType.VARCHAR || type === ColumnType.VAR_STRING || type === ColumnType.STRING || type === ColumnType.BLOB || (mariadb && type === ColumnType.GEOMETRY);
}

export interface DecodeTableMapOptions {
  /** The upstream is MariaDB (its charset metadata also lists GEOMETRY columns); default true, Tidemark's main upstream. */
  readonly mariadb?: boolean;
}

/** TABLE_MAP_EVENT, with its optional metadata (column names, signedness, charsets, ENUM/SET values, primary key). */
export function decodeTableMap(body: Buffer, options: DecodeTableMapOptions = {}): TableMap {
  const mariadb = options.mariadb ?? true;
  const tableId = BigInt(body.readUIntLE(0, 6));
  let o = 8;
  const schemaLength = body[o];
  const schema = body.toString('utf8', o + 1, o + 1 + schemaLength);
  o += 1 + schemaLength + 1;
  const tableLength = body[o];
  const table = body.toString('utf8', o + 1, o + 1 + tableLength);
  o += 1 + tableLength + 1;
  const [columnCount, n1] = readLenenc(body, o);
  o += n1;
  const types = new Uint8Array(body.subarray(o, o + columnCount));
  o += columnCount;
  const [metaLength, n2] = readLenenc(body, o);
  o += n2;
  const meta = new Uint16Array(columnCount);
  let m = o;
  for (let i = 0; i < columnCount; i++) {
    switch (types[i]) {
      case ColumnType.FLOAT: case ColumnType.DOUBLE: case ColumnType.BLOB: case ColumnType.GEOMETRY: case ColumnType.JSON:
      case ColumnType.TIMESTAMP2: case ColumnType.DATETIME2: case ColumnType.TIME2:
        meta[i] = body[m]!;
        m += 1;
        break;
      case ColumnType.VARCHAR: case ColumnType.VAR_STRING: case ColumnType.BIT:
        meta[i] = body.readUInt16LE(m);
        m += 2;
        break;
      case ColumnType.NEWDECIMAL: case ColumnType.STRING: case ColumnType.ENUM: case ColumnType.SET:
        meta[i] = (body[m] << 8) | body[m + 1]; // big-endian pairs: (precision, scale) or (real type, length)
        m += 2;
        break;
      default:
        meta[i] = 0;
    }
  }
  o += metaLength;
  const nullBytes = (columnCount + 7) >> 3;
  const nullable = Array.from({ length: columnCount }, (_, i) => (body[o + (i >> 3)] & (1 << (i & 7))) !== 0);
  o += nullBytes;

  let names: string[] | undefined;
  const unsigned = new Array<boolean>(columnCount).fill(false);
  const primaryKey: number[] = [];
  const enumValues = new Map<number, string[]>();
  const setValues = new Map<number, string[]>();
  const charsets = new Map<number, number>();
  const memberBytes = new Map<number, Buffer[]>();
  const memberCharsets = new Map<number, number>();
  const geometryTypes = new Map<number, number>();
  const columnsOf = (pred: (i: number) => boolean): number[] => Array.from({ length: columnCount }, (_, i) => i).filter(pred);
  const real = (i: number): number => realType(types[i], meta[i]);
  while (o < body.length) {
    const kind = body[o];
    const [length, n] = readLenenc(body, o + 1);
    const start = o + 1 + n;
    const end = start + length;
    const strings = (): string[] => {
      const out: string[] = [];
      for (let p = start; p < end; ) {
        const [len, k] = readLenenc(body, p);
        out.push(body.toString('utf8', p + k, p + k + len));
        p += k + len;
      }
      return out;
    };
    // ENUM/SET members as their bytes: their character set comes later (kinds 10 and 11), decoded after the loop
    const byteLists = (): Buffer[][] => {
      const out: Buffer[][] = [];
      for (let p = start; p < end; ) {
        const [count, k] = readLenenc(body, p);
        p += k;
        const values: Buffer[] = [];
        for (let j = 0; j < count; j++) {
          const [len, k2] = readLenenc(body, p);
          values.push(body.subarray(p + k2, p + k2 + len));
          p += k2 + len;
        }
        out.push(values);
      }
      return out;
    };
    switch (kind) {
      case 1: { // SIGNEDNESS: one bit per numeric column, most significant first
        const numeric = columnsOf((i) => NUMERIC.has(real(i)));
        numeric.forEach((col, j) => (unsigned[col] = (body[start + (j >> 3)] & (0x80 >> (j & 7))) !== 0));
        break;
      }
      case 2: { // DEFAULT_CHARSET: default, then (column index among character columns, charset) pairs
        const character = columnsOf((i) => isCharacterColumn(real(i), mariadb));
        let p = start;
        const [def, k] = readLenenc(body, p);
        p += k;
        for (const col of character) charsets.set(col, def);
        while (p < end) {
          const [index, k1] = readLenenc(body, p);
          const [cs, k2] = readLenenc(body, p + k1);
          p += k1 + k2;
          if (character[index] !== undefined) charsets.set(character[index], cs);
        }
        break;
      }
      case 3: { // COLUMN_CHARSET: one per character column
        const character = columnsOf((i) => isCharacterColumn(real(i), mariadb));
        let p = start;
        for (const col of character) {
          const [cs, k] = readLenenc(body, p);
          charsets.set(col, cs);
          p += k;
        }
        break;
      }
      case 4:
        names = strings();
        break;
      case 5: {
        const sets = columnsOf((i) => real(i) === ColumnType.SET);
        byteLists().forEach((values, j) => memberBytes.set(sets[j], values));
        break;
      }
      case 6: {
        const enums = columnsOf((i) => real(i) === ColumnType.ENUM);
        byteLists().forEach((values, j) => memberBytes.set(enums[j], values));
        break;
      }
      case 10: { // ENUM_AND_SET_DEFAULT_CHARSET: default, then (index among ENUM/SET columns, charset) pairs
        const enumSet = columnsOf((i) => real(i) === ColumnType.ENUM || real(i) === ColumnType.SET);
        let p = start;
        const [def, k] = readLenenc(body, p);
        p += k;
        for (const col of enumSet) memberCharsets.set(col, def);
        while (p < end) {
          const [index, k1] = readLenenc(body, p);
          const [cs, k2] = readLenenc(body, p + k1);
          p += k1 + k2;
          if (enumSet[index] !== undefined) memberCharsets.set(enumSet[index], cs);
        }
        break;
      }
      case 11: { // ENUM_AND_SET_COLUMN_CHARSET: one per ENUM/SET column
        const enumSet = columnsOf((i) => real(i) === ColumnType.ENUM || real(i) === ColumnType.SET);
        let p = start;
        for (const col of enumSet) {
          if (p >= end) break;
          const [cs, k] = readLenenc(body, p);
          memberCharsets.set(col, cs);
          p += k;
        }
        break;
      }
      case 7: { // GEOMETRY_TYPE: one per geometry column
        const geometries = columnsOf((i) => types[i] === ColumnType.GEOMETRY);
        let p = start;
        for (const col of geometries) {
          if (p >= end) break;
          const [subtype, k] = readLenenc(body, p);
          geometryTypes.set(col, subtype);
          p += k;
        }
        break;
      }
      case 8: // SIMPLE_PRIMARY_KEY
        for (let p = start; p < end; ) {
          const [index, k] = readLenenc(body, p);
          primaryKey.push(index);
          p += k;
        }
        break;
      case 9: // PRIMARY_KEY_WITH_PREFIX
        for (let p = start; p < end; ) {
          const [index, k] = readLenenc(body, p);
          const [, k2] = readLenenc(body, p + k);
          primaryKey.push(index);
          p += k + k2;
        }
        break;
      default:
        break; // other optional metadata is not needed here; skipped by its length
    }
    o = end;
  }
  // ENUM/SET members in their column's character set (UTF-8 when the server sent none)
  for (const [col, values] of memberBytes) {
    const decode = textDecoderOf(memberCharsets.get(col));
    (real(col) === ColumnType.SET ? setValues : enumValues).set(col, values.map((v) => decode(v, 0, v.length)));
  }
  return { tableId, schema, table, columnCount, types, meta, nullable, names, unsigned, primaryKey, enumValues, setValues, charsets, ...(geometryTypes.size === 0 ? {} : { geometryTypes }) };
}

/**
 * Runs a decoder over bytes from the upstream: whatever it throws that is not already a TidemarkError (a read past
 * the end, a length that makes no sense) becomes ErrBinlogCorrupt naming `what`, so hostile or damaged input
 * ends as a typed error and never as a RangeError or TypeError up the stack.
 */
export function decodingBytes<T>(what: () => string, decode: () => T): T {
  try {
    return decode();
  } catch (error) {
    throw binlogCorrupt(error, what());
  }
}

/** `error`, thrown while decoding `what`, as the typed error to throw: TidemarkErrors stay, anything else is ErrBinlogCorrupt. */
export function binlogCorrupt(error: unknown, what: string): TidemarkError {
  if (error instanceof TidemarkError) return error;
  return new TidemarkError('ErrBinlogCorrupt', `${what} could not be decoded: ${(error as Error).name}: ${(error as Error).message}`, { cause: error });
}
