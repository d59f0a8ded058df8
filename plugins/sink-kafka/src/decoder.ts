import type { ColumnInfo } from 'tidemark/sink';
import type { Protocol } from './config.js';
import { columnType, type ColumnType } from './encoder/column-type.js';
import { datetimeText, decimalFromBytes } from './encoder/debezium.js';
import { unpackOpenProtocol } from './encoder/open-protocol.js';

/**
 * Decoders for the four protocols, for consumers and tests: Kafka messages back to row changes with values in
 * the sink testkit's canonical text (Buffer as 0x-hex, numbers and bigints in decimal, NULL as null). Numbers
 * are read exactly (a small JSON reader keeps their digits), so BIGINT UNSIGNED and DECIMAL survive.
 */
export type CanonicalRow = Record<string, string | null>;

/**
 * A snapshot read as a format tells it (set only on those rows, which are inserts): debezium's `op: "r"` with
 * `source.snapshot` "first"/"first_in_data_collection" → 'first', "last"/"last_in_data_collection" → 'last' (a
 * table's only row too), any other → 'row'; maxwell's `bootstrap-insert` → 'row' (the table's first and last are
 * told by the `bootstrap` events around its rows). canal-json and open-protocol carry no marker: their snapshot
 * reads decode as plain inserts.
 */
export type DecodedSnapshot = 'first' | 'row' | 'last';

export type DecodedEvent =
  | {
      readonly kind: 'row';
      readonly schema: string;
      readonly table: string;
      readonly type: 'insert' | 'update' | 'delete';
      readonly commitTs: bigint | undefined;
      readonly before: CanonicalRow | null;
      readonly after: CanonicalRow | null;
      readonly snapshot?: DecodedSnapshot;
    }
  | { readonly kind: 'ddl'; readonly schema: string; readonly table: string; readonly query: string; readonly commitTs: bigint | undefined }
  | { readonly kind: 'watermark'; readonly ts: bigint }
  /** maxwell's bootstrap-start (before a table's snapshot rows) and bootstrap-complete (after them). */
  | { readonly kind: 'bootstrap'; readonly schema: string; readonly table: string; readonly phase: 'start' | 'complete' };

/** Column facts the decoder needs for formats that do not carry them (maxwell) or lose the precision (debezium). */
export type ColumnsOf = (schema: string, table: string) => readonly ColumnInfo[] | undefined;

/** A JSON number, kept as its source text. */
export class JsonNumber {
  constructor(readonly raw: string) {}
}
export type JsonValue = null | boolean | string | JsonNumber | JsonValue[] | { [key: string]: JsonValue };

/** JSON.parse that keeps numbers as their text. */
export function parseJsonExact(text: string): JsonValue {
  let i = 0;
  const ws = (): void => {
    while (i < text.length && (text[i] === ' ' || text[i] === '\n' || text[i] === '\r' || text[i] === '\t')) i++;
  };
  const value = (): JsonValue => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const obj: { [key: string]: JsonValue } = {};
      ws();
      if (text[i] === '}') {
        i++;
        return obj;
      }
      for (;;) {
        ws();
        const key = str();
        ws();
        if (text[i++] !== ':') throw new Error(`bad JSON at ${i}`);
        obj[key] = value();
        ws();
        const d = text[i++];
        if (d === '}') return obj;
        if (d !== ',') throw new Error(`bad JSON at ${i}`);
      }
    }
    if (c === '[') {
      i++;
      const arr: JsonValue[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return arr;
      }
      for (;;) {
        arr.push(value());
        ws();
        const d = text[i++];
        if (d === ']') return arr;
        if (d !== ',') throw new Error(`bad JSON at ${i}`);
      }
    }
    if (c === '"') return str();
    if (text.startsWith('true', i)) {
      i += 4;
      return true;
    }
    if (text.startsWith('false', i)) {
      i += 5;
      return false;
    }
    if (text.startsWith('null', i)) {
      i += 4;
      return null;
    }
    const m = /-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?/y;
    m.lastIndex = i;
    const hit = m.exec(text);
    if (hit === null) throw new Error(`bad JSON at ${i}`);
    i += hit[0].length;
    return new JsonNumber(hit[0]);
  };
  const str = (): string => {
    if (text[i] !== '"') throw new Error(`bad JSON string at ${i}`);
    const start = i;
    i++;
    while (text[i] !== '"') {
      if (i >= text.length) throw new Error('unterminated JSON string');
      if (text[i] === '\\') i++;
      i++;
    }
    i++;
    return JSON.parse(text.slice(start, i)) as string;
  };
  const out = value();
  ws();
  if (i !== text.length) throw new Error(`trailing data in JSON at ${i}`);
  return out;
}

