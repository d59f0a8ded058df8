import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CdcServerProcess } from '../../helpers/cdc-process.js';
import { etcdEndpoint, requireService, uniqueName } from '../../helpers/services.js';

/** The V8 settings a real `cdc server` runs with, as its start line reports them (the shared etcd, a cluster of its own). */
describe('cdc server: heap tuning', () => {
  const servers: CdcServerProcess[] = [];
  before(() => requireService('etcd'));
  after(() => Promise.all(servers.map((s) => s.stop())));

  const startLine = async (nodeArgs: readonly string[], extraArgs: readonly string[] = []): Promise<string> => {
    const server = await CdcServerProcess.start({ pd: etcdEndpoint(), clusterId: uniqueName('heap').replaceAll('_', '-'), nodeArgs, extraArgs });
    servers.push(server);
    await server.waitHealthy();
    const line = server.output.join('').split('\n').find((l) => l.includes('"cdc server listening"'));
    assert.ok(line !== undefined, server.output.join(''));
    return line;
  };

  it("turns V8's allocation-site pretenuring off and bounds the heap growth by default", async () => {
    const line = await startLine([], ['--heap-growth', '1.5']);
    assert.match(line, /\[heapGrowth=1\.5\] \[pretenuring=off\]/);
  });

  it("leaves both to node when its command line sets them", async () => {
    const line = await startLine(['--allocation-site-pretenuring', '--heap-growing-percent=50']);
    assert.match(line, /\[heapGrowth=node\] \[pretenuring=node\]/);
  });
});
