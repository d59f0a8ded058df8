import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Etcd3 } from 'etcd3';
import { parseCreateTable } from '../../../src/core/schema/ddl-parser.js';
import { SchemaStorage } from '../../../src/core/schema/schema-storage.js';
import { EtcdSchemaStore } from '../../../src/core/orchestrator/schema-store.js';
import { etcdEndpoint, requireService, uniqueName } from '../../helpers/services.js';

/** A storage of `tables` tables of 12 columns each, as a snapshot would give. */
function snapshot(tables: number): SchemaStorage {
  const columns = Array.from({ length: 11 }, (_, i) => `c${i} VARCHAR(40) NOT NULL DEFAULT 'x'`).join(', ');
  return SchemaStorage.fromTables(
    100n,
    Array.from({ length: tables }, (_, i) => parseCreateTable(`CREATE TABLE t${i} (id INT PRIMARY KEY, ${columns})`, 'app', 'utf8mb4')),
    [['app', 'utf8mb4']],
  );
}

const asJSON = (s: SchemaStorage): string => JSON.stringify(s.toJSON());

/** The changefeed schema storage in the real etcd: whole copies, DDL records next to them, loads that replay them. */
describe('changefeed schema storage in etcd (EtcdSchemaStore)', () => {
  const clusterId = uniqueName('schemastore').replaceAll('_', '-');
  const prefix = `/tidb/cdc/${clusterId}/default/changefeed/schema/`;
  let client: Etcd3;

  before(async () => {
    await requireService('etcd');
    client = new Etcd3({ hosts: etcdEndpoint() });
  });
  after(async () => {
    await client.delete().prefix(`/tidb/cdc/${clusterId}/`);
    client.close();
  });

  it('a DDL after a save writes only its record; a load replays the records and equals the storage in memory', async () => {
    const store = new EtcdSchemaStore(client, clusterId);
    const storage = snapshot(50);
    await store.save('default', 'feed', storage);
    const key = `${prefix}feed`;
    const manifest = JSON.parse((await client.get(key).string())!) as { generation: string; parts: number };
    const partRevision = (await client.get(`${key}/${manifest.generation}/0`).exec()).kvs[0].mod_revision;
    const ddl = [
      { ts: 200n, schema: 'app', query: 'ALTER TABLE t1 ADD COLUMN extra BIGINT UNSIGNED' },
      { ts: 300n, schema: 'app', query: 'RENAME TABLE t2 TO t2_old' },
      { ts: 400n, schema: 'app', query: 'CREATE TABLE fresh (id INT PRIMARY KEY, v ENUM(\'a\',\'b\'))' },
      { ts: 500n, schema: 'app', query: 'DROP TABLE t3' },
    ];
    for (const d of ddl) {
      assert.equal(storage.applyDDL(d.ts, d.schema, d.query), true, d.query);
      await store.appendDDL('default', 'feed', storage, d);
    }
    assert.deepEqual(store.stats, { saves: 1, records: 4, bytes: store.stats.bytes });
    const keys = (await client.getAll().prefix(`${key}/`).keys()).sort();
    assert.deepEqual(keys, [`${key}/${manifest.generation}/0`, ...ddl.map((d) => `${key}/${manifest.generation}/ddl/${d.ts.toString(16).padStart(16, '0')}`)]);
    assert.equal((await client.get(`${key}/${manifest.generation}/0`).exec()).kvs[0].mod_revision, partRevision, 'the whole copy was not written again');

    // a processor (another store) loads it: the same storage, DDL included
    const loaded = (await new EtcdSchemaStore(client, clusterId).load('default', 'feed'))!;
    assert.equal(asJSON(loaded), asJSON(storage));
    assert.equal(loaded.lastDDL, 500n);
    assert.deepEqual(loaded.tablesAt(450n).filter((t) => !/^t\d+$/.test(t.table) || Number(t.table.slice(1)) < 4).map((t) => t.table).sort(), ['fresh', 't0', 't1', 't2_old', 't3']);
    const t1 = loaded.tableAt('app', 't1', 250n);
    assert.ok(t1 !== undefined && !('stale' in t1));
    assert.equal(t1.columns.at(-1)!.name, 'extra');
  });

  it('a burst of 2,000 CREATE TABLEs writes O(n) bytes: records, and a whole copy now and then', async () => {
    const store = new EtcdSchemaStore(client, clusterId);
    const storage = snapshot(10);
    await store.save('default', 'burst', storage);
    for (let i = 0; i < 2000; i++) {
      const d = { ts: 1000n + BigInt(i), schema: 'app', query: `CREATE TABLE burst${i} (id INT PRIMARY KEY, a VARCHAR(20), b DECIMAL(10,2), c DATETIME(3))` };
      storage.applyDDL(d.ts, d.schema, d.query);
      await store.appendDDL('default', 'burst', storage, d);
    }
    const last = Buffer.from(JSON.stringify(storage.toJSON())).length;
    // writing the whole storage after every CREATE would put ~1,000 × its final size; the records and the
    // occasional whole copy stay within a small multiple of it
    console.log(`# 2,000 CREATE TABLEs: ${store.stats.saves} whole copies, ${store.stats.records} records, ${(store.stats.bytes / 1024).toFixed(0)} KiB written (storage JSON ${(last / 1024).toFixed(0)} KiB)`);
    assert.ok(store.stats.saves >= 2 && store.stats.saves <= 10, `${store.stats.saves} whole copies`);
    assert.ok(store.stats.bytes < 2 * last, `${store.stats.bytes} bytes written for a storage of ${last} bytes of JSON`);
    const loaded = (await new EtcdSchemaStore(client, clusterId).load('default', 'burst'))!;
    assert.equal(asJSON(loaded), asJSON(storage));
    assert.equal(loaded.tablesAt(5000n).length, 2010);
    // old generations are gone: one manifest, one generation
    const generations = new Set((await client.getAll().prefix(`${prefix}burst/`).keys()).map((k) => k.slice(`${prefix}burst/`.length).split('/')[0]));
    assert.equal(generations.size, 1, [...generations].join(' '));
  });

  it('another writer saved meanwhile: the next DDL writes the whole storage instead of a record for the old copy', async () => {
    const mine = new EtcdSchemaStore(client, clusterId);
    const storage = snapshot(5);
    await mine.save('default', 'two', storage);
    const other = new EtcdSchemaStore(client, clusterId);
    const theirs = (await other.load('default', 'two'))!;
    theirs.applyDDL(200n, 'app', 'DROP TABLE t0');
    await other.save('default', 'two', theirs);
    storage.applyDDL(200n, 'app', 'DROP TABLE t0');
    storage.applyDDL(300n, 'app', 'ALTER TABLE t1 ADD COLUMN z INT');
    await mine.appendDDL('default', 'two', storage, { ts: 300n, schema: 'app', query: 'ALTER TABLE t1 ADD COLUMN z INT' });
    assert.equal(mine.stats.saves, 2, 'the record was not written into the generation the other writer replaced');
    const loaded = (await new EtcdSchemaStore(client, clusterId).load('default', 'two'))!;
    assert.equal(asJSON(loaded), asJSON(storage));
  });

  it('two creates of one id stage their copies: only the one whose txn wins is the storage; the loser and an old copy go', async () => {
    const infoKey = `/tidb/cdc/${clusterId}/default/changefeed/info/race`;
    // a storage left by an earlier changefeed of the same id
    await new EtcdSchemaStore(client, clusterId).save('default', 'race', snapshot(1));
    const a = snapshot(4);
    const b = snapshot(7);
    const stagedA = await new EtcdSchemaStore(client, clusterId).stage('default', 'race', a);
    const stagedB = await new EtcdSchemaStore(client, clusterId).stage('default', 'race', b);
    const create = (value: string, manifest: typeof stagedA.manifest) => client.if(infoKey, 'Create', '==', 0).then(client.put(infoKey).value(value), manifest).commit();
    const [wonB, wonA] = [await create('b', stagedB.manifest), await create('a', stagedA.manifest)];
    await stagedA.settle(wonA.succeeded);
    await stagedB.settle(wonB.succeeded);
    assert.deepEqual([wonA.succeeded, wonB.succeeded], [false, true]);
    const loaded = (await new EtcdSchemaStore(client, clusterId).load('default', 'race'))!;
    assert.equal(asJSON(loaded), asJSON(b), "the winner's storage, not the last one written");
    const generation = (JSON.parse((await client.get(`${prefix}race`).string())!) as { generation: string }).generation;
    assert.deepEqual(await client.getAll().prefix(`${prefix}race/`).keys(), [`${prefix}race/${generation}/0`], "the loser's and the old changefeed's parts are gone");
    await client.delete().key(infoKey);
  });

  it("a create that leaves the storage to the owner: its txn hides an earlier changefeed's storage, whose parts then go; the owner's stays", async () => {
    const infoKey = `/tidb/cdc/${clusterId}/default/changefeed/info/later`;
    // a storage left by an earlier changefeed of the same id
    await new EtcdSchemaStore(client, clusterId).save('default', 'later', snapshot(2));
    const vacated = await new EtcdSchemaStore(client, clusterId).vacate('default', 'later');
    const res = await client.if(infoKey, 'Create', '==', 0).then(client.put(infoKey).value('info'), vacated.manifest).commit();
    assert.equal(res.succeeded, true);
    assert.equal(await new EtcdSchemaStore(client, clusterId).load('default', 'later'), undefined, 'the owner finds no storage and takes one');
    // the new owner saves its own before the create's settle runs
    const own = snapshot(5);
    await new EtcdSchemaStore(client, clusterId).save('default', 'later', own);
    await vacated.settle(true);
    const loaded = (await new EtcdSchemaStore(client, clusterId).load('default', 'later'))!;
    assert.equal(asJSON(loaded), asJSON(own));
    const generation = (JSON.parse((await client.get(`${prefix}later`).string())!) as { generation: string }).generation;
    assert.deepEqual(await client.getAll().prefix(`${prefix}later/`).keys(), [`${prefix}later/${generation}/0`], "only the owner's parts are left");
    await client.delete().key(infoKey);
  });

  it('remove deletes the manifest, the copies and the records', async () => {
    const store = new EtcdSchemaStore(client, clusterId);
    const storage = snapshot(3);
    await store.save('default', 'gone', storage);
    storage.applyDDL(200n, 'app', 'DROP TABLE t0');
    await store.appendDDL('default', 'gone', storage, { ts: 200n, schema: 'app', query: 'DROP TABLE t0' });
    await store.remove('default', 'gone');
    assert.deepEqual(await client.getAll().prefix(`${prefix}gone`).keys(), []);
    assert.equal(await store.load('default', 'gone'), undefined);
  });
});
