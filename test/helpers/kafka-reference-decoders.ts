import { Kafka, logLevel } from 'kafkajs';

/**
 * Reference decoders for the Kafka sink's four protocols, written from each format's documentation and sharing
 * nothing with plugins/sink-kafka/src, so a mistake made on both sides of the plugin (encoder and decoder)
 * cannot pass the end-to-end tests:
 *
 * - canal-json: TiCDC's Canal-JSON page (docs.pingcap.com/tidb/stable/ticdc-canal-json): Canal's flat message,
 *   `data`/`old` arrays of rows with every value a string, binary values as ISO-8859-1 characters, `old` the
 *   full pre-image (TiCDC) or only the changed columns (Canal), `isDdl`, and with enable-tidb-extension
 *   `_tidb.commitTs` and TIDB_WATERMARK messages carrying `_tidb.watermarkTs`.
 * - open-protocol: TiCDC's Open Protocol page (ticdc-open-protocol): a message's key is the version (int64
 *   big-endian, 1) then (length int64 BE, event key)…, its value (length, event value)…; event keys
 *   {"ts","scm","tbl","t"} with t 1 row, 2 DDL, 3 resolved; row values {"u"} / {"u","p"} / {"d"} of columns
 *   {"t": type code, "h", "f": flags, "v"}; values by the "Column type code" table (TEXT and BLOB codes 249–252
 *   in Base64, BINARY/VARBINARY escaped text, ENUM the member number, SET the bit mask).
 * - debezium: Debezium's MySQL connector page (debezium.io, "Data change events", "Data type mappings") with
 *   the Kafka Connect JSON converter (schemas enabled), plus TiCDC's Debezium page for `source.commit_ts` and the
 *   schema-change (DDL) value; the field schemas in the envelope say how to read each value. Snapshot reads are
 *   `op: "r"` with `before` null and `source.snapshot` a SnapshotRecord value (io.debezium.connector.SnapshotRecord:
 *   true, first, first_in_data_collection, last_in_data_collection, last; false outside a snapshot).
 * - maxwell: Maxwell's data format page (maxwells-daemon.io/dataformat): {"database","table","type","ts","xid",
 *   "data","old" (only the changed columns)}; BLOB/BINARY in Base64, SET as an array, DDL as "table-alter" etc.
 *   with "sql". Its bootstrapping page: a table's rows as "bootstrap-insert", between a "bootstrap-start" and a
 *   "bootstrap-complete" message {"database","table","type","ts","data":{}}.
 *
 * Values come back as text in the sink testkit's canonical form: NULL as null, bytes as 0x + lowercase hex,
 * integers and DECIMAL with their exact digits, FLOAT/DOUBLE as JavaScript prints the float32/float64, temporal
 * values as MySQL prints them, BIT as its unsigned integer, SET as "a,b". Where a format leaves out what that
 * needs (Maxwell's types, Debezium's fractional digits, ENUM members for open-protocol), the caller passes the
 * table's column types, as a consumer knows them from the DDL.
 *
 * Where a message departs from the documented format but can still be read without guessing, the decoder
 * reads it and records a {@link FormatNotes} entry; a test asserts that only known departures occur.
 */

/** A row image: column name → canonical text, or null. */
export type ReferenceRow = Record<string, string | null>;

export type ReferenceEvent =
  | {
      readonly kind: 'row';
      readonly schema: string;
      readonly table: string;
      readonly type: 'insert' | 'update' | 'delete';
      /** The commit position the format carries: canal-json `_tidb.commitTs`, open-protocol `ts`, debezium `source.commit_ts` (TiCDC's field), maxwell `xid`. */
      readonly commitTs: bigint | undefined;
      readonly before: ReferenceRow | null;
      readonly after: ReferenceRow | null;
      /**
       * Only on a snapshot read, where the format marks one: debezium `op: "r"` with `source.snapshot` (Debezium's
       * SnapshotRecord) "first"/"first_in_data_collection" → 'first', "last"/"last_in_data_collection" → 'last',
       * "true" (or another) → 'row'; maxwell `bootstrap-insert` → 'row'. canal-json and open-protocol have none.
       */
      readonly snapshot?: 'first' | 'row' | 'last';
    }
  | { readonly kind: 'ddl'; readonly schema: string; readonly table: string; readonly query: string; readonly commitTs: bigint | undefined }
  | { readonly kind: 'watermark'; readonly ts: bigint }
  /** Maxwell's bootstrap-start and bootstrap-complete: `{"database","table","type","ts","data":{}}` around a table's bootstrap-insert rows. */
  | { readonly kind: 'bootstrap'; readonly schema: string; readonly table: string; readonly phase: 'start' | 'complete' };

export type ReferenceProtocol = 'canal-json' | 'open-protocol' | 'debezium' | 'maxwell';

/** The column types of a table as its DDL declares them (e.g. "decimal(20,4)", "bigint unsigned", "enum('a','b')"). */
export type ColumnTypesOf = (schema: string, table: string) => readonly { readonly name: string; readonly mysqlType: string }[] | undefined;

/**
 * Departures from the documented formats that the decoders read anyway, by code. Every code is listed here
 * with what the documentation says, so a test can name the ones it expects.
 */
export const FORMAT_DEPARTURES = {
  'open-protocol/text-not-base64': 'a TEXT-family column (type code 249–252 without BinaryFlag) carries plain text; the Open Protocol column type table says these values are Base64',
  'open-protocol/enum-as-name': 'an ENUM column (type code 247) carries the member name; the Open Protocol column type table shows the member number ({"t":247,"v":1})',
  'open-protocol/set-as-names': 'a SET column (type code 248) carries the member names; the Open Protocol column type table shows the bit mask ({"t":248,"v":3})',
  'open-protocol/geometry': 'a GEOMETRY column (type code 255) is sent (as Base64 bytes); the Open Protocol column type table lists GEOMETRY as unsupported',
  'maxwell/geometry-as-bytes': 'a GEOMETRY column carries Base64 bytes (WKB); Maxwell writes geometries as WKT text (its GeometryColumnDef; the data format page does not cover geometries)',
  'maxwell/bit-as-boolean': 'a BIT(1) column carries a JSON boolean; Maxwell writes every BIT value as a number (its BitColumnDef; the data format page does not cover BIT)',
  'canal-json/non-string-value': 'a canal-json column value is a JSON number or boolean; Canal-JSON values are strings',
} as const;
export type FormatDeparture = keyof typeof FORMAT_DEPARTURES;

