import { BugIndicatingError } from '../errors/index.js';
import type { Value } from '../upstream/rows.js';

/**
 * The sorter's payload of one raw row change: its kind, the version of the TABLE_MAP it was decoded with,
 * and the before/after images, so that a change can sit in memory or on disk as bytes and be mounted when
 * it leaves the sorter. One allocation per row (the payload itself); a scratch buffer is reused.
 *
 *   u8 kind | u32 table-map version | f64 commit time (ms, set at the commit) | image before | image after
 *   image = u16 count (0xffff = absent) | value*
 *   value = u8 tag | body   (tag: 0 null, 1 f64, 2 int53 as f64, 3 bigint text, 4 utf8, 5 bytes; lengths u32)
 */
const KINDS = ['insert', 'update', 'delete'] as const;
export type RowKind = (typeof KINDS)[number];

export interface DecodedRow {
  readonly kind: RowKind;
  readonly mapVersion: number;
  readonly commitTime: number;
  readonly before: Value[] | null;
  readonly after: Value[] | null;
}

const ABSENT = 0xffff;
const HEADER = 13;

/** Rows are encoded as they arrive; their transaction's commit time is known at the commit. */
export function setCommitTime(payload: Buffer, commitTime: number): void {
  payload.writeDoubleLE(commitTime, 5);
}
let scratch = Buffer.allocUnsafe(64 * 1024);

function ensure(offset: number, extra: number): void {
  if (offset + extra <= scratch.length) return;
  let size = scratch.length * 2;
  while (size < offset + extra) size *= 2;
  const bigger = Buffer.allocUnsafe(size);
  scratch.copy(bigger, 0, 0, offset);
  scratch = bigger;
}

function writeImage(image: readonly Value[] | null, offset: number): number {
  ensure(offset, 2);
  if (image === null) {
    scratch.writeUInt16LE(ABSENT, offset);
    return offset + 2;
  }
  scratch.writeUInt16LE(image.length, offset);
  let o = offset + 2;
  for (const v of image) {
    if (v === null) {
      ensure(o, 1);
      scratch[o++] = 0;
    } else if (typeof v === 'number') {
      ensure(o, 9);
      scratch[o++] = Number.isSafeInteger(v) ? 2 : 1;
      scratch.writeDoubleLE(v, o);
      o += 8;
    } else if (typeof v === 'bigint') {
      const text = v.toString();
      ensure(o, 1 + 1 + text.length);
      scratch[o++] = 3;
      scratch[o++] = text.length;
      o += scratch.write(text, o, 'latin1');
    } else if (typeof v === 'string') {
      const max = v.length * 3;
      ensure(o, 5 + max);
      scratch[o] = 4;
      const n = scratch.write(v, o + 5, 'utf8');
      scratch.writeUInt32LE(n, o + 1);
      o += 5 + n;
    } else {
      ensure(o, 5 + v.length);
      scratch[o] = 5;
      scratch.writeUInt32LE(v.length, o + 1);
      v.copy(scratch, o + 5);
      o += 5 + v.length;
    }
  }
  return o;
}

export function encodeRow(kind: RowKind, mapVersion: number, before: readonly Value[] | null, after: readonly Value[] | null): Buffer {
  ensure(0, HEADER);
  scratch[0] = KINDS.indexOf(kind);
  scratch.writeUInt32LE(mapVersion, 1);
  scratch.writeDoubleLE(0, 5);
  let o = writeImage(before, HEADER);
  o = writeImage(after, o);
  return Buffer.from(scratch.subarray(0, o));
}

function readImage(buf: Buffer, offset: number): [Value[] | null, number] {
  const count = buf.readUInt16LE(offset);
  let o = offset + 2;
  if (count === ABSENT) return [null, o];
  const values = new Array<Value>(count);
  for (let i = 0; i < count; i++) {
    const tag = buf[o++];
    switch (tag) {
      case 0:
        values[i] = null;
        break;
      case 1:
      case 2:
        values[i] = buf.readDoubleLE(o);
        o += 8;
        break;
      case 3: {
        const n = buf[o++];
        values[i] = BigInt(buf.toString('latin1', o, o + n));
        o += n;
        break;
      }
      case 4: {
        const n = buf.readUInt32LE(o);
        values[i] = buf.toString('utf8', o + 4, o + 4 + n);
        o += 4 + n;
        break;
      }
      case 5: {
        const n = buf.readUInt32LE(o);
        // a copy: the payload may be a view of a spilled block that is reused
        values[i] = Buffer.from(buf.subarray(o + 4, o + 4 + n));
        o += 4 + n;
        break;
      }
      default:
        throw new BugIndicatingError(`sorter payload has an unknown value tag ${tag} at offset ${o - 1}`);
    }
  }
  return [values, o];
}

