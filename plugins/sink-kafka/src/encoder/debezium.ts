import type { ColumnInfo, ColumnValue, DDLEvent, RowChangedEvent } from 'tidemark/sink';
import { bitsToBigInt, columnType, float32Text, scalarText, type ColumnType } from './column-type.js';
import { MessageBytes } from './message-bytes.js';
import type { EncodedEvent, EncoderOptions, RowEncoder } from './types.js';

export const DEBEZIUM_SOURCE_VERSION = '0.1.0';

/**
 * Debezium's MySQL connector change event, JSON converter with schemas enabled (debezium.io, MySQL connector
 * "Data change events" and "Data type mappings"): key {schema, payload: primary key}, value {schema, payload:
 * {before, after, source, op, ts_ms, transaction}}. Defaults of the connector: decimal.handling.mode=precise
 * (Kafka Connect Decimal, base64 of the unscaled two's-complement integer, scale in the schema),
 * time.precision.mode=adaptive_time_microseconds (DATE days, DATETIME(0-3) ms, DATETIME(4-6) µs, TIME µs,
 * TIMESTAMP ISO-8601 UTC text), binary.handling.mode=bytes (base64), BIT(1) boolean, BIT(n) Bits bytes
 * little-endian; BIGINT UNSIGNED as bigint.unsigned.handling.mode=precise (Decimal, scale 0), so values above
 * 2^63 stay exact. Zero dates become null. A tombstone (key, null value) follows a delete unless tombstones-on-delete=false (the sink
 * writes it). DDL becomes a schema change event {source, ts_ms, databaseName, ddl, tableChanges: []} that the sink
 * writes to the schema-change topic only (include-schema-changes, default true). `source` and the envelope carry
 * `ts_us`/`ts_ns` besides `ts_ms` (Debezium ≥ 2.6). The protocol has no watermark in data topics.
 * Snapshot reads (`row.snapshot`, `--snapshot initial`) are read events as the connector's initial snapshot
 * writes them: `op: "r"`, `before: null`, `source.snapshot` the SnapshotRecord of the row within its table
 * ("first_in_data_collection", "true", "last_in_data_collection"; "false" on every change read from the binlog).
 */
export class DebeziumEncoder implements RowEncoder {
  readonly protocol = 'debezium' as const;
  readonly batching = false;
  readonly ddlToAllPartitions = true;
  private readonly tables = new WeakMap<readonly ColumnInfo[], DebeziumTable>();
  private readonly now: () => number;
  private readonly serverName: string;
  private readonly bytes: MessageBytes;
  private commit: CommitTexts | undefined;
  private processingMs = Number.NaN;
  private processing = Buffer.alloc(0);

  constructor(options: EncoderOptions) {
    this.now = options.now ?? Date.now;
    this.bytes = options.bytes ?? new MessageBytes();
    this.serverName = options.serverName ?? 'tidemark';
  }

  encodeRow(row: RowChangedEvent): EncodedEvent {
    const table = this.table(row);
    const snapshot = row.snapshot;
    const op = snapshot !== undefined ? 'r' : row.kind === 'insert' ? 'c' : row.kind === 'update' ? 'u' : 'd';
    const out = this.bytes;
    // written in place, byte by byte (no string per value or per message): the key, then the value
    const keyValues = row.kind === 'delete' ? row.before : row.after;
    let key: Buffer | null = null;
    if (table.keyHead !== null && keyValues !== null) {
      out.begin(table.keyHead.length + 64);
      out.bytes(table.keyHead);
      struct(out, table, keyValues, table.pk);
      out.ascii('}');
      key = out.end();
    }
    out.begin(table.valueHead.length + 512);
    out.bytes(table.valueHead);
    out.ascii('"before":');
    struct(out, table, row.before, table.all);
    out.ascii(',"after":');
    struct(out, table, row.after, table.all);
    const commit = this.commitTexts(row);
    out.bytes(table.sourceHead);
    out.bytes(commit.ms);
    out.ascii(',"snapshot":');
    out.ascii(snapshot === undefined ? '"false"' : SNAPSHOT_RECORD[snapshot]);
    out.bytes(table.sourceDb);
    out.bytes(commit.microNanos);
    out.bytes(table.sourceTable);
    out.bytes(commit.pos);
    out.ascii(',"row":');
    out.number(row.seq);
    out.ascii(',"thread":null,"query":null,"commit_ts":');
    out.bytes(commit.ts);
    out.ascii('},"transaction":null,"op":"');
    out.ascii(op);
    out.ascii('","ts_ms":');
    out.bytes(this.processingText(this.now()));
    out.ascii('}}');
    return { key, value: out.end() };
  }

