import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { textDecoderOfCharset } from '../../../src/core/upstream/charsets.js';
import { roundTrip } from '../../helpers/binlog.js';
import { mysqlUri, requireService, uniqueName } from '../../helpers/services.js';

/** Single-byte character sets: every byte is compared. */
const SINGLE_BYTE = ['latin1', 'latin2', 'latin5', 'latin7', 'greek', 'hebrew', 'cp1250', 'cp1251', 'cp1256', 'cp1257', 'cp866', 'koi8r', 'koi8u', 'tis620', 'macroman', 'ascii', 'swe7', 'dec8', 'hp8', 'keybcs2', 'armscii8', 'geostd8', 'macce', 'cp850', 'cp852'];
/** Columns of the binlog case: a character set, and text it holds (read back from the server as the expected value). */
const COLUMNS: [name: string, definition: string, text: string][] = [
  ['l1', 'VARCHAR(40) CHARACTER SET latin1', 'café € Œuvre ‰ “quoted” — Ÿ'],
  ['l1t', 'TEXT CHARACTER SET latin1', 'long € text ™'],
  ['l1c', 'CHAR(12) CHARACTER SET latin1', 'Š€'],
  ['pl', 'VARCHAR(40) CHARACTER SET cp1250', 'Zażółć gęślą jaźń'],
  ['ru', 'VARCHAR(40) CHARACTER SET cp1251', 'Съешь же ещё этих булок'],
  ['gr', 'VARCHAR(40) CHARACTER SET greek', 'Καλημέρα κόσμε'],
  ['ko', 'VARCHAR(40) CHARACTER SET koi8r', 'Привет, мир'],
  ['sw', 'VARCHAR(40) CHARACTER SET swe7', 'ABC abc'],
  ['ja', 'VARCHAR(40) CHARACTER SET sjis', '日本語テキスト'],
  ['zh', 'VARCHAR(40) CHARACTER SET gbk', '中文字符'],
  ['kr', 'VARCHAR(40) CHARACTER SET euckr', '한국어'],
  ['u2', 'VARCHAR(40) CHARACTER SET ucs2', 'Ünïcödé Ελληνικά'],
  ['u16', 'VARCHAR(40) CHARACTER SET utf16', 'emoji 😀 𝄞'],
  ['u32', 'VARCHAR(40) CHARACTER SET utf32', 'emoji 😀 𝄞'],
  ['e1', "ENUM('café€', 'plain', 'Œ') CHARACTER SET latin1", 'café€'],
  ['e2', "ENUM('ёлка', 'дом') CHARACTER SET cp1251", 'ёлка'],
  ['s1', "SET('€', 'é', 'x') CHARACTER SET latin1", '€,é'],
];
/** Multi-byte ones: sample text in their scripts, converted by the server to the set's bytes and back by ours. */
const SAMPLES: Record<string, string> = {
  gbk: '中文字符，汉字；繁體測試 ABC 123',
  gb2312: '中文字符，汉字 ABC',
  big5: '繁體中文測試，臺灣 ABC',
  sjis: '日本語のテキスト、カタカナ ｶﾀｶﾅ 漢字 ABC',
  cp932: '日本語のテキスト、①② ABC',
  ujis: '日本語のテキスト、カタカナ 漢字',
  eucjpms: '日本語のテキスト 漢字',
  euckr: '한국어 텍스트, 한글 ABC',
  ucs2: 'Ünïcödé Ελληνικά 中文 ‰',
  utf16: 'Ünïcödé 😀 𝄞 中文',
  utf16le: 'Ünïcödé 😀 𝄞 中文',
  utf32: 'Ünïcödé 😀 𝄞 中文',
  utf8mb4: 'Ünïcödé 😀 𝄞 中文',
};

/**
 * The binlog and the snapshot give string columns as bytes in the column's character set; Tidemark's text must be
 * the server's own conversion of those bytes (what a client reading the column as utf8mb4 gets). Real upstream.
 */
describe('column text from bytes in every character set = the server\'s own conversion (real MariaDB)', () => {
  let conn: mysql.Connection;
  before(async () => {
    await requireService('upstream');
    conn = await mysql.createConnection({ uri: mysqlUri('upstream') });
  });
  after(async () => {
    await conn.end();
  });

  it('the binlog: text, CHAR, ENUM and SET columns in ten character sets decode to the server\'s own text', async () => {
    const db = uniqueName('charsets');
    await conn.query(`CREATE DATABASE \`${db}\``);
    try {
      await conn.query(`CREATE TABLE \`${db}\`.t (id INT PRIMARY KEY, ${COLUMNS.map(([n, d]) => `${n} ${d}`).join(', ')})`);
      const values = COLUMNS.map(() => '?').join(', ');
      const { events } = await roundTrip(conn, [
        mysql.format(`INSERT INTO \`${db}\`.t VALUES (1, ${values})`, COLUMNS.map(([, , text]) => text)),
      ], 't');
      const [[expected]] = (await conn.query(`SELECT ${COLUMNS.map(([n]) => n).join(', ')} FROM \`${db}\`.t WHERE id = 1`)) as unknown as [Record<string, string>[]];
      const row = events[0].rows[0].after!;
      const got: Record<string, unknown> = {};
      const want: Record<string, unknown> = {};
      // ENUM and SET values come as their members' text, from the TABLE_MAP, in the column's character set
      COLUMNS.forEach(([name], i) => {
        got[name] = row[i + 1];
        want[name] = expected[name];
      });
      assert.deepEqual(got, want);
      // the server kept what was inserted (the sample text fits each set)
      assert.deepEqual(want, Object.fromEntries(COLUMNS.map(([n, , t]) => [n, t])));
    } finally {
      await conn.query(`DROP DATABASE \`${db}\``);
    }
  });

  for (const charset of SINGLE_BYTE) {
    it(`${charset}: all 256 bytes`, async () => {
      const columns = Array.from({ length: 256 }, (_, b) => `CONVERT(_binary X'${b.toString(16).padStart(2, '0')}' USING ${charset}) AS b${b}`).join(', ');
      const [[row]] = (await conn.query(`SELECT ${columns}`)) as unknown as [Record<string, string>[]];
      const decode = textDecoderOfCharset(charset);
      const differ: string[] = [];
      for (let b = 0; b < 256; b++) {
        const server = row[`b${b}`];
        const ours = decode(Buffer.from([b]), 0, 1);
        // a byte the set does not define: the server gives '?', a decoder U+FFFD or its nearest control; both say "no character"
        if (server === '?' && b !== 0x3f) continue;
        if (ours !== server) differ.push(`0x${b.toString(16)}: server ${JSON.stringify(server)} ours ${JSON.stringify(ours)}`);
      }
      assert.deepEqual(differ, [], `${charset}: ${differ.length} bytes decode differently`);
    });
  }

  for (const [charset, text] of Object.entries(SAMPLES)) {
    it(`${charset}: sample text round trip`, async () => {
      const [[row]] = (await conn.query('SELECT HEX(CONVERT(? USING ' + charset + ')) AS h, CONVERT(CONVERT(? USING ' + charset + ') USING utf8mb4) AS back', [text, text])) as unknown as [{ h: string; back: string }[]];
      const bytes = Buffer.from(row.h, 'hex');
      assert.equal(textDecoderOfCharset(charset)(bytes, 0, bytes.length), row.back, `${charset}: ${row.h}`);
    });
  }
});
