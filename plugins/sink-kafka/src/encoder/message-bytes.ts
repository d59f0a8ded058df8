/**
 * Bytes of a slab: under glibc's mmap threshold (128 KiB), so a freed slab's memory is reused rather than given
 * back and faulted in again (256 KiB slabs were 3× slower in a probe).
 */
const SLAB_BYTES = 64 * 1024;
/** The largest message written into a slab; a larger one gets a buffer of its own. */
const MAX_IN_SLAB = SLAB_BYTES / 8;
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
/** Slabs kept for use again (4 MiB): about what the Kafka sink holds unacknowledged. */
const FREE_SLABS = 64;

/**
 * The bytes of encoded messages, written into slabs of 64 KiB: a message is a view of its slab, written once
 * (UTF-8 straight from the JSON text), so an encoder neither asks Node's 8 KiB pool for a new block every few
 * messages (a Debezium message with its schema is about 3 KiB) nor encodes a table's constant part again: that
 * part (Debezium's schema, a key's schema) is given as bytes, encoded once per table, and copied. A slab is
 * never written again where a view was handed out while that view may be read.
 *
 * A holder of messages (the Kafka sink) may say when it holds a message and when it lets it go (`hold`, `release`;
 * the sink lets go once the broker acknowledged it): a slab no longer written whose every held view was let go is
 * used again for new messages. Slabs allocated anew for every few dozen 3 KiB messages lived until their requests
 * were acknowledged, long enough to reach V8's old generation and to make it collect often. So whoever lets views
 * go must hold every view it still reads (the sink holds every message it queues; a row refused as too large is
 * dropped unread). A slab with a view held and never let go (a send that failed) is left to the garbage collector,
 * as is every slab of an encoder whose views nobody holds.
 */
export class MessageBytes {
  private slab = Buffer.alloc(0);
  private at = 0;
  /**
   * A message written in place (`begin` … `end`): where it starts in `buf`, and where the next byte goes. `buf` is
   * the slab, or a buffer of the message's own once it outgrew one.
   */
  private start = 0;
  private w = 0;
  private buf = this.slab;
  /** Per slab handed out, how many views of it are held (slabs in `free` have none). */
  private readonly holders = new WeakMap<ArrayBufferLike, { n: number }>();
  private readonly free: ArrayBufferLike[] = [];

  /** `head` (bytes already encoded) followed by `text` as UTF-8, in one buffer. */
  of(text: string, head?: Buffer): Buffer {
    const headLength = head?.length ?? 0;
    // a UTF-16 code unit is at most 3 bytes of UTF-8 (a surrogate pair, two units, is 4)
    const most = headLength + 3 * text.length;
    if (most > MAX_IN_SLAB) {
      const out = Buffer.allocUnsafe(headLength + Buffer.byteLength(text));
      head?.copy(out, 0);
      out.write(text, headLength);
      return out;
    }
    if (this.at + most > this.slab.length) this.nextSlab();
    const start = this.at;
    if (head !== undefined) this.slab.set(head, start);
    const written = this.slab.write(text, start + headLength);
    const end = start + headLength + written;
    this.at = (end + 7) & ~7;
    return this.slab.subarray(start, end);
  }

  /**
   * Starts a message written in place, byte by byte (`ascii`, `text`, `bytes`, `jsonString`, `integer`), with no
   * string built for it: `end` gives it as `of` would. Nothing else is made in between. `expected`: about how many
   * bytes it will take (it starts in a new slab when the slab has less room; else it moves when it outgrows it).
   */
  begin(expected = 256): void {
    if (this.slab.length - this.at < Math.min(expected, MAX_IN_SLAB)) this.nextSlab();
    this.buf = this.slab;
    this.start = this.w = this.at;
  }

