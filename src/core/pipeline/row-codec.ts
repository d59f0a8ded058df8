import { BugIndicatingError } from '../errors/index.js';
import type { TableMap } from '../upstream/events.js';
import { decodeRowImages, type RowsLayout, type Value } from '../upstream/rows.js';

/**
 * One row change as it travels from the puller through the transaction buffer and the sorter (memory or
 * spill files) to the mounter: the bytes of its binlog row image(s), copied once out of the rows event behind
 * a small header, and decoded once, by the mounter, with the TABLE_MAP version the header names. Nothing is
 * decoded or encoded on the way: a row that waits (a big transaction, a backlog) is one small buffer for the
 * garbage collector, about the size it had in the binlog.
 *
 *   u8 kind | u8 sharers | u32 table-map version | f64 commit time (ms, set at the commit) | u16 column count
 *   | columns-present bitmap | columns-present bitmap of the after image (updates only)
 *   | row image (before, or after for inserts) | after image (updates only)
 *
 * The images are the binlog's own: a NULL bitmap over the present columns, then their values. `sharers` is how
 * many changefeeds of the capture were given the row's rows event by the shared binlog read, and so hold this very
 * buffer (1: the row is this changefeed's alone; see SharedRows); its high bit says one of them decoded it.
 */
export type SortedRow = Buffer;

const KINDS = ['insert', 'update', 'delete'] as const;
export type RowKind = (typeof KINDS)[number];

export interface DecodedRow {
  readonly kind: RowKind;
  readonly mapVersion: number;
  readonly commitTime: number;
  readonly before: Value[] | null;
  readonly after: Value[] | null;
}

const KIND_AT = 0;
const SHARERS_AT = 1;
const VERSION_AT = 2;
const COMMIT_TIME_AT = 6;
const COUNT_AT = 14;
const HEADER = 16;
/** What a row takes in memory beyond its bytes (the Buffer object and its share of the pool). */
const ROW_OVERHEAD = 48;
/** Decoded values take several times their binlog bytes (strings, numbers and arrays are objects). */
const DECODED_PER_ROW_BYTE = 4;
/** Rough bytes of a mounted row beyond its values (the event object, its column list reference). */
const DECODED_ROW_OVERHEAD = 96;

/**
 * Copies at most this many bytes by hand: for a narrow row's tens of bytes, Buffer#copy's argument checks cost more
 * than the copy (rowOf took 225 ns a row with two copies and the checked writes, 95 ns without).
 */
const HAND_COPY_BYTES = 64;

function copyBytes(from: Buffer, to: Buffer, at: number, start: number, end: number): void {
  if (end - start > HAND_COPY_BYTES) {
    from.copy(to, at, start, end);
    return;
  }
  for (let i = start; i < end; i++) to[at++] = from[i];
}

/** Row `i` of a located rows event, as the sorter's payload (for `sharers` changefeeds, at most 127). */
export function rowOf(layout: RowsLayout, i: number, mapVersion: number, sharers = 1): SortedRow {
  const { body, count } = layout;
  const bitmapBytes = (count + 7) >> 3;
  const bitmaps = layout.kind === 'update' ? 2 * bitmapBytes : bitmapBytes;
  const start = i === 0 ? layout.firstRowAt : layout.ends[i - 1];
  const end = layout.ends[i];
  const row = Buffer.allocUnsafe(HEADER + bitmaps + end - start);
  // the header byte by byte (the Buffer write methods check their arguments); the commit time (set at the commit) 0
  row[KIND_AT] = layout.kind === 'insert' ? 0 : layout.kind === 'update' ? 1 : 2;
  row[SHARERS_AT] = sharers > 127 ? 127 : sharers;
  row[VERSION_AT] = mapVersion & 0xff;
  row[VERSION_AT + 1] = (mapVersion >>> 8) & 0xff;
  row[VERSION_AT + 2] = (mapVersion >>> 16) & 0xff;
  row[VERSION_AT + 3] = mapVersion >>> 24;
  for (let b = COMMIT_TIME_AT; b < COUNT_AT; b++) row[b] = 0;
  row[COUNT_AT] = count & 0xff;
  row[COUNT_AT + 1] = count >>> 8;
  copyBytes(body, row, HEADER, layout.presentAt, layout.presentAt + bitmapBytes);
  if (bitmaps > bitmapBytes) copyBytes(body, row, HEADER + bitmapBytes, layout.presentAfterAt, layout.presentAfterAt + bitmapBytes);
  copyBytes(body, row, HEADER + bitmaps, start, end);
  return row;
}