/**
 * The departures Tidemark's encoders are known to make (issue #22, item 6): the tests tolerate these and fail
 * on any other. When an encoder is brought in line with its documentation, its entry goes.
 */
export const KNOWN_TIDEMARK_DEPARTURES: Readonly<Record<ReferenceProtocol, readonly FormatDeparture[]>> = {
  'canal-json': [],
  'open-protocol': ['open-protocol/enum-as-name', 'open-protocol/set-as-names', 'open-protocol/geometry'],
  debezium: [],
  maxwell: ['maxwell/geometry-as-bytes', 'maxwell/bit-as-boolean'],
};

/** Records the departures a decoder met: how many of each, with the first example. */
export class FormatNotes {
  private readonly seen = new Map<FormatDeparture, { count: number; example: string }>();

  add(code: FormatDeparture, example: string): void {
    const hit = this.seen.get(code);
    if (hit === undefined) this.seen.set(code, { count: 1, example });
    else hit.count++;
  }

  get codes(): FormatDeparture[] {
    return [...this.seen.keys()].sort();
  }

  /** One line per departure: code, count, what the documentation says, the first example. */
  describe(): string[] {
    return [...this.seen].map(([code, { count, example }]) => `${code} ×${count}: ${FORMAT_DEPARTURES[code]} (first: ${example})`);
  }
}

export interface ReferenceDecodeOptions {
  readonly columnTypes?: ColumnTypesOf;
  readonly notes?: FormatNotes;
}

// ---------------------------------------------------------------------------------------------------------
// JSON with exact numbers: a JSON number stays the text it was written as, so BIGINT UNSIGNED, DECIMAL and
// commit timestamps keep every digit.

/** A JSON number as written. */
export class JsonNumberText {
  constructor(readonly text: string) {}
}
export type JsonTree = null | boolean | string | JsonNumberText | JsonTree[] | { [key: string]: JsonTree };
type JsonObject = { [key: string]: JsonTree };

const numberAt = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?/y;

/** Parses JSON text, keeping numbers as {@link JsonNumberText}. Objects have no prototype, so any key is safe. */
export function parseJsonKeepingNumbers(text: string): JsonTree {
  let at = 0;
  const fail = (what: string): never => {
    throw new Error(`invalid JSON at ${at}: ${what} (near ${JSON.stringify(text.slice(Math.max(0, at - 20), at + 20))})`);
  };
  const space = (): void => {
    for (;;) {
      const c = text.charCodeAt(at);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) at++;
      else return;
    }
  };
  const string = (): string => {
    if (text[at] !== '"') fail('expected a string');
    const start = at++;
    let escaped = false;
    for (;;) {
      if (at >= text.length) fail('unterminated string');
      const c = text[at++];
      if (c === '\\') {
        at++;
        escaped = true;
      } else if (c === '"') break;
    }
    const body = text.slice(start, at);
    return escaped ? (JSON.parse(body) as string) : body.slice(1, -1);
  };
  const value = (): JsonTree => {
    space();
    const c = text[at];
    if (c === '{') {
      at++;
      const object = Object.create(null) as JsonObject;
      space();
      if (text[at] === '}') {
        at++;
        return object;
      }
      for (;;) {
        space();
        const key = string();
        space();
        if (text[at++] !== ':') fail('expected ":"');
        object[key] = value();
        space();
        const next = text[at++];
        if (next === '}') return object;
        if (next !== ',') fail('expected "," or "}"');
      }
    }
    if (c === '[') {
      at++;
      const array: JsonTree[] = [];
      space();
      if (text[at] === ']') {
        at++;
        return array;
      }
      for (;;) {
        array.push(value());
        space();
        const next = text[at++];
        if (next === ']') return array;
        if (next !== ',') fail('expected "," or "]"');
      }
    }
    if (c === '"') return string();
    for (const [word, literal] of [['true', true], ['false', false], ['null', null]] as const) {
      if (text.startsWith(word, at)) {
        at += word.length;
        return literal;
      }
    }
    numberAt.lastIndex = at;
    const number = numberAt.exec(text);
    if (number === null) return fail('expected a value');
    at += number[0].length;
    return new JsonNumberText(number[0]);
  };
  const tree = value();
  space();
  if (at !== text.length) fail('trailing text');
  return tree;
}

/** The JSON text of a parsed tree, numbers as they were written. */
export function jsonTreeText(tree: JsonTree): string {
  if (tree === null) return 'null';
  if (tree instanceof JsonNumberText) return tree.text;
  if (typeof tree === 'string' || typeof tree === 'boolean') return JSON.stringify(tree);
  if (Array.isArray(tree)) return `[${tree.map(jsonTreeText).join(',')}]`;
  return `{${Object.keys(tree)
    .map((k) => `${JSON.stringify(k)}:${jsonTreeText(tree[k])}`)
    .join(',')}}`;
}

const isObject = (v: JsonTree | undefined): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof JsonNumberText);
function objectOf(v: JsonTree | undefined, what: string): JsonObject {
  if (!isObject(v)) throw new Error(`${what} is not a JSON object`);
  return v;
}
function stringOf(v: JsonTree | undefined, what: string): string {
  if (typeof v !== 'string') throw new Error(`${what} is not a JSON string: ${v === undefined ? 'missing' : jsonTreeText(v)}`);
  return v;
}
const optionalString = (v: JsonTree | undefined): string => (typeof v === 'string' ? v : '');
function integerOf(v: JsonTree | undefined, what: string): bigint {
  if (v instanceof JsonNumberText && /^-?\d+$/.test(v.text)) return BigInt(v.text);
  throw new Error(`${what} is not a JSON integer: ${v === undefined ? 'missing' : jsonTreeText(v)}`);
}
const optionalInteger = (v: JsonTree | undefined, what: string): bigint | undefined => (v === undefined || v === null ? undefined : integerOf(v, what));

