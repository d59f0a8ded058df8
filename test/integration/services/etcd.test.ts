import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Etcd3, type IKeyValue } from 'etcd3';
import { etcdEndpoint, requireService, uniqueName } from '../../helpers/services.js';
import { waitFor } from '../../helpers/wait-for.js';
import { leakCheck } from '../../helpers/leak-check.js';

describe('etcd (real server)', () => {
  const leaks = leakCheck();
  let client: Etcd3;
  const prefix = `/tidemark-test/${uniqueName('etcd')}/`;

  before(async () => {
    await requireService('etcd');
    client = new Etcd3({ hosts: etcdEndpoint(), dialTimeout: 3000 });
  });
  after(async () => {
    await client.delete().prefix(prefix);
    client.close();
    await leaks.check();
  });

  it('puts and gets a value', async () => {
    await client.put(`${prefix}a`).value('alpha');
    assert.equal(await client.get(`${prefix}a`).string(), 'alpha');
    assert.equal(await client.get(`${prefix}missing`).string(), null);
  });

  it('delivers puts and deletes under a prefix to a watcher, in order', async () => {
    const seen: string[] = [];
    const watcher = await client.watch().prefix(`${prefix}w/`).create();
    try {
      watcher.on('put', (kv: IKeyValue) => seen.push(`put ${kv.key.toString()}=${kv.value.toString()}`));
      watcher.on('delete', (kv: IKeyValue) => seen.push(`delete ${kv.key.toString()}`));
      await client.put(`${prefix}w/1`).value('one');
      await client.put(`${prefix}w/2`).value('two');
      await client.put(`${prefix}other`).value('not watched');
      await client.delete().key(`${prefix}w/1`);
      await waitFor(() => seen.length >= 3, { what: 'three watch events' });
      assert.deepEqual(seen, [`put ${prefix}w/1=one`, `put ${prefix}w/2=two`, `delete ${prefix}w/1`]);
    } finally {
      await watcher.cancel();
    }
  });

  it('removes a key when its lease expires without keep-alive', async () => {
    // taken before the lease is granted, so the key cannot vanish less than 2 s after it, however slow the machine
    const started = Date.now();
    const lease = client.lease(2, { autoKeepAlive: false });
    try {
      await lease.put(`${prefix}leased`).value('short-lived');
      assert.equal(await client.get(`${prefix}leased`).string(), 'short-lived');
      await waitFor(async () => (await client.get(`${prefix}leased`).string()) === null, {
        timeoutMs: 30_000,
        intervalMs: 200,
        what: 'the leased key to disappear',
      });
      // a lower bound from a point before the grant: load can only make it longer (the TTL is the subject here)
      assert.ok(Date.now() - started >= 1000, 'the key vanished before its 2 s TTL could have run out');
    } finally {
      lease.release();
    }
  });

  it('commits a transaction only while the mod revision it compares is current', async () => {
    const key = `${prefix}txn`;
    await client.put(key).value('v1');
    const modRevision = (await client.get(key).exec()).kvs[0]?.mod_revision;
    assert.ok(modRevision !== undefined);

    const first = await client.if(key, 'Mod', '==', modRevision).then(client.put(key).value('v2')).commit();
    assert.equal(first.succeeded, true);
    assert.equal(await client.get(key).string(), 'v2');

    const stale = await client.if(key, 'Mod', '==', modRevision).then(client.put(key).value('v3')).commit();
    assert.equal(stale.succeeded, false, 'a compare on an old mod revision must fail');
    assert.equal(await client.get(key).string(), 'v2');
  });
});