/** The bytes a sorted row is reckoned to take in memory (for the memory quota). */
export function rowBytes(row: SortedRow): number {
  return row.length + ROW_OVERHEAD;
}

/** How many changefeeds hold this row's buffer (see SortedRow). */
export function rowSharers(row: SortedRow): number {
  return row[SHARERS_AT] & 0x7f;
}

/**
 * Marks a shared row decoded (in the byte of its sharers, which the other sharers hold too); returns whether it was
 * already (so its images, no longer kept for them, need not be kept again).
 */
export function markRowDecoded(row: SortedRow): boolean {
  const byte = row[SHARERS_AT];
  row[SHARERS_AT] = byte | 0x80;
  return (byte & 0x80) !== 0;
}

/** The bytes a row is reckoned to take in memory once decoded (its values are objects: several times its bytes). */
export function decodedRowBytes(row: SortedRow): number {
  return DECODED_PER_ROW_BYTE * rowBytes(row) + DECODED_ROW_OVERHEAD;
}

/** Rows are made as they are read; their transaction's commit time is known at the commit. */
export function setRowCommitTime(row: SortedRow, commitTime: number): void {
  row.writeDoubleLE(commitTime, COMMIT_TIME_AT);
}

/** The same for a row packed at `offset` of a slab (see PackedRows.visit). */
export function setPackedRowCommitTime(slab: Buffer, offset: number, commitTime: number): void {
  slab.writeDoubleLE(commitTime, offset + COMMIT_TIME_AT);
}

export function rowCommitTime(row: SortedRow): number {
  return row.readDoubleLE(COMMIT_TIME_AT);
}

export function rowKind(row: SortedRow): RowKind {
  const kind = KINDS[row[KIND_AT]];
  if (kind === undefined) throw new BugIndicatingError(`sorted row has an unknown kind ${row[KIND_AT]}`);
  return kind;
}

export function rowMapVersion(row: SortedRow): number {
  return row.readUInt32LE(VERSION_AT);
}

/** Decodes a sorted row with the TABLE_MAP of its version (the mounter's). */
export function decodeRow(row: SortedRow, map: TableMap): DecodedRow {
  const kind = rowKind(row);
  const count = row.readUInt16LE(COUNT_AT);
  const bitmapBytes = (count + 7) >> 3;
  const presentAfterAt = kind === 'update' ? HEADER + bitmapBytes : HEADER;
  const imagesAt = kind === 'update' ? HEADER + 2 * bitmapBytes : HEADER + bitmapBytes;
  const { before, after } = decodeRowImages(kind, map, count, row, HEADER, presentAfterAt, row, imagesAt, row.length);
  return { kind, mapVersion: rowMapVersion(row), commitTime: rowCommitTime(row), before, after };
}

/**
 * The sorter's codec: a sorted row is its bytes, packed in memory and written to disk as they are (and taken as a
 * view of the slab or block). A row several changefeeds share stays the one buffer they all hold (see SharedRows).
 */
export const SORTED_ROW_CODEC = {
  size: rowBytes,
  encode: (row: SortedRow): Buffer => row,
  decode: (bytes: Buffer): SortedRow => bytes,
  keepsIdentity: (row: SortedRow): boolean => rowSharers(row) > 1,
};