  /** The text of a row's commit time and position, made again only when they change (a transaction's rows share them). */
  private commitTexts(row: RowChangedEvent): CommitTexts {
    const last = this.commit;
    if (last !== undefined && last.commitTs === row.commitTs && last.commitTime === row.commitTime) return last;
    const time = row.commitTime;
    const texts: CommitTexts = {
      commitTs: row.commitTs,
      commitTime: time,
      ms: Buffer.from(String(time)),
      microNanos: Buffer.from(microNanosText(time)),
      pos: Buffer.from(String(Number(row.commitTs & 0xffffffffn))),
      ts: Buffer.from(row.commitTs.toString()),
    };
    this.commit = texts;
    return texts;
  }

  /** `<ms>,"ts_us":…,"ts_ns":…` of the processing time, made again only when the millisecond changes. */
  private processingText(now: number): Buffer {
    if (now !== this.processingMs) {
      this.processingMs = now;
      this.processing = Buffer.from(`${String(now)},${microNanosText(now)}`);
    }
    return this.processing;
  }

  encodeDDL(ddl: DDLEvent): EncodedEvent {
    const db = JSON.stringify(ddl.tables[0]?.schema ?? ddl.schema);
    const table = JSON.stringify(ddl.tables[0]?.table ?? null);
    const source = `{"version":"${DEBEZIUM_SOURCE_VERSION}","connector":"mysql","name":${JSON.stringify(this.serverName)},"ts_ms":${ddl.commitTime},"snapshot":"false","db":${db},"sequence":null,${microNanosText(ddl.commitTime)},"table":${table},"server_id":0,"gtid":null,"file":"","pos":${Number(ddl.commitTs & 0xffffffffn)},"row":0,"thread":null,"query":null,"commit_ts":${ddl.commitTs}}`;
    const key = `{"schema":{"type":"struct","fields":[{"type":"string","optional":false,"field":"databaseName"}],"optional":false,"name":"io.debezium.connector.mysql.SchemaChangeKey","version":1},"payload":{"databaseName":${db}}}`;
    const value = `{"schema":{"type":"struct","fields":[${SOURCE_SCHEMA},{"type":"int64","optional":false,"field":"ts_ms"},{"type":"string","optional":true,"field":"databaseName"},{"type":"string","optional":true,"field":"schemaName"},{"type":"string","optional":true,"field":"ddl"},{"type":"array","items":{"type":"struct","fields":[],"optional":false,"name":"io.debezium.connector.schema.Change","version":1},"optional":false,"field":"tableChanges"}],"optional":false,"name":"io.debezium.connector.mysql.SchemaChangeValue","version":1},"payload":{"source":${source},"ts_ms":${this.now()},"databaseName":${db},"schemaName":null,"ddl":${JSON.stringify(ddl.query)},"tableChanges":[]}}`;
    return { key: Buffer.from(key), value: Buffer.from(value) };
  }

  encodeCheckpoint(): null {
    return null;
  }

  private table(row: RowChangedEvent): DebeziumTable {
    const hit = this.tables.get(row.columns);
    if (hit !== undefined && hit.schema === row.table.schema && hit.name === row.table.table) return hit;
    const table = buildTable(this.serverName, row);
    this.tables.set(row.columns, table);
    return table;
  }
}

/**
 * `source.snapshot` of a snapshot read, as JSON text: Debezium's SnapshotRecord (io.debezium.connector.SnapshotRecord,
 * lower-cased) of the row's place in its table. A table's snapshot here is not one of a whole-connector snapshot,
 * so FIRST and LAST (the first and last record of every table together) are never used; a table's only row is
 * its last, as the connector marks it.
 */
