import { TidemarkError } from '../errors/index.js';
import { decodeJsonBinary } from './json-binary.js';
import { textDecoderOf } from './charsets.js';
import { ColumnType, readLenenc, realType, stringColumnBytes, type TableMap } from './events.js';
import { EventType } from './binlog-reader.js';

/**
 * A decoded column value, exact: 64-bit integers as bigint, DECIMAL as its exact decimal string, temporal
 * types as MySQL's text form with their fractional digits (TIMESTAMP in UTC), binary data as Buffer,
 * ENUM and SET as their names, NULL as null.
 */
export type Value = null | number | bigint | string | Buffer;

export interface RowImage {
  readonly before: Value[] | null;
  readonly after: Value[] | null;
}

export interface RowsEvent {
  readonly tableId: bigint;
  readonly kind: 'insert' | 'update' | 'delete';
  readonly rows: RowImage[];
}

const BINARY_CHARSET = 63;
const DIG2BYTES = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];

const ZEROS = '000000000';

/** '00' to '99': the two-digit fields of temporal values, made once. */
const TWO_DIGITS = Array.from({ length: 100 }, (_, n) => (n < 10 ? `0${n}` : String(n)));

/** `n` (≥ 0, < 10^width, width ≤ 9) in exactly `width` digits. */
function pad(n: number, width: number): string {
  if (width === 2 && n < 100) return TWO_DIGITS[n];
  const s = String(n);
  return s.length >= width ? s : ZEROS.slice(0, width - s.length) + s;
}

/**
 * The date part of the last DATETIME decoded ('YYYY-MM-DD ', by its packed year-month-day): rows of a transaction
 * or a batch mostly share their date, so each then costs only its time of day.
 */
let lastYmd = -1;
let lastDatePart = '';

function fraction(micros: number, fsp: number): string {
  return fsp === 0 ? '' : `.${pad(micros, 6).slice(0, fsp)}`;
}

/** The bytes the last `readFraction` took. */
let fractionBytes = 0;

/** Fractional seconds of DATETIME2/TIMESTAMP2: (fsp+1)/2 big-endian bytes, scaled to microseconds; sets `fractionBytes`. */
function readFraction(buf: Buffer, o: number, fsp: number): number {
  switch (fsp) {
    case 1: case 2: fractionBytes = 1; return buf[o] * 10_000;
    case 3: case 4: fractionBytes = 2; return buf.readUInt16BE(o) * 100;
    case 5: case 6: fractionBytes = 3; return buf.readUIntBE(o, 3);
    default: fractionBytes = 0; return 0;
  }
}

/** The text of the last TIMESTAMP decoded, without its fraction, by its seconds (rows stamped with one NOW() share it). */
let lastTimestampSeconds = -1;
let lastTimestampText = '';

/** A big-endian group of `n` (1..4) decimal bytes at `p`, with the sign bit of the number's first byte flipped and negative numbers' bits inverted. */
function decimalGroup(buf: Buffer, start: number, p: number, n: number, negative: boolean): number {
  let v = n === 4 ? buf.readUInt32BE(p) : buf.readUIntBE(p, n);
  if (p === start) v = (v ^ (0x80 << ((n - 1) * 8))) >>> 0;
  if (negative) v = (v ^ (n === 4 ? 0xffffffff : (1 << (n * 8)) - 1)) >>> 0;
  return v;
}


/** The bytes the last `decodeValueAt` took (a module variable, so the hot path allocates no tuple). */
let lastWidth = 0;

/**
 * DECIMAL (binary format): groups of 9 digits in 4 bytes, read in place without copying the value; leading
 * zero groups of the integer part are left out as they are read, so the text is built once. Sets `lastWidth`.
 */
