import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { Etcd3 } from 'etcd3';
import mysql from 'mysql2/promise';
import { CDC_BIN, CdcServerProcess, listCaptures } from '../../helpers/cdc-process.js';
import { etcdEndpoint, mysqlUri, requireService, uniqueName } from '../../helpers/services.js';
import { waitFor } from '../../helpers/wait-for.js';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'tidemark-cf-admin-'));

/** Runs the real `cdc` binary; returns parsed --json output, or the failure's stderr and exit code. */
async function cdc(args: string[]): Promise<{ ok: true; json: any } | { ok: false; code: number; stderr: string }> {
  try {
    const { stdout } = await run(process.execPath, [CDC_BIN, ...args, '--json'], { timeout: 30_000 });
    return { ok: true, json: JSON.parse(stdout) };
  } catch (error) {
    // with --json a failure is printed as {"error": {code, message, …}} on stdout
    const e = error as { code: number; stdout: string; stderr: string };
    let text = e.stderr;
    try {
      const { error: body } = JSON.parse(e.stdout) as { error: { code: string; message: string } };
      text = `${body.code}: ${body.message}`;
    } catch {
      // not JSON: an oclif parse error, on stderr
    }
    return { ok: false, code: e.code, stderr: text };
  }
}

async function upstreamEndTs(): Promise<bigint> {
  const conn = await mysql.createConnection({ uri: mysqlUri('upstream') });
  try {
    const [rows] = await conn.query<mysql.RowDataPacket[]>('SHOW MASTER STATUS');
    const { File: file, Position: pos } = rows[0] as { File: string; Position: number };
    return (BigInt(/\.(\d+)$/.exec(file)![1]) << 32n) | BigInt(pos);
  } finally {
    await conn.end();
  }
}

