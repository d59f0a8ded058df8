import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './cdc-process.js';
import { stopChild } from './child-process.js';
import { waitFor } from './wait-for.js';

/**
 * A private etcd server (Debian's etcd-server binary, as installed by scripts/services.sh) for tests that
 * stop and restart etcd, so they don't disturb the shared one.
 */
export class EtcdInstance {
  private child: ChildProcess | undefined;

  private constructor(
    readonly dataDir: string,
    readonly clientPort: number,
    readonly peerPort: number,
  ) {}

  static async create(): Promise<EtcdInstance> {
    const instance = new EtcdInstance(mkdtempSync(join(tmpdir(), 'tidemark-etcd-')), await freePort(), await freePort());
    await instance.start();
    return instance;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.clientPort}`;
  }

  async start(): Promise<void> {
    const peer = `http://127.0.0.1:${this.peerPort}`;
    this.child = spawn(
      'etcd',
      ['--name', 'test', '--data-dir', this.dataDir, '--listen-client-urls', this.endpoint, '--advertise-client-urls', this.endpoint,
        '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer, '--initial-cluster', `test=${peer}`],
      { stdio: 'ignore' },
    );
    const child = this.child;
    let failed: Error | undefined;
    child.once('error', (error) => (failed = new Error(`cannot start etcd (installed by scripts/services.sh up etcd): ${error.message}`)));
    await waitFor(
      async () => {
        if (failed) throw failed;
        const res = await fetch(`${this.endpoint}/health`, { signal: AbortSignal.timeout(1000) }).catch(() => undefined);
        return res?.ok === true;
      },
      { timeoutMs: 20_000, what: `etcd on ${this.endpoint}` },
    );
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child === undefined || child.exitCode !== null) return;
    this.child = undefined;
    await stopChild(child, 'SIGKILL');
  }

  /** Freezes the server (SIGSTOP): connections stay open but nothing answers, like a hung etcd. */
  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  resume(): void {
    this.child?.kill('SIGCONT');
  }

  async destroy(): Promise<void> {
    this.resume();
    await this.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}