export function decodeRow(buf: Buffer): DecodedRow {
  const kind = KINDS[buf[0]];
  if (kind === undefined) throw new BugIndicatingError(`sorter payload has an unknown row kind ${buf[0]}`);
  const mapVersion = buf.readUInt32LE(1);
  const [before, o] = readImage(buf, HEADER);
  const [after] = readImage(buf, o);
  return { kind, mapVersion, commitTime: buf.readDoubleLE(5), before, after };
}

/**
 * One row change as it travels from the puller through the transaction buffer and the sorter to the mounter:
 * decoded from the binlog row image once, never encoded while it stays in memory. Its commit time is set at the
 * commit. `bytes` is what it is reckoned to take in memory (for the memory quota), fixed when it is made.
 */
export interface RowChange {
  readonly kind: RowKind;
  readonly mapVersion: number;
  commitTime: number;
  readonly before: Value[] | null;
  readonly after: Value[] | null;
  readonly bytes: number;
}

/** Fixed bytes of a row change in memory beyond its values (the object, its image arrays). */
const ROW_CHANGE_OVERHEAD = 128;
/** Decoded values take several times their binlog bytes (strings, numbers and arrays are objects). */
const DECODED_PER_BINLOG_BYTE = 4;

/** The memory a row change is reckoned to take, from its share of the binlog rows event it came in. */
export function rowChangeBytes(binlogBytes: number): number {
  return ROW_CHANGE_OVERHEAD + DECODED_PER_BINLOG_BYTE * binlogBytes;
}

/** A row change kept as it was decoded: encoded only when it spills, and decoded when read back. */
export const ROW_CHANGE_CODEC = {
  size: (row: RowChange): number => row.bytes,
  encode(row: RowChange): Buffer {
    const bytes = encodeRow(row.kind, row.mapVersion, row.before, row.after);
    setCommitTime(bytes, row.commitTime);
    return bytes;
  },
  decode(bytes: Buffer): RowChange {
    const row = decodeRow(bytes);
    return { kind: row.kind, mapVersion: row.mapVersion, commitTime: row.commitTime, before: row.before, after: row.after, bytes: rowChangeBytes(bytes.length) };
  },
};

/**
 * A row change as the transaction buffer and the sorter hold it: decoded (RowChange) while the changefeed holds
 * few rows, so a row that goes straight on to the sink is decoded once and never encoded; or its compact bytes
 * (`encodeRow`) once the changefeed holds more (a backlog), because rows that wait are cheaper for the garbage
 * collector as one buffer each than as the objects, arrays and strings of their values. The mounter decodes
 * those once.
 */
export type SortedRow = RowChange | Buffer;

/** Bytes of a compact row beyond its bytes (the Buffer object). */
const COMPACT_OVERHEAD = 32;

export const SORTED_ROW_CODEC = {
  size: (row: SortedRow): number => (Buffer.isBuffer(row) ? row.length + COMPACT_OVERHEAD : row.bytes),
  encode: (row: SortedRow): Buffer => (Buffer.isBuffer(row) ? row : ROW_CHANGE_CODEC.encode(row)),
  /** Read back from disk it stays compact: a view into the block read, which is not reused. */
  decode: (bytes: Buffer): SortedRow => bytes,
};

/** Sets the commit time of a row of the transaction that just committed. */
export function setRowCommitTime(row: SortedRow, commitTime: number): void {
  if (Buffer.isBuffer(row)) setCommitTime(row, commitTime);
  else row.commitTime = commitTime;
}

/** The row's kind, TABLE_MAP version, commit time and images, decoding it if it is compact. */
export function decodedRow(row: SortedRow): DecodedRow {
  return Buffer.isBuffer(row) ? decodeRow(row) : row;
}
