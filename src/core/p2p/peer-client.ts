import { Client, credentials, type ChannelCredentials, type ClientDuplexStream } from '@grpc/grpc-js';
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
  private unacked: MessageEnvelope[] = [];
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
    this.unacked.push(envelope);
    if (this.unacked.length > MAX_UNACKED) this.unacked.splice(0, this.unacked.length - MAX_UNACKED);
    this.stats.sent++;
    this.stream?.write(envelope);
  }

  /** How many messages wait for an acknowledgement. */
  get pending(): number {
    return this.unacked.length;
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
      const before = this.unacked.length;
      this.unacked = this.unacked.filter((m) => !(m.topic === ack.topic && m.seq <= ack.seq));
      this.stats.acked += before - this.unacked.length;
    });
    let reason: string | undefined;
    const broken = (error?: Error): void => {
      if (error !== undefined) reason = error.message;
      if (this.stream !== stream || this.closed) return;
      this.stream = undefined;
      this.stats.reconnects++;
      const delay = this.backoffMs;
      this.backoffMs = Math.min(this.backoffMs * 2, MAX_BACKOFF_MS);
      this.logger.debug('peer stream broken; reconnecting', { target: this.target, delayMs: delay, ...(reason === undefined ? {} : { reason }) });
      this.timer = setTimeout(() => this.connect(), delay);
    };
    stream.on('error', broken);
    stream.on('end', broken);
    for (const envelope of this.unacked) stream.write(envelope);
  }
}
