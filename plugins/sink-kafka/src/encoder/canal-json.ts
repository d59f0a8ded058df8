import type { ColumnInfo, ColumnValue, DDLEvent, RowChangedEvent, Ts } from 'tidemark/sink';
import { bitsToBigInt, columnType, float32Text, plainNumberText, scalarText, type ColumnType } from './column-type.js';
import { MessageBytes } from './message-bytes.js';
import type { EncodedEvent, EncoderOptions, RowEncoder } from './types.js';

/**
 * canal-json as TiCDC writes it (docs.pingcap.com ticdc-canal-json): Canal's flat message, one row per message,
 * every value as a string (or null), binary values as ISO-8859-1 text, floats without exponent, `sqlType`
 * java.sql.Types codes, `mysqlType` the column type, `old` the full pre-image of an update. With
 * enable-tidb-extension, DML and DDL carry `_tidb.commitTs` and checkpoints become TIDB_WATERMARK messages.
 * Snapshot reads (`row.snapshot`, `--snapshot initial`) are plain INSERT messages: Canal has no type for a read
 * and the message no snapshot marker, so a consumer cannot tell them from inserts.
 */
export class CanalJsonEncoder implements RowEncoder {
  readonly protocol = 'canal-json' as const;
  readonly batching = false;
  readonly ddlToAllPartitions = false;
  private readonly tables = new WeakMap<readonly ColumnInfo[], CanalTable>();
  private readonly now: () => number;
  private readonly bytes: MessageBytes;

  constructor(private readonly options: EncoderOptions) {
    this.now = options.now ?? Date.now;
    this.bytes = options.bytes ?? new MessageBytes();
  }

  encodeRow(row: RowChangedEvent): EncodedEvent {
    const table = this.table(row);
    const out = this.bytes;
    // written in place, byte by byte (no string per value or per message)
    out.begin();
    out.bytes(table.head);
    out.bytes(row.kind === 'insert' ? TYPE_INSERT : row.kind === 'update' ? TYPE_UPDATE : TYPE_DELETE);
    out.number(row.commitTime);
    out.bytes(TS);
    out.number(this.now());
    out.bytes(table.types);
    rowObject(out, table, row.kind === 'delete' ? row.before : row.after);
    if (row.kind === 'update') {
      out.bytes(OLD_ROW);
      rowObject(out, table, row.before);
      out.ascii(']');
    } else out.bytes(OLD_NULL);
    if (this.options.enableTidbExtension) {
      out.bytes(TIDB);
      out.ascii(row.commitTs.toString());
      out.ascii('}');
    }
    out.ascii('}');
    return { key: null, value: out.end() };
  }

  encodeDDL(ddl: DDLEvent): EncodedEvent {
    const table = ddl.tables[0];
    let text = `{"id":0,"database":${JSON.stringify(table?.schema ?? ddl.schema)},"table":${JSON.stringify(table?.table ?? '')},"pkNames":null,"isDdl":true,"type":"${canalDdlType(ddl.kind)}","es":${ddl.commitTime},"ts":${this.now()},"sql":${JSON.stringify(ddl.query)},"sqlType":null,"mysqlType":null,"data":null,"old":null`;
    if (this.options.enableTidbExtension) text += `,"_tidb":{"commitTs":${ddl.commitTs}}`;
    return { key: null, value: Buffer.from(`${text}}`) };
  }

  encodeCheckpoint(ts: Ts): EncodedEvent | null {
    if (!this.options.enableTidbExtension) return null;
    const now = this.now();
    return {
      key: null,
      value: Buffer.from(`{"id":0,"database":"","table":"","pkNames":null,"isDdl":false,"type":"TIDB_WATERMARK","es":${now},"ts":${now},"sql":"","sqlType":null,"mysqlType":null,"data":null,"old":null,"_tidb":{"watermarkTs":${ts}}}`),
    };
  }

  private table(row: RowChangedEvent): CanalTable {
    const hit = this.tables.get(row.columns);
    if (hit !== undefined && hit.schema === row.table.schema && hit.name === row.table.table) return hit;
    const table = buildTable(row);
    this.tables.set(row.columns, table);
    return table;
  }
}