type Obj = { [key: string]: JsonValue };
const isObj = (v: JsonValue | undefined): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof JsonNumber);
const asText = (v: JsonValue | undefined): string | null => (v === null || v === undefined ? null : v instanceof JsonNumber ? v.raw : typeof v === 'string' ? v : typeof v === 'boolean' ? (v ? '1' : '0') : stringifyExact(v));

/** JSON text of a parsed value, numbers with their source digits. */
export function stringifyExact(v: JsonValue): string {
  if (v === null) return 'null';
  if (v instanceof JsonNumber) return v.raw;
  if (typeof v === 'string' || typeof v === 'boolean') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(stringifyExact).join(',')}]`;
  return `{${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}:${stringifyExact(x)}`).join(',')}}`;
}
const hexOf = (b: Buffer): string => `0x${b.toString('hex')}`;

function numberCanonical(raw: string, type: ColumnType | undefined): string {
  if (type !== undefined && (type.kind === 'float' || type.kind === 'double')) return String(type.kind === 'float' ? Math.fround(Number(raw)) : Number(raw));
  if (/[.eE]/.test(raw) && type?.kind !== 'decimal') return String(Number(raw));
  return raw;
}

function typesOf(columnsOf: ColumnsOf | undefined, schema: string, table: string): Map<string, ColumnType> {
  const map = new Map<string, ColumnType>();
  for (const c of columnsOf?.(schema, table) ?? []) map.set(c.name, columnType(c.mysqlType));
  return map;
}

/** Decodes one Kafka message into its events (open-protocol messages carry several). */
export function decodeMessage(protocol: Protocol, key: Buffer | null, value: Buffer | null, columnsOf?: ColumnsOf): DecodedEvent[] {
  switch (protocol) {
    case 'canal-json':
      return value === null ? [] : [decodeCanal(value)];
    case 'open-protocol':
      if (key === null) return [];
      return unpackOpenProtocol(key, value ?? Buffer.alloc(0)).map((e) => decodeOpenEvent(e.key, e.value));
    case 'debezium':
      return value === null || value.length === 0 ? [] : [decodeDebezium(value, columnsOf)];
    case 'maxwell':
      return value === null ? [] : [decodeMaxwell(value, columnsOf)];
  }
}

function decodeCanal(value: Buffer): DecodedEvent {
  const msg = parseJsonExact(value.toString('utf8'));
  if (!isObj(msg)) throw new Error('canal-json message is not an object');
  const tidb = isObj(msg['_tidb']) ? msg['_tidb'] : undefined;
  if (msg['type'] === 'TIDB_WATERMARK') return { kind: 'watermark', ts: BigInt(asText(tidb?.['watermarkTs']) ?? '0') };
  const commitTs = tidb?.['commitTs'] === undefined ? undefined : BigInt(asText(tidb['commitTs']) ?? '0');
  const schema = asText(msg['database']) ?? '';
  const table = asText(msg['table']) ?? '';
  if (msg['isDdl'] === true) return { kind: 'ddl', schema, table, query: asText(msg['sql']) ?? '', commitTs };
  const mysqlType = isObj(msg['mysqlType']) ? msg['mysqlType'] : {};
  const row = (v: JsonValue | undefined): CanonicalRow | null => {
    const first = Array.isArray(v) ? v[0] : undefined;
    if (!isObj(first)) return null;
    const out: CanonicalRow = {};
    for (const [name, raw] of Object.entries(first)) {
      const text = asText(raw);
      const type = columnType(asText(mysqlType[name]) ?? 'varchar');
      out[name] = text === null ? null : type.binary ? hexOf(Buffer.from(text, 'latin1')) : type.kind === 'float' || type.kind === 'double' ? numberCanonical(text, type) : text;
    }
    return out;
  };
  const kind = msg['type'] === 'INSERT' ? 'insert' : msg['type'] === 'UPDATE' ? 'update' : 'delete';
  const data = row(msg['data']);
  return { kind: 'row', schema, table, type: kind, commitTs, before: kind === 'insert' ? null : kind === 'update' ? row(msg['old']) : data, after: kind === 'delete' ? null : data };
}