export const SNAPSHOT_RECORD: Readonly<Record<NonNullable<RowChangedEvent['snapshot']>, string>> = {
  first: '"first_in_data_collection"',
  row: '"true"',
  last: '"last_in_data_collection"',
  only: '"last_in_data_collection"',
};

/** `"ts_us":…,"ts_ns":…` (Debezium ≥ 2.6) of a time in ms; µs and ns as text, so that ns past 2^53 stay exact. */
function microNanosText(ms: number): string {
  return ms === 0 ? '"ts_us":0,"ts_ns":0' : `"ts_us":${ms}000,"ts_ns":${ms}000000`;
}

/** The bytes of a commit's times and position in `source`, kept while a transaction's rows are written. */
interface CommitTexts {
  readonly commitTs: bigint;
  readonly commitTime: number;
  /** `ts_ms`'s digits. */
  readonly ms: Buffer;
  /** `"ts_us":…,"ts_ns":…`. */
  readonly microNanos: Buffer;
  /** `pos`'s digits (the low 32 bits of commit-ts). */
  readonly pos: Buffer;
  /** `commit_ts`'s digits. */
  readonly ts: Buffer;
}


const SOURCE_SCHEMA =
  '{"type":"struct","fields":[{"type":"string","optional":false,"field":"version"},{"type":"string","optional":false,"field":"connector"},{"type":"string","optional":false,"field":"name"},{"type":"int64","optional":false,"field":"ts_ms"},{"type":"string","optional":true,"name":"io.debezium.data.Enum","version":1,"parameters":{"allowed":"true,first,first_in_data_collection,last_in_data_collection,last,false,incremental"},"default":"false","field":"snapshot"},{"type":"string","optional":false,"field":"db"},{"type":"string","optional":true,"field":"sequence"},{"type":"int64","optional":true,"field":"ts_us"},{"type":"int64","optional":true,"field":"ts_ns"},{"type":"string","optional":true,"field":"table"},{"type":"int64","optional":false,"field":"server_id"},{"type":"string","optional":true,"field":"gtid"},{"type":"string","optional":false,"field":"file"},{"type":"int64","optional":false,"field":"pos"},{"type":"int32","optional":false,"field":"row"},{"type":"int64","optional":true,"field":"thread"},{"type":"string","optional":true,"field":"query"},{"type":"int64","optional":true,"field":"commit_ts"}],"optional":false,"name":"io.debezium.connector.mysql.Source","field":"source"}';

interface DebeziumTable {
  readonly schema: string;
  readonly name: string;
  /** `,"source":{"version":…,"connector":"mysql","name":…,"ts_ms":` */
  readonly sourceHead: Buffer;
  /** `,"db":…,"sequence":null,` */
  readonly sourceDb: Buffer;
  /** `,"table":…,"server_id":0,"gtid":null,"file":"","pos":` */
  readonly sourceTable: Buffer;
  /** Every column's position, in order (the struct of a row image). */
  readonly all: readonly number[];
  /** `{"schema":{…Envelope…},"payload":{`, as UTF-8 */
  readonly valueHead: Buffer;
  /** `{"schema":{…Key…},"payload":` as UTF-8, or null without a primary key */
  readonly keyHead: Buffer | null;
  /** `"name":` per column, UTF-8 */
  readonly keys: readonly Buffer[];
  readonly columnTypes: readonly ColumnType[];
  readonly pk: readonly number[];
}