function decodeDecimal(buf: Buffer, o: number, precision: number, scale: number): string {
  const intg = precision - scale;
  const intg0 = Math.floor(intg / 9);
  const intg0x = intg % 9;
  const frac0 = Math.floor(scale / 9);
  const frac0x = scale % 9;
  const size = intg0 * 4 + DIG2BYTES[intg0x] + frac0 * 4 + DIG2BYTES[frac0x];
  const negative = (buf[o] & 0x80) === 0;
  let p = o;
  // integer digits so far without leading zeros ('' while every group read was zero)
  let integer = '';
  if (intg0x > 0) {
    const n = DIG2BYTES[intg0x];
    const g = decimalGroup(buf, o, p, n, negative);
    if (g !== 0) integer = String(g);
    p += n;
  }
  for (let i = 0; i < intg0; i++) {
    const g = decimalGroup(buf, o, p, 4, negative);
    integer = integer === '' ? (g === 0 ? '' : String(g)) : integer + pad(g, 9);
    p += 4;
  }
  if (integer === '') integer = '0';
  let text = integer;
  if (scale > 0) {
    text += '.';
    for (let i = 0; i < frac0; i++) {
      text += pad(decimalGroup(buf, o, p, 4, negative), 9);
      p += 4;
    }
    if (frac0x > 0) {
      const n = DIG2BYTES[frac0x];
      text += pad(decimalGroup(buf, o, p, n, negative), frac0x);
      p += n;
    }
  }
  lastWidth = size;
  return negative ? `-${text}` : text;
}

/** The bytes `start..end` of `buf` as text in `charset`, or a copy of them for binary (read without a view per value). */
function decodeString(buf: Buffer, start: number, end: number, charset: number | undefined): string | Buffer {
  if (charset === BINARY_CHARSET) return Buffer.from(buf.subarray(start, end));
  // the column's character set (its collation id from the TABLE_MAP), as the server converts it; UTF-8 when unsent
  return textDecoderOf(charset)(buf, start, end);
}


/** Decodes one value; returns it and the bytes it took. */
export function decodeValue(buf: Buffer, o: number, map: TableMap, column: number): [Value, number] {
  const value = decodeValueAt(buf, o, map, column);
  return [value, lastWidth];
}

function decodeValueAt(buf: Buffer, o: number, map: TableMap, column: number): Value {
  // the common fixed-width, VARCHAR, DECIMAL and DATETIME types without a tuple; the rest through decodeOtherValue
  const unsigned = map.unsigned[column] ?? false;
  switch (map.types[column]) {
    case ColumnType.TINY: lastWidth = 1; return unsigned ? buf[o] : buf.readInt8(o);
    case ColumnType.SHORT: lastWidth = 2; return unsigned ? buf.readUInt16LE(o) : buf.readInt16LE(o);
    case ColumnType.INT24: lastWidth = 3; return unsigned ? buf.readUIntLE(o, 3) : buf.readIntLE(o, 3);
    case ColumnType.LONG: lastWidth = 4; return unsigned ? buf.readUInt32LE(o) : buf.readInt32LE(o);
    case ColumnType.LONGLONG: lastWidth = 8; return unsigned ? buf.readBigUInt64LE(o) : buf.readBigInt64LE(o);
    case ColumnType.DOUBLE: lastWidth = 8; return buf.readDoubleLE(o);
    case ColumnType.VARCHAR: {
      const lengthBytes = map.meta[column] < 256 ? 1 : 2;
      const length = lengthBytes === 1 ? buf[o] : buf.readUInt16LE(o);
      lastWidth = lengthBytes + length;
      return decodeString(buf, o + lengthBytes, o + lastWidth, map.charsets.get(column));
    }
    case ColumnType.NEWDECIMAL: {
      const meta = map.meta[column];
      return decodeDecimal(buf, o, meta >> 8, meta & 0xff);
    }
    case ColumnType.DATETIME2: {
      const meta = map.meta[column];
      const packed = buf.readUIntBE(o, 5) - 0x8000000000;
      const ymd = Math.floor(packed / 2 ** 17);
      const hms = packed % 2 ** 17;
      if (ymd !== lastYmd) {
        const ym = Math.floor(ymd / 32);
        lastDatePart = `${pad(Math.floor(ym / 13), 4)}-${pad(ym % 13, 2)}-${pad(ymd % 32, 2)} `;
        lastYmd = ymd;
      }
      const text = lastDatePart + TWO_DIGITS[hms >> 12] + ':' + TWO_DIGITS[(hms >> 6) & 63] + ':' + TWO_DIGITS[hms & 63];
      if (meta === 0) {
        lastWidth = 5;
        return text;
      }
      const micros = readFraction(buf, o + 5, meta);
      lastWidth = 5 + fractionBytes;
      return text + fraction(micros, meta);
    }
  }
  return decodeOtherValue(buf, o, map, column);
}