// ---------------------------------------------------------------------------------------------------------
// Column types from DDL text, and canonical text of values.

interface DeclaredType {
  /** "decimal", "bigint", "enum", … */
  readonly base: string;
  readonly unsigned: boolean;
  /** DECIMAL scale. */
  readonly scale: number | undefined;
  /** Fractional digits of TIME, DATETIME, TIMESTAMP. */
  readonly fsp: number | undefined;
  /** ENUM/SET members, in declaration order. */
  readonly members: readonly string[];
}

/**
 * Types whose values are bytes: the binary string types and geometries. Not MariaDB's UUID/INET4/INET6: their
 * values are text (`123e4567-e89b-12d3-a456-426614174000`, `2001:db8::1`, `10.0.0.1`), as MariaDB's clients get them.
 */
const BYTE_TYPES = new Set(['binary', 'varbinary', 'tinyblob', 'blob', 'mediumblob', 'longblob', 'geometry', 'point', 'linestring', 'polygon', 'multipoint', 'multilinestring', 'multipolygon', 'geometrycollection']);
const GEOMETRY_TYPES = new Set(['geometry', 'point', 'linestring', 'polygon', 'multipoint', 'multilinestring', 'multipolygon', 'geometrycollection']);

const declaredCache = new Map<string, DeclaredType>();

function declaredType(text: string): DeclaredType {
  const hit = declaredCache.get(text);
  if (hit !== undefined) return hit;
  const m = /^\s*([A-Za-z0-9_]+)\s*(?:\((.*)\))?\s*(.*)$/s.exec(text);
  const base = (m?.[1] ?? text).toLowerCase();
  const args = m?.[2] ?? '';
  const members: string[] = [];
  if (base === 'enum' || base === 'set') {
    const quoted = /'((?:[^'\\]|''|\\.)*)'/g;
    for (let q = quoted.exec(args); q !== null; q = quoted.exec(args)) members.push(q[1].replaceAll("''", "'").replace(/\\(.)/g, '$1'));
  }
  const numbers = args.split(',').map((a) => Number.parseInt(a.trim(), 10));
  const temporal = base === 'time' || base === 'datetime' || base === 'timestamp';
  const type: DeclaredType = {
    base,
    unsigned: /\bunsigned\b/i.test(m?.[3] ?? ''),
    scale: base === 'decimal' || base === 'numeric' ? (Number.isInteger(numbers[1]) ? numbers[1] : 0) : undefined,
    fsp: temporal ? (Number.isInteger(numbers[0]) ? numbers[0] : 0) : undefined,
    members,
  };
  declaredCache.set(text, type);
  return type;
}

function typesOfTable(options: ReferenceDecodeOptions, schema: string, table: string): Map<string, DeclaredType> {
  const out = new Map<string, DeclaredType>();
  for (const c of options.columnTypes?.(schema, table) ?? []) out.set(c.name, declaredType(c.mysqlType));
  return out;
}

const hexOf = (bytes: Buffer): string => `0x${bytes.toString('hex')}`;

/** Strict Base64 (RFC 4648 standard alphabet, padded): Buffer.from would skip characters that do not belong. */
function base64Bytes(text: string): Buffer | undefined {
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return undefined;
  return Buffer.from(text, 'base64');
}
function base64OrThrow(text: string, what: string): Buffer {
  const bytes = base64Bytes(text);
  if (bytes === undefined) throw new Error(`${what}: not Base64: ${JSON.stringify(text.slice(0, 40))}`);
  return bytes;
}

/** FLOAT as the float32 it is, DOUBLE as the float64, in JavaScript's shortest text. */
const floatText = (text: string, single: boolean): string => String(single ? Math.fround(Number(text)) : Number(text));

/** A DECIMAL in plain notation (no exponent), its fraction padded to the column's scale. */
function decimalText(text: string, scale: number | undefined): string {
  const m = /^([-+]?)(\d*)(?:\.(\d*))?(?:[eE]([-+]?\d+))?$/.exec(text.trim());
  if (m === null) throw new Error(`not a decimal number: ${JSON.stringify(text)}`);
  const sign = m[1] === '-' ? '-' : '';
  const digits = `${m[2]}${m[3] ?? ''}`;
  let point = m[2].length + Number(m[4] ?? '0');
  let all = digits;
  if (point < 0) {
    all = '0'.repeat(-point) + all;
    point = 0;
  }
  if (point > all.length) all += '0'.repeat(point - all.length);
  let whole = all.slice(0, point).replace(/^0+(?=\d)/, '');
  if (whole === '') whole = '0';
  let fraction = all.slice(point);
  if (scale !== undefined && fraction.length < scale) fraction += '0'.repeat(scale - fraction.length);
  return `${sign}${whole}${fraction === '' ? '' : `.${fraction}`}`;
}

const floorDiv = (a: bigint, b: bigint): bigint => (a % b !== 0n && a < 0n !== b < 0n ? a / b - 1n : a / b);

