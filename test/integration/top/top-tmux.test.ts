import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { CDC_BIN, CdcServerProcess, freePort } from '../../helpers/cdc-process.js';
import { etcdEndpoint, mysqlUri, requireService, uniqueName } from '../../helpers/services.js';
import { waitFor } from '../../helpers/wait-for.js';

const run = promisify(execFile);

/** `cdc top` in a real terminal: tmux runs it, capture-pane reads the screen, send-keys types. */
describe('cdc top in a real terminal (tmux) against a real cluster', () => {
  const clusterId = uniqueName('top').replaceAll('_', '-');
  const session = uniqueName('tmtop');
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-top-'));
  const exitFile = join(dir, 'exit-code');
  let port: number;
  let server: CdcServerProcess;
  const screen = (): string => execFileSync('tmux', ['capture-pane', '-p', '-t', session], { encoding: 'utf8' });

  before(async () => {
    await requireService('etcd');
    await requireService('upstream');
    port = await freePort();
    server = await CdcServerProcess.start({ pd: etcdEndpoint(), clusterId, port, extraArgs: ['--upstream', mysqlUri('upstream')] });
    await server.waitHealthy();
    await run(process.execPath, [CDC_BIN, 'changefeed', 'create', '--server', server.url, '--sink-uri', 'blackhole://', '-c', 'feed-top']);
    execFileSync('tmux', [
      'new-session', '-d', '-s', session, '-x', '80', '-y', '24',
      // Ink renders only a final frame when CI is set (CI's own runs set it): a user's terminal has no CI
      `env -u CI TERM=xterm-256color ${process.execPath} ${CDC_BIN} top --server ${server.url} --interval 300; echo $? > ${exitFile}; sleep 30`,
    ]);
  });
  after(async () => {
    try {
      execFileSync('tmux', ['kill-session', '-t', session], { stdio: 'ignore' });
    } catch {
      // already gone
    }
    await server.stop();
  });

  it('shows the cluster and the changefeed', async () => {
    const text = await waitFor(() => {
      const s = screen();
      return /feed-top/.test(s) && /connected/.test(s) && s;
    }, { timeoutMs: 15_000, what: 'the changefeed on the tmux screen' });
    assert.match(text, new RegExp(`cluster ${clusterId}`));
    assert.match(text, /captures alive 1/);
    assert.match(text, /feed-top\s+normal/);
  });

  it('pauses the selected changefeed after p and y (checked through the API)', async () => {
    execFileSync('tmux', ['send-keys', '-t', session, 'p']);
    await waitFor(() => /pause changefeed feed-top\? \(y\/N\)/.test(screen()), { what: 'the confirm line' });
    execFileSync('tmux', ['send-keys', '-t', session, 'y']);
    await waitFor(async () => (await server.api<{ state: string }>('/api/v2/changefeeds/feed-top')).state === 'stopped', { what: 'the changefeed to be stopped' });
    await waitFor(() => /feed-top\s+stopped/.test(screen()), { what: 'the screen to show it stopped' });
  });

  it('shows the disconnected banner while the server is away and recovers when it returns', async () => {
    server.kill('SIGKILL');
    await server.exited;
    await waitFor(() => /disconnected from http:\/\/127\.0\.0\.1:\d+/.test(screen()), { timeoutMs: 10_000, what: 'the disconnected banner' });
    server = await CdcServerProcess.start({ pd: etcdEndpoint(), clusterId, port, extraArgs: ['--upstream', mysqlUri('upstream')] });
    await server.waitHealthy();
    await waitFor(() => {
      const s = screen();
      return !/disconnected from/.test(s) && /connected/.test(s) && /feed-top/.test(s);
    }, { timeoutMs: 20_000, what: 'the screen to recover' });
  });

  it('prints one snapshot with --once (and as JSON with --json) when not in a terminal', async () => {
    const text = await run(process.execPath, [CDC_BIN, 'top', '--server', server.url, '--once']);
    assert.match(text.stdout, new RegExp(`cluster ${clusterId} · owner 127\\.0\\.0\\.1:${port} · captures \\d`));
    assert.match(text.stdout, /feed-top\s+stopped\s+\d+\s+mysql-bin\.\d{6}:\d+/);
    const json = JSON.parse((await run(process.execPath, [CDC_BIN, 'top', '--server', server.url, '--json'])).stdout);
    assert.equal(json.clusterId, clusterId);
    assert.deepEqual(json.changefeeds.map((c: { id: string; state: string }) => [c.id, c.state]), [['feed-top', 'stopped']]);
  });

  it('quits on q with exit code 0', async () => {
    execFileSync('tmux', ['send-keys', '-t', session, 'q']);
    await waitFor(() => existsSync(exitFile) && readFileSync(exitFile, 'utf8').trim(), { what: 'cdc top to exit' });
    assert.equal(readFileSync(exitFile, 'utf8').trim(), '0');
  });
});
