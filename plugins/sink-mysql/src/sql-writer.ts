import mysql from 'mysql2/promise';
import type { ColumnValue } from 'tidemark/sink';

const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const HEX = Buffer.from('0123456789abcdef', 'latin1');
/** The writer's buffer at first, and the most it keeps between statements (a huge row's statement lets it go). */
const START_BYTES = 64 * 1024;
const KEPT_BYTES = 4 << 20;

/**
 * SQL text written as bytes: values as the literals `literal()` gives (sql.ts), with no string per value, per row or
 * per list on the way, and one string at the end. A batch of narrow rows built as strings (one per value, one per
 * row, one per list) allocated about a kilobyte per row, and most of the capture's garbage collection in a MySQL
 * backlog was of those strings.
 *
 * Writes are synchronous from `begin` to `take`; one writer serves every statement that is built without an await
 * in between.
 */
export class SqlWriter {
  private buf = Buffer.allocUnsafe(START_BYTES);
  private at = 0;
  /** Whether every byte so far is ASCII (the text is then taken as latin1, a plain copy). */
  private ascii = true;

  /** Starts a new text (what a write cut short by an exception left is dropped). */
  begin(): this {
    this.at = 0;
    this.ascii = true;
    return this;
  }

  /** Bytes written since the last `take`. */
  get length(): number {
    return this.at;
  }

  /** SQL text as it is (keywords, quoted identifiers, separators). */
  text(s: string): void {
    const n = s.length;
    this.ensure(n);
    const buf = this.buf;
    let at = this.at;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) {
        this.utf8(s);
        return;
      }
      buf[at++] = c;
    }
    this.at = at;
  }

  /** A value's literal: integers (bigint too) unquoted, binary as X'…', text quoted and escaped as mysql2 does. */
  literal(value: ColumnValue): void {
    if (value === null) return this.text('NULL');
    switch (typeof value) {
      case 'string':
        return this.string(value);
      case 'number':
        if (Number.isSafeInteger(value)) return this.integer(value);
        return this.text(Number.isFinite(value) ? String(value) : 'NULL');
      case 'bigint':
        if (value >= MIN_SAFE && value <= MAX_SAFE) return this.integer(Number(value));
        return this.text(value.toString());
      case 'boolean':
        return this.text(value ? '1' : '0');
      default:
        return this.hex(value);
    }
  }

  /** `(v1, v2, …)`. */
  tuple(image: readonly ColumnValue[]): void {
    this.byte(0x28);
    for (let k = 0; k < image.length; k++) {
      if (k > 0) this.comma();
      this.literal(image[k] ?? null);
    }
    this.byte(0x29);
  }

  /** `(v1, …)` of the image's values at these positions (a row's key). */
  key(image: readonly ColumnValue[], positions: readonly number[]): void {
    this.byte(0x28);
    for (let k = 0; k < positions.length; k++) {
      if (k > 0) this.comma();
      this.literal(image[positions[k]] ?? null);
    }
    this.byte(0x29);
  }

  /** `, ` (between values, tuples, keys). */
  comma(): void {
    this.ensure(2);
    this.buf[this.at++] = 0x2c;
    this.buf[this.at++] = 0x20;
  }

  /** The text written since the last `take`, as one string; the writer starts over. */
  take(): string {
    const text = this.buf.toString(this.ascii ? 'latin1' : 'utf8', 0, this.at);
    this.at = 0;
    this.ascii = true;
    if (this.buf.length > KEPT_BYTES) this.buf = Buffer.allocUnsafe(START_BYTES);
    return text;
  }

  private ensure(bytes: number): void {
    if (this.at + bytes <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(2 * this.buf.length, this.at + bytes));
    this.buf.copy(grown, 0, 0, this.at);
    this.buf = grown;
  }

  private byte(b: number): void {
    this.ensure(1);
    this.buf[this.at++] = b;
  }

  private utf8(s: string): void {
    this.ensure(3 * s.length);
    this.at += this.buf.write(s, this.at, 'utf8');
    this.ascii = false;
  }

  private string(s: string): void {
    const n = s.length;
    this.ensure(n + 2);
    const buf = this.buf;
    let at = this.at;
    buf[at++] = 0x27;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      // a character to escape (\0 \b \t \n \r \x1a " ' \\: all under 0x20 go the slow way) or beyond ASCII
      if (c < 0x20 || c >= 0x80 || c === 0x27 || c === 0x5c || c === 0x22) {
        this.text(mysql.escape(s));
        return;
      }
      buf[at++] = c;
    }
    buf[at++] = 0x27;
    this.at = at;
  }

  /** A safe integer in decimal (as String() writes it). */
  private integer(v: number): void {
    this.ensure(17);
    const buf = this.buf;
    if (v < 0) {
      buf[this.at++] = 0x2d;
      v = -v;
    }
    let digits = 1;
    for (let t = v; t >= 10; t = Math.floor(t / 10)) digits++;
    const end = this.at + digits;
    let p = end - 1;
    for (; v >= 0x80000000; p--) {
      const q = Math.floor(v / 10);
      buf[p] = 0x30 + (v - q * 10);
      v = q;
    }
    // the rest in 32-bit integer arithmetic
    for (; p >= this.at; p--) {
      const q = (v / 10) | 0;
      buf[p] = 0x30 + (v - q * 10);
      v = q;
    }
    this.at = end;
  }

  private hex(value: Buffer): void {
    this.ensure(3 + 2 * value.length);
    const buf = this.buf;
    let at = this.at;
    buf[at++] = 0x58; // X
    buf[at++] = 0x27;
    for (let i = 0; i < value.length; i++) {
      buf[at++] = HEX[value[i] >> 4];
      buf[at++] = HEX[value[i] & 15];
    }
    buf[at++] = 0x27;
    this.at = at;
  }
}
