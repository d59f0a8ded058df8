import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { CDC_BIN, CdcServerProcess } from '../../helpers/cdc-process.js';
import { etcdEndpoint, mysqlUri, requireService, uniqueName } from '../../helpers/services.js';
import { waitFor } from '../../helpers/wait-for.js';

const run = promisify(execFile);

/**
 * `cdc top` against a 2-capture cluster with a changefeed under load (the top issue's acceptance): the table
 * list shows the tables on their captures with checkpoint times that advance within 3 s.
 */
describe('cdc top in a real terminal (tmux): tables under load on a 2-capture cluster', () => {
  const clusterId = uniqueName('topload').replaceAll('_', '-');
  const session = uniqueName('tmload');
  // short: the table column is 20 characters wide at 80 columns
  const db = `tl${Math.random().toString(36).slice(2, 7)}`;
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-top-load-'));
  const servers: CdcServerProcess[] = [];
  let upstream: mysql.Connection;
  let writing = true;
  let writer: Promise<void> = Promise.resolve();
  const screen = (): string => execFileSync('tmux', ['capture-pane', '-p', '-t', session], { encoding: 'utf8' });

  before(async () => {
    await requireService('etcd');
    await requireService('upstream');
    upstream = await mysql.createConnection({ uri: mysqlUri('upstream') });
    await upstream.query(`CREATE DATABASE ${db}`);
    for (const t of ['a', 'b', 'c', 'd']) await upstream.query(`CREATE TABLE ${db}.${t} (id INT PRIMARY KEY AUTO_INCREMENT, v INT)`);
    for (let i = 0; i < 2; i++) servers.push(await CdcServerProcess.start({ pd: etcdEndpoint(), clusterId, extraArgs: ['--upstream', mysqlUri('upstream')] }));
    await Promise.all(servers.map((s) => s.waitHealthy()));
    const config = join(dir, 'cf.toml');
    writeFileSync(config, `[filter]\nrules = ["${db}.*"]\n`);
    await run(process.execPath, [CDC_BIN, 'changefeed', 'create', '--server', servers[0].url, '--sink-uri', 'blackhole://', '-c', 'load', '--config', config]);
    writer = (async () => {
      let i = 0;
      while (writing) {
        await upstream.query(`INSERT INTO ${db}.${['a', 'b', 'c', 'd'][i++ % 4]} (v) VALUES (?)`, [i]);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    execFileSync('tmux', [
      'new-session', '-d', '-s', session, '-x', '80', '-y', '24',
      `env -u CI TERM=xterm-256color ${process.execPath} ${CDC_BIN} top --server ${servers[0].url} --interval 500; echo "cdc-top-exit:$?"; sleep 30`,
    ]);
  });
  after(async () => {
    writing = false;
    await writer;
    try {
      execFileSync('tmux', ['kill-session', '-t', session], { stdio: 'ignore' });
    } catch {
      // already gone
    }
    await Promise.all(servers.map((s) => s.stop()));
    await upstream.query(`DROP DATABASE IF EXISTS ${db}`);
    await upstream.end();
  });

  it('Enter opens the changefeed: its tables on both captures, checkpoint times advancing', async () => {
    await waitFor(() => /load\s+normal/.test(screen()), { timeoutMs: 15_000, what: 'the changefeed on the screen' });
    assert.match(screen(), /captures alive 2/);
    execFileSync('tmux', ['send-keys', '-t', session, 'Enter']);
    const rowsOf = (text: string): Map<string, { capture: string; checkpoint: string }> => {
      const rows = new Map<string, { capture: string; checkpoint: string }>();
      for (const m of text.matchAll(new RegExp(`(${db}\\.[abcd])\\s+(\\S+)\\s+(\\S+)\\s+(\\S+)`, 'g'))) rows.set(m[1], { capture: m[2], checkpoint: m[4] });
      return rows;
    };
    const first = await waitFor(() => {
      const rows = rowsOf(screen());
      return rows.size === 4 && [...rows.values()].every((r) => /^\d\d:\d\d:\d\d\.\d{3}$/.test(r.checkpoint)) ? rows : undefined;
    }, { timeoutMs: 20_000, what: 'the four tables with checkpoint times' });
    assert.equal(new Set([...first.values()].map((r) => r.capture)).size, 2, `the tables run on both captures: ${JSON.stringify([...first])}`);
    // the screen follows the cluster: every table's checkpoint time moves on while the load runs
    const moved = (text: string): string[] => [...first].filter(([table, row]) => { const now = rowsOf(text).get(table); return now !== undefined && now.checkpoint !== row.checkpoint; }).map(([table]) => table);
    await waitFor(() => moved(screen()).length === first.size, { timeoutMs: 60_000, what: `every table's checkpoint time to advance on the screen (moved: ${moved(screen()).join(', ')})` });
  });

  it('p then y pauses the changefeed (checked through the API); q exits 0 and gives the terminal back', async () => {
    execFileSync('tmux', ['send-keys', '-t', session, 'Escape']);
    execFileSync('tmux', ['send-keys', '-t', session, 'p']);
    await waitFor(() => /pause changefeed load\? \(y\/N\)/.test(screen()), { what: 'the confirm line' });
    execFileSync('tmux', ['send-keys', '-t', session, 'y']);
    await waitFor(async () => (await servers[0].api<{ state: string }>('/api/v2/changefeeds/load')).state === 'stopped', { what: 'the changefeed to be stopped' });
    execFileSync('tmux', ['send-keys', '-t', session, 'q']);
    await waitFor(() => /cdc-top-exit:0/.test(screen()), { what: 'cdc top to exit with 0' });
    // Ink hid the cursor while it drew; a restored terminal shows it again
    assert.equal(execFileSync('tmux', ['display', '-p', '-t', session, '#{cursor_flag}'], { encoding: 'utf8' }).trim(), '1');
  });
});
