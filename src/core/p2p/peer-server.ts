import type { Duplex } from 'node:stream';
import { Server, ServerCredentials, type ChannelCredentials, type ServerDuplexStream, type ServiceDefinition } from '@grpc/grpc-js';
import type { Logger } from '../logger/logger.js';
import type { Ack, MessageEnvelope } from './messages.js';

const json = {
  serialize: (value: unknown): Buffer => Buffer.from(JSON.stringify(value)),
  deserialize: (bytes: Buffer): unknown => JSON.parse(bytes.toString('utf8')) as unknown,
};

/** The one gRPC method: a stream of envelopes from a peer, acknowledged by sequence number. */
export const peerService: ServiceDefinition = {
  sendMessage: {
    path: '/tidemark.p2p.Peer/SendMessage',
    requestStream: true,
    responseStream: true,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  },
};

export type MessageHandler = (envelope: MessageEnvelope) => void;

/**
 * Receives capture-to-capture messages. Handlers are registered per topic. A message is delivered once:
 * a resend after a reconnect (same sender, topic and seq) is acknowledged but not delivered again.
 * Owner messages (those with `ownerRevision`) older than the newest owner revision seen are dropped,
 * so a deposed owner cannot move tables.
 */
export class PeerServer {
  readonly grpc = new Server();
  private readonly handlers = new Map<string, MessageHandler>();
  private readonly lastSeq = new Map<string, number>();
  private newestOwnerRevision = 0n;
  readonly stats = { delivered: 0, duplicates: 0, staleOwner: 0 };
  /**
   * How the captures of this server dial their peers: TLS with the cluster's certificates when this server serves
   * TLS (every capture of a cluster does, or none), plaintext when undefined.
   */
  dialCredentials: ChannelCredentials | undefined;

  constructor(private readonly logger: Logger) {
    this.grpc.addService(peerService, { sendMessage: (call: ServerDuplexStream<MessageEnvelope, Ack>) => this.serve(call) });
  }

  on(topic: string, handler: MessageHandler): void {
    this.handlers.set(topic, handler);
  }

  /** For the port mux: feeds a sniffed HTTP/2 connection to this server. */
  injector(): { injectConnection(connection: Duplex): void } {
    return this.grpc.createConnectionInjector(ServerCredentials.createInsecure());
  }

  close(): void {
    this.grpc.forceShutdown();
  }

  private serve(call: ServerDuplexStream<MessageEnvelope, Ack>): void {
    call.on('data', (envelope: MessageEnvelope) => {
      call.write({ topic: envelope.topic, seq: envelope.seq });
      const key = `${envelope.from}/${envelope.topic}`;
      if ((this.lastSeq.get(key) ?? 0) >= envelope.seq) {
        this.stats.duplicates++;
        return;
      }
      this.lastSeq.set(key, envelope.seq);
      if (envelope.ownerRevision !== undefined) {
        const revision = BigInt(envelope.ownerRevision);
        if (revision < this.newestOwnerRevision) {
          this.stats.staleOwner++;
          this.logger.warn('ignoring a message from a deposed owner', { from: envelope.from, topic: envelope.topic, revision: envelope.ownerRevision });
          return;
        }
        this.newestOwnerRevision = revision;
      }
      const handler = this.handlers.get(envelope.topic);
      if (handler === undefined) return;
      this.stats.delivered++;
      try {
        handler(envelope);
      } catch (error) {
        this.logger.error('message handler failed', { topic: envelope.topic, error });
      }
    });
    call.on('end', () => call.end());
    call.on('error', () => undefined);
  }
}
