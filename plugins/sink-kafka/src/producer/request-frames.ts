import { Writer } from '@platformatic/kafka';

/**
 * Produce requests framed into buffers the sender keeps and uses again.
 *
 * The client's connection writes a request by joining its header and body into one new buffer
 * (`DynamicBuffer.buffer`, a `Buffer.concat`). For the sink's requests of up to 2 MiB that is a fresh allocation of
 * that size per request, dead once the broker answers but freed only when V8 next collects it: a Debezium backlog
 * made about 150 MB/s of such buffers, and tens of MiB of them waited for the collector at any time.
 *
 * While `RequestFrames.send` runs, the one join the connection does (synchronously, in `send`) goes into a frame
 * taken from this pool instead. The frame is given back once the broker has answered the request (it has then read
 * every byte, so the socket holds none), and dropped on any error (a timeout or a closed connection may leave it in
 * the socket's queue). Any other join, and every join when the client's buffer class is not what this expects,
 * goes the client's way.
 */
interface Joinable {
  readonly buffers: readonly Buffer[];
  readonly length: number;
}

/** Requests joined into a kept frame in this process (for tests and probes). */
let joined = 0;
export const requestsFramed = (): number => joined;

/** The frame the next join may use, set only within `RequestFrames.send`. */
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
      let at = 0;
      for (const part of this.buffers) at += part.copy(l.frame, at);
      l.used = true;
      joined++;
      return l.frame.subarray(0, at);
    },
  });
  return true;
})();

export class RequestFrames {
  private readonly free: Buffer[] = [];

  /** `bytes`: the largest frame joined into the pool's buffers; `keep`: frames kept for use again. */
  constructor(
    private readonly bytes: number,
    private readonly keep: number,
  ) {}

  /**
   * Runs `send` (a `connection.send` whose request body is `bodyBytes` long) with a frame leased for its join;
   * `answered(ok)` must be called when the broker answered (`true`) or the request failed (`false`).
   */
  send(bodyBytes: number, send: () => void): (ok: boolean) => void {
    if (!installed || bodyBytes + 1024 > this.bytes) {
      send();
      return () => undefined;
    }
    const frame = this.free.pop() ?? Buffer.allocUnsafeSlow(this.bytes);
    const mine = { frame, minLength: bodyBytes, used: false };
    lease = mine;
    try {
      send();
    } finally {
      lease = undefined;
    }
    if (!mine.used) {
      this.give(frame);
      return () => undefined;
    }
    let settled = false;
    return (ok) => {
      if (settled) return;
      settled = true;
      if (ok) this.give(frame);
    };
  }

  private give(frame: Buffer): void {
    if (this.free.length < this.keep) this.free.push(frame);
  }
}