/** The Kafka Connect schema of one column (Debezium's MySQL type mapping). */
export function debeziumFieldSchema(column: ColumnInfo, optional = column.nullable): string {
  const t = columnType(column.mysqlType);
  const field = (type: string, extra = ''): string => `{"type":"${type}","optional":${optional}${extra},"field":${JSON.stringify(column.name)}}`;
  const named = (type: string, name: string, parameters?: Record<string, string>): string =>
    field(type, `,"name":"${name}","version":1${parameters === undefined ? '' : `,"parameters":${JSON.stringify(parameters)}`}`);
  switch (t.kind) {
    case 'int':
      if (t.unsigned && t.base === 'bigint') return named('bytes', 'org.apache.kafka.connect.data.Decimal', { scale: '0', 'connect.decimal.precision': '20' });
      if (t.base === 'tinyint' || t.base === 'bool' || t.base === 'boolean') return field('int16');
      if (t.base === 'smallint') return field(t.unsigned ? 'int32' : 'int16');
      if (t.base === 'mediumint') return field('int32');
      if (t.base === 'int' || t.base === 'integer') return field(t.unsigned ? 'int64' : 'int32');
      return field('int64');
    case 'bit':
      return t.precision <= 1 ? field('boolean') : named('bytes', 'io.debezium.data.Bits', { length: String(t.precision) });
    case 'float':
      return field('float');
    case 'double':
      return field('double');
    case 'decimal':
      return named('bytes', 'org.apache.kafka.connect.data.Decimal', { scale: String(t.scale), 'connect.decimal.precision': String(t.precision) });
    case 'date':
      return named('int32', 'io.debezium.time.Date');
    case 'datetime':
      return t.fsp <= 3 ? named('int64', 'io.debezium.time.Timestamp') : named('int64', 'io.debezium.time.MicroTimestamp');
    case 'timestamp':
      return named('string', 'io.debezium.time.ZonedTimestamp');
    case 'time':
      return named('int64', 'io.debezium.time.MicroTime');
    case 'year':
      return named('int32', 'io.debezium.time.Year');
    case 'json':
      return named('string', 'io.debezium.data.Json');
    case 'enum':
      return named('string', 'io.debezium.data.Enum', { allowed: t.elements.join(',') });
    case 'set':
      return named('string', 'io.debezium.data.EnumSet', { allowed: t.elements.join(',') });
    default:
      return field(t.binary ? 'bytes' : 'string');
  }
}

function buildTable(serverName: string, row: RowChangedEvent): DebeziumTable {
  const { schema, table } = row.table;
  const prefix = `${serverName}.${schema}.${table}`;
  const fields = row.columns.map((c) => debeziumFieldSchema(c)).join(',');
  const struct = (field: string): string => `{"type":"struct","fields":[${fields}],"optional":true,"name":${JSON.stringify(`${prefix}.Value`)},"field":"${field}"}`;
  const envelope = `{"type":"struct","fields":[${struct('before')},${struct('after')},${SOURCE_SCHEMA},{"type":"struct","fields":[{"type":"string","optional":false,"field":"id"},{"type":"int64","optional":false,"field":"total_order"},{"type":"int64","optional":false,"field":"data_collection_order"}],"optional":true,"name":"event.block","version":1,"field":"transaction"},{"type":"string","optional":false,"field":"op"},{"type":"int64","optional":true,"field":"ts_ms"},{"type":"int64","optional":true,"field":"ts_us"},{"type":"int64","optional":true,"field":"ts_ns"}],"optional":false,"name":${JSON.stringify(`${prefix}.Envelope`)},"version":1}`;
  const pk = row.columns.flatMap((c, i) => (c.primaryKey ? [i] : []));
  const keyFields = pk.map((i) => debeziumFieldSchema(row.columns[i], false)).join(',');
  return {
    schema,
    name: table,
    sourceHead: Buffer.from(`,"source":{"version":"${DEBEZIUM_SOURCE_VERSION}","connector":"mysql","name":${JSON.stringify(serverName)},"ts_ms":`),
    sourceDb: Buffer.from(`,"db":${JSON.stringify(schema)},"sequence":null,`),
    sourceTable: Buffer.from(`,"table":${JSON.stringify(table)},"server_id":0,"gtid":null,"file":"","pos":`),
    all: row.columns.map((_, i) => i),
    valueHead: Buffer.from(`{"schema":${envelope},"payload":{`),
    keyHead: pk.length === 0 ? null : Buffer.from(`{"schema":{"type":"struct","fields":[${keyFields}],"optional":false,"name":${JSON.stringify(`${prefix}.Key`)}},"payload":`),
    keys: row.columns.map((c) => Buffer.from(`${JSON.stringify(c.name)}:`)),
    columnTypes: row.columns.map((c) => columnType(c.mysqlType)),
    pk,
  };
}

