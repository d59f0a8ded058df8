import { connect, createServer, type Server, type Socket } from 'node:net';

/** One proxied connection: the socket the client opened and the one to the target (absent while stalled). */
interface Pair {
  readonly client: Socket;
  readonly upstream: Socket | undefined;
}

/**
 * A loopback TCP proxy for fault injection (etcd3's test util): `cut()` drops every connection and
 * refuses new ones until `restore()`, without touching the real server behind it. `stall()` keeps every
 * connection open but forwards nothing more, and accepts new connections without forwarding them either:
 * a server that froze, or a network that drops packets (a request sent then is never answered).
 */
export class TcpProxy {
  private readonly sockets = new Set<Socket>();
  private readonly pairs = new Set<Pair>();
  private up = true;
  private stalled = false;
  /** Bytes clients sent through the proxy to the target (for a test that cuts in the middle of its requests). */
  bytesFromClients = 0;

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  /**
   * `mutate` sees (and may change in place) every chunk the target sends back, before the client gets it; `port`
   * is where the proxy listens (default: a free port), for a server that advertises the proxy's address;
   * `clientChunkDelayMs`: each chunk a client sends is held that long before it goes on, the client not read
   * meanwhile (a slow link: the client's writes queue up in its own socket).
   */
  static async start(targetHost: string, targetPort: number, options: { readonly mutate?: (chunk: Buffer) => void; readonly port?: number; readonly clientChunkDelayMs?: number } = {}): Promise<TcpProxy> {
    // assigned once the server listens; the connection handler reads it later
    // eslint-disable-next-line prefer-const
    let proxy: TcpProxy | undefined;
    const server = createServer((client) => {
      if (!proxy?.up) {
        client.destroy();
        return;
      }
      if (proxy.stalled) {
        proxy.track({ client, upstream: undefined });
        client.resume(); // read and drop whatever the client sends
        return;
      }
      const upstream = connect({ host: targetHost, port: targetPort });
      proxy.track({ client, upstream });
      client.on('data', (chunk: Buffer) => {
        if (proxy !== undefined) proxy.bytesFromClients += chunk.length;
      });
      const delay = options.clientChunkDelayMs;
      if (delay === undefined) client.pipe(upstream);
      else {
        client.on('data', (chunk: Buffer) => {
          client.pause();
          setTimeout(() => {
            if (upstream.destroyed) return;
            upstream.write(chunk);
            client.resume();
          }, delay);
        });
        client.on('end', () => upstream.end());
      }
      if (options.mutate === undefined) upstream.pipe(client);
      else {
        const mutate = options.mutate;
        upstream.on('data', (chunk: Buffer) => {
          if (proxy?.stalled) return;
          mutate(chunk);
          client.write(chunk);
        });
        upstream.on('end', () => client.end());
      }
    });
    await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
    proxy = new TcpProxy(server, (server.address() as { port: number }).port);
    return proxy;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Client connections currently open through the proxy (stalled ones included). */
  get connections(): number {
    return this.pairs.size;
  }

  cut(): void {
    this.up = false;
    for (const s of this.sockets) s.destroy();
  }

  /** Forwards nothing more in either direction, on open and on new connections, until `restore()` or `cut()`. */
  stall(): void {
    this.stalled = true;
    for (const { client, upstream } of this.pairs) {
      client.unpipe();
      upstream?.unpipe();
      client.resume();
      upstream?.resume();
    }
  }

  /** Accepts and forwards again; connections open while stalled are dropped (bytes were lost in between). */
  restore(): void {
    if (this.stalled) {
      this.stalled = false;
      for (const s of this.sockets) s.destroy();
    }
    this.up = true;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private track(pair: Pair): void {
    const { client, upstream } = pair;
    this.pairs.add(pair);
    client.on('close', () => this.pairs.delete(pair));
    for (const s of upstream === undefined ? [client] : [client, upstream]) {
      this.sockets.add(s);
      s.on('close', () => {
        this.sockets.delete(s);
        // a stalled connection no longer forwards its end: close its other half too
        if (this.stalled) {
          client.destroy();
          upstream?.destroy();
        }
      });
      s.on('error', () => {
        client.destroy();
        upstream?.destroy();
      });
    }
  }
}