const TYPE_INSERT = Buffer.from('"type":"INSERT","es":');
const TYPE_UPDATE = Buffer.from('"type":"UPDATE","es":');
const TYPE_DELETE = Buffer.from('"type":"DELETE","es":');
const TS = Buffer.from(',"ts":');
const OLD_ROW = Buffer.from('],"old":[');
const OLD_NULL = Buffer.from('],"old":null');
const TIDB = Buffer.from(',"_tidb":{"commitTs":');

interface CanalTable {
  readonly schema: string;
  readonly name: string;
  /** `{"id":0,"database":…,"table":…,"pkNames":…,"isDdl":false,` */
  readonly head: Buffer;
  /** `,"sql":"","sqlType":{…},"mysqlType":{…},"data":[` */
  readonly types: Buffer;
  /** `"name":` per column (`,"name":` after the first) */
  readonly keys: readonly Buffer[];
  readonly columnTypes: readonly ColumnType[];
}

function buildTable(row: RowChangedEvent): CanalTable {
  const pk = row.columns.filter((c) => c.primaryKey).map((c) => c.name);
  const columnTypes = row.columns.map((c) => columnType(c.mysqlType));
  const keys = row.columns.map((c) => `${JSON.stringify(c.name)}:`);
  const sqlType = row.columns.map((c, i) => `${keys[i]}${columnTypes[i].javaType}`).join(',');
  const mysqlType = row.columns.map((c, i) => `${keys[i]}${JSON.stringify(c.mysqlType)}`).join(',');
  return {
    schema: row.table.schema,
    name: row.table.table,
    head: Buffer.from(`{"id":0,"database":${JSON.stringify(row.table.schema)},"table":${JSON.stringify(row.table.table)},"pkNames":${pk.length === 0 ? 'null' : JSON.stringify(pk)},"isDdl":false,`),
    types: Buffer.from(`,"sql":"","sqlType":{${sqlType}},"mysqlType":{${mysqlType}},"data":[`),
    keys: keys.map((key, i) => Buffer.from(i === 0 ? key : `,${key}`)),
    columnTypes,
  };
}

/** `{"name":value,…}` of an image, or null. */
function rowObject(out: MessageBytes, table: CanalTable, values: readonly ColumnValue[] | null): void {
  if (values === null) return out.ascii('null');
  out.ascii('{');
  for (let i = 0; i < table.keys.length; i++) {
    out.bytes(table.keys[i]);
    canalValue(out, values[i] ?? null, table.columnTypes[i]);
  }
  out.ascii('}');
}

/** One value as canal-json's JSON text: a string literal, or null. */
function canalValue(out: MessageBytes, value: ColumnValue, type: ColumnType): void {
  if (value === null) return out.ascii('null');
  if (typeof value === 'string') return out.jsonString(value);
  if (typeof value === 'bigint') {
    out.ascii('"');
    out.bigint(value);
    return out.ascii('"');
  }
  if (typeof value === 'number') {
    if (type.kind !== 'float' && Number.isSafeInteger(value)) {
      out.ascii('"');
      out.integer(value);
      return out.ascii('"');
    }
    return out.ascii(`"${plainNumberText(type.kind === 'float' ? float32Text(value) : String(value))}"`);
  }
  if (Buffer.isBuffer(value)) {
    if (type.kind === 'bit') return out.ascii(`"${bitsToBigInt(value)}"`);
    return out.jsonString(value.toString('latin1'));
  }
  out.jsonString(scalarText(value));
}

export function canalDdlType(kind: DDLEvent['kind']): string {
  switch (kind) {
    case 'create-table':
      return 'CREATE';
    case 'drop-table':
      return 'ERASE';
    case 'rename-table':
      return 'RENAME';
    case 'truncate-table':
      return 'TRUNCATE';
    case 'alter-table':
      return 'ALTER';
    default:
      return 'QUERY';
  }
}