/** `{"name":value,…}` of the image's values at these positions, or null, written in place. */
function struct(out: MessageBytes, table: DebeziumTable, values: readonly ColumnValue[] | null, positions: readonly number[]): void {
  if (values === null) return out.ascii('null');
  out.ascii('{');
  for (let k = 0; k < positions.length; k++) {
    const i = positions[k];
    if (k > 0) out.ascii(',');
    out.bytes(table.keys[i]);
    valueInto(out, values[i] ?? null, table.columnTypes[i]);
  }
  out.ascii('}');
}

/** Column kinds whose values debeziumValue turns into another form; a string of any other kind is a JSON string. */
const CONVERTED_KINDS: ReadonlySet<ColumnType['kind']> = new Set(['int', 'bit', 'float', 'double', 'decimal', 'date', 'datetime', 'timestamp', 'time', 'year']);

/** debeziumValue's text, written in place: integers as digits and strings between quotes without a string of their own. */
function valueInto(out: MessageBytes, value: ColumnValue, type: ColumnType): void {
  if (type.kind === 'int' && !(type.unsigned && type.base === 'bigint')) {
    if (typeof value === 'number' && Number.isSafeInteger(value)) return out.integer(value);
    if (typeof value === 'bigint') return out.bigint(value);
  } else if (typeof value === 'string' && !CONVERTED_KINDS.has(type.kind)) return out.jsonString(value);
  out.ascii(debeziumValue(value, type));
}

/** One value in Debezium's JSON form for its column type. */
export function debeziumValue(value: ColumnValue, type: ColumnType): string {
  if (value === null) return 'null';
  switch (type.kind) {
    case 'int':
      if (type.unsigned && type.base === 'bigint') return `"${decimalBase64(scalarText(toScalar(value)), 0)}"`;
      return typeof value === 'boolean' ? (value ? '1' : '0') : String(toScalar(value));
    case 'bit': {
      const n = Buffer.isBuffer(value) ? bitsToBigInt(value) : BigInt(toScalar(value));
      if (type.precision <= 1) return n === 0n ? 'false' : 'true';
      const bytes = Buffer.alloc(Math.ceil(type.precision / 8));
      for (let i = 0; i < bytes.length; i++) bytes[i] = Number((n >> BigInt(8 * i)) & 0xffn); // little-endian, as BitSet.toByteArray
      return `"${bytes.toString('base64')}"`;
    }
    case 'float':
      return typeof value === 'number' ? (Number.isFinite(value) ? float32Text(value) : 'null') : String(toScalar(value));
    case 'double':
      return typeof value === 'number' ? (Number.isFinite(value) ? String(value) : 'null') : String(toScalar(value));
    case 'decimal':
      return `"${decimalBase64(scalarText(toScalar(value)), type.scale)}"`;
    case 'date': {
      const days = epochDays(scalarText(toScalar(value)));
      return days === null ? 'null' : String(days);
    }
    case 'datetime':
      return datetimeJson(scalarText(toScalar(value)), type.fsp);
    case 'timestamp': {
      const text = scalarText(toScalar(value));
      if (epochMicros(text) === null) return 'null';
      return JSON.stringify(`${text.replace(' ', 'T')}Z`);
    }
    case 'time':
      return String(timeMicros(scalarText(toScalar(value))));
    case 'year':
      return String(toScalar(value));
    default:
      if (Buffer.isBuffer(value)) return `"${value.toString('base64')}"`;
      return JSON.stringify(scalarText(value));
  }
}

function toScalar(value: Exclude<ColumnValue, null>): Exclude<ColumnValue, null | Buffer> {
  return Buffer.isBuffer(value) ? value.toString('latin1') : value;
}

