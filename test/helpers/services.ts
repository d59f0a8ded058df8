import { connect } from 'node:net';

/**
 * The real services every integration test talks to. Addresses come from the same environment
 * variables `scripts/services.sh` reads, so the tests always point where the script started them.
 */
export type ServiceName = 'etcd' | 'upstream' | 'downstream' | 'kafka';

interface ServiceSpec {
  readonly title: string;
  readonly env: string;
  readonly defaultAddr: string;
}

const specs: Record<ServiceName, ServiceSpec> = {
  etcd: { title: 'etcd', env: 'TIDEMARK_ETCD_ADDR', defaultAddr: '127.0.0.1:2379' },
  upstream: { title: 'upstream MariaDB (binlog on)', env: 'TIDEMARK_UPSTREAM_ADDR', defaultAddr: '127.0.0.1:3307' },
  downstream: { title: 'downstream MariaDB', env: 'TIDEMARK_DOWNSTREAM_ADDR', defaultAddr: '127.0.0.1:3308' },
  kafka: { title: 'Kafka broker', env: 'TIDEMARK_KAFKA_ADDR', defaultAddr: '127.0.0.1:9092' },
};

export interface ServiceAddress {
  readonly host: string;
  readonly port: number;
  /** host:port */
  readonly addr: string;
}

export function serviceAddress(name: ServiceName): ServiceAddress {
  const spec = specs[name];
  const addr = process.env[spec.env] ?? spec.defaultAddr;
  const colon = addr.lastIndexOf(':');
  const port = Number(addr.slice(colon + 1));
  if (colon <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new Error(`${spec.env}="${addr}" is not a host:port address (for example ${spec.defaultAddr})`);
  }
  return { host: addr.slice(0, colon), port, addr };
}

/**
 * The Kafka broker's fault-injection listener (scripts/services.sh): it listens on the broker's port + 5 and
 * advertises port + 6, where a test puts a TCP proxy to it; a client that bootstraps at `advertised` then reaches
 * the broker only through that proxy.
 */
export function kafkaFaultListener(): { readonly host: string; readonly listenerPort: number; readonly advertisedPort: number; readonly advertised: string } {
  const { host, port } = serviceAddress('kafka');
  return { host, listenerPort: port + 5, advertisedPort: port + 6, advertised: `${host}:${port + 6}` };
}

export function etcdEndpoint(): string {
  return `http://${serviceAddress('etcd').addr}`;
}

/** A mysql:// URI for root on the upstream or downstream MariaDB, optionally with a database. */
export function mysqlUri(name: 'upstream' | 'downstream', database?: string): string {
  const { addr } = serviceAddress(name);
  return `mysql://root@${addr}/${database ?? ''}`;
}

/**
 * Fails (never skips) when the service does not accept a TCP connection, with a message that names
 * the service, its address, the variable that sets it and the command that starts it.
 */
export async function requireService(name: ServiceName, timeoutMs = 3000): Promise<ServiceAddress> {
  const spec = specs[name];
  const address = serviceAddress(name);
  try {
    await probeTcp(address.host, address.port, timeoutMs);
  } catch (error) {
    const reason = error instanceof Error ? ((error as NodeJS.ErrnoException).code ?? error.message) : String(error);
    throw new Error(
      `${spec.title} is not reachable at ${address.addr} (${reason}; address from ${spec.env}). ` +
        `Start it with: bash scripts/services.sh up ${name}`,
    );
  }
  return address;
}

function probeTcp(host: string, port: number, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' }));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.end();
      socket.destroy();
      resolve();
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    });
  });
}

/** A name unique to this test run, for databases, topics and etcd prefixes. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${process.pid}_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6).toString(36)}`;
}
