import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { freePort } from '../../helpers/cdc-process.js';
import { waitFor } from '../../helpers/wait-for.js';

const run = promisify(execFile);
const ROOT = new URL('../../../', import.meta.url).pathname;

const portFree = async (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
const answers = async (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });

/**
 * The quick start (`bash scripts/quickstart.sh`), run as a new user would on a machine where none of its services
 * runs: here a private etcd, upstream and downstream MariaDB on free ports, in a folder of the test's own (so
 * the suite's services are not touched). Rows must arrive downstream within 60 s of the start, the live
 * workload's changes too; Ctrl-C must stop everything the script started.
 */
describe('scripts/quickstart.sh from nothing running (private services on free ports)', { timeout: 300_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-quickstart-'));
  let child: ChildProcess | undefined;
  let env: NodeJS.ProcessEnv = {};
  const output: string[] = [];

  /** The quick start's processes still running: by its folder, or the script itself by its port. */
  const leftovers = (apiPort: number): number[] =>
    readdirSync('/proc')
      .filter((p) => /^\d+$/.test(p))
      .filter((p) => {
        try {
          const cmdline = readFileSync(`/proc/${p}/cmdline`, 'utf8');
          return cmdline.includes(dir) || cmdline.includes(`quickstart.sh\0--no-tui\0--port\0${apiPort}`);
        } catch {
          return false;
        }
      })
      .map(Number);
  let apiPort = 0;

  after(async () => {
    // a test that failed midway: Ctrl-C first (the script cleans up), then whatever is left goes hard
    if (child !== undefined && child.exitCode === null) {
      child.kill('SIGINT');
      await new Promise((resolve) => setTimeout(resolve, 15_000).unref() && child!.once('exit', resolve));
    }
    for (const pid of leftovers(apiPort)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    // whatever the test left (it failed midway): the private services go
    await run('bash', [join(ROOT, 'scripts/services.sh'), 'down'], { env }).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  it('shows rows arriving downstream within 60 s, then the live changes; Ctrl-C stops what it started', async () => {
    let etcdPort = await freePort();
    while (!(await portFree(etcdPort + 1))) etcdPort = await freePort(); // etcd's peer port is the next one
    const [upPort, downPort] = [await freePort(), await freePort()];
    apiPort = await freePort();
    env = {
      ...process.env,
      TIDEMARK_SERVICES_DIR: dir,
      TIDEMARK_ETCD_ADDR: `127.0.0.1:${etcdPort}`,
      TIDEMARK_UPSTREAM_ADDR: `127.0.0.1:${upPort}`,
      TIDEMARK_DOWNSTREAM_ADDR: `127.0.0.1:${downPort}`,
    };
    for (const port of [etcdPort, upPort, downPort, apiPort]) assert.equal(await answers(port), false, `nothing runs on ${port} before the quick start`);

    const started = Date.now();
    child = spawn('bash', [join(ROOT, 'scripts/quickstart.sh'), '--no-tui', '--port', String(apiPort), '--rows', '20000'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (chunk: Buffer) => output.push(chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => output.push(chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child!.once('exit', (code) => resolve(code)));
    const log = (): string => `${output.join('')}\n# node log tail: ${(() => {
      try {
        return readFileSync(join(dir, 'quickstart-node.log'), 'utf8').slice(-3000);
      } catch {
        return '(none)';
      }
    })()}`;

    // the snapshot's rows downstream within 60 s of the start
    let down: mysql.Connection | undefined;
    try {
      await waitFor(async () => {
        if (child!.exitCode !== null) throw new Error(`the quick start exited (${child!.exitCode}):\n${log()}`);
        down ??= await mysql.createConnection({ host: '127.0.0.1', port: downPort, user: 'root' }).catch(() => undefined);
        if (down === undefined) return false;
        const [rows] = await down.query<mysql.RowDataPacket[]>("SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'tidemark_demo' AND TABLE_NAME = 'orders'");
        if (Number(rows[0]['n']) === 0) return false;
        const [[counts]] = (await down.query('SELECT (SELECT COUNT(*) FROM tidemark_demo.customers) AS customers, (SELECT COUNT(*) FROM tidemark_demo.orders WHERE id <= 20000) AS snapshot')) as unknown as [{ customers: number; snapshot: number }[]];
        // the live workload deletes some of the first orders as it goes: most of them are there
        return Number(counts.customers) === 500 && Number(counts.snapshot) > 19_000;
      }, { timeoutMs: 60_000, intervalMs: 250, what: 'the demo rows downstream' }).catch((error: unknown) => {
        console.log(log());
        throw error;
      });
      const seconds = (Date.now() - started) / 1000;
      console.log(`# the demo's rows were downstream ${seconds.toFixed(1)} s after the quick start began`);
      // the live workload streams: its rows arrive, and the downstream follows the upstream
      await waitFor(async () => {
        const [[r]] = (await down!.query("SELECT COUNT(*) AS n FROM tidemark_demo.orders WHERE note = 'live'")) as unknown as [{ n: number }[]];
        return Number(r.n) >= 5;
      }, { timeoutMs: 30_000, intervalMs: 250, what: 'the live workload rows downstream' });
      await waitFor(() => /downstream: 500 customers, \d+ orders/.test(output.join('')), { timeoutMs: 10_000, intervalMs: 100, what: 'the script showing the rows arriving' });
    } finally {
      await down?.end();
    }

    // Ctrl-C: the script stops the node, the workload and the three services it started
    child.kill('SIGINT');
    const code = await Promise.race([exited, new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 60_000))]);
    assert.equal(code, 130, `the quick start exits as interrupted:\n${log()}`);
    assert.match(output.join(''), /stopping the services this script started: etcd upstream downstream/);
    for (const port of [apiPort, etcdPort, upPort, downPort]) assert.equal(await answers(port), false, `nothing answers on ${port} after Ctrl-C`);
    assert.deepEqual(leftovers(apiPort), [], 'no process of the quick start is left');
  });
});