/** MySQL's DATETIME text of µs since the epoch (UTC), with `fsp` fractional digits. */
function datetimeOfMicros(us: bigint, fsp: number): string {
  const seconds = floorDiv(us, 1_000_000n);
  const micros = us - seconds * 1_000_000n;
  const iso = new Date(Number(seconds) * 1000).toISOString(); // YYYY-MM-DDTHH:MM:SS.000Z for years 0–9999
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}${fractionOf(micros, fsp)}`;
}
const fractionOf = (micros: bigint, fsp: number): string => (fsp > 0 ? `.${String(micros).padStart(6, '0').slice(0, fsp)}` : '');

function dateOfDays(days: bigint): string {
  return new Date(Number(days) * 86_400_000).toISOString().slice(0, 10);
}

/** MySQL's TIME text of a signed µs count (hours may pass 24). */
function timeOfMicros(us: bigint, fsp: number): string {
  const negative = us < 0n;
  const abs = negative ? -us : us;
  const seconds = abs / 1_000_000n;
  const two = (n: bigint): string => String(n).padStart(2, '0');
  return `${negative ? '-' : ''}${two(seconds / 3600n)}:${two((seconds / 60n) % 60n)}:${two(seconds % 60n)}${fractionOf(abs % 1_000_000n, fsp)}`;
}

/** An ISO-8601 instant ("2024-02-29T13:45:56.654321Z", or with an offset) as MySQL's UTC text; the fraction cut or padded to `fsp` when known. */
function instantText(iso: string, fsp: number | undefined): string {
  const m = /^(\d{4,})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[-+]\d{2}:\d{2})$/.exec(iso);
  if (m === null) throw new Error(`not an ISO-8601 instant: ${JSON.stringify(iso)}`);
  let base = `${m[1]}-${m[2]}-${m[3]} ${m[4]}:${m[5]}:${m[6]}`;
  if (m[8] !== 'Z') {
    const shift = (m[8].startsWith('-') ? 1 : -1) * (Number(m[8].slice(1, 3)) * 60 + Number(m[8].slice(4, 6)));
    const utc = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]) + shift, Number(m[6]))).toISOString();
    base = `${utc.slice(0, 10)} ${utc.slice(11, 19)}`;
  }
  const fraction = m[7] ?? '';
  const digits = fsp === undefined ? fraction : fraction.padEnd(fsp, '0').slice(0, fsp);
  return digits === '' ? base : `${base}.${digits}`;
}

/** The members of a SET bit mask, or the ENUM member at a 1-based index, as the column declares them. */
function membersOf(number: bigint, type: DeclaredType | undefined, set: boolean, what: string): string {
  if (type === undefined || type.members.length === 0) throw new Error(`${what}: ${set ? 'SET' : 'ENUM'} value ${number} needs the column's members (pass columnTypes)`);
  if (!set) {
    if (number === 0n) return ''; // the error value '' (index 0)
    const name = type.members[Number(number) - 1];
    if (name === undefined) throw new Error(`${what}: ENUM index ${number} outside ${type.members.length} members`);
    return name;
  }
  return type.members.filter((_, i) => ((number >> BigInt(i)) & 1n) === 1n).join(',');
}

// ---------------------------------------------------------------------------------------------------------
// canal-json

function decodeCanalJson(value: Buffer, options: ReferenceDecodeOptions): ReferenceEvent[] {
  const message = objectOf(parseJsonKeepingNumbers(value.toString('utf8')), 'canal-json message');
  const tidb = isObject(message['_tidb']) ? message['_tidb'] : undefined;
  const schema = optionalString(message['database']);
  const table = optionalString(message['table']);
  const commitTs = optionalInteger(tidb?.['commitTs'], 'canal-json _tidb.commitTs');
  if (message['isDdl'] === true) return [{ kind: 'ddl', schema, table, query: stringOf(message['sql'], 'canal-json DDL sql'), commitTs }];
  const type = stringOf(message['type'], 'canal-json type');
  if (type === 'TIDB_WATERMARK') return [{ kind: 'watermark', ts: integerOf(tidb?.['watermarkTs'], 'canal-json _tidb.watermarkTs') }];
  if (type !== 'INSERT' && type !== 'UPDATE' && type !== 'DELETE') throw new Error(`canal-json: unknown DML type ${JSON.stringify(type)}`);
  const mysqlType = isObject(message['mysqlType']) ? message['mysqlType'] : Object.create(null) as JsonObject;
  const declared = typesOfTable(options, schema, table);
  const typeOf = (name: string): DeclaredType | undefined => {
    const inMessage = typeof mysqlType[name] === 'string' ? declaredType(mysqlType[name]) : undefined;
    const fromDdl = declared.get(name);
    // TiCDC's mysqlType has no parameters ("enum"); the DDL's type gives the members then
    if (inMessage !== undefined && inMessage.members.length === 0 && fromDdl !== undefined && fromDdl.base === inMessage.base) return fromDdl;
    return inMessage ?? fromDdl;
  };
  const columnText = (name: string, raw: JsonTree): string | null => {
    if (raw === null) return null;
    let text: string;
    if (typeof raw === 'string') text = raw;
    else {
      options.notes?.add('canal-json/non-string-value', `${schema}.${table}.${name} = ${jsonTreeText(raw)}`);
      text = typeof raw === 'boolean' ? (raw ? '1' : '0') : jsonTreeText(raw);
    }
    const t = typeOf(name);
    if (t === undefined) return text;
    if (BYTE_TYPES.has(t.base)) {
      // each byte is one character U+0000–U+00FF (ISO-8859-1)
      for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0xff) throw new Error(`canal-json ${schema}.${table}.${name}: binary value has a character above U+00FF`);
      return hexOf(Buffer.from(text, 'latin1'));
    }
    if (t.base === 'float') return floatText(text, true);
    if (t.base === 'double' || t.base === 'real') return floatText(text, false);
    if (t.base === 'decimal' || t.base === 'numeric') return decimalText(text, t.scale);
    if ((t.base === 'enum' || t.base === 'set') && /^\d+$/.test(text) && !t.members.includes(text)) return membersOf(BigInt(text), t, t.base === 'set', `canal-json ${schema}.${table}.${name}`); // TiCDC writes the number (tiflow#8491)
    return text;
  };
  const rowOf = (image: JsonTree | undefined, what: string): ReferenceRow => {
    const object = objectOf(image, what);
    const row: ReferenceRow = {};
    for (const name of Object.keys(object)) row[name] = columnText(name, object[name]);
    return row;
  };
  const data = message['data'];
  if (!Array.isArray(data) || data.length === 0) throw new Error('canal-json DML without data');
  const old = Array.isArray(message['old']) ? message['old'] : undefined;
  return data.map((image, i): ReferenceEvent => {
    const row = rowOf(image, 'canal-json data[]');
    if (type === 'INSERT') return { kind: 'row', schema, table, type: 'insert', commitTs, before: null, after: row };
    if (type === 'DELETE') return { kind: 'row', schema, table, type: 'delete', commitTs, before: row, after: null };
    // `old` holds every column (TiCDC) or only the changed ones (Canal): either way data merged with old is the pre-image
    const changed = old?.[i];
    if (changed === undefined) throw new Error('canal-json UPDATE without old');
    return { kind: 'row', schema, table, type: 'update', commitTs, before: { ...row, ...rowOf(changed, 'canal-json old[]') }, after: row };
  });
}

