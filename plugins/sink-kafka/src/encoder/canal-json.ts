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
    const type = row.kind === 'insert' ? 'INSERT' : row.kind === 'update' ? 'UPDATE' : 'DELETE';
    const image = row.kind === 'delete' ? row.before : row.after;
    let text = `${table.head}"type":"${type}","es":${row.commitTime},"ts":${this.now()},"sql":"",${table.types},"data":[${rowObject(table, image)}],"old":`;
    text += row.kind === 'update' ? `[${rowObject(table, row.before)}]` : 'null';
    if (this.options.enableTidbExtension) text += `,"_tidb":{"commitTs":${row.commitTs}}`;
    return { key: null, value: this.bytes.of(`${text}}`) };
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

interface CanalTable {
  readonly schema: string;
  readonly name: string;
  /** `{"id":0,"database":…,"table":…,"pkNames":…,"isDdl":false,` */
  readonly head: string;
  /** `"sqlType":{…},"mysqlType":{…}` */
  readonly types: string;
  /** `"name":` per column */
  readonly keys: readonly string[];
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
    head: `{"id":0,"database":${JSON.stringify(row.table.schema)},"table":${JSON.stringify(row.table.table)},"pkNames":${pk.length === 0 ? 'null' : JSON.stringify(pk)},"isDdl":false,`,
    types: `"sqlType":{${sqlType}},"mysqlType":{${mysqlType}}`,
    keys,
    columnTypes,
  };
}

function rowObject(table: CanalTable, values: readonly ColumnValue[] | null): string {
  if (values === null) return 'null';
  let text = '{';
  for (let i = 0; i < table.keys.length; i++) {
    if (i > 0) text += ',';
    text += table.keys[i];
    text += canalValue(values[i] ?? null, table.columnTypes[i]);
  }
  return `${text}}`;
}

/** One value as canal-json's JSON text: a string literal, or null. */
export function canalValue(value: ColumnValue, type: ColumnType): string {
  if (value === null) return 'null';
  if (Buffer.isBuffer(value)) {
    if (type.kind === 'bit') return `"${bitsToBigInt(value)}"`;
    return JSON.stringify(value.toString('latin1'));
  }
  if (typeof value === 'number') {
    if (type.kind === 'float') return `"${plainNumberText(float32Text(value))}"`;
    return `"${plainNumberText(String(value))}"`;
  }
  if (typeof value === 'bigint') return `"${value}"`;
  return JSON.stringify(scalarText(value));
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