/** Sets `lastWidth` and gives the value back (so a decoder's return states both, with no tuple). */
function withWidth<V extends Value>(value: V, width: number): V {
  lastWidth = width;
  return value;
}

/** The types decodeValueAt leaves to it; sets `lastWidth`. */
function decodeOtherValue(buf: Buffer, o: number, map: TableMap, column: number): Value {
  const type = map.types[column];
  const meta = map.meta[column];
  const unsigned = map.unsigned[column] ?? false;
  switch (realType(type, meta)) {
    case ColumnType.TINY: return withWidth(unsigned ? buf.readUInt8(o) : buf.readInt8(o), 1);
    case ColumnType.SHORT: return withWidth(unsigned ? buf.readUInt16LE(o) : buf.readInt16LE(o), 2);
    case ColumnType.INT24: return withWidth(unsigned ? buf.readUIntLE(o, 3) : buf.readIntLE(o, 3), 3);
    case ColumnType.LONG: return withWidth(unsigned ? buf.readUInt32LE(o) : buf.readInt32LE(o), 4);
    case ColumnType.LONGLONG: return withWidth(unsigned ? buf.readBigUInt64LE(o) : buf.readBigInt64LE(o), 8);
    case ColumnType.FLOAT: return withWidth(buf.readFloatLE(o), 4);
    case ColumnType.DOUBLE: return withWidth(buf.readDoubleLE(o), 8);
    case ColumnType.YEAR: {
      const y = buf[o];
      return withWidth(y === 0 ? 0 : 1900 + y, 1);
    }
    case ColumnType.DATE: {
      const v = buf.readUIntLE(o, 3);
      return withWidth(`${pad(v >> 9, 4)}-${pad((v >> 5) & 15, 2)}-${pad(v & 31, 2)}`, 3);
    }
    case ColumnType.TIMESTAMP2: {
      const seconds = buf.readUInt32BE(o);
      const micros = readFraction(buf, o + 4, meta);
      const width = 4 + fractionBytes;
      if (seconds === 0 && micros === 0) return withWidth(`0000-00-00 00:00:00${fraction(0, meta)}`, width);
      if (seconds !== lastTimestampSeconds) {
        const iso = new Date(seconds * 1000).toISOString();
        lastTimestampText = `${iso.slice(0, 10)} ${iso.slice(11, 19)}`;
        lastTimestampSeconds = seconds;
      }
      return withWidth(meta === 0 ? lastTimestampText : lastTimestampText + fraction(micros, meta), width);
    }
    case ColumnType.TIME2: {
      let packed: number;
      let n: number;
      const intpart = buf.readUIntBE(o, 3) - 0x800000;
      switch (meta) {
        case 1: case 2: {
          let frac = buf[o + 3];
          let ip = intpart;
          if (ip < 0 && frac !== 0) {
            ip++;
            frac -= 0x100;
          }
          packed = ip * 2 ** 24 + frac * 10_000;
          n = 4;
          break;
        }
        case 3: case 4: {
          let frac = buf.readUInt16BE(o + 3);
          let ip = intpart;
          if (ip < 0 && frac !== 0) {
            ip++;
            frac -= 0x10000;
          }
          packed = ip * 2 ** 24 + frac * 100;
          n = 5;
          break;
        }
        case 5: case 6:
          packed = buf.readUIntBE(o, 6) - 0x800000000000;
          n = 6;
          break;
        default:
          packed = intpart * 2 ** 24;
          n = 3;
      }
      const sign = packed < 0 ? '-' : '';
      const abs = Math.abs(packed);
      const hms = Math.floor(abs / 2 ** 24);
      const micros = abs % 2 ** 24;
      return withWidth(`${sign}${pad((hms >> 12) & 0x3ff, 2)}:${pad((hms >> 6) & 63, 2)}:${pad(hms & 63, 2)}${fraction(micros, meta)}`, n);
    }
    case ColumnType.VARCHAR: case ColumnType.VAR_STRING: {
      const lengthBytes = meta < 256 ? 1 : 2;
      const length = lengthBytes === 1 ? buf[o] : buf.readUInt16LE(o);
      return withWidth(decodeString(buf, o + lengthBytes, o + lengthBytes + length, map.charsets.get(column)), lengthBytes + length);
    }
    case ColumnType.STRING: {
      const maxLength = stringColumnBytes(meta);
      const lengthBytes = maxLength < 256 ? 1 : 2;
      const length = lengthBytes === 1 ? buf[o] : buf.readUInt16LE(o);
      const charset = map.charsets.get(column);
      if (charset === BINARY_CHARSET && length < maxLength) {
        // the binlog drops the trailing 0x00 padding of BINARY(n) (and MariaDB's UUID); the value has n bytes
        const padded = Buffer.alloc(maxLength);
        buf.copy(padded, 0, o + lengthBytes, o + lengthBytes + length);
        return withWidth(padded, lengthBytes + length);
      }
      return withWidth(decodeString(buf, o + lengthBytes, o + lengthBytes + length, charset), lengthBytes + length);
    }
    case ColumnType.ENUM: {
      const size = meta & 0xff;
      const index = size === 1 ? buf[o] : buf.readUInt16LE(o);
      const names = map.enumValues.get(column);
      return withWidth(index === 0 ? '' : (names?.[index - 1] ?? String(index)), size);
    }
    case ColumnType.SET: {
      const size = meta & 0xff;
      const bits = buf.readUIntLE(o, size);
      const names = map.setValues.get(column) ?? [];
      const chosen: string[] = [];
      for (let i = 0; i < names.length; i++) if (bits & (2 ** i)) chosen.push(names[i]);
      return withWidth(chosen.join(','), size);
    }
    case ColumnType.BIT: {
      const bytes = (meta >> 8) + ((meta & 0xff) > 0 ? 1 : 0);
      let v = 0n;
      for (let i = 0; i < bytes; i++) v = (v << 8n) | BigInt(buf[o + i]);
      return withWidth(v, bytes);
    }
    case ColumnType.BLOB: case ColumnType.GEOMETRY: case ColumnType.JSON: {
      const length = buf.readUIntLE(o, meta);
      const start = o + meta;
      // TEXT and MariaDB's JSON are BLOBs with a character set; MySQL's JSON is binary JSON, GEOMETRY stays bytes
      const value = type === ColumnType.BLOB
        ? decodeString(buf, start, start + length, map.charsets.get(column) ?? BINARY_CHARSET)
        : type === ColumnType.JSON ? decodeJsonBinary(buf.subarray(start, start + length)) : Buffer.from(buf.subarray(start, start + length));
      return withWidth(value, meta + length);
    }
    default:
      throw new TidemarkError('ErrUnsupportedColumnType', `column ${map.names?.[column] ?? column} of ${map.schema}.${map.table} has binlog type ${type}, which Tidemark cannot decode`);
  }
}