// ---------------------------------------------------------------------------------------------------------
// open-protocol

/** Splits an Open Protocol message into its events by the documented key/value layout. */
export function splitOpenProtocolMessage(key: Buffer, value: Buffer): { key: Buffer; value: Buffer }[] {
  if (key.length < 8) throw new Error(`open-protocol key of ${key.length} bytes has no version`);
  const version = key.readBigInt64BE(0);
  if (version !== 1n) throw new Error(`open-protocol version ${version}, expected 1`);
  const events: { key: Buffer; value: Buffer }[] = [];
  let k = 8;
  let v = 0;
  while (k < key.length) {
    if (k + 8 > key.length) throw new Error(`open-protocol key: truncated length at byte ${k}`);
    const keyLength = Number(key.readBigInt64BE(k));
    if (k + 8 + keyLength > key.length) throw new Error(`open-protocol key: event key of ${keyLength} bytes at ${k} runs past the end`);
    const eventKey = key.subarray(k + 8, k + 8 + keyLength);
    k += 8 + keyLength;
    let eventValue: Buffer = Buffer.alloc(0); // a resolved event has no value ("Value: None")
    if (v < value.length) {
      if (v + 8 > value.length) throw new Error(`open-protocol value: truncated length at byte ${v}`);
      const valueLength = Number(value.readBigInt64BE(v));
      if (v + 8 + valueLength > value.length) throw new Error(`open-protocol value: event value of ${valueLength} bytes at ${v} runs past the end`);
      eventValue = value.subarray(v + 8, v + 8 + valueLength);
      v += 8 + valueLength;
    }
    events.push({ key: eventKey, value: eventValue });
  }
  if (v !== value.length) throw new Error(`open-protocol value: ${value.length - v} bytes left after ${events.length} events`);
  return events;
}

const ESCAPES: Record<string, number> = { a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11, '\\': 0x5c, '"': 0x22, "'": 0x27 };

/** Reads Go-escaped text (the body of a strconv.Quote result) back to its bytes. */
export function goUnescape(text: string): Buffer {
  const out: number[] = [];
  for (let i = 0; i < text.length; ) {
    const c = text[i];
    if (c !== '\\') {
      const cp = text.codePointAt(i)!;
      const char = String.fromCodePoint(cp);
      out.push(...Buffer.from(char, 'utf8'));
      i += char.length;
      continue;
    }
    const e = text[i + 1];
    if (e in ESCAPES) {
      out.push(ESCAPES[e]);
      i += 2;
    } else if (e === 'x') {
      out.push(Number.parseInt(text.slice(i + 2, i + 4), 16));
      i += 4;
    } else if (e === 'u' || e === 'U') {
      const n = e === 'u' ? 4 : 8;
      out.push(...Buffer.from(String.fromCodePoint(Number.parseInt(text.slice(i + 2, i + 2 + n), 16)), 'utf8'));
      i += 2 + n;
    } else if (e !== undefined && e >= '0' && e <= '7') {
      out.push(Number.parseInt(text.slice(i + 1, i + 4), 8));
      i += 4;
    } else throw new Error(`bad Go escape \\${e ?? ''} in ${JSON.stringify(text.slice(0, 40))}`);
  }
  return Buffer.from(out);
}

const OPEN_BINARY_FLAG = 0x01;

function openColumnText(name: string, column: JsonTree, declared: DeclaredType | undefined, where: string, options: ReferenceDecodeOptions): string | null {
  const c = objectOf(column, `open-protocol column ${where}.${name}`);
  const code = Number(integerOf(c['t'], `open-protocol ${where}.${name} "t"`));
  const flags = c['f'] === undefined ? undefined : Number(integerOf(c['f'], `open-protocol ${where}.${name} "f"`));
  const binary = flags === undefined ? declared !== undefined && BYTE_TYPES.has(declared.base) : (flags & OPEN_BINARY_FLAG) !== 0;
  const v = c['v'];
  if (v === null || v === undefined || code === 6) return null;
  const what = `open-protocol ${where}.${name} (t ${code})`;
  const number = (): string => {
    if (!(v instanceof JsonNumberText)) throw new Error(`${what}: expected a JSON number, got ${jsonTreeText(v)}`);
    return v.text;
  };
  switch (code) {
    case 1: // TINYINT/BOOLEAN
    case 2: // SMALLINT
    case 3: // INT
    case 8: // BIGINT
    case 9: // MEDIUMINT
    case 13: // YEAR
    case 16: {
      // BIT
      const text = number();
      if (!/^-?\d+$/.test(text)) throw new Error(`${what}: not an integer: ${text}`);
      return text;
    }
    case 4:
      return floatText(number(), true);
    case 5:
      return floatText(number(), false);
    case 0:
    case 246:
      return decimalText(stringOf(v, what), declared?.scale);
    case 7: // TIMESTAMP
    case 10: // DATE
    case 11: // TIME
    case 12: // DATETIME
    case 14: // NEWDATE
    case 245: // JSON
      return stringOf(v, what);
    case 15: // VARCHAR/VARBINARY
    case 253:
    case 254: {
      // CHAR/BINARY: UTF-8 text; for binary columns "invisible characters are escaped" (Go's strconv.Quote)
      const text = stringOf(v, what);
      return binary ? hexOf(goUnescape(text)) : text;
    }
    case 247:
    case 248: {
      const set = code === 248;
      if (v instanceof JsonNumberText) return membersOf(integerOf(v, what), declared, set, what);
      const text = stringOf(v, what);
      options.notes?.add(set ? 'open-protocol/set-as-names' : 'open-protocol/enum-as-name', `${where}.${name} = ${JSON.stringify(text)}`);
      return text;
    }
    case 249:
    case 250:
    case 251:
    case 252: {
      // TINY/MEDIUM/LONG/TEXT and BLOB: "The value is encoded in Base64"
      const text = stringOf(v, what);
      const bytes = base64Bytes(text);
      if (bytes !== undefined) return binary ? hexOf(bytes) : bytes.toString('utf8');
      if (binary) throw new Error(`${what}: BLOB value is not Base64: ${JSON.stringify(text.slice(0, 40))}`);
      options.notes?.add('open-protocol/text-not-base64', `${where}.${name} = ${JSON.stringify(text.slice(0, 40))}`);
      return text;
    }
    case 255:
      options.notes?.add('open-protocol/geometry', `${where}.${name}`);
      return hexOf(base64OrThrow(stringOf(v, what), what));
    default:
      throw new Error(`${what}: unknown column type code`);
  }
}

