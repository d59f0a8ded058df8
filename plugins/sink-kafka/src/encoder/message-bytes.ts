/**
 * Bytes of a slab: under glibc's mmap threshold (128 KiB), so a freed slab's memory is reused rather than given
 * back and faulted in again (256 KiB slabs were 3× slower in a probe).
 */
const SLAB_BYTES = 64 * 1024;
/** The largest message written into a slab; a larger one gets a buffer of its own. */
const MAX_IN_SLAB = SLAB_BYTES / 8;

/**
 * The bytes of encoded messages, written into slabs of 64 KiB: a message is a view of its slab, written once
 * (UTF-8 straight from the JSON text), so an encoder neither asks Node's 8 KiB pool for a new block every few
 * messages (a Debezium message with its schema is about 3 KiB) nor encodes a table's constant part again: that
 * part (Debezium's schema, a key's schema) is given as bytes, encoded once per table, and copied. A slab is
 * never written again where a view was handed out; it is freed with the last of its messages.
 */
export class MessageBytes {
  private slab = Buffer.alloc(0);
  private at = 0;

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
      this.slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
      this.at = 0;
    }
    const start = this.at;
    if (head !== undefined) this.slab.set(head, start);
    const written = this.slab.write(text, start + headLength);
    const end = start + headLength + written;
    this.at = (end + 7) & ~7;
    return this.slab.subarray(start, end);
  }
}
