import type { ColumnInfo, ColumnValue, DDLEvent, RowChangedEvent, Ts } from 'tidemark/sink';
import { columnType, jsonNumber, scalarText, type ColumnType } from './column-type.js';
import { MessageBytes } from './message-bytes.js';
import type { EncodedEvent, EncoderOptions, RowEncoder } from './types.js';

/** open-protocol's column flags (TiCDC model.ColumnFlagType). */
export const FLAG = { binary: 1, handleKey: 2, generated: 4, primaryKey: 8, uniqueKey: 16, multipleKey: 32, nullable: 64, unsigned: 128 } as const;
/** open-protocol's event types in the key's "t". */
export const OPEN_EVENT = { row: 1, ddl: 2, resolved: 3 } as const;
export const OPEN_PROTOCOL_VERSION = 1n;

/**
 * TiCDC Open Protocol (docs.pingcap.com ticdc-open-protocol): per event a JSON key {"ts","scm","tbl","t"} and a
 * JSON value ({"u"} insert, {"u","p"} update, {"d"} delete, {"q","t"} DDL, nothing for a resolved event), columns
 * as {"t": MySQL type code, "h": handle, "f": flags, "v": value}. Events are packed into one Kafka message by
 * `packOpenProtocol`: key = version (int64 BE, 1) then (length int64 BE, key)…, value = (length, value)….
 * Values: integers and floats as JSON numbers (exact), DECIMAL and temporal types as strings, BINARY/VARBINARY
 * as Go-quoted text (strconv.Quote without the quotes), BLOB as base64, as TiCDC's encoder writes them.
 * Snapshot reads (`row.snapshot`, `--snapshot initial`) are plain insert events ({"u"}): the protocol has no
 * snapshot marker, so a consumer cannot tell them from inserts.
 */
export class OpenProtocolEncoder implements RowEncoder {
  readonly protocol = 'open-protocol' as const;
  readonly batching = true;
  readonly ddlToAllPartitions = true;
  private readonly tables = new WeakMap<readonly ColumnInfo[], OpenTable>();
  private readonly bytes: MessageBytes;

  constructor(options: EncoderOptions) {
    this.bytes = options.bytes ?? new MessageBytes();
  }

  encodeRow(row: RowChangedEvent): EncodedEvent {
    const table = this.table(row);
    const key = `{"ts":${row.commitTs},${table.keyPart},"t":1}`;
    let value: string;
    if (row.kind === 'insert') value = `{"u":${columnsObject(table, row.after)}}`;
    else if (row.kind === 'update') value = `{"u":${columnsObject(table, row.after)},"p":${columnsObject(table, row.before)}}`;
    else value = `{"d":${columnsObject(table, row.before)}}`;
    return { key: this.bytes.of(key), value: this.bytes.of(value) };
  }

  encodeDDL(ddl: DDLEvent): EncodedEvent {
    const table = ddl.tables[0];
    const key = `{"ts":${ddl.commitTs},"scm":${JSON.stringify(table?.schema ?? ddl.schema)},"tbl":${JSON.stringify(table?.table ?? '')},"t":2}`;
    return { key: Buffer.from(key), value: Buffer.from(`{"q":${JSON.stringify(ddl.query)},"t":${tidbActionType(ddl.kind)}}`) };
  }

  encodeCheckpoint(ts: Ts): EncodedEvent {
    return { key: Buffer.from(`{"ts":${ts},"t":3}`), value: Buffer.alloc(0) };
  }

  private table(row: RowChangedEvent): OpenTable {
    const hit = this.tables.get(row.columns);
    if (hit !== undefined && hit.schema === row.table.schema && hit.name === row.table.table) return hit;
    const columnTypes = row.columns.map((c) => columnType(c.mysqlType));
    const table: OpenTable = {
      schema: row.table.schema,
      name: row.table.table,
      keyPart: `"scm":${JSON.stringify(row.table.schema)},"tbl":${JSON.stringify(row.table.table)}`,
      heads: row.columns.map((c, i) => {
        const t = columnTypes[i];
        let flags = 0;
        if (t.binary) flags |= FLAG.binary;
        if (c.primaryKey) flags |= FLAG.handleKey | FLAG.primaryKey;
        if (c.nullable) flags |= FLAG.nullable;
        if (t.unsigned) flags |= FLAG.unsigned;
        return `${JSON.stringify(c.name)}:{"t":${t.mysqlCode},${c.primaryKey ? '"h":true,' : ''}"f":${flags},"v":`;
      }),
      columnTypes,
    };
    this.tables.set(row.columns, table);
    return table;
  }
}

interface OpenTable {
  readonly schema: string;
  readonly name: string;
  readonly keyPart: string;
  /** `"name":{"t":…,"h":true,"f":…,"v":` per column */
  readonly heads: readonly string[];
  readonly columnTypes: readonly ColumnType[];
}

function columnsObject(table: OpenTable, values: readonly ColumnValue[] | null): string {
  if (values === null) return '{}';
  let text = '{';
  for (let i = 0; i < table.heads.length; i++) {
    if (i > 0) text += ',';
    text += table.heads[i];
    text += openValue(values[i] ?? null, table.columnTypes[i]);
    text += '}';
  }
  return `${text}}`;
}