/** Kafka Connect Decimal: the unscaled value as big-endian two's complement, minimal length. */
export function decimalBytes(text: string, scale: number): Buffer {
  const negative = text.startsWith('-');
  const [intPart, fracPart = ''] = (negative ? text.slice(1) : text).split('.');
  const frac = (fracPart + '0'.repeat(scale)).slice(0, scale);
  let n = BigInt((intPart === '' ? '0' : intPart) + frac);
  if (negative) n = -n;
  const magnitude = n < 0n ? -n : n;
  let width = Math.max(1, Math.ceil(magnitude.toString(16).length / 2));
  const fits = (w: number): boolean => n >= -(1n << BigInt(8 * w - 1)) && n < 1n << BigInt(8 * w - 1);
  while (!fits(width)) width++;
  while (width > 1 && fits(width - 1)) width--;
  const unsigned = n < 0n ? (1n << BigInt(8 * width)) + n : n;
  return Buffer.from(unsigned.toString(16).padStart(width * 2, '0'), 'hex');
}

/** Room for a decimal of up to 15 digits (< 2^53) as two's complement, written from the end. */
const decimalScratch = Buffer.alloc(8);

/**
 * decimalBytes(text, scale) as base64, without a BigInt or a Buffer for an unscaled value of up to 15 digits
 * (every DECIMAL(15, s) and most values of wider ones); wider values go through decimalBytes.
 */
export function decimalBase64(text: string, scale: number): string {
  const negative = text.charCodeAt(0) === 45; // '-'
  const dot = text.indexOf('.');
  const intEnd = dot < 0 ? text.length : dot;
  const intDigits = intEnd - (negative ? 1 : 0);
  if (intDigits + scale > 15) return decimalBytes(text, scale).toString('base64');
  let n = 0;
  for (let i = negative ? 1 : 0; i < intEnd; i++) n = n * 10 + (text.charCodeAt(i) - 48);
  for (let i = 0; i < scale; i++) {
    const at = dot < 0 ? -1 : dot + 1 + i;
    n = n * 10 + (at >= 0 && at < text.length ? text.charCodeAt(at) - 48 : 0);
  }
  // the minimal two's complement: a negative -m is the bits of m - 1, inverted
  const u = negative && n > 0 ? n - 1 : n;
  let width = 1;
  while (u >= 2 ** (8 * width - 1)) width++;
  let rest = u;
  for (let i = 7; i >= 8 - width; i--) {
    const byte = rest % 256;
    decimalScratch[i] = negative && n > 0 ? 255 - byte : byte;
    rest = (rest - byte) / 256;
  }
  return decimalScratch.toString('base64', 8 - width, 8);
}

/** Days from 1970-01-01 to a proleptic Gregorian date (days past a month's end run into the next, as Date does). */
function daysFromCivil(y: number, m: number, d: number): number {
  y -= m <= 2 ? 1 : 0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
}

/** Digits of text[from, from + count) as a number, or -1 when one is not a digit. */
function digitsAt(text: string, from: number, count: number): number {
  let n = 0;
  for (let i = from; i < from + count; i++) {
    const c = text.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    n = n * 10 + c;
  }
  return n;
}

/**
 * A DATETIME as Debezium's JSON value: ms since the epoch for fsp ≤ 3 (io.debezium.time.Timestamp), µs for more
 * (MicroTimestamp), null for a zero date. `YYYY-MM-DD HH:MM:SS[.f…]` is read without a regex, a Date or a BigInt
 * while the µs stay exact as a number; anything else goes through epochMicros.
 */
