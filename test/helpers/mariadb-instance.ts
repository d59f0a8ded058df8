import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';
import { freePort } from './cdc-process.js';
import { stopChild } from './child-process.js';
import { waitFor } from './wait-for.js';

const execFileAsync = promisify(execFile);

/**
 * A private MariaDB server (Debian's mariadbd, as installed by scripts/services.sh) for tests that need
 * server settings the shared upstream must not change: binary log off, another binlog_format or row image,
 * binlog_row_metadata below FULL. Small buffers, its own data dir and port; `restart(options)` starts the
 * same data dir again with other server options.
 */
export class MariaDBInstance {
  private child: ChildProcess | undefined;

  private constructor(
    readonly dataDir: string,
    readonly port: number,
  ) {}

  /** Initialises a data dir (mariadb-install-db) and starts the server with `options` (mariadbd flags). */
  static async create(options: readonly string[]): Promise<MariaDBInstance> {
    const dataDir = mkdtempSync(join(tmpdir(), 'tidemark-mariadb-'));
    try {
      await execFileAsync('mariadb-install-db', ['--no-defaults', `--user=${userInfo().username}`, `--datadir=${join(dataDir, 'data')}`,
        '--auth-root-authentication-method=normal', '--skip-test-db']);
    } catch (error) {
      rmSync(dataDir, { recursive: true, force: true });
      throw new Error(`cannot initialise a private MariaDB (mariadb-install-db, installed by scripts/services.sh up upstream): ${(error as Error).message}`);
    }
    const instance = new MariaDBInstance(dataDir, await freePort());
    await instance.start(options);
    return instance;
  }

  get uri(): string {
    return `mysql://root@127.0.0.1:${this.port}/`;
  }

  async start(options: readonly string[]): Promise<void> {
    const d = this.dataDir;
    const child = spawn('mariadbd', ['--no-defaults', `--user=${userInfo().username}`, `--datadir=${join(d, 'data')}`,
      '--bind-address=127.0.0.1', `--port=${this.port}`, `--socket=${join(d, 'mariadb.sock')}`, `--pid-file=${join(d, 'mariadb.pid')}`,
      `--log-error=${join(d, 'error.log')}`, '--character-set-server=utf8mb4', '--collation-server=utf8mb4_general_ci',
      '--innodb-buffer-pool-size=32M', '--innodb-log-file-size=48M', '--skip-name-resolve', ...options], { stdio: 'ignore' });
    this.child = child;
    let failed: Error | undefined;
    child.once('error', (error) => (failed = new Error(`cannot start mariadbd: ${error.message}`)));
    child.once('exit', (code) => (failed ??= new Error(`mariadbd exited with ${String(code)}: ${this.errorLogTail()}`)));
    await waitFor(
      async () => {
        if (failed) throw failed;
        const conn = await mysql.createConnection({ uri: this.uri, connectTimeout: 1000 }).catch(() => undefined);
        await conn?.end();
        return conn !== undefined;
      },
      { timeoutMs: 30_000, what: `private MariaDB on 127.0.0.1:${this.port}` },
    );
    child.removeAllListeners('exit');
  }

  /** Stops the server (SIGTERM, a clean shutdown) and starts it again with `options`. */
  async restart(options: readonly string[]): Promise<void> {
    await this.stop();
    await this.start(options);
  }

  async connect(database?: string): Promise<mysql.Connection> {
    return mysql.createConnection({ uri: `${this.uri}${database ?? ''}`, multipleStatements: true, supportBigNumbers: true, bigNumberStrings: true });
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child === undefined || child.exitCode !== null) return;
    this.child = undefined;
    await stopChild(child, 'SIGTERM', 20_000);
  }

  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  private errorLogTail(): string {
    try {
      return readFileSync(join(this.dataDir, 'error.log'), 'utf8').split('\n').slice(-5).join(' | ');
    } catch {
      return '(no error log)';
    }
  }
}
