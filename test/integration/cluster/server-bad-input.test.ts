import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { CDC_BIN, freePort } from '../../helpers/cdc-process.js';
import { etcdEndpoint, requireService } from '../../helpers/services.js';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'tidemark-bad-input-'));

interface Failure {
  code: number;
  stderr: string;
}

/**
 * Runs `cdc server` and returns how it failed. `asUser` runs it as that uid/gid (with setpriv), for a file
 * that root could read. A server that never gives up is killed after 120 s and fails the test on its exit code.
 */
async function cdcServerFails(args: string[], asUser?: number): Promise<Failure> {
  const command = [process.execPath, CDC_BIN, 'server', '--data-dir', join(dir, 'data'), ...args];
  const [file, ...argv] = asUser === undefined ? command : ['setpriv', `--reuid=${asUser}`, `--regid=${asUser}`, '--clear-groups', 'env', `HOME=${dir}`, ...command];
  try {
    await run(file, argv, { timeout: 120_000 });
  } catch (error) {
    const e = error as { code: number; stderr: string };
    return { code: e.code, stderr: e.stderr };
  }
  assert.fail(`cdc server ${args.join(' ')} should have failed`);
}

describe('cdc server rejects bad input with a clear error and a non-zero exit', () => {
  let blocker: Server;
  let busyPort: number;

  before(async () => {
    await requireService('etcd');
    blocker = createServer();
    busyPort = await freePort();
    await new Promise<void>((resolve) => blocker.listen(busyPort, '127.0.0.1', resolve));
  });
  after(async () => {
    await new Promise((resolve) => blocker.close(resolve));
  });

  it('an unreachable --pd, after a bounded wait', async () => {
    const port = await freePort();
    const f = await cdcServerFails(['--pd', `http://127.0.0.1:${port}`, '--addr', `127.0.0.1:${await freePort()}`]);
    assert.equal(f.code, 3);
    // it gave up by itself (a server still waiting is killed by cdcServerFails and has no exit code 3)
    assert.match(f.stderr, new RegExp(`ErrEtcdUnreachable: cannot reach etcd at --pd http://127\\.0\\.0\\.1:${port}`));
  });

  it('a port already in use', async () => {
    const f = await cdcServerFails(['--pd', etcdEndpoint(), '--addr', `127.0.0.1:${busyPort}`]);
    assert.equal(f.code, 3);
    assert.match(f.stderr, new RegExp(`ErrAddressInUse: --addr 127\\.0\\.0\\.1:${busyPort} is already in use`));
  });

  it('a config file that does not exist or cannot be read', async () => {
    const missing = join(dir, 'missing.toml');
    const f = await cdcServerFails(['--config', missing]);
    assert.equal(f.code, 2);
    assert.match(f.stderr, new RegExp(`ErrConfigUnreadable: cannot read config file ${missing.replaceAll('.', '\\.')}`));
    const unreadable = join(dir, 'unreadable.toml');
    writeFileSync(unreadable, 'addr = "127.0.0.1:1"\n');
    chmodSync(unreadable, 0o000);
    // root reads any file: as root (CI), run the server as nobody; the folder stays open to it, only the file is not
    const root = process.getuid?.() === 0;
    if (root) chmodSync(dir, 0o755);
    const g = await cdcServerFails(['--config', unreadable], root ? 65534 : undefined);
    assert.equal(g.code, 2);
    assert.match(g.stderr, new RegExp(`ErrConfigUnreadable: cannot read config file ${unreadable.replaceAll('.', '\\.')}: EACCES`));
  });

  it('a config file with a syntax error, an unknown key or a bad value', async () => {
    const broken = join(dir, 'broken.toml');
    writeFileSync(broken, 'addr = "127.0.0.1:8300\n');
    assert.match((await cdcServerFails(['--config', broken])).stderr, /ErrConfigInvalid: config file .*broken\.toml is not valid/);

    const unknown = join(dir, 'unknown.toml');
    writeFileSync(unknown, 'addr = "127.0.0.1:8300"\nsorter-dir = "/tmp"\n');
    const u = await cdcServerFails(['--config', unknown]);
    assert.equal(u.code, 2);
    assert.match(u.stderr, /ErrConfigUnknownKey: unknown key "sorter-dir" in .*unknown\.toml; allowed: pd, addr, advertise-addr/);

    const badValue = join(dir, 'bad-value.json');
    writeFileSync(badValue, JSON.stringify({ 'capture-session-ttl': 'ten' }));
    assert.match((await cdcServerFails(['--config', badValue])).stderr, /ErrConfigInvalid: invalid value for "capture-session-ttl"/);
  });

  it('an invalid cluster id', async () => {
    for (const id of ['bad_id', '-x', 'a'.repeat(129), 'owner']) {
      const f = await cdcServerFails(['--pd', etcdEndpoint(), '--cluster-id', id]);
      assert.equal(f.code, 2, id);
      assert.match(f.stderr, new RegExp(`ErrClusterIdInvalid: invalid cluster id "${id}"`), id);
    }
  });

  it('an unknown --log-level names the allowed values', async () => {
    const f = await cdcServerFails(['--log-level', 'verbose']);
    assert.match(f.stderr, /verbose/);
    assert.match(f.stderr, /debug, info, warn, error/);
  });
});