function decodeOpenProtocol(key: Buffer, value: Buffer, options: ReferenceDecodeOptions): ReferenceEvent[] {
  return splitOpenProtocolMessage(key, value).map(({ key: k, value: v }): ReferenceEvent => {
    const eventKey = objectOf(parseJsonKeepingNumbers(k.toString('utf8')), 'open-protocol event key');
    const ts = integerOf(eventKey['ts'], 'open-protocol ts');
    const t = Number(integerOf(eventKey['t'], 'open-protocol t'));
    if (t === 3) return { kind: 'watermark', ts };
    const schema = optionalString(eventKey['scm']);
    const table = optionalString(eventKey['tbl']);
    const eventValue = objectOf(parseJsonKeepingNumbers(v.toString('utf8')), `open-protocol value of ${schema}.${table}`);
    if (t === 2) return { kind: 'ddl', schema, table, query: stringOf(eventValue['q'], 'open-protocol DDL "q"'), commitTs: ts };
    if (t !== 1) throw new Error(`open-protocol: unknown event type ${t}`);
    const declared = typesOfTable(options, schema, table);
    const rowOf = (image: JsonTree | undefined): ReferenceRow => {
      const columns = objectOf(image, `open-protocol row of ${schema}.${table}`);
      const row: ReferenceRow = {};
      for (const name of Object.keys(columns)) row[name] = openColumnText(name, columns[name], declared.get(name), `${schema}.${table}`, options);
      return row;
    };
    if (eventValue['d'] !== undefined) return { kind: 'row', schema, table, type: 'delete', commitTs: ts, before: rowOf(eventValue['d']), after: null };
    if (eventValue['p'] !== undefined) return { kind: 'row', schema, table, type: 'update', commitTs: ts, before: rowOf(eventValue['p']), after: rowOf(eventValue['u']) };
    return { kind: 'row', schema, table, type: 'insert', commitTs: ts, before: null, after: rowOf(eventValue['u']) };
  });
}

// ---------------------------------------------------------------------------------------------------------
// debezium

/** Kafka Connect Decimal: the unscaled value as big-endian two's complement bytes; `scale` from the schema. */
function connectDecimal(bytes: Buffer, scale: number): string {
  let n = bytes.length === 0 ? 0n : BigInt(`0x${bytes.toString('hex')}`);
  if (bytes.length > 0 && (bytes[0] & 0x80) !== 0) n -= 1n << BigInt(bytes.length * 8);
  const negative = n < 0n;
  const digits = (negative ? -n : n).toString().padStart(scale + 1, '0');
  const text = scale === 0 ? digits : `${digits.slice(0, digits.length - scale)}.${digits.slice(digits.length - scale)}`;
  return negative ? `-${text}` : text;
}