function countBits(buf: Buffer, o: number, count: number): number {
  let n = 0;
  for (let i = 0; i < count; i++) if ((buf[o + (i >> 3)] & (1 << (i & 7))) !== 0) n++;
  return n;
}

/** Where `readRowImage` / `skipRowImage` stopped (a module variable, so the hot path allocates no tuple). */
let lastOffset = 0;

/**
 * Where each column's value began and ended in the last update's before image `readRowImage` read (-1: absent or
 * NULL), so that its after image can take the before image's value of a column whose bytes did not change.
 */
let valueStarts = new Int32Array(64);
let valueEnds = new Int32Array(64);

/** Whether `width` bytes at `a` and at `b` of `buf` are the same. */
function sameBytes(buf: Buffer, a: number, b: number, width: number): boolean {
  if (width > 256) return buf.compare(buf, a, a + width, b, b + width) === 0;
  for (let i = 0; i < width; i++) if (buf[a + i] !== buf[b + i]) return false;
  return true;
}

/**
 * One row image at `o`: the NULL bitmap over the present columns, then their values. `columnsAt` is the
 * offset of the columns-present bitmap (in `presentIn`, which may be another buffer than `buf`). Sets
 * `lastOffset` to the end of the image.
 *
 * For an update, `update` is 'before' for its before image (where each value lies is noted in valueStarts and
 * valueEnds), then the before image's values for its after image: a column whose bytes are the before image's takes
 * that value (strings and numbers are immutable; binary values, Buffers, are decoded again so that each image has
 * its own), so an update of a few columns of a wide row decodes those few.
 */
