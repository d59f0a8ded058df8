import { Writer } from '@platformatic/kafka';

/**
 * Produce requests written in buffers the sender keeps and uses again, their record batches in place.
 *
 * The client's connection writes a request by joining its header and body into one new buffer
 * (`DynamicBuffer.buffer`, a `Buffer.concat`). For the sink's requests of up to 2 MiB that was a fresh allocation
 * of that size per request, dead once the broker answered but freed only when V8 next collected it: a Debezium
 * backlog made about 150 MB/s of them, and tens of MiB waited for the collector at any time. It was also a second
 * copy of every record.
 *
 * So the sender writes a big request's record batches into a frame taken from `RequestFrames`, each at the offset
 * where the join puts it (after the request header, the body's head, each topic's name and count and each
 * partition's number and length: `requestHeaderBytes`, `PRODUCE_BODY_HEAD_BYTES`, `topicHeadBytes`,
 * `PARTITION_HEAD_BYTES`). While `joinInto` runs `connection.send`, the one join done there goes into
 * that frame: the parts already in place stay, the small ones around them are copied in. When any part of the
 * frame is not exactly where the join puts it, the join is the client's own (it only reads the frame). The frame
 * is used again once its request was answered (the broker read every byte, so the socket holds none) and never
 * after a failed or timed-out attempt (its bytes may still sit in a socket).
 */
interface Joinable {
  readonly buffers: readonly Buffer[];
  readonly length: number;
}

/** Requests joined into a kept frame in this process, and those with every record batch already in place (for tests and probes). */
const counts = { framed: 0, inPlace: 0 };
export const requestsFramed = (): { readonly framed: number; readonly inPlace: number } => ({ ...counts });

/** The frame the next join may use, set only within `joinInto`. */
let lease: { frame: Buffer; minLength: number; used: boolean } | undefined;

/** Installs the join into a leased frame once per process (module scope: the client's class is shared). */
const installed = ((): boolean => {
  const proto = Object.getPrototypeOf(Writer.create().dynamicBuffer) as object;
  const descriptor: { readonly get?: (this: Joinable) => Buffer } | undefined = Object.getOwnPropertyDescriptor(proto, 'buffer');
  const join = descriptor?.get;
  if (join === undefined) return false;
  Object.defineProperty(proto, 'buffer', {
    configurable: true,
    get(this: Joinable): Buffer {
      const l = lease;
      if (l === undefined || l.used || this.length < l.minLength || this.length > l.frame.length || this.buffers.length < 2) return join.call(this);
      const frame = l.frame;
      // every part in the frame must be where the join puts it; else the client's join (which only reads the frame)
      let at = 0;
      let inFrame = 0;
      for (const part of this.buffers) {
        if (part.buffer === frame.buffer) {
          if (part.byteOffset !== frame.byteOffset + at) return join.call(this);
          inFrame += part.length;
        }
        at += part.length;
      }
      at = 0;
      for (const part of this.buffers) {
        if (part.buffer !== frame.buffer) part.copy(frame, at);
        at += part.length;
      }
      l.used = true;
      counts.framed++;
      if (inFrame >= l.minLength) counts.inPlace++;
      return frame.subarray(0, at);
    },
  });
  return true;
})();

/** Bytes of the connection's request header before the body: length, api key, api version, correlation id, client id (int16 length + bytes). */
export function requestHeaderBytes(clientId: string): number {
  return 4 + 2 + 2 + 4 + 2 + Buffer.byteLength(clientId);
}

/** Bytes of a Produce v7 body's head: transactional id (null), acks, timeout, topic count. */
export const PRODUCE_BODY_HEAD_BYTES = 2 + 2 + 4 + 4;

/** Bytes before a topic's first partition: its name (int16 length + bytes) and its partition count. */
export function topicHeadBytes(topic: string): number {
  return 2 + Buffer.byteLength(topic) + 4;
}

/** Bytes before a partition's record batch: its number and the batch's length. */
export const PARTITION_HEAD_BYTES = 4 + 4;

export class RequestFrames {
  private readonly free: Buffer[] = [];

  /** `bytes`: each frame's size; `keep`: frames kept for use again. */
  constructor(
    readonly bytes: number,
    private readonly keep: number,
  ) {}

  /** Whether joins can go into frames here (the client's buffer class is what this expects). */
  get usable(): boolean {
    return installed;
  }

  /** A frame to write a request's record batches into (kept, or new). */
  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(this.bytes);
  }

  /** Only once nothing reads the frame any more: its request answered, with no attempt failed or timed out. */
  give(frame: Buffer): void {
    if (this.free.length < this.keep) this.free.push(frame);
  }

  /**
   * Runs `send` (one `connection.send` of a request whose record batches total `batchBytes`) with its join lent
   * `frame`; returns whether the join went into it.
   */
  static joinInto(frame: Buffer, batchBytes: number, send: () => void): boolean {
    if (!installed) {
      send();
      return false;
    }
    const mine = { frame, minLength: batchBytes, used: false };
    lease = mine;
    try {
      send();
    } finally {
      lease = undefined;
    }
    return mine.used;
  }
}
