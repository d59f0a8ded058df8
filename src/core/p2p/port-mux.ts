import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket, type TlsOptions } from 'node:tls';
import { Duplex, PassThrough } from 'node:stream';
import type { Server as HttpServer } from 'node:http';
import { TidemarkError } from '../errors/index.js';

/** The first bytes of every HTTP/2 connection with prior knowledge (RFC 9113 §3.4): gRPC's. */
const HTTP2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

export interface MuxTargets {
  readonly http: HttpServer;
  readonly grpc: { injectConnection(connection: Duplex): void };
  /** Serve TLS: the listener terminates it, then each decrypted connection is sniffed as in plaintext. */
  readonly tls?: TlsOptions;
  /**
   * Whether a gRPC connection over TLS may go on (its client certificate); false ends it. HTTP connections are
   * checked per request by the API instead, which answers why.
   */
  readonly admitGrpc?: (socket: TLSSocket) => boolean;
  /** A TLS handshake that failed (a client that does not trust the server, plaintext to the TLS port). */
  readonly onTlsError?: (error: Error) => void;
}

/**
 * One port for the OpenAPI and the capture-to-capture gRPC channel, as TiCDC does with cmux: each new
 * connection is sniffed; the HTTP/2 preface goes to gRPC, anything else to the HTTP/1.1 server. With `tls`,
 * the listener is a TLS server and the sniffing happens on the decrypted stream.
 */
export class PortMux {
  private readonly server: NetServer;
  private readonly sockets = new Set<Socket>();

  constructor(private readonly targets: MuxTargets) {
    if (targets.tls === undefined) {
      this.server = createServer((socket) => this.route(socket));
    } else {
      this.server = createTlsServer(targets.tls, (socket) => this.route(socket));
      // raw connections, handshakes still running included, so that close ends them too
      this.server.on('connection', (raw: Socket) => {
        this.sockets.add(raw);
        raw.once('close', () => this.sockets.delete(raw));
      });
      this.server.on('tlsClientError', (error: Error, socket: TLSSocket) => {
        socket.destroy();
        targets.onTlsError?.(error);
      });
    }
  }

  async listen(host: string, port: number): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', (error: NodeJS.ErrnoException) => {
        if (error.code === 'EADDRINUSE') {
          reject(new TidemarkError('ErrAddressInUse', `--addr ${host}:${port} is already in use by another process`, {
            hint: 'stop that process or choose another --addr',
            details: { addr: `${host}:${port}` },
          }));
        } else if (error.code === 'EADDRNOTAVAIL' || error.code === 'EACCES') {
          reject(new TidemarkError('ErrInvalidArgument', `cannot listen on --addr ${host}:${port}: ${error.code}`, { cause: error }));
        } else reject(error);
      });
      this.server.listen(port, host, () => resolve());
    });
    const address = this.server.address();
    return typeof address === 'object' && address !== null ? address.port : port;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  private route(socket: Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      const n = Math.min(buffered.length, HTTP2_PREFACE.length);
      const isHttp2 = buffered.subarray(0, n).equals(HTTP2_PREFACE.subarray(0, n));
      if (isHttp2 && buffered.length < HTTP2_PREFACE.length) return; // need more bytes to decide
      socket.off('data', onData);
      if (isHttp2 && this.targets.tls !== undefined && this.targets.admitGrpc?.(socket as TLSSocket) === false) {
        socket.destroy();
        return;
      }
      if (isHttp2) {
        // Node's HTTP/2 reads a net.Socket's handle directly, so bytes already read cannot be pushed back:
        // hand gRPC a duplex that replays them, then carries the socket's stream
        this.targets.grpc.injectConnection(replaying(socket, buffered));
      } else {
        socket.pause();
        socket.unshift(buffered);
        this.targets.http.emit('connection', socket);
        socket.resume();
      }
    };
    socket.on('data', onData);
    socket.on('error', () => socket.destroy());
  }
}

/** A duplex over `socket` whose readable side starts with `head`. */
function replaying(socket: Socket, head: Buffer): Duplex {
  const readable = new PassThrough();
  readable.write(head);
  socket.pipe(readable);
  const duplex = Duplex.from({ readable, writable: socket });
  duplex.on('close', () => socket.destroy());
  socket.on('close', () => duplex.destroy());
  return duplex;
}