export function datetimeJson(text: string, fsp: number): string {
  const fractionDigits = text.length - 20;
  const plain = (text.length === 19 || (fractionDigits >= 1 && fractionDigits <= 6 && text.charCodeAt(19) === 46)) && text.charCodeAt(4) === 45 && text.charCodeAt(7) === 45 && text.charCodeAt(10) === 32 && text.charCodeAt(13) === 58 && text.charCodeAt(16) === 58;
  const y = plain ? digitsAt(text, 0, 4) : -1;
  const mo = plain ? digitsAt(text, 5, 2) : -1;
  const d = plain ? digitsAt(text, 8, 2) : -1;
  const h = plain ? digitsAt(text, 11, 2) : -1;
  const mi = plain ? digitsAt(text, 14, 2) : -1;
  const s = plain ? digitsAt(text, 17, 2) : -1;
  let micros = 0;
  if (plain && fractionDigits > 0) {
    micros = digitsAt(text, 20, fractionDigits);
    for (let i = fractionDigits; i < 6 && micros >= 0; i++) micros *= 10;
  }
  if (y < 0 || mo < 0 || d < 0 || h < 0 || mi < 0 || s < 0 || micros < 0) {
    const us = epochMicros(text);
    if (us === null) return 'null';
    return fsp <= 3 ? String(us / 1000n) : String(us);
  }
  if (y === 0 || mo === 0 || d === 0) return 'null';
  const ms = ((daysFromCivil(y, mo, d) * 24 + h) * 60 + mi) * 60_000 + s * 1000;
  const us = ms * 1000 + micros;
  if (!Number.isSafeInteger(us)) {
    const exact = BigInt(ms) * 1000n + BigInt(micros);
    return fsp <= 3 ? String(exact / 1000n) : String(exact);
  }
  if (fsp > 3) return String(us);
  // ms as BigInt division gives them, toward zero: us = q * 1000 + r with 0 ≤ r < 1000
  const q = ms + Math.floor(micros / 1000);
  return String(q < 0 && micros % 1000 !== 0 ? q + 1 : q);
}

/** Reads a Kafka Connect Decimal back to its text with `scale` digits. */
export function decimalFromBytes(bytes: Buffer, scale: number): string {
  if (bytes.length === 0) return scale > 0 ? `0.${'0'.repeat(scale)}` : '0';
  let n = BigInt(`0x${bytes.toString('hex')}`);
  if ((bytes[0] & 0x80) !== 0) n -= 1n << BigInt(8 * bytes.length);
  const negative = n < 0n;
  const digits = (negative ? -n : n).toString().padStart(scale + 1, '0');
  const text = scale === 0 ? digits : `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
  return negative ? `-${text}` : text;
}

const dateRe = /^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?)?$/;

function utcMillis(y: number, mo: number, d: number, h: number, mi: number, s: number): number {
  const date = new Date(0);
  date.setUTCFullYear(y, mo - 1, d);
  date.setUTCHours(h, mi, s, 0);
  return date.getTime();
}

/** µs since the epoch of a DATETIME text (UTC), null for a zero date. */
export function epochMicros(text: string): bigint | null {
  const m = dateRe.exec(text);
  if (m === null || m[1] === '0000' || m[2] === '00' || m[3] === '00') return null;
  const ms = utcMillis(Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4] ?? 0), Number(m[5] ?? 0), Number(m[6] ?? 0));
  return BigInt(ms) * 1000n + BigInt((m[7] ?? '').padEnd(6, '0') || '0');
}

export function epochDays(text: string): number | null {
  const us = epochMicros(text);
  return us === null ? null : Number(us / 86_400_000_000n);
}

/** µs of a TIME text, negative and > 24 h included. */
export function timeMicros(text: string): bigint {
  const m = /^(-)?(\d+):(\d{2}):(\d{2})(?:\.(\d{1,6}))?$/.exec(text);
  if (m === null) return 0n;
  const us = (BigInt(m[2]) * 3600n + BigInt(m[3]) * 60n + BigInt(m[4])) * 1_000_000n + BigInt((m[5] ?? '').padEnd(6, '0') || '0');
  return m[1] === '-' ? -us : us;
}

/** The text of a DATETIME from µs since the epoch, with `fsp` fractional digits. */
export function datetimeText(us: bigint, fsp: number): string {
  let ms = us / 1000n;
  let micros = us % 1_000_000n;
  if (micros < 0n) micros += 1_000_000n;
  ms = (us - micros) / 1000n;
  const d = new Date(Number(ms));
  const pad = (n: number, w = 2): string => String(n).padStart(w, '0');
  const base = `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
  return fsp > 0 ? `${base}.${String(micros).padStart(6, '0').slice(0, fsp)}` : base;
}
