import { appendFileSync } from 'node:fs';
/**
 * A `cdc server` child process for one benchmark run, from the built dist/ (bin/run.js), with optional node
 * flags (--cpu-prof is not allowed in NODE_OPTIONS, so it goes on the command line).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { ApiClient } from '../../src/core/api/client.js';
import { freePort } from '../../test/helpers/cdc-process.js';

const CDC_BIN = new URL('../../bin/run.js', import.meta.url).pathname;

export class BenchCdcServer {
  /** the last 64 KiB of its output, for error messages */
  private tail = '';
  /** "capture lost its session or failed" log lines so far: the etcd session expired (a keep-alive missed its TTL). */
  sessionsLost = 0;
  /** "capture registered" log lines so far: 1 for a capture that never lost its session. */
  registrations = 0;
  exitCode: number | null | undefined;
  readonly exited: Promise<void>;

  private constructor(
    private readonly child: ChildProcess,
    readonly addr: string,
  ) {
    // BENCH_CDC_LOG=FILE: the server's whole log appended there (the run keeps only its tail)
    const logFile = process.env['BENCH_CDC_LOG'];
    const keep = (d: Buffer): void => {
      const text = d.toString();
      if (logFile !== undefined) appendFileSync(logFile, text);
      this.tail = (this.tail + text).slice(-65536);
      // counted as the lines arrive (the tail keeps only the end of a long run); a line split across chunks is rare
      this.sessionsLost += text.split('capture lost its session').length - 1;
      this.registrations += text.split('"capture registered"').length - 1;
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        this.exitCode = code ?? (signal === null ? null : -1);
        resolve();
      }),
    );
  }

  static async start(opts: { pd: string; clusterId: string; dataDir: string; upstream: string; nodeFlags: readonly string[] }): Promise<BenchCdcServer> {
    const addr = `127.0.0.1:${await freePort()}`;
    // BENCH_NODE_FLAGS: more node flags for a probe (a heap snapshot signal, a V8 flag)
    const probeFlags = process.env['BENCH_NODE_FLAGS']?.split(' ').filter((f) => f !== '') ?? [];
    const child = spawn(
      process.execPath,
      [...opts.nodeFlags, ...probeFlags, CDC_BIN, 'server', '--pd', opts.pd, '--addr', addr, '--cluster-id', opts.clusterId, '--data-dir', opts.dataDir, '--upstream', opts.upstream],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    return new BenchCdcServer(child, addr);
  }

  get url(): string {
    return `http://${this.addr}`;
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  get output(): string {
    return this.tail;
  }

  async waitHealthy(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.exitCode !== undefined) throw new Error(`cdc server exited with ${this.exitCode}: ${this.tail.slice(-3000)}`);
      const ok = await new ApiClient(this.url, 2000).health().then(() => true, () => false);
      if (ok) return;
      if (Date.now() > deadline) throw new Error(`cdc server on ${this.addr} not healthy within ${timeoutMs} ms: ${this.tail.slice(-3000)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** SIGTERM (the server drains and exits, writing a --cpu-prof profile), SIGKILL after `graceMs`. */
  async stop(graceMs = 15_000): Promise<void> {
    if (this.exitCode !== undefined) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}
