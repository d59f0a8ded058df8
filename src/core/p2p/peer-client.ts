import { Client, credentials, status, type ChannelCredentials, type ClientDuplexStream } from '@grpc/grpc-js';
import type { Logger } from '../logger/logger.js';
import type { Ack, MessageEnvelope } from './messages.js';
import { peerService } from './peer-server.js';

const INITIAL_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 5000;
/** Unacknowledged messages kept for resend; past this the oldest are dropped (they are disposable by design). */
const MAX_UNACKED = 10_000;

const json = {
  serialize: (value: unknown): Buffer => Buffer.from(JSON.stringify(value)),
  deserialize: (bytes: Buffer): unknown => JSON.parse(bytes.toString('utf8')) as unknown,
};

/**
 * Sends messages to one peer capture over a gRPC stream. `send` never blocks; messages not yet
 * acknowledged are resent after a reconnect, which is retried with backoff (100 ms doubling to 5 s)
 * until `close`.
 */
export class PeerClient {
  private readonly client: Client;
  private stream: ClientDuplexStream<MessageEnvelope, Ack> | undefined;
  private readonly seqs = new Map<string, number>();
  /**
   * Sent messages in send order, from `head` on; one whose topic's acknowledgement covers its seq is done and
   * leaves once every message before it has. An ack costs the messages it covers, not the queue's length (with
   * 10,000 tables dispatched at once, a filter over the queue at each ack took a tenth of the capture's CPU).
   */
  private queue: MessageEnvelope[] = [];
  private head = 0;
  /** Per topic, the highest seq acknowledged. */
  private readonly acked = new Map<string, number>();
  /** Per topic, the highest seq dropped unacknowledged (MAX_UNACKED). */
  private readonly dropped = new Map<string, number>();
  /** Messages sent and not acknowledged (dropped ones excluded). */
  private unackedCount = 0;
  private backoffMs = INITIAL_BACKOFF_MS;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  readonly stats = { sent: 0, acked: 0, reconnects: 0 };

  constructor(
    readonly target: string,
    private readonly self: string,
    private readonly logger: Logger,
    /** TLS to the peer (the cluster's --ca, and --cert/--key as the client certificate); plaintext when undefined. */
    channelCredentials?: ChannelCredentials,
  ) {
    this.client = new Client(target, channelCredentials ?? credentials.createInsecure(), { 'grpc.initial_reconnect_backoff_ms': INITIAL_BACKOFF_MS, 'grpc.max_reconnect_backoff_ms': MAX_BACKOFF_MS });
    this.connect();
  }

  /** Queues a message; `ownerRevision` marks it as the owner's. */
  send<P>(topic: string, payload: P, ownerRevision?: bigint): void {
    if (this.closed) return;
    const seq = (this.seqs.get(topic) ?? 0) + 1;
    this.seqs.set(topic, seq);
    const envelope: MessageEnvelope<P> = { from: this.self, topic, seq, payload, ...(ownerRevision === undefined ? {} : { ownerRevision: ownerRevision.toString() }) };
    this.queue.push(envelope);
    this.unackedCount++;
    // past the bound the oldest unacknowledged are dropped (they are disposable by design)
    while (this.unackedCount > MAX_UNACKED) {
      const oldest = this.queue[this.head++];
      if (!this.isAcked(oldest)) {
        this.unackedCount--;
        this.dropped.set(oldest.topic, oldest.seq);
      }
    }
    this.compact();
    this.stats.sent++;
    this.stream?.write(envelope);
  }

  /** How many messages wait for an acknowledgement. */
  get pending(): number {
    return this.unackedCount;
  }

  private isAcked(m: MessageEnvelope): boolean {
    return m.seq <= (this.acked.get(m.topic) ?? 0);
  }

  /** Acknowledges every message of `topic` up to `seq`. */
  private onAck(topic: string, seq: number): void {
    const before = this.acked.get(topic) ?? 0;
    if (seq <= before) return;
    this.acked.set(topic, seq);
    // a topic's seqs are consecutive and only its oldest are ever dropped: the ones newly covered are counted, not searched
    const newly = Math.max(0, Math.min(seq, this.seqs.get(topic) ?? 0) - Math.max(before, this.dropped.get(topic) ?? 0));
    this.unackedCount -= newly;
    this.stats.acked += newly;
    while (this.head < this.queue.length && this.isAcked(this.queue[this.head])) this.head++;
    this.compact();
  }

  /**
   * Drops the done prefix once it is most of the array, and the done messages behind a message that stays
   * unacknowledged once they are many (each pass keeps at most MAX_UNACKED, so it runs once per as many acks).
   */
  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    } else if (this.queue.length - this.head > 2 * MAX_UNACKED) {
      this.queue = this.queue.slice(this.head).filter((m) => !this.isAcked(m));
      this.head = 0;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    this.stream?.cancel();
    this.stream = undefined;
    this.client.close();
  }

  private connect(): void {
    if (this.closed) return;
    const method = peerService['sendMessage'];
    const stream = this.client.makeBidiStreamRequest<MessageEnvelope, Ack>(method.path, json.serialize, json.deserialize as (b: Buffer) => Ack);
    this.stream = stream;
    stream.on('data', (ack: Ack) => {
      this.backoffMs = INITIAL_BACKOFF_MS;
      this.onAck(ack.topic, ack.seq);
    });
    let reason: string | undefined;
    const broken = (error?: Error): void => {
      if (error !== undefined) reason = error.message;
      if (this.stream !== stream || this.closed) return;
      this.stream = undefined;
      this.stats.reconnects++;
      const delay = this.backoffMs;
      this.backoffMs = Math.min(this.backoffMs * 2, MAX_BACKOFF_MS);
      if ((error as { code?: number } | undefined)?.code === status.RESOURCE_EXHAUSTED) {
        // a message past the peer's size limit breaks the stream each time it is sent again: say so, it is a bug
        this.logger.warn('a message to a peer capture is larger than gRPC allows; the stream is broken and retried', { target: this.target, delayMs: delay, reason });
      } else this.logger.debug('peer stream broken; reconnecting', { target: this.target, delayMs: delay, ...(reason === undefined ? {} : { reason }) });
      this.timer = setTimeout(() => this.connect(), delay);
    };
    stream.on('error', broken);
    stream.on('end', broken);
    for (let i = this.head; i < this.queue.length; i++) if (!this.isAcked(this.queue[i])) stream.write(this.queue[i]);
  }
}
