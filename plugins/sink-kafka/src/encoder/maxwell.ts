import type { ColumnInfo, ColumnValue, DDLEvent, RowChangedEvent } from 'tidemark/sink';
import { bitsToBigInt, columnType, jsonNumber, scalarText, type ColumnType } from './column-type.js';
import { MessageBytes } from './message-bytes.js';
import type { EncodedEvent, EncoderOptions, RowEncoder } from './types.js';

/**
 * Maxwell's JSON (maxwells-daemon.io/dataformat): {"database","table","type","ts" (seconds),"xid","xoffset",
 * "data", "old" (update: only the changed columns, their previous values)}, key {"database","table","pk.<col>"}.
 * Values are native JSON: integers and DECIMAL as numbers (exact digits), strings, DATETIME/TIME as text with
 * their fraction, binary as base64, JSON columns embedded, SET as an array, BIT(1) boolean else a number.
 * `xid` is the commit ts (Tidemark has no server xid); Maxwell's "commit": true on a transaction's last row is
 * left out because a transaction reaches the sink table by table. DDL becomes Maxwell's schema-change shape
 * {"type": "table-create" | "table-drop" | "table-alter" | "database-create" | "database-drop", "database",
 * "table", "sql", "ts"}. The protocol has no watermark.
 * Snapshot reads (`row.snapshot`, `--snapshot initial`) are Maxwell's bootstrap: `"type":"bootstrap-insert"` (with
 * `xid` = the snapshot's ts and `xoffset`, which Maxwell's own bootstrap rows lack), and around a table's rows
 * `{"database","table","type":"bootstrap-start","ts","data":{}}` before its first and the same with
 * `"bootstrap-complete"` after its last (`encodeSnapshotEdge`; key {"database","table"}).
 */
export class MaxwellEncoder implements RowEncoder {
  readonly protocol = 'maxwell' as const;
  readonly batching = false;
  readonly ddlToAllPartitions = true;
  private readonly tables = new WeakMap<readonly ColumnInfo[], MaxwellTable>();
  private readonly bytes: MessageBytes;

  constructor(options: EncoderOptions) {
    this.bytes = options.bytes ?? new MessageBytes();
  }

  encodeRow(row: RowChangedEvent): EncodedEvent {
    const table = this.table(row);
    const ts = Math.floor(row.commitTime / 1000);
    const image = row.kind === 'delete' ? row.before : row.after;
    let text = `${table.head}"type":"${row.snapshot === undefined ? row.kind : 'bootstrap-insert'}","ts":${ts},"xid":${row.commitTs},"xoffset":${row.seq},"data":${dataObject(table, image)}`;
    if (row.kind === 'update') text += `,"old":${oldObject(table, row.before, row.after)}`;
    let key: Buffer | null = null;
    if (table.pk.length > 0 && image !== null) {
      let k = table.keyHead;
      for (const i of table.pk) k += `,${table.pkKeys[i]}${maxwellValue(image[i] ?? null, table.columnTypes[i])}`;
      key = this.bytes.of(`${k}}`);
    }
    return { key, value: this.bytes.of(`${text}}`) };
  }

  encodeDDL(ddl: DDLEvent): EncodedEvent {
    const table = ddl.tables[0];
    const database = JSON.stringify(table?.schema ?? ddl.schema);
    const value = `{"type":"${maxwellDdlType(ddl.kind)}","database":${database},"table":${table === undefined ? 'null' : JSON.stringify(table.table)},"sql":${JSON.stringify(ddl.query)},"ts":${Math.floor(ddl.commitTime / 1000)},"xid":${ddl.commitTs}}`;
    return { key: Buffer.from(`{"database":${database}}`), value: Buffer.from(value) };
  }

  /** Maxwell's bootstrap-start / bootstrap-complete message of the row's table (no xid, empty data, as Maxwell's). */
  encodeSnapshotEdge(row: RowChangedEvent, edge: 'start' | 'complete'): EncodedEvent {
    const table = this.table(row);
    const value = `${table.head}"type":"${edge === 'start' ? 'bootstrap-start' : 'bootstrap-complete'}","ts":${Math.floor(row.commitTime / 1000)},"data":{}}`;
    return { key: Buffer.from(`${table.keyHead}}`), value: Buffer.from(value) };
  }

