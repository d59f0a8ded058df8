import { TextDecoder } from 'node:util';
import { COLLATION_IDS, SINGLE_BYTE_TABLES } from './charset-tables.js';

/**
 * The text of a string column, from its bytes in the column's character set: what the server itself would give
 * when converting the value to utf8mb4. The binlog carries string values as their bytes and the TABLE_MAP the
 * column's collation id; the snapshot reads non-UTF-8 text as bytes too (CAST AS BINARY), so both go through here.
 */

/** A column's bytes as text: the fast paths Buffer has, else a WHATWG decoder for the character set. */
export type TextDecode = (buf: Buffer, start: number, end: number) => string;

const utf8: TextDecode = (buf, start, end) => buf.toString('utf8', start, end);
const latin1Bytes: TextDecode = (buf, start, end) => buf.toString('latin1', start, end);
const whatwg = (label: string): TextDecode => {
  const decoder = new TextDecoder(label);
  return (buf, start, end) => decoder.decode(buf.subarray(start, end));
};
/**
 * A single-byte character set, by the server's own table: bytes that are their own code point (most of them, in
 * most sets) take Buffer's latin1 fast path; a value with another byte is mapped byte by byte.
 */
function singleByte(table: string): TextDecode {
  const identity = new Uint8Array(256);
  for (let b = 0; b < 256; b++) identity[b] = table.charCodeAt(b) === b ? 1 : 0;
  return (buf, start, end) => {
    let i = start;
    while (i < end && identity[buf[i]] === 1) i++;
    if (i === end) return buf.toString('latin1', start, end);
    let s = buf.toString('latin1', start, i);
    for (; i < end; i++) s += table[buf[i]];
    return s;
  };
}
/** UTF-32 (big-endian, as MySQL stores it): code points the WHATWG decoders do not cover. */
const utf32: TextDecode = (buf, start, end) => {
  let s = '';
  for (let i = start; i + 4 <= end; i += 4) {
    const cp = buf.readUInt32BE(i);
    s += cp <= 0x10ffff && (cp < 0xd800 || cp > 0xdfff) ? String.fromCodePoint(cp) : '\ufffd';
  }
  return s;
};

/**
 * How each character set decodes: single-byte sets by the server's own tables (charset-tables.ts, generated from
 * MariaDB: MariaDB's and MySQL's latin1 is cp1252, 0x80 is '€'); multi-byte ones by the nearest WHATWG decoder.
 * test/integration/upstream/charsets.test.ts compares every byte of each single-byte set, and sample text of the
 * multi-byte ones, with the server's conversion.
 */
const DECODERS: Readonly<Record<string, TextDecode>> = {
  ...Object.fromEntries(Object.entries(SINGLE_BYTE_TABLES).map(([charset, table]) => [charset, singleByte(table)])),
  utf8mb3: utf8,
  utf8mb4: utf8,
  ascii: latin1Bytes,
  gbk: whatwg('gbk'),
  gb2312: whatwg('gb18030'),
  big5: whatwg('big5'),
  sjis: whatwg('shift_jis'),
  cp932: whatwg('shift_jis'),
  ujis: whatwg('euc-jp'),
  eucjpms: whatwg('euc-jp'),
  euckr: whatwg('euc-kr'),
  ucs2: whatwg('utf-16be'),
  utf16: whatwg('utf-16be'),
  utf16le: whatwg('utf-16le'),
  utf32,
};

const BY_ID = new Map<number, TextDecode>();
const NAME_BY_ID = new Map<number, string>();
for (const [charset, ids] of Object.entries(COLLATION_IDS)) {
  for (const id of ids) {
    NAME_BY_ID.set(id, charset);
    BY_ID.set(id, DECODERS[charset] ?? latin1Bytes);
  }
}

/** The character set of a collation id, or undefined for an id this table does not know (e.g. MariaDB's UCA 14.0.0 ones). */
export function charsetOfCollation(id: number): string | undefined {
  return NAME_BY_ID.get(id);
}

/** The decoder of a column's text by its collation id; an unknown id decodes as UTF-8 (the servers' default today). */
export function textDecoderOf(collationId: number | undefined): TextDecode {
  return (collationId === undefined ? undefined : BY_ID.get(collationId)) ?? utf8;
}

/** The decoder of a character set by name (information_schema's CHARACTER_SET_NAME); unknown names decode as UTF-8. */
export function textDecoderOfCharset(charset: string): TextDecode {
  return DECODERS[charset] ?? (Object.hasOwn(COLLATION_IDS, charset) ? latin1Bytes : utf8);
}