function debeziumValueText(raw: JsonTree, field: JsonObject | undefined, declared: DeclaredType | undefined, what: string): string | null {
  if (raw === null) return null;
  const semantic = typeof field?.['name'] === 'string' ? field['name'] : undefined;
  const type = typeof field?.['type'] === 'string' ? field['type'] : undefined;
  const parameters = isObject(field?.['parameters']) ? field['parameters'] : undefined;
  const integer = (): bigint => integerOf(raw, what);
  switch (semantic) {
    case 'org.apache.kafka.connect.data.Decimal':
      return connectDecimal(base64OrThrow(stringOf(raw, what), what), Number(stringOf(parameters?.['scale'], `${what} scale`)));
    case 'io.debezium.data.VariableScaleDecimal': {
      const v = objectOf(raw, what);
      return connectDecimal(base64OrThrow(stringOf(v['value'], what), what), Number(integerOf(v['scale'], what)));
    }
    case 'io.debezium.time.Date':
    case 'org.apache.kafka.connect.data.Date':
      return dateOfDays(integer());
    case 'io.debezium.time.Time': // ms
    case 'org.apache.kafka.connect.data.Time':
      return timeOfMicros(integer() * 1000n, declared?.fsp ?? 3);
    case 'io.debezium.time.MicroTime':
      return timeOfMicros(integer(), declared?.fsp ?? 6);
    case 'io.debezium.time.NanoTime':
      return timeOfMicros(integer() / 1000n, declared?.fsp ?? 6);
    case 'io.debezium.time.Timestamp': // ms, no time zone
    case 'org.apache.kafka.connect.data.Timestamp':
      return datetimeOfMicros(integer() * 1000n, declared?.fsp ?? 3);
    case 'io.debezium.time.MicroTimestamp':
      return datetimeOfMicros(integer(), declared?.fsp ?? 6);
    case 'io.debezium.time.NanoTimestamp':
      return datetimeOfMicros(floorDiv(integer(), 1000n), declared?.fsp ?? 6);
    case 'io.debezium.time.ZonedTimestamp':
      return instantText(stringOf(raw, what), declared?.fsp);
    case 'io.debezium.data.Bits': {
      // "the bits in little-endian form"
      const bytes = base64OrThrow(stringOf(raw, what), what);
      let n = 0n;
      for (let i = 0; i < bytes.length; i++) n |= BigInt(bytes[i]) << BigInt(8 * i);
      return n.toString();
    }
    default:
      break;
  }
  switch (type) {
    case 'boolean':
      if (typeof raw !== 'boolean') throw new Error(`${what}: expected a boolean`);
      return raw ? '1' : '0';
    case 'bytes':
      return hexOf(base64OrThrow(stringOf(raw, what), what));
    case 'int8':
    case 'int16':
    case 'int32':
    case 'int64': {
      let n = integer();
      // bigint.unsigned.handling.mode=long: values above 2^63 - 1 arrive wrapped to negative
      if (n < 0n && declared?.unsigned === true && declared.base === 'bigint') n += 1n << 64n;
      return n.toString();
    }
    case 'float':
    case 'float32':
      return floatText(raw instanceof JsonNumberText ? raw.text : stringOf(raw, what), true);
    case 'double':
    case 'float64':
      return floatText(raw instanceof JsonNumberText ? raw.text : stringOf(raw, what), false);
    case 'string': {
      const text = stringOf(raw, what);
      // decimal.handling.mode=string
      return declared?.base === 'decimal' || declared?.base === 'numeric' ? decimalText(text, declared.scale) : text;
    }
    default:
      if (field === undefined) throw new Error(`${what}: no field schema (schemas.enable=false needs columnTypes, not supported here)`);
      throw new Error(`${what}: field type ${type ?? '?'} not read`);
  }
}

function decodeDebezium(value: Buffer, options: ReferenceDecodeOptions): ReferenceEvent[] {
  const message = objectOf(parseJsonKeepingNumbers(value.toString('utf8')), 'debezium message');
  const payload = objectOf(message['payload'], 'debezium payload');
  const source = isObject(payload['source']) ? payload['source'] : (Object.create(null) as JsonObject);
  const schema = optionalString(source['db']);
  const table = optionalString(source['table']);
  const commitTs = optionalInteger(source['commit_ts'], 'debezium source.commit_ts');
  if (payload['ddl'] !== undefined) return [{ kind: 'ddl', schema: optionalString(payload['databaseName']) || schema, table, query: stringOf(payload['ddl'], 'debezium ddl'), commitTs }];
  const op = stringOf(payload['op'], 'debezium op');
  if (op === 't' || op === 'm') return []; // truncate, message: not row changes
  const type = op === 'c' || op === 'r' ? 'insert' : op === 'u' ? 'update' : op === 'd' ? 'delete' : undefined;
  if (type === undefined) throw new Error(`debezium: unknown op ${JSON.stringify(op)}`);
  const fields = new Map<string, JsonObject>();
  const envelope = isObject(message['schema']) && Array.isArray(message['schema']['fields']) ? message['schema']['fields'] : [];
  for (const part of envelope) {
    if (!isObject(part) || (part['field'] !== 'after' && part['field'] !== 'before') || !Array.isArray(part['fields'])) continue;
    for (const f of part['fields']) if (isObject(f) && typeof f['field'] === 'string') fields.set(f['field'], f);
  }
  const declared = typesOfTable(options, schema, table);
  const rowOf = (image: JsonTree | undefined): ReferenceRow | null => {
    if (image === null || image === undefined) return null;
    const object = objectOf(image, 'debezium row image');
    const row: ReferenceRow = {};
    for (const name of Object.keys(object)) row[name] = debeziumValueText(object[name], fields.get(name), declared.get(name), `debezium ${schema}.${table}.${name}`);
    return row;
  };
  const before = rowOf(payload['before']);
  const after = rowOf(payload['after']);
  if ((type !== 'insert' && before === null) || (type !== 'delete' && after === null)) throw new Error(`debezium op ${op} without its ${before === null ? 'before' : 'after'} image`);
  const event: ReferenceEvent = { kind: 'row', schema, table, type, commitTs, before: type === 'insert' ? null : before, after: type === 'delete' ? null : after };
  if (op !== 'r') return [event];
  // "r" (read): a snapshot row; before is null ("the value of before is always null" for read events)
  if (before !== null) throw new Error('debezium op r with a before image');
  const record = optionalString(source['snapshot']);
  const snapshot = record === 'first' || record === 'first_in_data_collection' ? 'first' : record === 'last' || record === 'last_in_data_collection' ? 'last' : 'row';
  return [{ ...event, snapshot }];
}

// ---------------------------------------------------------------------------------------------------------
// maxwell

function maxwellValueText(raw: JsonTree, declared: DeclaredType | undefined, what: string, options: ReferenceDecodeOptions): string | null {
  if (raw === null) return null;
  const base = declared?.base;
  if (typeof raw === 'boolean') {
    if (base === 'bit') options.notes?.add('maxwell/bit-as-boolean', what);
    return raw ? '1' : '0';
  }
  if (raw instanceof JsonNumberText) {
    if (base === 'float') return floatText(raw.text, true);
    if (base === 'double' || base === 'real') return floatText(raw.text, false);
    if (base === 'decimal' || base === 'numeric') return decimalText(raw.text, declared?.scale);
    return raw.text;
  }
  if (Array.isArray(raw)) {
    if (base === 'set') return raw.map((m) => stringOf(m, `${what} member`)).join(',');
    return jsonTreeText(raw);
  }
  if (typeof raw !== 'string') return jsonTreeText(raw); // a JSON column, embedded
  if (base !== undefined && GEOMETRY_TYPES.has(base)) {
    const bytes = base64Bytes(raw);
    if (bytes === undefined) return raw; // WKT text, as Maxwell writes it
    options.notes?.add('maxwell/geometry-as-bytes', what);
    return hexOf(bytes);
  }
  if (base !== undefined && BYTE_TYPES.has(base)) return hexOf(base64OrThrow(raw, what));
  return raw;
}

