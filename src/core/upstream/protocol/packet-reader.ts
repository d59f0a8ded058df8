/**
 * MySQL client/server packet framing: 3-byte little-endian length, 1-byte sequence id, payload; a payload
 * of 0xffffff bytes continues in the next packet (events over 16 MiB). `push` takes socket chunks and
 * returns whole payloads without copying when a payload lies in one chunk.
 */
export const MAX_PACKET = 0xffffff;

export class PacketReader {
  private buffer: Buffer = Buffer.alloc(0);
  private pending: Buffer[] = [];
  /** Sequence id of the last packet read; the next one we send is this + 1. */
  sequence = 0;

  push(chunk: Buffer): Buffer[] {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const out: Buffer[] = [];
    let offset = 0;
    while (this.buffer.length - offset >= 4) {
      const length = this.buffer.readUIntLE(offset, 3);
      if (this.buffer.length - offset < 4 + length) break;
      this.sequence = this.buffer[offset + 3]!;
      const payload = this.buffer.subarray(offset + 4, offset + 4 + length);
      offset += 4 + length;
      if (length === MAX_PACKET) {
        this.pending.push(payload);
        continue;
      }
      if (this.pending.length > 0) {
        out.push(Buffer.concat([...this.pending, payload]));
        this.pending = [];
      } else out.push(payload);
    }
    this.buffer = offset === this.buffer.length ? Buffer.alloc(0) : this.buffer.subarray(offset);
    return out;
  }
}

/** Frames a payload as one or more packets starting at `sequence`. */
export function framePacket(payload: Buffer, sequence: number): Buffer {
  const parts: Buffer[] = [];
  let seq = sequence;
  let offset = 0;
  do {
    const length = Math.min(MAX_PACKET, payload.length - offset);
    const header = Buffer.allocUnsafe(4);
    header.writeUIntLE(length, 0, 3);
    header[3] = seq++ & 0xff;
    parts.push(header, payload.subarray(offset, offset + length));
    offset += length;
    if (length < MAX_PACKET) break;
  } while (true);
  return Buffer.concat(parts);
}
