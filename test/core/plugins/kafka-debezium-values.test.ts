import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { datetimeJson, decimalBase64, decimalBytes, epochMicros } from '../../../plugins/sink-kafka/src/encoder/debezium.js';

/** A small deterministic generator (xorshift), so a failure names a reproducible value. */
function random(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
}

const digits = (next: () => number, n: number): string => Array.from({ length: n }, () => String(Math.floor(next() * 10))).join('');

/** The exact forms, by BigInt: what the fast paths must equal. */
const exactDecimal = (text: string, scale: number): string => decimalBytes(text, scale).toString('base64');
const exactDatetime = (text: string, fsp: number): string => {
  const us = epochMicros(text);
  if (us === null) return 'null';
  return fsp <= 3 ? String(us / 1000n) : String(us);
};

describe('debezium values: the number paths equal the exact BigInt forms', () => {
  it('decimals of every width up to 15 digits and past it, both signs, zero, missing and extra fraction digits, the bounds of each byte width', () => {
    const next = random(16);
    const cases: [string, number][] = [
      ['0', 0],
      ['-0.00', 2],
      ['0.00', 2],
      ['.5', 1],
      ['127', 0],
      ['128', 0],
      ['-128', 0],
      ['-129', 0],
      ['32767', 0],
      ['-32768', 0],
      ['32768', 0],
      ['999999999999999', 0],
      ['-999999999999999', 0],
      ['9999999999999.99', 2],
      ['99999999999999.99', 2], // 16 digits: the exact path
      ['1.5', 3],
      ['1.23456', 2],
      ['18446744073709551615', 0],
    ];
    for (const w of [1, 2, 3, 6, 7, 8, 9, 15, 16, 17]) {
      const bound = 2n ** BigInt(8 * w - 1);
      for (const v of [bound - 1n, bound, -bound, -bound - 1n]) if (v.toString().replace('-', '').length <= 20) cases.push([v.toString(), 0]);
    }
    for (let i = 0; i < 20_000; i++) {
      const intDigits = Math.floor(next() * 14);
      const scale = Math.floor(next() * 6);
      const sign = next() < 0.5 ? '-' : '';
      const fraction = scale === 0 && next() < 0.5 ? '' : `.${digits(next, scale)}`;
      cases.push([`${sign}${intDigits === 0 ? '0' : digits(next, intDigits)}${fraction}`, scale]);
    }
    for (const [text, scale] of cases) assert.equal(decimalBase64(text, scale), exactDecimal(text, scale), `${text} scale ${scale}`);
  });

  it('datetimes from year 1 to 9999, before and after the epoch, every fsp, zero dates, days past a month end, and other shapes', () => {
    const next = random(25);
    const cases: string[] = [
      '1970-01-01 00:00:00',
      '1969-12-31 23:59:59.999999',
      '1969-12-31 23:59:59.9995',
      '1969-12-31 23:59:59.001',
      '1969-12-31 23:59:59.0001',
      '0001-01-01 00:00:00',
      '9999-12-31 23:59:59.999999',
      '2255-06-05 23:47:34.740992', // µs past 2^53
      '0000-00-00 00:00:00',
      '2024-00-10 10:00:00',
      '2024-05-00 10:00:00',
      '2021-02-30 12:00:00',
      '2024-02-29 23:59:59.5',
      '2024-02-29T23:59:59',
      '2024-02-29 23:59',
      'not a date',
    ];
    const pad = (n: number, w: number): string => String(n).padStart(w, '0');
    for (let i = 0; i < 20_000; i++) {
      const fsp = Math.floor(next() * 7);
      const base = `${pad(1 + Math.floor(next() * 9999), 4)}-${pad(1 + Math.floor(next() * 12), 2)}-${pad(1 + Math.floor(next() * 31), 2)} ${pad(Math.floor(next() * 24), 2)}:${pad(Math.floor(next() * 60), 2)}:${pad(Math.floor(next() * 60), 2)}`;
      cases.push(fsp === 0 ? base : `${base}.${digits(next, fsp)}`);
    }
    for (const text of cases) for (const fsp of [0, 3, 4, 6]) assert.equal(datetimeJson(text, fsp), exactDatetime(text, fsp), `${text} fsp ${fsp}`);
  });
});
