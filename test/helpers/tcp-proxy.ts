import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A loopback TCP proxy for fault injection (etcd3's test util): `cut()` drops every connection and
 * refuses new ones until `restore()`, without touching the real server behind it.
 */
export class TcpProxy {
  private readonly sockets = new Set<Socket>();
  private up = true;

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  /** `mutate` sees (and may change in place) every chunk the target sends back, before the client gets it. */
  static async start(targetHost: string, targetPort: number, options: { readonly mutate?: (chunk: Buffer) => void } = {}): Promise<TcpProxy> {
    // assigned once the server listens; the connection handler reads it later
    // eslint-disable-next-line prefer-const
    let proxy: TcpProxy | undefined;
    const server = createServer((client) => {
      if (!proxy?.up) {
        client.destroy();
        return;
      }
      const upstream = connect({ host: targetHost, port: targetPort });
      for (const s of [client, upstream]) {
        proxy.sockets.add(s);
        s.on('close', () => proxy?.sockets.delete(s));
        s.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream);
      if (options.mutate === undefined) upstream.pipe(client);
      else {
        const mutate = options.mutate;
        upstream.on('data', (chunk: Buffer) => {
          mutate(chunk);
          client.write(chunk);
        });
        upstream.on('end', () => client.end());
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    proxy = new TcpProxy(server, (server.address() as { port: number }).port);
    return proxy;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  cut(): void {
    this.up = false;
    for (const s of this.sockets) s.destroy();
  }

  restore(): void {
    this.up = true;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
