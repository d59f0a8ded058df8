/**
 * Bytes of a slab: under glibc's mmap threshold (128 KiB), so a freed slab's memory is reused rather than given
 * back and faulted in again (256 KiB slabs were 3× slower in a probe).
 */
const SLAB_BYTES = 64 * 1024;
/** The largest message written into a slab; a larger one gets a buffer of its own. */
const MAX_IN_SLAB = SLAB_BYTES / 8;
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
    if (this.at + most > this.slab.length) {
      const reused = this.free.pop();
      this.slab = reused === undefined ? Buffer.allocUnsafeSlow(SLAB_BYTES) : Buffer.from(reused as ArrayBuffer);
      this.holders.set(this.slab.buffer, { n: 0 });
      this.at = 0;
    }
    const start = this.at;
    if (head !== undefined) this.slab.set(head, start);
    const written = this.slab.write(text, start + headLength);
    const end = start + headLength + written;
    this.at = (end + 7) & ~7;
    return this.slab.subarray(start, end);
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
