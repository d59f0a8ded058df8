/**
 * Binlog rows events built from values, for unit tests of the stages after the reader: the bytes are the
 * binlog's own row image layout (the same the upstream sends), so a test row goes through `locateRows`,
 * `rowOf` and the mounter's decode like a real one. Column kinds: int (INT), bigint (BIGINT), text
 * (VARCHAR(1000) utf8mb4), bytes (BLOB).
 */
import { EventType } from '../../src/core/upstream/binlog-reader.js';
import { ColumnType, type TableMap } from '../../src/core/upstream/events.js';
import { locateRows, type RowImage, type RowsLayout, type Value } from '../../src/core/upstream/rows.js';
import { rowOf, setRowCommitTime, type SortedRow } from '../../src/core/pipeline/row-codec.js';

export type ColumnKind = 'int' | 'bigint' | 'text' | 'bytes';

const TYPES: Record<ColumnKind, [type: number, meta: number, charset?: number]> = {
  int: [ColumnType.LONG, 0],
  bigint: [ColumnType.LONGLONG, 0],
  text: [ColumnType.VARCHAR, 4000, 45],
  bytes: [ColumnType.BLOB, 2, 63],
};

export function testTableMap(table: string, columns: readonly ColumnKind[], options: { schema?: string; tableId?: bigint; names?: readonly string[] | null } = {}): TableMap {
  const names = options.names === null ? undefined : (options.names ?? columns.map((_, i) => `c${i}`));
  return {
    tableId: options.tableId ?? 1n, schema: options.schema ?? 's', table, columnCount: columns.length,
    types: Uint8Array.from(columns.map((c) => TYPES[c][0])), meta: Uint16Array.from(columns.map((c) => TYPES[c][1])),
    nullable: columns.map(() => true), names, unsigned: columns.map(() => false), primaryKey: [0],
    enumValues: new Map(), setValues: new Map(),
    charsets: new Map(columns.flatMap((c, i) => (TYPES[c][2] === undefined ? [] : [[i, TYPES[c][2]] as const]))),
  };
}

function image(map: TableMap, values: readonly Value[]): Buffer {
  const parts: Uint8Array[] = [];
  const nulls = Buffer.alloc((map.columnCount + 7) >> 3);
  values.forEach((v, i) => {
    if (v === null) nulls[i >> 3] |= 1 << (i & 7);
  });
  parts.push(nulls);
  values.forEach((v, i) => {
    if (v === null) return;
    switch (map.types[i]) {
      case ColumnType.LONG: {
        const b = Buffer.alloc(4);
        b.writeInt32LE(Number(v));
        parts.push(b);
        break;
      }
      case ColumnType.LONGLONG: {
        const b = Buffer.alloc(8);
        b.writeBigInt64LE(BigInt(v as bigint | number));
        parts.push(b);
        break;
      }
      case ColumnType.VARCHAR: {
        const text = Buffer.from(String(v), 'utf8');
        const b = Buffer.alloc(2);
        b.writeUInt16LE(text.length);
        parts.push(b, text);
        break;
      }
      default: {
        const bytes = Buffer.isBuffer(v) ? v : Buffer.from(String(v));
        const b = Buffer.alloc(2);
        b.writeUInt16LE(bytes.length);
        parts.push(b, bytes);
      }
    }
  });
  return Buffer.concat(parts);
}

/** A rows event (v1) of `map` with these rows, located as the binlog reader locates it. */
export function locatedRows(map: TableMap, kind: 'insert' | 'update' | 'delete', rows: readonly RowImage[]): RowsLayout {
  const head = Buffer.alloc(9);
  head.writeUIntLE(Number(map.tableId), 0, 6);
  head[8] = map.columnCount; // lenenc, < 251
  const present = Buffer.alloc((map.columnCount + 7) >> 3, 0xff);
  const parts: Uint8Array[] = [head, present];
  if (kind === 'update') parts.push(present);
  for (const row of rows) {
    if (kind !== 'insert') parts.push(image(map, row.before!));
    if (kind !== 'delete') parts.push(image(map, row.after!));
  }
  const type = kind === 'insert' ? EventType.WRITE_ROWS_V1 : kind === 'update' ? EventType.UPDATE_ROWS_V1 : EventType.DELETE_ROWS_V1;
  return locateRows(type, Buffer.concat(parts), new Map([[map.tableId, map]]));
}

/** One sorted row (the sorter's payload) of `map`. */
export function sortedRow(map: TableMap, kind: 'insert' | 'update' | 'delete', before: readonly Value[] | null, after: readonly Value[] | null, mapVersion = 1, commitTime = 0): SortedRow {
  const row = rowOf(locatedRows(map, kind, [{ before: before === null ? null : [...before], after: after === null ? null : [...after] }]), 0, mapVersion);
  setRowCommitTime(row, commitTime);
  return row;
}