  /** Text known to be ASCII (keys, constant parts, numbers' text); anything else goes as UTF-8 all the same. */
  ascii(s: string): void {
    const n = s.length;
    this.room(n);
    const buf = this.buf;
    let w = this.w;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) return this.text(s);
      buf[w++] = c;
    }
    this.w = w;
  }

  /** Text as UTF-8. */
  text(s: string): void {
    this.room(3 * s.length);
    this.w += this.buf.write(s, this.w, 'utf8');
  }

  /** Bytes already encoded (a table's constant parts). */
  bytes(b: Buffer): void {
    this.room(b.length);
    if (b.length <= 32) {
      const buf = this.buf;
      let w = this.w;
      for (let i = 0; i < b.length; i++) buf[w++] = b[i];
      this.w = w;
    } else this.w += b.copy(this.buf, this.w);
  }

  /** A string as a JSON string literal, exactly as JSON.stringify writes it. */
  jsonString(s: string): void {
    const n = s.length;
    this.room(n + 2);
    const buf = this.buf;
    let w = this.w;
    buf[w++] = 0x22;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      // escaped (control characters, the quote, the backslash) or beyond ASCII (lone surrogates are escaped)
      if (c < 0x20 || c === 0x22 || c === 0x5c || c >= 0x7f) return this.text(JSON.stringify(s));
      buf[w++] = c;
    }
    buf[w++] = 0x22;
    this.w = w;
  }

  /** A safe integer in decimal, as String() writes it. */
  integer(v: number): void {
    this.room(17);
    const buf = this.buf;
    let w = this.w;
    if (v < 0) {
      buf[w++] = 0x2d;
      v = -v;
    }
    if (v < 0x80000000) w = smallDigits(buf, w, v);
    else {
      // past 2^31: the digits above the last eight (under 2^31 for a safe integer), then those eight, in int arithmetic
      const high = Math.floor(v / 1e8);
      w = eightDigits(buf, smallDigits(buf, w, high), v - high * 1e8);
    }
    this.w = w;
  }

  /** A JSON number: a safe integer as digits, anything else as String() writes it. */
  number(value: number): void {
    if (Number.isSafeInteger(value)) this.integer(value);
    else this.ascii(String(value));
  }

  /** A bigint in decimal. */
  bigint(value: bigint): void {
    if (value >= MIN_SAFE && value <= MAX_SAFE) this.integer(Number(value));
    else this.ascii(value.toString());
  }

  /** The message written since `begin`. */
  end(): Buffer {
    if (this.buf !== this.slab) {
      const own = this.buf.subarray(0, this.w);
      this.buf = this.slab;
      return own;
    }
    const view = this.slab.subarray(this.start, this.w);
    this.at = (this.w + 7) & ~7;
    return view;
  }

  /** Room for `n` more bytes of the message being written: it moves to a new slab, or to a buffer of its own. */
  private room(n: number): void {
    if (this.w + n <= this.buf.length) return;
    const written = this.w - this.start;
    const from = this.buf;
    const start = this.start;
    if (from === this.slab && written + n <= MAX_IN_SLAB) {
      this.nextSlab();
      this.buf = this.slab;
    } else {
      this.buf = Buffer.allocUnsafe(Math.max(2 * (written + n), 1024));
    }
    from.copy(this.buf, 0, start, start + written);
    this.start = 0;
    this.w = written;
  }

  private nextSlab(): void {
    const reused = this.free.pop();
    this.slab = reused === undefined ? Buffer.allocUnsafeSlow(SLAB_BYTES) : Buffer.from(reused as ArrayBuffer);
    this.holders.set(this.slab.buffer, { n: 0 });
    this.at = 0;
  }

  /** A message made here is held (queued); any other buffer, or null, is ignored. */
  hold(view: Buffer | null): void {
    if (view === null) return;
    const holders = this.holders.get(view.buffer);
    if (holders !== undefined) holders.n++;
  }

  /** A held message is let go: nothing reads it any more. Its slab is used again once none of it is held. */
  release(view: Buffer | null): void {
    if (view === null) return;
    const slab = view.buffer;
    const holders = this.holders.get(slab);
    if (holders === undefined || --holders.n > 0 || slab === this.slab.buffer) return;
    this.holders.delete(slab);
    if (this.free.length < FREE_SLABS) this.free.push(slab);
  }
}

/** Writes `v` (0 ≤ v < 2^31) in decimal at `w`; returns where it ends. */
function smallDigits(buf: Buffer, w: number, v: number): number {
  const n = v < 10 ? 1 : v < 100 ? 2 : v < 1e3 ? 3 : v < 1e4 ? 4 : v < 1e5 ? 5 : v < 1e6 ? 6 : v < 1e7 ? 7 : v < 1e8 ? 8 : v < 1e9 ? 9 : 10;
  const end = w + n;
  for (let p = end - 1; p >= w; p--) {
    const q = (v / 10) | 0;
    buf[p] = 0x30 + (v - q * 10);
    v = q;
  }
  return end;
}

/** Writes `v` (0 ≤ v < 10^8) as exactly eight digits, zeros first, at `w`; returns where it ends. */
function eightDigits(buf: Buffer, w: number, v: number): number {
  for (let p = w + 7; p >= w; p--) {
    const q = (v / 10) | 0;
    buf[p] = 0x30 + (v - q * 10);
    v = q;
  }
  return w + 8;
}