function readRowImage(buf: Buffer, o: number, map: TableMap, count: number, presentIn: Buffer, columnsAt: number, presentCount: number, update?: 'before' | Value[]): Value[] {
  const noting = update === 'before';
  const before = noting ? undefined : update;
  if (noting && valueStarts.length < count) {
    valueStarts = new Int32Array(count);
    valueEnds = new Int32Array(count);
  }
  const nullsAt = o;
  o += (presentCount + 7) >> 3;
  const values: Value[] = new Array<Value>(count).fill(null);
  let j = 0;
  for (let i = 0; i < count; i++) {
    if (noting) valueStarts[i] = -1;
    if ((presentIn[columnsAt + (i >> 3)] & (1 << (i & 7))) === 0) continue;
    const isNull = (buf[nullsAt + (j >> 3)] & (1 << (j & 7))) !== 0;
    j++;
    if (isNull) continue;
    if (before !== undefined && valueStarts[i] >= 0 && typeof before[i] !== 'object') {
      const start = valueStarts[i];
      const width = valueWidth(buf, o, map, i);
      if (width === valueEnds[i] - start && sameBytes(buf, start, o, width)) {
        values[i] = before[i];
        o += width;
        continue;
      }
    }
    values[i] = decodeValueAt(buf, o, map, i);
    if (noting) {
      valueStarts[i] = o;
      valueEnds[i] = o + lastWidth;
    }
    o += lastWidth;
  }
  lastOffset = o;
  return values;
}