/** Go's strconv.Unquote of a quoted body, to bytes. */
export function goUnquote(body: string): Buffer {
  const out: number[] = [];
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c !== '\\') {
      const cp = body.codePointAt(i)!;
      if (cp > 0xffff) i++;
      out.push(...Buffer.from(String.fromCodePoint(cp), 'utf8'));
      continue;
    }
    const e = body[++i];
    const simple: Record<string, number> = { a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11, '\\': 92, '"': 34, "'": 39 };
    if (e in simple) out.push(simple[e]);
    else if (e === 'x') {
      out.push(parseInt(body.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (e === 'u' || e === 'U') {
      const n = e === 'u' ? 4 : 8;
      out.push(...Buffer.from(String.fromCodePoint(parseInt(body.slice(i + 1, i + 1 + n), 16)), 'utf8'));
      i += n;
    } else if (e >= '0' && e <= '7') {
      out.push(parseInt(body.slice(i, i + 3), 8));
      i += 2;
    } else throw new Error(`bad escape \\${e} in open-protocol value`);
  }
  return Buffer.from(out);
}

function decodeOpenEvent(key: Buffer, value: Buffer): DecodedEvent {
  const k = parseJsonExact(key.toString('utf8'));
  if (!isObj(k)) throw new Error('open-protocol key is not an object');
  const ts = BigInt(asText(k['ts']) ?? '0');
  const t = asText(k['t']);
  if (t === '3') return { kind: 'watermark', ts };
  const schema = asText(k['scm']) ?? '';
  const table = asText(k['tbl']) ?? '';
  const v = parseJsonExact(value.toString('utf8'));
  if (!isObj(v)) throw new Error('open-protocol value is not an object');
  if (t === '2') return { kind: 'ddl', schema, table, query: asText(v['q']) ?? '', commitTs: ts };
  const cols = (o: JsonValue | undefined): CanonicalRow | null => {
    if (!isObj(o)) return null;
    const out: CanonicalRow = {};
    for (const [name, col] of Object.entries(o)) {
      if (!isObj(col)) continue;
      const code = Number(asText(col['t']));
      const flags = Number(asText(col['f']) ?? '0');
      const raw = col['v'];
      if (raw === null || raw === undefined) out[name] = null;
      else if ((flags & 1) !== 0 && typeof raw === 'string') out[name] = hexOf(code === 254 || code === 15 || code === 253 ? goUnquote(raw) : Buffer.from(raw, 'base64'));
      else if (code >= 249 && code <= 252 && typeof raw === 'string') out[name] = Buffer.from(raw, 'base64').toString('utf8');
      else if (raw instanceof JsonNumber) out[name] = numberCanonical(raw.raw, code === 4 ? columnType('float') : code === 5 ? columnType('double') : undefined);
      else out[name] = asText(raw);
    }
    return out;
  };
  if (isObj(v['d'])) return { kind: 'row', schema, table, type: 'delete', commitTs: ts, before: cols(v['d']), after: null };
  if (isObj(v['p'])) return { kind: 'row', schema, table, type: 'update', commitTs: ts, before: cols(v['p']), after: cols(v['u']) };
  return { kind: 'row', schema, table, type: 'insert', commitTs: ts, before: null, after: cols(v['u']) };
}

function decodeDebezium(value: Buffer, columnsOf: ColumnsOf | undefined): DecodedEvent {
  const msg = parseJsonExact(value.toString('utf8'));
  if (!isObj(msg) || !isObj(msg['payload'])) throw new Error('debezium message has no payload');
  const payload = msg['payload'];
  const source = isObj(payload['source']) ? payload['source'] : {};
  const schema = asText(source['db']) ?? '';
  const table = asText(source['table']) ?? '';
  const commitTs = source['commit_ts'] === undefined || source['commit_ts'] === null ? undefined : BigInt(asText(source['commit_ts']) ?? '0');
  if (payload['ddl'] !== undefined) return { kind: 'ddl', schema, table, query: asText(payload['ddl']) ?? '', commitTs };
  const types = typesOf(columnsOf, schema, table);
  const envelope = isObj(msg['schema']) && Array.isArray(msg['schema']['fields']) ? msg['schema']['fields'] : [];
  const valueSchema = envelope.find((f) => isObj(f) && f['field'] === 'after');
  const fields = new Map<string, Obj>();
  if (isObj(valueSchema) && Array.isArray(valueSchema['fields'])) for (const f of valueSchema['fields']) if (isObj(f)) fields.set(asText(f['field']) ?? '', f);
  const row = (o: JsonValue | undefined): CanonicalRow | null => {
    if (!isObj(o)) return null;
    const out: CanonicalRow = {};
    for (const [name, raw] of Object.entries(o)) out[name] = debeziumCanonical(raw, fields.get(name), types.get(name));
    return out;
  };
  const op = asText(payload['op']);
  const type = op === 'c' || op === 'r' ? 'insert' : op === 'u' ? 'update' : 'delete';
  const event = { kind: 'row', schema, table, type, commitTs, before: row(payload['before']), after: row(payload['after']) } as const;
  return op === 'r' ? { ...event, snapshot: debeziumSnapshot(asText(source['snapshot'])) } : event;
}

/** Debezium's SnapshotRecord (`source.snapshot`) of a read event as a DecodedSnapshot. */
function debeziumSnapshot(record: string | null): DecodedSnapshot {
  if (record === 'first' || record === 'first_in_data_collection') return 'first';
  if (record === 'last' || record === 'last_in_data_collection') return 'last';
  return 'row';
}

function debeziumCanonical(raw: JsonValue | undefined, field: Obj | undefined, type: ColumnType | undefined): string | null {
  if (raw === null || raw === undefined) return null;
  const name = asText(field?.['name']);
  const params = isObj(field?.['parameters']) ? field['parameters'] : {};
  switch (name) {
    case 'org.apache.kafka.connect.data.Decimal':
      return decimalFromBytes(Buffer.from(asText(raw) ?? '', 'base64'), Number(asText(params['scale']) ?? '0'));
    case 'io.debezium.time.MicroTimestamp':
      return datetimeText(BigInt(asText(raw) ?? '0'), type?.fsp ?? 6);
    case 'io.debezium.time.Timestamp':
      return datetimeText(BigInt(asText(raw) ?? '0') * 1000n, type?.fsp ?? 3);
    case 'io.debezium.time.ZonedTimestamp':
      return (asText(raw) ?? '').replace('T', ' ').replace(/Z$/, '');
    case 'io.debezium.time.Date':
      return datetimeText(BigInt(asText(raw) ?? '0') * 86_400_000_000n, 0).slice(0, 10);
    case 'io.debezium.time.MicroTime': {
      const us = BigInt(asText(raw) ?? '0');
      const abs = us < 0n ? -us : us;
      const s = abs / 1_000_000n;
      const frac = String(abs % 1_000_000n).padStart(6, '0').slice(0, type?.fsp ?? 6);
      const text = `${String(s / 3600n).padStart(2, '0')}:${String((s / 60n) % 60n).padStart(2, '0')}:${String(s % 60n).padStart(2, '0')}${frac === '' ? '' : `.${frac}`}`;
      return us < 0n ? `-${text}` : text;
    }
    case 'io.debezium.data.Bits': {
      const bytes = Buffer.from(asText(raw) ?? '', 'base64');
      let n = 0n;
      for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]);
      return n.toString();
    }
    default:
      break;
  }
  if (asText(field?.['type']) === 'bytes') return hexOf(Buffer.from(asText(raw) ?? '', 'base64'));
  if (raw instanceof JsonNumber) return numberCanonical(raw.raw, type);
  return asText(raw);
}

