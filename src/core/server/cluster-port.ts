import type { TLSSocket } from 'node:tls';
import { credentials as grpcCredentials } from '@grpc/grpc-js';
import type { HttpApi } from '../api/http-server.js';
import type { Logger } from '../logger/logger.js';
import type { PeerServer } from '../p2p/peer-server.js';
import { PortMux } from '../p2p/port-mux.js';
import type { ApiAuth } from '../api/auth.js';
import { refusedClient, serverTlsOptions, type ClusterTls } from './tls.js';

export interface ClusterPortOptions {
  readonly api: HttpApi;
  readonly peers: PeerServer;
  /** The cluster's TLS; the port serves TLS when it has a certificate and key. */
  readonly tls: ClusterTls | undefined;
  readonly auth: ApiAuth;
  readonly logger: Logger;
}

/**
 * The one port of a capture (--addr), secured as configured: TLS around the mux when the server has a certificate,
 * the client certificate checked (CA, validity, cert-allowed-cn) on every API request and on each gRPC connection,
 * API users checked before a route runs; and the peers dialed with the same TLS. Returns the mux to listen with.
 */
export function clusterPort(options: ClusterPortOptions): PortMux {
  const { api, peers, auth, logger } = options;
  const tls = options.tls?.serving === true ? options.tls : undefined;
  if (tls !== undefined) {
    peers.dialCredentials = grpcCredentials.createSsl(
      tls.ca === undefined ? null : Buffer.from(tls.ca),
      tls.key === undefined ? null : Buffer.from(tls.key),
      tls.cert === undefined ? null : Buffer.from(tls.cert),
    );
  }
  api.authorize = async (req, method, route) => {
    if (tls !== undefined) {
      const refused = refusedClient(req.socket as TLSSocket, tls);
      if (refused !== undefined) throw refused;
    }
    if (auth.required(method, route)) await auth.check(req);
  };
  return new PortMux({
    http: api.server,
    grpc: peers.injector(),
    ...(tls === undefined
      ? {}
      : {
          tls: serverTlsOptions(tls),
          admitGrpc: (socket: TLSSocket) => {
            const refused = refusedClient(socket, tls);
            if (refused !== undefined) logger.warn('refused a capture-to-capture connection', { remote: socket.remoteAddress, reason: refused.message });
            return refused === undefined;
          },
          onTlsError: (error: Error) => logger.debug('TLS handshake on --addr failed', { reason: error.message }),
        }),
  });
}
