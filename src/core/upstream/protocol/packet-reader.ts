/**
 * MySQL client/server packet framing: 3-byte little-endian length, 1-byte sequence id, payload; a payload
 * of 0xffffff bytes continues in the next packet (events over 16 MiB). `push` takes socket chunks and
 * returns whole payloads without copying when a payload lies in one chunk; a packet split across chunks is
 * gathered as a list of pieces and copied once, when its last byte arrives (only its own bytes, never the
 * rest of the chunk, and never again per chunk for a packet that spans many).
 */
export const MAX_PACKET = 0xffffff;

export class PacketReader {
  /** The pieces of a packet split across chunks (header included). */
  private parts: Buffer[] = [];
  private partsLength = 0;
  /** The split packet's whole size, header included, once its header is known; -1 before. */
  private packetLength = -1;
  private pending: Buffer[] = [];
  /** Sequence id of the last packet read; the next one we send is this + 1. */
  sequence = 0;

  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let offset = 0;
    if (this.partsLength > 0) {
      if (this.packetLength < 0) {
        const take = Math.min(4 - this.partsLength, chunk.length);
        this.parts.push(chunk.subarray(0, take));
        this.partsLength += take;
        offset = take;
        if (this.partsLength < 4) return out;
        const header = Buffer.concat(this.parts, 4);
        this.parts = [header];
        this.packetLength = 4 + header.readUIntLE(0, 3);
      }
      const take = Math.min(this.packetLength - this.partsLength, chunk.length - offset);
      this.parts.push(chunk.subarray(offset, offset + take));
      this.partsLength += take;
      offset += take;
      if (this.partsLength < this.packetLength) return out;
      const packet = Buffer.concat(this.parts, this.packetLength);
      this.parts = [];
      this.partsLength = 0;
      this.packetLength = -1;
      this.accept(packet, 0, out);
    }
    while (chunk.length - offset >= 4) {
      const length = chunk.readUIntLE(offset, 3);
      if (chunk.length - offset < 4 + length) break;
      this.accept(chunk, offset, out);
      offset += 4 + length;
    }
    if (offset < chunk.length) {
      this.parts.push(chunk.subarray(offset));
      this.partsLength = chunk.length - offset;
      if (this.partsLength >= 4) this.packetLength = 4 + chunk.readUIntLE(offset, 3);
    }
    return out;
  }

  /** Takes the whole packet at `offset` of `buf`: a payload, or a piece of one that continues. */
  private accept(buf: Buffer, offset: number, out: Buffer[]): void {
    const length = buf.readUIntLE(offset, 3);
    this.sequence = buf[offset + 3]!;
    const payload = buf.subarray(offset + 4, offset + 4 + length);
    if (length === MAX_PACKET) {
      this.pending.push(payload);
      return;
    }
    if (this.pending.length > 0) {
      out.push(Buffer.concat([...this.pending, payload]));
      this.pending = [];
    } else out.push(payload);
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