/** One value as open-protocol's "v". */
export function openValue(value: ColumnValue, type: ColumnType): string {
  if (value === null) return 'null';
  switch (type.kind) {
    case 'int':
    case 'bit':
    case 'float':
    case 'double':
    case 'year':
      return jsonNumber(value, type);
    default:
      break;
  }
  if (Buffer.isBuffer(value)) {
    // BINARY/VARBINARY (and CHAR-coded MariaDB types) are Go-quoted text; BLOB-coded ones are []byte, base64 in JSON
    if (type.mysqlCode === 254 || type.mysqlCode === 15 || type.mysqlCode === 253) return JSON.stringify(goQuote(value));
    return `"${value.toString('base64')}"`;
  }
  if (typeof value === 'number' || typeof value === 'bigint') return `"${String(value)}"`;
  // TINYTEXT/TEXT/MEDIUMTEXT/LONGTEXT share the BLOB type codes (249–252): their values are Base64 like a BLOB's
  // (the protocol's column type table; TiCDC's consumer decodes them so)
  if (type.kind === 'text' && typeof value === 'string') return `"${Buffer.from(value, 'utf8').toString('base64')}"`;
  return JSON.stringify(scalarText(value));
}

const hex = '0123456789abcdef';

/** Go's strconv.Quote of a byte string, without the surrounding quotes (invalid UTF-8 bytes become \xNN). */
export function goQuote(bytes: Buffer): string {
  let out = '';
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i];
    if (b < 0x80) {
      i++;
      if (b === 0x22) out += '\\"';
      else if (b === 0x5c) out += '\\\\';
      else if (b >= 0x20 && b < 0x7f) out += String.fromCharCode(b);
      else if (b === 0x07) out += '\\a';
      else if (b === 0x08) out += '\\b';
      else if (b === 0x0c) out += '\\f';
      else if (b === 0x0a) out += '\\n';
      else if (b === 0x0d) out += '\\r';
      else if (b === 0x09) out += '\\t';
      else if (b === 0x0b) out += '\\v';
      else out += `\\x${hex[b >> 4]}${hex[b & 15]}`;
      continue;
    }
    const [cp, size] = decodeUtf8(bytes, i);
    if (cp < 0) {
      out += `\\x${hex[b >> 4]}${hex[b & 15]}`;
      i++;
      continue;
    }
    i += size;
    if (cp <= 0xa0 || cp === 0xad || (cp >= 0x2028 && cp <= 0x2029) || cp === 0xfeff) {
      out += `\\u${cp.toString(16).padStart(4, '0')}`; // not printable for Go (controls, NBSP, soft hyphen, separators, BOM)
    } else {
      out += String.fromCodePoint(cp);
    }
  }
  return out;
}

function decodeUtf8(bytes: Buffer, i: number): [number, number] {
  const b = bytes[i];
  const need = b >= 0xf0 && b <= 0xf4 ? 3 : b >= 0xe0 ? (b <= 0xef ? 2 : -1) : b >= 0xc2 && b <= 0xdf ? 1 : -1;
  if (need < 0 || i + need >= bytes.length) return [-1, 1];
  let cp = b & (need === 1 ? 0x1f : need === 2 ? 0x0f : 0x07);
  for (let k = 1; k <= need; k++) {
    const c = bytes[i + k];
    if ((c & 0xc0) !== 0x80) return [-1, 1];
    cp = (cp << 6) | (c & 0x3f);
  }
  if ((need === 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (need === 3 && (cp < 0x10000 || cp > 0x10ffff))) return [-1, 1];
  return [cp, need + 1];
}

/** TiDB's ActionType for the DDL kinds Tidemark classifies (an ALTER is reported as ActionModifyColumn's 12 at most precise). */
export function tidbActionType(kind: DDLEvent['kind']): number {
  switch (kind) {
    case 'create-database':
      return 1;
    case 'drop-database':
      return 2;
    case 'create-table':
      return 3;
    case 'drop-table':
      return 4;
    case 'truncate-table':
      return 11;
    case 'alter-table':
      return 12;
    case 'rename-table':
      return 14;
    default:
      return 0;
  }
}

/** Packs events into one open-protocol message (the key/value batch layout). */
export function packOpenProtocol(events: readonly EncodedEvent[]): { key: Buffer; value: Buffer } {
  let keyBytes = 8;
  let valueBytes = 0;
  for (const e of events) {
    keyBytes += 8 + (e.key?.length ?? 0);
    valueBytes += 8 + e.value.length;
  }
  const key = Buffer.allocUnsafe(keyBytes);
  const value = Buffer.allocUnsafe(valueBytes);
  key.writeBigInt64BE(OPEN_PROTOCOL_VERSION, 0);
  let k = 8;
  let v = 0;
  for (const e of events) {
    const ek = e.key ?? Buffer.alloc(0);
    key.writeBigInt64BE(BigInt(ek.length), k);
    k += 8 + ek.copy(key, k + 8);
    value.writeBigInt64BE(BigInt(e.value.length), v);
    v += 8 + e.value.copy(value, v + 8);
  }
  return { key, value };
}

/** Unpacks an open-protocol message into its events (for consumers and tests). */
export function unpackOpenProtocol(key: Buffer, value: Buffer): { key: Buffer; value: Buffer }[] {
  if (key.length < 8 || key.readBigInt64BE(0) !== OPEN_PROTOCOL_VERSION) throw new Error(`not an open-protocol v1 message key (${key.length} bytes)`);
  const out: { key: Buffer; value: Buffer }[] = [];
  let k = 8;
  let v = 0;
  while (k < key.length) {
    const kl = Number(key.readBigInt64BE(k));
    const ek = key.subarray(k + 8, k + 8 + kl);
    k += 8 + kl;
    const vl = v + 8 <= value.length ? Number(value.readBigInt64BE(v)) : 0;
    const ev = value.subarray(v + 8, v + 8 + vl);
    v += 8 + vl;
    out.push({ key: ek, value: ev });
  }
  return out;
}