describe('changefeed admin through the CLI and OpenAPI (real etcd, upstream MariaDB, two cdc servers)', () => {
  const clusterId = uniqueName('cf').replaceAll('_', '-');
  const prefix = `/tidb/cdc/${clusterId}/default/`;
  const servers: CdcServerProcess[] = [];
  let etcd: Etcd3;
  let owner: CdcServerProcess;
  let other: CdcServerProcess;
  const json = async (key: string): Promise<any> => {
    const text = await etcd.get(key).string();
    return text === null ? null : JSON.parse(text);
  };

  before(async () => {
    await requireService('etcd');
    await requireService('upstream');
    etcd = new Etcd3({ hosts: etcdEndpoint() });
    for (let i = 0; i < 2; i++) {
      servers.push(await CdcServerProcess.start({ pd: etcdEndpoint(), clusterId, extraArgs: ['--upstream', mysqlUri('upstream')] }));
    }
    await Promise.all(servers.map((s) => s.waitHealthy()));
    const ownerRow = await waitFor(async () => (await listCaptures(servers[0])).find((r) => r.is_owner), { what: 'an owner' });
    owner = servers.find((s) => s.addr === ownerRow.address)!;
    other = servers.find((s) => s !== owner)!;
  });
  after(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    await etcd.delete().prefix(`/tidb/cdc/${clusterId}/`);
    etcd.close();
  });

  it('creates a changefeed at the upstream end of binlog; the owner initialises its status', async () => {
    const before = await upstreamEndTs();
    const res = await cdc(['changefeed', 'create', '--server', other.url, '--sink-uri', 'blackhole://', '-c', 'feed-a']);
    assert.ok(res.ok, JSON.stringify(res));
    const info = await json(`${prefix}changefeed/info/feed-a`);
    assert.equal(info['sink-uri'], 'blackhole://');
    assert.equal(info.state, 'normal');
    assert.ok(BigInt(info['start-ts']) >= before, 'start-ts is the upstream end of binlog at create time');
    assert.equal(info['target-ts'], '0');
    assert.deepEqual(info.config.filter.rules, ['*.*']);
    const status = await waitFor(() => json(`${prefix}changefeed/status/feed-a`), { what: 'the owner to write the status key' });
    assert.equal(status['checkpoint-ts'], info['start-ts']);
    assert.equal(status['admin-job-type'], 0);
    const upstream = await json(`${prefix}upstream/${info['upstream-id']}`);
    assert.equal(upstream.uri, mysqlUri('upstream'));
  });

  it('takes --start-ts as a binlog coordinate and a config file, and query shows ts, coordinate and state', async () => {
    const config = join(dir, 'changefeed.toml');
    writeFileSync(config, '[filter]\nrules = ["shop.*", "!shop.tmp*"]\n\n[sink]\nsafe-mode = true\n');
    // the upstream's end as a coordinate (a processor starts reading there at once)
    const end = await upstreamEndTs();
    const coordinate = `mysql-bin.${String(end >> 32n).padStart(6, '0')}:${end & 0xffffffffn}`;
    const res = await cdc(['cli', 'changefeed', 'create', '--server', owner.url, '--sink-uri', 'blackhole://', '-c', 'feed-b', '--start-ts', coordinate, '--config', config]);
    assert.ok(res.ok, JSON.stringify(res));
    const info = await json(`${prefix}changefeed/info/feed-b`);
    assert.equal(info['start-ts'], String(end));
    assert.deepEqual(info.config.filter.rules, ['shop.*', '!shop.tmp*']);
    assert.equal(info.config.sink['safe-mode'], true);
    const q = await cdc(['changefeed', 'query', '--server', other.url, '-c', 'feed-b', '--simple']);
    assert.ok(q.ok);
    assert.equal(q.json.state, 'normal');
    // the processor may have moved the checkpoint past start-ts already (other tests write upstream)
    const checkpoint = BigInt(q.json.checkpoint_tso);
    assert.ok(checkpoint >= end, `checkpoint ${checkpoint} is at or after start-ts ${end}`);
    assert.equal(q.json.checkpoint_coordinate, `mysql-bin.${String(checkpoint >> 32n).padStart(6, '0')}:${checkpoint & 0xffffffffn}`);
  });

  it('rejects bad requests with errors that name the value', async () => {
    const cases: [string[], RegExp][] = [
      [['--sink-uri', 'blackhole://', '-c', 'feed-a'], /ErrChangefeedAlreadyExists: changefeed feed-a already exists/],
      [['--sink-uri', 'kafak://broker:9092/t', '-c', 'x1'], /ErrSinkUnknownScheme: unknown sink scheme "kafak" in --sink-uri; installed: blackhole/],
      [['--sink-uri', 'blackhole://', '-c', 'bad_id'], /invalid changefeed id "bad_id"/],
      [['--sink-uri', 'blackhole://?delay=5', '-c', 'x6'], /ErrSinkURIInvalid: invalid --sink-uri "blackhole:\/\/\?delay=5": unknown parameter "delay" in blackhole sink URI; allowed: delay-ms/],
      [['--sink-uri', 'blackhole://', '-c', 'x2', '--start-ts', 'mysql-bin.000001:100', '--target-ts', 'mysql-bin.000001:50'], /ErrInvalidTs: --target-ts \d+ must be later than --start-ts/],
      [['--sink-uri', 'blackhole://', '-c', 'x3', '--start-ts', 'mysql-bin.999999:4'], /ErrStartTsBeyondUpstream: --start-ts \d+ \(mysql-bin\.999999:4\) is later than the upstream's end of binlog/],
      [['--sink-uri', 'blackhole://', '-c', 'x4', '--start-ts', 'yesterday'], /ErrInvalidTs: invalid --start-ts "yesterday"/],
    ];
    for (const [args, pattern] of cases) {
      const res = await cdc(['changefeed', 'create', '--server', other.url, ...args]);
      assert.ok(!res.ok, `${args.join(' ')} should fail`);
      assert.match(res.stderr, pattern);
    }
    const config = join(dir, 'unknown-key.toml');
    writeFileSync(config, '[filter]\nrules = ["*.*"]\nignore-tables = ["a"]\n');
    const res = await cdc(['changefeed', 'create', '--server', other.url, '--sink-uri', 'blackhole://', '-c', 'x5', '--config', config]);
    assert.ok(!res.ok);
    assert.match(res.stderr, /ErrConfigUnknownKey: unknown key "filter.ignore-tables"/);
    assert.equal(await etcd.get(`${prefix}changefeed/info/x5`).string(), null, 'nothing is written for a rejected changefeed');
  });

  it('pauses (through a non-owner, forwarded), refuses update while running, updates when stopped, resumes with an overwritten checkpoint', async () => {
    const early = await cdc(['changefeed', 'update', '--server', other.url, '-c', 'feed-a', '--target-ts', '999999999999']);
    assert.ok(!early.ok);
    assert.match(early.stderr, /ErrChangefeedUpdateRefused: can only update changefeed feed-a when it is stopped or failed; it is normal/);
    const paused = await cdc(['changefeed', 'pause', '--server', other.url, '-c', 'feed-a']);
    assert.ok(paused.ok, JSON.stringify(paused));
    let info = await json(`${prefix}changefeed/info/feed-a`);
    assert.equal(info.state, 'stopped');
    assert.equal(info['admin-job-type'], 1);
    assert.equal((await json(`${prefix}changefeed/status/feed-a`))['admin-job-type'], 1);

    const again = await cdc(['changefeed', 'pause', '--server', owner.url, '-c', 'feed-a']);
    assert.ok(!again.ok);
    assert.match(again.stderr, /ErrAdminJobRefused: cannot pause changefeed feed-a: it is stopped/);

    const updated = await cdc(['changefeed', 'update', '--server', other.url, '-c', 'feed-a', '--target-ts', '999999999999']);
    assert.ok(updated.ok, JSON.stringify(updated));
    assert.equal((await json(`${prefix}changefeed/info/feed-a`))['target-ts'], '999999999999');

    // back to where feed-a started (a real event boundary: the processor reads from there again)
    const startTs = BigInt(info['start-ts']);
    const coordinate = `mysql-bin.${String(startTs >> 32n).padStart(6, '0')}:${startTs & 0xffffffffn}`;
    const resumed = await cdc(['changefeed', 'resume', '--server', other.url, '-c', 'feed-a', '--overwrite-checkpoint-ts', coordinate]);
    assert.ok(resumed.ok, JSON.stringify(resumed));
    info = await json(`${prefix}changefeed/info/feed-a`);
    assert.equal(info.state, 'normal');
    assert.equal(info['admin-job-type'], 0);
    assert.equal(info['start-ts'], String(startTs), 'resume --overwrite-checkpoint-ts sets the start-ts');
    const status = await json(`${prefix}changefeed/status/feed-a`);
    assert.ok(BigInt(status['checkpoint-ts']) >= startTs);
  });

  it('lists changefeeds and removes one with all its keys', async () => {
    const list = await cdc(['changefeed', 'list', '--server', other.url]);
    assert.ok(list.ok);
    assert.deepEqual(list.json.map((c: { id: string }) => c.id), ['feed-a', 'feed-b']);
    const removed = await cdc(['changefeed', 'remove', '--server', other.url, '-c', 'feed-a']);
    assert.ok(removed.ok, JSON.stringify(removed));
    const keys = await etcd.getAll().prefix(prefix).keys();
    assert.ok(!keys.some((k) => k.includes('/feed-a')), `keys of feed-a left: ${keys.join(', ')}`);
    const q = await cdc(['changefeed', 'query', '--server', owner.url, '-c', 'feed-a']);
    assert.ok(!q.ok);
    assert.match(q.stderr, /ErrChangefeedNotExists: changefeed feed-a does not exist/);
  });
});
