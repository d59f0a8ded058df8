import type { Logger } from '../logger/logger.js';
import type { CaptureInfo } from '../orchestrator/global-state.js';
import type { MessageEnvelope } from './messages.js';
import { PeerClient } from './peer-client.js';
import type { PeerServer } from './peer-server.js';
import type { TidemarkMetrics } from '../metrics/metrics.js';

export type TopicHandler = (from: string, payload: unknown, envelope: MessageEnvelope) => void;

/**
 * One capture incarnation's view of the capture-to-capture channel: a PeerClient per peer it talks to
 * (created on first use, to the peer's advertised address), and topic handlers on the server's PeerServer.
 * Messages to itself go through the same gRPC path, so a one-capture cluster behaves like a bigger one.
 */
export class Messenger {
  private readonly clients = new Map<string, PeerClient>();
  private closed = false;

  constructor(
    readonly self: string,
    private readonly server: PeerServer,
    private readonly logger: Logger,
    private readonly metrics?: TidemarkMetrics,
  ) {}

  on(topic: string, handler: TopicHandler): void {
    const received = this.metrics?.p2pMessage('received', topic);
    this.server.on(topic, (envelope) => {
      received?.inc();
      if (!this.closed) handler(envelope.from, envelope.payload, envelope);
    });
  }

  send<P>(to: CaptureInfo, topic: string, payload: P, ownerRevision?: bigint): void {
    if (this.closed) return;
    let client = this.clients.get(to.id);
    if (client !== undefined && client.target !== to.address) {
      client.close();
      client = undefined;
    }
    if (client === undefined) {
      client = new PeerClient(to.address, this.self, this.logger, this.server.dialCredentials);
      this.clients.set(to.id, client);
    }
    client.send(topic, payload, ownerRevision);
    this.metrics?.p2pMessage('sent', topic).inc();
  }

  /** Closes the clients of captures that are gone. */
  prune(alive: ReadonlySet<string>): void {
    for (const [id, client] of this.clients) {
      if (!alive.has(id)) {
        client.close();
        this.clients.delete(id);
      }
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }
}