  encodeCheckpoint(): null {
    return null;
  }

  private table(row: RowChangedEvent): MaxwellTable {
    const hit = this.tables.get(row.columns);
    if (hit !== undefined && hit.schema === row.table.schema && hit.name === row.table.table) return hit;
    const db = JSON.stringify(row.table.schema);
    const tbl = JSON.stringify(row.table.table);
    const table: MaxwellTable = {
      schema: row.table.schema,
      name: row.table.table,
      head: `{"database":${db},"table":${tbl},`,
      keyHead: `{"database":${db},"table":${tbl}`,
      keys: row.columns.map((c) => `${JSON.stringify(c.name)}:`),
      pkKeys: row.columns.map((c) => `${JSON.stringify(`pk.${c.name.toLowerCase()}`)}:`),
      columnTypes: row.columns.map((c) => columnType(c.mysqlType)),
      pk: row.columns.flatMap((c, i) => (c.primaryKey ? [i] : [])),
    };
    this.tables.set(row.columns, table);
    return table;
  }
}

interface MaxwellTable {
  readonly schema: string;
  readonly name: string;
  readonly head: string;
  readonly keyHead: string;
  readonly keys: readonly string[];
  readonly pkKeys: readonly string[];
  readonly columnTypes: readonly ColumnType[];
  readonly pk: readonly number[];
}

function dataObject(table: MaxwellTable, values: readonly ColumnValue[] | null): string {
  if (values === null) return 'null';
  let text = '{';
  for (let i = 0; i < table.keys.length; i++) {
    if (i > 0) text += ',';
    text += table.keys[i];
    text += maxwellValue(values[i] ?? null, table.columnTypes[i]);
  }
  return `${text}}`;
}

function sameValue(a: ColumnValue, b: ColumnValue): boolean {
  if (Buffer.isBuffer(a) && Buffer.isBuffer(b)) return a.equals(b);
  return a === b;
}

function oldObject(table: MaxwellTable, before: readonly ColumnValue[] | null, after: readonly ColumnValue[] | null): string {
  if (before === null || after === null) return '{}';
  let text = '{';
  let first = true;
  for (let i = 0; i < table.keys.length; i++) {
    const old = before[i] ?? null;
    if (sameValue(old, after[i] ?? null)) continue;
    if (!first) text += ',';
    first = false;
    text += table.keys[i];
    text += maxwellValue(old, table.columnTypes[i]);
  }
  return `${text}}`;
}

/** One value as Maxwell writes it. */
export function maxwellValue(value: ColumnValue, type: ColumnType): string {
  if (value === null) return 'null';
  switch (type.kind) {
    case 'int':
    case 'float':
    case 'double':
    case 'year':
      return jsonNumber(value, type);
    case 'decimal':
      return jsonNumber(value, type);
    case 'bit': {
      const n = Buffer.isBuffer(value) ? bitsToBigInt(value) : BigInt(scalarText(value));
      return type.precision <= 1 ? (n === 0n ? 'false' : 'true') : n.toString();
    }
    case 'json': {
      const text = Buffer.isBuffer(value) ? value.toString('utf8') : scalarText(value);
      try {
        JSON.parse(text);
        return text;
      } catch {
        return JSON.stringify(text);
      }
    }
    case 'set': {
      const text = Buffer.isBuffer(value) ? value.toString('utf8') : scalarText(value);
      return JSON.stringify(text === '' ? [] : text.split(','));
    }
    default:
      if (Buffer.isBuffer(value)) return `"${value.toString('base64')}"`;
      return JSON.stringify(scalarText(value));
  }
}

export function maxwellDdlType(kind: DDLEvent['kind']): string {
  switch (kind) {
    case 'create-database':
      return 'database-create';
    case 'drop-database':
      return 'database-drop';
    case 'create-table':
      return 'table-create';
    case 'drop-table':
      return 'table-drop';
    default:
      return 'table-alter';
  }
}