function decodeMaxwell(value: Buffer, options: ReferenceDecodeOptions): ReferenceEvent[] {
  const message = objectOf(parseJsonKeepingNumbers(value.toString('utf8')), 'maxwell message');
  const type = stringOf(message['type'], 'maxwell type');
  const schema = optionalString(message['database']);
  const table = optionalString(message['table']);
  const commitTs = optionalInteger(message['xid'], 'maxwell xid');
  if (/^(database|table)-(create|alter|drop)$/.test(type)) return [{ kind: 'ddl', schema, table, query: stringOf(message['sql'], 'maxwell sql'), commitTs }];
  if (type === 'bootstrap-start' || type === 'bootstrap-complete') {
    // Maxwell's bootstrapping page: {"database","table","type":"bootstrap-start","ts","data":{}}, no row data
    const data = objectOf(message['data'], `maxwell ${type} data`);
    if (Object.keys(data).length !== 0) throw new Error(`maxwell ${type} with data`);
    return [{ kind: 'bootstrap', schema, table, phase: type === 'bootstrap-start' ? 'start' : 'complete' }];
  }
  if (type !== 'insert' && type !== 'update' && type !== 'delete' && type !== 'bootstrap-insert') throw new Error(`maxwell: unknown type ${JSON.stringify(type)}`);
  const declared = typesOfTable(options, schema, table);
  const rowOf = (image: JsonTree | undefined, what: string): ReferenceRow => {
    const object = objectOf(image, what);
    const row: ReferenceRow = {};
    for (const name of Object.keys(object)) row[name] = maxwellValueText(object[name], declared.get(name), `maxwell ${schema}.${table}.${name}`, options);
    return row;
  };
  const data = rowOf(message['data'], 'maxwell data');
  if (type === 'insert') return [{ kind: 'row', schema, table, type: 'insert', commitTs, before: null, after: data }];
  if (type === 'bootstrap-insert') return [{ kind: 'row', schema, table, type: 'insert', commitTs, before: null, after: data, snapshot: 'row' }];
  if (type === 'delete') return [{ kind: 'row', schema, table, type: 'delete', commitTs, before: data, after: null }];
  // "you can reconstruct what the row was by doing data.merge(old)"
  const old = message['old'] === undefined ? {} : rowOf(message['old'], 'maxwell old');
  return [{ kind: 'row', schema, table, type: 'update', commitTs, before: { ...data, ...old }, after: data }];
}

// ---------------------------------------------------------------------------------------------------------

/** Decodes one Kafka message of `protocol` into its events (an open-protocol message may carry many; a Debezium tombstone none). */
export function decodeReference(protocol: ReferenceProtocol, key: Buffer | null, value: Buffer | null, options: ReferenceDecodeOptions = {}): ReferenceEvent[] {
  switch (protocol) {
    case 'canal-json':
      if (value === null) throw new Error('canal-json message without a value');
      return decodeCanalJson(value, options);
    case 'open-protocol':
      if (key === null) throw new Error('open-protocol message without a key');
      return decodeOpenProtocol(key, value ?? Buffer.alloc(0), options);
    case 'debezium':
      if (value === null || value.length === 0) return []; // tombstone after a delete
      return decodeDebezium(value, options);
    case 'maxwell':
      if (value === null) throw new Error('maxwell message without a value');
      return decodeMaxwell(value, options);
  }
}

export interface TopicRecord {
  readonly partition: number;
  readonly offset: bigint;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
}

/**
 * Every message of a topic up to the high watermarks it has when called, read with a plain kafkajs consumer in
 * a throwaway group; per partition in offset order, partitions ascending.
 */
export async function readTopicRecords(brokers: readonly string[], topic: string, timeoutMs = 30_000): Promise<TopicRecord[]> {
  const kafka = new Kafka({ clientId: 'tidemark-reference-reader', brokers: [...brokers], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const ends = new Map<number, { low: bigint; high: bigint }>();
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        for (const o of await admin.fetchTopicOffsets(topic)) ends.set(o.partition, { low: BigInt(o.low), high: BigInt(o.high) });
        break;
      } catch (error) {
        // a topic created a moment ago may have no leader yet
        if (Date.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
  } finally {
    await admin.disconnect();
  }
  const records: TopicRecord[] = [];
  const unread = new Set([...ends].filter(([, e]) => e.high > e.low).map(([p]) => p));
  if (unread.size === 0) return records;
  const consumer = kafka.consumer({ groupId: `tidemark-reference-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`, maxWaitTimeInMs: 100 });
  await consumer.connect();
  let timer: NodeJS.Timeout | undefined;
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`reading ${topic}: partitions ${[...unread].join(', ')} not read to their end within ${timeoutMs} ms`)), timeoutMs);
      consumer
        .run({
          eachMessage: ({ partition, message }) => {
            const offset = BigInt(message.offset);
            const end = ends.get(partition)?.high ?? 0n;
            if (offset < end) records.push({ partition, offset, key: message.key, value: message.value });
            if (offset + 1n >= end && unread.delete(partition) && unread.size === 0) resolve();
            return Promise.resolve();
          },
        })
        .catch(reject);
    });
  } finally {
    clearTimeout(timer);
    await consumer.disconnect();
  }
  return records.sort((a, b) => a.partition - b.partition || (a.offset < b.offset ? -1 : a.offset > b.offset ? 1 : 0));
}
