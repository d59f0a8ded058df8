import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { CDC_BIN, CdcServerProcess, captureAddressesInEtcd, listCaptures, type CaptureRow } from '../../helpers/cdc-process.js';
import { etcdEndpoint, requireService, uniqueName } from '../../helpers/services.js';
import { waitFor } from '../../helpers/wait-for.js';

const run = promisify(execFile);

async function captureListCli(server: CdcServerProcess): Promise<CaptureRow[]> {
  const { stdout } = await run(process.execPath, [CDC_BIN, 'cli', 'capture', 'list', '--server', server.url, '--json']);
  return JSON.parse(stdout) as CaptureRow[];
}

describe('a cluster of three real cdc servers on real etcd', () => {
  const clusterId = uniqueName('c').replaceAll('_', '-');
  const servers: CdcServerProcess[] = [];

  before(async () => {
    await requireService('etcd');
    for (let i = 0; i < 3; i++) servers.push(await CdcServerProcess.start({ pd: etcdEndpoint(), clusterId }));
    await Promise.all(servers.map((s) => s.waitHealthy()));
  });
  after(async () => {
    await Promise.all(servers.map((s) => s.stop()));
  });

  it('elects exactly one owner, and `cdc cli capture list` shows all three', async () => {
    const rows = await waitFor(async () => {
      const list = await captureListCli(servers[0]);
      return list.length === 3 && list;
    }, { what: 'three captures in the list' });
    assert.deepEqual(rows.map((r) => r.address).sort(), servers.map((s) => s.addr).sort());
    assert.equal(rows.filter((r) => r.is_owner).length, 1);
    assert.ok(rows.every((r) => r.cluster_id === clusterId));
    const statuses = await Promise.all(servers.map((s) => s.api<{ is_owner: boolean; id: string }>('/api/v2/status')));
    assert.equal(statuses.filter((s) => s.is_owner).length, 1, 'exactly one server says it is the owner');
    assert.equal(statuses.find((s) => s.is_owner)?.id, rows.find((r) => r.is_owner)?.id);
  });

  it('serves Prometheus metrics and answers unknown routes with a JSON error', async () => {
    const owner = (await listCaptures(servers[0])).find((r) => r.is_owner)!;
    const metrics = await waitFor(async () => {
      const text = await (await fetch(`http://${owner.address}/metrics`)).text();
      return /^tidemark_owner_is_owner 1$/m.test(text) && text;
    }, { what: 'the owner gauge at 1' });
    assert.match(metrics, /^tidemark_cluster_captures 3$/m);
    assert.match(metrics, /^tidemark_process_resident_memory_bytes \d+/m);
    const res = await fetch(`${servers[0].url}/api/v2/nothing-here`);
    assert.equal(res.status, 404);
    assert.deepEqual(await res.json(), { error_code: 'ErrNotFound', error_msg: 'no such API route: GET /api/v2/nothing-here' });
  });

  it('hands ownership over on POST /api/v2/owner/resign, even when asked through a non-owner', async () => {
    const before = (await listCaptures(servers[0])).find((r) => r.is_owner)!;
    const nonOwner = servers.find((s) => s.addr !== before.address)!;
    const res = await fetch(`${nonOwner.url}/api/v2/owner/resign`, { method: 'POST' });
    assert.equal(res.status, 202);
    const next = await waitFor(async () => {
      const owner = (await listCaptures(nonOwner)).find((r) => r.is_owner);
      return owner !== undefined && owner.id !== before.id && owner;
    }, { timeoutMs: 15_000, what: 'another owner after resign' });
    assert.notEqual(next.id, before.id);
  });

  it('replaces a kill -9 owner and drops the dead capture when its lease expires', async () => {
    const owner = (await listCaptures(servers[0])).find((r) => r.is_owner)!;
    const victim = servers.find((s) => s.addr === owner.address)!;
    const survivor = servers.find((s) => s !== victim)!;
    victim.kill('SIGKILL');
    await victim.exited;
    // the 10 s session TTL decides when; how fast failover is goes in a benchmark, not here
    const newOwner = await waitFor(async () => {
      const o = (await listCaptures(survivor)).find((r) => r.is_owner);
      return o !== undefined && o.id !== owner.id && o;
    }, { timeoutMs: 60_000, intervalMs: 200, what: 'a new owner' });
    assert.notEqual(newOwner.address, victim.addr);
    const rows = await waitFor(async () => {
      const list = await listCaptures(survivor);
      return list.length === 2 && list;
    }, { timeoutMs: 60_000, what: 'the dead capture to leave the list' });
    assert.ok(!rows.some((r) => r.address === victim.addr));
    servers.splice(servers.indexOf(victim), 1);
  });

  it('a SIGTERMed non-owner deregisters itself before it exits 0 (not by its lease running out)', async () => {
    const owner = (await listCaptures(servers[0])).find((r) => r.is_owner)!;
    const victim = servers.find((s) => s.addr !== owner.address)!;
    const witness = servers.find((s) => s !== victim)!;
    victim.kill('SIGTERM');
    const { code } = await victim.exited;
    assert.equal(code, 0);
    // its session's lease (10 s TTL) is still alive at this point: only its own deregistration removes it now.
    // Read from etcd itself: the witness's API answers from its mirror, which may not have seen the delete yet.
    assert.ok(!(await captureAddressesInEtcd(etcdEndpoint(), clusterId)).includes(victim.addr), 'the stopped capture left etcd before it exited');
    await waitFor(async () => !(await listCaptures(witness)).some((r) => r.address === victim.addr), { what: 'the other captures to see it gone' });
  });
});