/** The bytes one value of `column` takes at `o`, without decoding it. */
function valueWidth(buf: Buffer, o: number, map: TableMap, column: number): number {
  const type = map.types[column];
  const meta = map.meta[column];
  switch (type) {
    case ColumnType.TINY: case ColumnType.YEAR: return 1;
    case ColumnType.SHORT: return 2;
    case ColumnType.INT24: case ColumnType.DATE: return 3;
    case ColumnType.LONG: case ColumnType.FLOAT: return 4;
    case ColumnType.LONGLONG: case ColumnType.DOUBLE: return 8;
    case ColumnType.VARCHAR: case ColumnType.VAR_STRING: return meta < 256 ? 1 + buf[o] : 2 + buf.readUInt16LE(o);
    case ColumnType.DATETIME2: return 5 + ((meta + 1) >> 1);
    case ColumnType.TIMESTAMP2: return 4 + ((meta + 1) >> 1);
    case ColumnType.TIME2: return 3 + ((meta + 1) >> 1);
    case ColumnType.BLOB: case ColumnType.GEOMETRY: case ColumnType.JSON: return meta + buf.readUIntLE(o, meta);
    case ColumnType.NEWDECIMAL: {
      const precision = meta >> 8;
      const scale = meta & 0xff;
      const intg = precision - scale;
      return Math.floor(intg / 9) * 4 + DIG2BYTES[intg % 9] + Math.floor(scale / 9) * 4 + DIG2BYTES[scale % 9];
    }
    case ColumnType.STRING: {
      // ENUM, SET and CHAR travel as STRING, the real type in the metadata (see decodeOtherValue)
      const real = meta >> 8;
      if (real === ColumnType.ENUM || real === ColumnType.SET) return meta & 0xff;
      return stringColumnBytes(meta) < 256 ? 1 + buf[o] : 2 + buf.readUInt16LE(o);
    }
    case ColumnType.BIT: return (meta >> 8) + ((meta & 0xff) > 0 ? 1 : 0);
  }
  // the rest: the decoder's own width (or its error for a type it cannot decode)
  decodeOtherValue(buf, o, map, column);
  return lastWidth;
}

/** Skips one row image at `o` (see readRowImage); returns its end. */
function skipRowImage(buf: Buffer, o: number, map: TableMap, count: number, columnsAt: number, presentCount: number): number {
  const nullsAt = o;
  o += (presentCount + 7) >> 3;
  let j = 0;
  for (let i = 0; i < count; i++) {
    if ((buf[columnsAt + (i >> 3)] & (1 << (i & 7))) === 0) continue;
    const isNull = (buf[nullsAt + (j >> 3)] & (1 << (j & 7))) !== 0;
    j++;
    if (!isNull) o += valueWidth(buf, o, map, i);
  }
  return o;
}

/**
 * A rows event located but not decoded: the columns-present bitmap(s) and where each row's image(s) end. Row
 * `i` is `body[i === 0 ? firstRowAt : ends[i - 1], ends[i])`: for an update, its before image then its after image.
 */
export interface RowsLayout {
  readonly tableId: bigint;
  readonly map: TableMap;
  readonly kind: 'insert' | 'update' | 'delete';
  /** Columns in the row images (the TABLE_MAP's). */
  readonly count: number;
  readonly body: Buffer;
  /** The columns-present bitmap (before image for updates), (count + 7) >> 3 bytes. */
  readonly presentAt: number;
  /** The after image's columns-present bitmap (= presentAt unless an update). */
  readonly presentAfterAt: number;
  readonly firstRowAt: number;
  readonly ends: number[];
}

