import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { CDC_BIN, CdcServerGroup, type CdcServerProcess } from '../../helpers/cdc-process.js';
import { etcdEndpoint, mysqlUri, requireService, uniqueName } from '../../helpers/services.js';

const run = promisify(execFile);
const FIXTURE = new URL('../../fixtures/plugins/sink-file', import.meta.url).pathname;

/**
 * A user adds a sink scheme without touching the core: `cdc plugins link` a package that declares it in
 * package.json under "tidemark", and a cdc server started afterwards accepts sink URIs of that scheme.
 * oclif keeps user plugins under XDG_DATA_HOME, which the test points at a temporary folder.
 */
describe('a third-party sink plugin linked with `cdc plugins link`', () => {
  const home = mkdtempSync(join(tmpdir(), 'tidemark-plugins-'));
  const env = { ...process.env, XDG_DATA_HOME: join(home, 'data'), XDG_CACHE_HOME: join(home, 'cache'), XDG_CONFIG_HOME: join(home, 'config') };
  const clusterId = uniqueName('plug').replaceAll('_', '-');
  const cluster = new CdcServerGroup({ pd: etcdEndpoint(), clusterId, extraArgs: ['--upstream', mysqlUri('upstream')], env });

  const create = async (server: CdcServerProcess, id: string) =>
    run(process.execPath, [CDC_BIN, 'changefeed', 'create', '--server', server.url, '--sink-uri', `file://${join(home, 'out')}`, '-c', id], { env }).then(
      () => 'created',
      (error: { stderr: string }) => error.stderr,
    );

  before(async () => {
    await requireService('etcd');
    await requireService('upstream');
  });
  after(async () => {
    await cluster.stopAll();
  });

  it('is unknown before the link, listed and usable after it', async () => {
    const before = await cluster.start();
    assert.match(await create(before, 'file-a'), /ErrSinkUnknownScheme: unknown sink scheme "file" in --sink-uri; installed: blackhole/);
    await before.stop();

    const linked = await run(process.execPath, [CDC_BIN, 'plugins', 'link', '--no-install', FIXTURE], { env });
    assert.match(linked.stderr + linked.stdout, /Linking plugin/);
    const listed = JSON.parse((await run(process.execPath, [CDC_BIN, 'plugins', '--json'], { env })).stdout) as { name: string; type: string }[];
    assert.ok(listed.some((p) => p.name === 'tidemark-example-sink-file' && p.type === 'link'), JSON.stringify(listed));
    const manifest = JSON.parse(readFileSync(join(home, 'data', 'tidemark', 'package.json'), 'utf8')) as { oclif: { plugins: { name: string }[] } };
    assert.ok(manifest.oclif.plugins.some((p) => p.name === 'tidemark-example-sink-file'), 'the link is recorded in the user plugin manifest');

    const after = await cluster.start();
    assert.equal(await create(after, 'file-b'), 'created');
    const info = await after.api<{ sink_uri: string; state: string }>('/api/v2/changefeeds/file-b');
    assert.equal(info.sink_uri, `file://${join(home, 'out')}`);
    assert.equal(info.state, 'normal');
    await run(process.execPath, [CDC_BIN, 'changefeed', 'remove', '--server', after.url, '-c', 'file-b'], { env });
  });
});
