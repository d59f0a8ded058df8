import { Etcd3 } from 'etcd3';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { waitFor } from './wait-for.js';

export const CDC_BIN = new URL('../../bin/run.js', import.meta.url).pathname;

/** The first port of the kernel's ephemeral range (source ports of outgoing connections), 32768 if unknown. */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 1024 ? low : 32768;
  } catch {
    return 32768;
  }
}

const handedOut = new Set<number>();

/**
 * A free loopback port for a server a test starts: below the kernel's ephemeral range, bound then released. A port
 * the kernel picks (listen on 0) is from that range, so between its release and the server's listen an outgoing
 * connection of the busy services could take it as its source port (CI saw a cdc server refused with
 * ErrAddressInUse that way); ports below the range are never given to outgoing connections.
 */
export async function freePort(): Promise<number> {
  const low = Math.max(10_000, ephemeralLow() - 12_000);
  const high = ephemeralLow() - 1;
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = low + Math.floor(Math.random() * (high - low + 1));
    if (handedOut.has(port)) continue;
    const server = createServer();
    const bound = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (!bound) continue;
    await new Promise((resolve) => server.close(resolve));
    handedOut.add(port);
    return port;
  }
  throw new Error(`no free loopback port found between ${low} and ${high}`);
}

export interface CdcServerOptions {
  readonly pd: string;
  readonly clusterId: string;
  readonly port?: number;
  readonly extraArgs?: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  /** Flags for node itself, before the script (V8 flags node refuses in NODE_OPTIONS). */
  readonly nodeArgs?: readonly string[];
  /** The server's --data-dir (sorter spill); a new temporary folder when not given. */
  readonly dataDir?: string;
}

/** A real `cdc server` child process, built from dist/ (tests run after `npm run build`). */
export class CdcServerProcess {
  readonly output: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exitCode: number | null | undefined;

  private constructor(
    readonly child: ChildProcess,
    readonly addr: string,
  ) {
    child.stdout?.on('data', (d: Buffer) => this.output.push(d.toString()));
    child.stderr?.on('data', (d: Buffer) => this.output.push(d.toString()));
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        this.exitCode = code;
        resolve({ code, signal });
      }),
    );
  }

  static async start(options: CdcServerOptions): Promise<CdcServerProcess> {
    const port = options.port ?? (await freePort());
    const addr = `127.0.0.1:${port}`;
    const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'tidemark-cdc-'));
    const child = spawn(
      process.execPath,
      [...(options.nodeArgs ?? []), CDC_BIN, 'server', '--pd', options.pd, '--addr', addr, '--cluster-id', options.clusterId, '--data-dir', dataDir, ...(options.extraArgs ?? [])],
      { stdio: ['ignore', 'pipe', 'pipe'], env: options.env ?? process.env },
    );
    return new CdcServerProcess(child, addr);
  }

  get url(): string {
    return `http://${this.addr}`;
  }

  get pid(): number {
    return this.child.pid!;
  }

  async api<T>(path: string, init?: RequestInit): Promise<T> {
    const res = await fetch(`${this.url}${path}`, { ...init, signal: AbortSignal.timeout(3000) });
    if (!res.ok) throw new Error(`${path}: HTTP ${res.status} ${await res.text()}`);
    return (await res.json()) as T;
  }

  /** Waits until the capture is registered and sees an owner. */
  async waitHealthy(timeoutMs = 20_000): Promise<this> {
    await waitFor(
      async () => {
        if (this.exitCode !== undefined) throw new Error(`cdc server exited with ${this.exitCode}: ${this.output.join('')}`);
        return (await this.api('/api/v2/health').then(() => true, () => false)) || undefined;
      },
      { timeoutMs, intervalMs: 100, what: `cdc server on ${this.addr} to be healthy` },
    );
    return this;
  }

  kill(signal: NodeJS.Signals): void {
    if (this.exitCode === undefined) this.child.kill(signal);
  }

  /** Stops it for test clean-up: SIGTERM, then SIGKILL after 5 s. */
  async stop(): Promise<void> {
    if (this.exitCode !== undefined) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(timer);
  }
}

export interface CaptureRow {
  readonly id: string;
  readonly is_owner: boolean;
  readonly address: string;
  readonly cluster_id: string;
}

export async function listCaptures(server: CdcServerProcess): Promise<CaptureRow[]> {
  return (await server.api<{ items: CaptureRow[] }>('/api/v2/captures')).items;
}

/**
 * The addresses of the captures registered in etcd now, read from etcd itself (a server's API answers from its
 * mirror, which follows etcd by a watch event).
 */
export async function captureAddressesInEtcd(endpoint: string, clusterId: string): Promise<string[]> {
  const client = new Etcd3({ hosts: endpoint });
  try {
    const values = await client.getAll().prefix(`/tidb/cdc/${clusterId}/__cdc_meta__/capture/`).strings();
    return Object.values(values).map((v) => String((JSON.parse(v) as { address?: string }).address)).sort();
  } finally {
    client.close();
  }
}

/**
 * The `cdc server` processes of one test cluster, started over the test (restarts, joins, kills): `newest()`
 * is the last one still running, `stopAll()` the clean-up.
 */
export class CdcServerGroup {
  readonly servers: CdcServerProcess[] = [];

  constructor(private readonly options: CdcServerOptions & { readonly healthyTimeoutMs?: number }) {}

  /** Starts one more server of the cluster and waits until it is healthy. */
  async start(): Promise<CdcServerProcess> {
    const server = await CdcServerProcess.start(this.options);
    this.servers.push(server);
    return server.waitHealthy(this.options.healthyTimeoutMs);
  }

  alive(): CdcServerProcess[] {
    return this.servers.filter((s) => s.exitCode === undefined);
  }

  newest(): CdcServerProcess {
    const server = this.alive().at(-1);
    if (server === undefined) throw new Error('no cdc server of this cluster is running');
    return server;
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.servers.map((s) => s.stop()));
  }
}