/** WRITE/UPDATE/DELETE_ROWS v1 and v2, located: each row's bytes found without decoding a value (see RowsLayout). */
export function locateRows(type: number, body: Buffer, tableMaps: ReadonlyMap<bigint, TableMap>): RowsLayout {
  const tableId = BigInt(body.readUIntLE(0, 6));
  const map = tableMaps.get(tableId);
  if (map === undefined) throw new TidemarkError('ErrBinlogCorrupt', `rows event for table id ${tableId} without its TABLE_MAP`);
  const v2 = type === EventType.WRITE_ROWS_V2 || type === EventType.UPDATE_ROWS_V2 || type === EventType.DELETE_ROWS_V2;
  const kind = type === EventType.WRITE_ROWS_V1 || type === EventType.WRITE_ROWS_V2 ? 'insert' : type === EventType.UPDATE_ROWS_V1 || type === EventType.UPDATE_ROWS_V2 ? 'update' : 'delete';
  let o = 8;
  if (v2) o += body.readUInt16LE(o);
  const [count, n] = readLenenc(body, o);
  o += n;
  if (count !== map.columnCount) throw new TidemarkError('ErrBinlogCorrupt', `rows event of ${map.schema}.${map.table} has ${count} columns, its TABLE_MAP ${map.columnCount}`);
  const bitmapBytes = (count + 7) >> 3;
  const presentAt = o;
  const presentCount = countBits(body, presentAt, count);
  o += bitmapBytes;
  let presentAfterAt = presentAt;
  let presentAfterCount = presentCount;
  if (kind === 'update') {
    presentAfterAt = o;
    presentAfterCount = countBits(body, presentAfterAt, count);
    o += bitmapBytes;
  }
  const firstRowAt = o;
  const ends: number[] = [];
  while (o < body.length) {
    const start = o;
    o = skipRowImage(body, o, map, count, presentAt, presentCount);
    if (kind === 'update') o = skipRowImage(body, o, map, count, presentAfterAt, presentAfterCount);
    // a row image always has its null bitmap at least: one that takes no bytes would repeat forever
    if (o <= start) throw new TidemarkError('ErrBinlogCorrupt', `rows event of ${map.schema}.${map.table} has an empty row image at ${start}`);
    ends.push(o);
  }
  if (o !== body.length) throw new TidemarkError('ErrBinlogCorrupt', `rows event of ${map.schema}.${map.table} ends inside a row (${o} of ${body.length} bytes)`);
  return { tableId, map, kind, count, body, presentAt, presentAfterAt, firstRowAt, ends };
}

/**
 * The images of one located row, decoded. `presentIn` holds the columns-present bitmap(s) at `presentAt` and
 * `presentAfterAt` (for an update); the images are `buf[o, end)`. Images that do not end exactly at `end` mean
 * the row was located with another TABLE_MAP than it is decoded with: an error, never values read out of place.
 */
export function decodeRowImages(kind: 'insert' | 'update' | 'delete', map: TableMap, count: number, presentIn: Buffer, presentAt: number, presentAfterAt: number, buf: Buffer, o: number, end: number): RowImage {
  const presentCount = countBits(presentIn, presentAt, count);
  let row: RowImage;
  if (kind === 'insert') row = { before: null, after: readRowImage(buf, o, map, count, presentIn, presentAt, presentCount) };
  else {
    if (kind === 'delete') row = { before: readRowImage(buf, o, map, count, presentIn, presentAt, presentCount), after: null };
    else {
      const before = readRowImage(buf, o, map, count, presentIn, presentAt, presentCount, 'before');
      const presentAfterCount = presentAfterAt === presentAt ? presentCount : countBits(presentIn, presentAfterAt, count);
      row = { before, after: readRowImage(buf, lastOffset, map, count, presentIn, presentAfterAt, presentAfterCount, before) };
    }
  }
  if (lastOffset !== end) throw new TidemarkError('ErrBinlogCorrupt', `a row of ${map.schema}.${map.table} decodes to ${lastOffset - o} bytes but has ${end - o}`);
  return row;
}

/** Every row of a located rows event, decoded. */
export function decodeLocatedRows(layout: RowsLayout): RowImage[] {
  const { body } = layout;
  const rows: RowImage[] = new Array<RowImage>(layout.ends.length);
  let start = layout.firstRowAt;
  for (let i = 0; i < rows.length; i++) {
    rows[i] = decodeRowImages(layout.kind, layout.map, layout.count, body, layout.presentAt, layout.presentAfterAt, body, start, layout.ends[i]);
    start = layout.ends[i];
  }
  return rows;
}

/** WRITE/UPDATE/DELETE_ROWS v1 and v2, decoded. */
export function decodeRows(type: number, body: Buffer, tableMaps: ReadonlyMap<bigint, TableMap>): RowsEvent {
  const layout = locateRows(type, body, tableMaps);
  return { tableId: layout.tableId, kind: layout.kind, rows: decodeLocatedRows(layout) };
}