function decodeMaxwell(value: Buffer, columnsOf: ColumnsOf | undefined): DecodedEvent {
  const msg = parseJsonExact(value.toString('utf8'));
  if (!isObj(msg)) throw new Error('maxwell message is not an object');
  const schema = asText(msg['database']) ?? '';
  const table = asText(msg['table']) ?? '';
  const type = asText(msg['type']) ?? '';
  const commitTs = msg['xid'] === undefined ? undefined : BigInt(asText(msg['xid']) ?? '0');
  if (type === 'bootstrap-start' || type === 'bootstrap-complete') return { kind: 'bootstrap', schema, table, phase: type === 'bootstrap-start' ? 'start' : 'complete' };
  if (type === 'bootstrap-insert') return { ...maxwellRow(msg, schema, table, 'insert', commitTs, columnsOf), snapshot: 'row' };
  if (type !== 'insert' && type !== 'update' && type !== 'delete') return { kind: 'ddl', schema, table, query: asText(msg['sql']) ?? '', commitTs };
  return maxwellRow(msg, schema, table, type, commitTs, columnsOf);
}

function maxwellRow(msg: Obj, schema: string, table: string, type: 'insert' | 'update' | 'delete', commitTs: bigint | undefined, columnsOf: ColumnsOf | undefined): DecodedEvent & { kind: 'row' } {
  const types = typesOf(columnsOf, schema, table);
  const canonicalOf = (name: string, raw: JsonValue | undefined): string | null => {
    if (raw === null || raw === undefined) return null;
    const t = types.get(name);
    if (t?.binary === true) return hexOf(Buffer.from(asText(raw) ?? '', 'base64'));
    if (raw instanceof JsonNumber) return numberCanonical(raw.raw, t);
    if (Array.isArray(raw)) return raw.map((x) => asText(x)).join(',');
    if (t?.kind === 'bit' && typeof raw === 'boolean') return raw ? '1' : '0';
    return asText(raw);
  };
  const data: CanonicalRow = {};
  if (isObj(msg['data'])) for (const [name, raw] of Object.entries(msg['data'])) data[name] = canonicalOf(name, raw);
  if (type === 'insert') return { kind: 'row', schema, table, type, commitTs, before: null, after: data };
  if (type === 'delete') return { kind: 'row', schema, table, type, commitTs, before: data, after: null };
  const before: CanonicalRow = { ...data };
  if (isObj(msg['old'])) for (const [name, raw] of Object.entries(msg['old'])) before[name] = canonicalOf(name, raw);
  return { kind: 'row', schema, table, type, commitTs, before, after: data };
}
