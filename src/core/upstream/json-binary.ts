import { TidemarkError } from '../errors/index.js';

/**
 * MySQL 5.7+/8 binary JSON (the JSON column type in the binlog) to JSON text. Objects and arrays come in a
 * small form (2-byte counts and offsets) and a large form (4-byte); offsets count from the start of the
 * container; literals, 16-bit integers (and 32-bit ones in the large form) are stored inline.
 */
export function decodeJsonBinary(buf: Buffer): string {
  if (buf.length === 0) return 'null';
  return value(buf, buf[0], 1);
}

const TYPE = {
  SMALL_OBJECT: 0x00, LARGE_OBJECT: 0x01, SMALL_ARRAY: 0x02, LARGE_ARRAY: 0x03, LITERAL: 0x04,
  INT16: 0x05, UINT16: 0x06, INT32: 0x07, UINT32: 0x08, INT64: 0x09, UINT64: 0x0a, DOUBLE: 0x0b, STRING: 0x0c, OPAQUE: 0x0f,
} as const;

function literal(code: number): string {
  if (code === 0x00) return 'null';
  if (code === 0x01) return 'true';
  if (code === 0x02) return 'false';
  throw new TidemarkError('ErrBinlogCorrupt', `invalid JSON literal 0x${code.toString(16)}`);
}

/** A variable-length length (7 bits a byte, low first); returns [length, bytes used]. */
function varLength(buf: Buffer, o: number): [number, number] {
  let length = 0;
  for (let i = 0; i < 5; i++) {
    const b = buf[o + i];
    length += (b & 0x7f) * 2 ** (7 * i);
    if ((b & 0x80) === 0) return [length, i + 1];
  }
  throw new TidemarkError('ErrBinlogCorrupt', 'invalid JSON string length');
}

function value(buf: Buffer, type: number, o: number): string {
  switch (type) {
    case TYPE.SMALL_OBJECT: return container(buf, o, false, true);
    case TYPE.LARGE_OBJECT: return container(buf, o, true, true);
    case TYPE.SMALL_ARRAY: return container(buf, o, false, false);
    case TYPE.LARGE_ARRAY: return container(buf, o, true, false);
    case TYPE.LITERAL: return literal(buf[o]);
    case TYPE.INT16: return String(buf.readInt16LE(o));
    case TYPE.UINT16: return String(buf.readUInt16LE(o));
    case TYPE.INT32: return String(buf.readInt32LE(o));
    case TYPE.UINT32: return String(buf.readUInt32LE(o));
    case TYPE.INT64: return buf.readBigInt64LE(o).toString();
    case TYPE.UINT64: return buf.readBigUInt64LE(o).toString();
    case TYPE.DOUBLE: return JSON.stringify(buf.readDoubleLE(o));
    case TYPE.STRING: {
      const [length, n] = varLength(buf, o);
      return JSON.stringify(buf.toString('utf8', o + n, o + n + length));
    }
    case TYPE.OPAQUE: {
      // a MySQL value without a JSON type (DECIMAL, DATE, ...): its column type and raw bytes, as MySQL prints it
      const columnType = buf[o];
      const [length, n] = varLength(buf, o + 1);
      return JSON.stringify(`base64:type${columnType}:${buf.toString('base64', o + 1 + n, o + 1 + n + length)}`);
    }
    default:
      throw new TidemarkError('ErrBinlogCorrupt', `invalid JSON value type 0x${type.toString(16)}`);
  }
}

function container(buf: Buffer, start: number, large: boolean, object: boolean): string {
  const w = large ? 4 : 2;
  const read = (o: number): number => (large ? buf.readUInt32LE(o) : buf.readUInt16LE(o));
  const count = read(start);
  const keyEntries = start + 2 * w;
  const valueEntries = keyEntries + (object ? count * (w + 2) : 0);
  const parts: string[] = [];
  for (let i = 0; i < count; i++) {
    const entry = valueEntries + i * (1 + w);
    const type = buf[entry];
    const inline = type === TYPE.LITERAL || type === TYPE.INT16 || type === TYPE.UINT16 || (large && (type === TYPE.INT32 || type === TYPE.UINT32));
    const text = value(buf, type, inline ? entry + 1 : start + read(entry + 1));
    if (object) {
      const keyOffset = read(keyEntries + i * (w + 2));
      const keyLength = buf.readUInt16LE(keyEntries + i * (w + 2) + w);
      parts.push(`${JSON.stringify(buf.toString('utf8', start + keyOffset, start + keyOffset + keyLength))}: ${text}`);
    } else parts.push(text);
  }
  return object ? `{${parts.join(', ')}}` : `[${parts.join(', ')}]`;
}
