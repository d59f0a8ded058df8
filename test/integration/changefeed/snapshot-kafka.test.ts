import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { Etcd3 } from 'etcd3';
import mysql from 'mysql2/promise';
import { CDC_BIN, CdcServerGroup } from '../../helpers/cdc-process.js';
import { etcdEndpoint, mysqlUri, requireService, serviceAddress, uniqueName } from '../../helpers/services.js';
import { waitFor } from '../../helpers/wait-for.js';
import { upstreamEndTs } from '../../helpers/upstream.js';
import { decodeReference, readTopicRecords, type ReferenceProtocol, type ReferenceRow } from '../../helpers/kafka-reference-decoders.js';

const run = promisify(execFile);

/** The tables, their key columns and the columns compared (keys and text: every format writes those as text). */
const TABLES = [
  { name: 'int_pk', ddl: 'id INT PRIMARY KEY, v VARCHAR(40)', key: ['id'], compare: ['id', 'v'], insert: (i: number) => `(${i}, 'v${i}')` },
  { name: 'composite_pk', ddl: 'a INT NOT NULL, b INT NOT NULL, v VARCHAR(40), PRIMARY KEY (a, b)', key: ['a', 'b'], compare: ['a', 'b', 'v'], insert: (i: number) => `(${i % 13}, ${i}, 'c${i}')` },
  { name: 'string_pk', ddl: 's VARCHAR(32) PRIMARY KEY, v VARCHAR(40)', key: ['s'], compare: ['s', 'v'], insert: (i: number) => `('k${i}', 's${i}')` },
] as const;

/**
 * `--snapshot initial` into Kafka (the snapshot issue): while a workload changes the tables, a consumer of the
 * topic rebuilds every table equal to the upstream, and per key sees the row as of some position and then
 * exactly the changes after it: no change twice, none at or before its key's snapshot row. Debezium (read events
 * marked `op: "r"`) and canal-json (inserts, with the commit ts of TiCDC's extension). Real cdc server, MariaDB,
 * Kafka, etcd.
 */
describe('changefeed create --snapshot initial into Kafka (real cdc server, MariaDB, Kafka)', { timeout: 600_000 }, () => {
  const clusterId = uniqueName('snapkafka').replaceAll('_', '-');
  const statusKey = (id: string): string => `/tidb/cdc/${clusterId}/default/changefeed/status/${id}`;
  const snapshotPrefix = (id: string): string => `/tidb/cdc/${clusterId}/default/changefeed/snapshot/${id}/`;
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-snapkafka-'));
  const cluster = new CdcServerGroup({ pd: etcdEndpoint(), clusterId, extraArgs: ['--upstream', mysqlUri('upstream')] });
  const { host, port } = serviceAddress('kafka');
  const db = uniqueName('snapkafka');
  let etcd: Etcd3;
  let up: mysql.Connection;

  const states = async (id: string): Promise<string[]> => Object.values(await etcd.getAll().prefix(snapshotPrefix(id)).strings()).map((v) => String((JSON.parse(v) as { state: string }).state));
  const checkpoint = async (id: string): Promise<bigint> => BigInt(JSON.parse((await etcd.get(statusKey(id)).string()) ?? '{"checkpoint-ts":"0"}')['checkpoint-ts'] as string);

  before(async () => {
    await requireService('etcd');
    await requireService('upstream');
    await requireService('kafka');
    etcd = new Etcd3({ hosts: etcdEndpoint() });
    up = await mysql.createConnection({ uri: mysqlUri('upstream') });
    await cluster.start();
  });
  after(async () => {
    await cluster.stopAll();
    await up.query(`DROP DATABASE IF EXISTS \`${db}\``);
    await up.end();
    await etcd.delete().prefix(`/tidb/cdc/${clusterId}/`);
    etcd.close();
  });

  it('a consumer rebuilds every table, and sees no change of a key twice or before its snapshot row (debezium, canal-json)', async () => {
    await up.query(`CREATE DATABASE \`${db}\``);
    for (const t of TABLES) {
      await up.query(`CREATE TABLE \`${db}\`.${t.name} (${t.ddl})`);
      await up.query(`INSERT INTO \`${db}\`.${t.name} VALUES ${Array.from({ length: 5000 }, (_, i) => t.insert(i)).join(', ')}`);
    }
    let stopped = false;
    const writes = (async () => {
      const conn = await mysql.createConnection({ uri: mysqlUri('upstream') });
      for (let i = 5000; !stopped; i++) {
        const k = Math.floor(Math.random() * i);
        await conn.query(`INSERT INTO \`${db}\`.int_pk VALUES (${i}, 'w${i}')`);
        await conn.query(`UPDATE \`${db}\`.int_pk SET v = CONCAT(v, '+') WHERE id = ${k}`);
        await conn.query(`UPDATE \`${db}\`.int_pk SET id = id + 1000000 WHERE id = ${k + 1}`);
        await conn.query(`DELETE FROM \`${db}\`.int_pk WHERE id = ${k + 2}`);
        await conn.query(`INSERT INTO \`${db}\`.composite_pk VALUES (${i % 13}, ${i}, 'w${i}')`);
        await conn.query(`UPDATE \`${db}\`.composite_pk SET v = CONCAT(v, '+') WHERE b = ${k}`);
        await conn.query(`DELETE FROM \`${db}\`.composite_pk WHERE b = ${k + 1}`);
        await conn.query(`UPDATE \`${db}\`.string_pk SET v = CONCAT(v, '+') WHERE s = 'k${k}'`);
        await conn.query(`DELETE FROM \`${db}\`.string_pk WHERE s = 'k${k + 1}'`);
      }
      await conn.end();
    })();
    const protocols: [string, ReferenceProtocol, string][] = [
      ['dbz', 'debezium', 'protocol=debezium'],
      ['canal', 'canal-json', 'protocol=canal-json&enable-tidb-extension=true'],
    ];
    const topics = new Map<string, string>();
    try {
      for (const [id, , params] of protocols) {
        const topic = uniqueName(`tm-snap-${id}`).replaceAll('_', '-');
        topics.set(id, topic);
        const config = join(dir, `${id}.toml`);
        writeFileSync(config, `[snapshot]\nchunk-rows = 600\n[filter]\nrules = ["${db}.*"]\n`);
        await run(process.execPath, [CDC_BIN, 'changefeed', 'create', '--server', cluster.newest().url, '--sink-uri', `kafka://${host}:${port}/${topic}?${params}&partition-num=3`, '-c', id, '--config', config, '--snapshot', 'initial']);
      }
      for (const [id] of protocols) {
        await waitFor(async () => (await states(id)).every((s) => s === 'done'), { timeoutMs: 240_000, intervalMs: 300, what: `${id}: every table copied` });
      }
    } finally {
      stopped = true;
      await writes;
    }
    const end = await upstreamEndTs(up);
    for (const [id] of protocols) await waitFor(async () => (await checkpoint(id)) >= end, { timeoutMs: 120_000, intervalMs: 250, what: `${id} caught up` });

    for (const [id, protocol] of protocols) {
      const rebuilt = new Map<string, Map<string, ReferenceRow>>();
      /** Per table and key: the snapshot row's commit ts, and the changes seen (commit ts and kind). */
      const seen = new Map<string, { snapshotTs?: bigint | undefined; changes: Set<string>; events: string[] }>();
      let snapshotRows = 0;
      for (const m of await readTopicRecords([`${host}:${port}`], topics.get(id)!, 60_000)) {
        for (const e of decodeReference(protocol, m.key, m.value)) {
          if (e.kind !== 'row' || e.schema !== db) continue;
          const t = TABLES.find((x) => x.name === e.table)!;
          let table = rebuilt.get(e.table);
          if (table === undefined) rebuilt.set(e.table, (table = new Map()));
          const keyOf = (row: ReferenceRow): string => `${e.table}/${t.key.map((k) => row[k]).join(',')}`;
          const touched = [e.before, e.after].filter((r): r is ReferenceRow => r !== null).map(keyOf);
          const snapshotRead = protocol === 'debezium' ? e.snapshot !== undefined : undefined;
          for (const key of new Set(touched)) {
            let history = seen.get(key);
            if (history === undefined) seen.set(key, (history = { changes: new Set(), events: [] }));
            // what the consumer saw of the key, in order, for a failure's message
            history.events.push(`${e.commitTs}/${snapshotRead === true ? 'snapshot' : e.type}/partition ${m.partition}/offset ${m.offset}`);
            if (snapshotRead === true) {
              assert.equal(history.snapshotTs, undefined, `${id}: ${key} has one snapshot row`);
              assert.equal(history.changes.size, 0, `${id}: ${key}: no change before its snapshot row`);
              history.snapshotTs = e.commitTs;
              snapshotRows++;
            } else {
              const change = `${e.commitTs}/${e.type}/${JSON.stringify(e.before)}/${JSON.stringify(e.after)}`;
              assert.ok(!history.changes.has(change), `${id}: ${key}: a change came twice (${change})`);
              history.changes.add(change);
              if (history.snapshotTs !== undefined && e.commitTs !== undefined) assert.ok(e.commitTs > history.snapshotTs, `${id}: ${key}: a change at ${e.commitTs}, not after its snapshot row's ${history.snapshotTs}`);
            }
          }
          if (e.before !== null) table.delete(keyOf(e.before));
          if (e.after !== null) table.set(keyOf(e.after), e.after);
        }
      }
      if (protocol === 'debezium') assert.ok(snapshotRows >= 5000, `${id}: the snapshot rows came as read events (${snapshotRows})`);
      for (const t of TABLES) {
        const [rows] = await up.query<mysql.RowDataPacket[]>(`SELECT ${t.compare.join(', ')} FROM \`${db}\`.${t.name}`);
        const want = new Map(rows.map((r) => [`${t.name}/${t.key.map((k) => String(r[k])).join(',')}`, t.compare.map((c) => (r[c] === null ? null : String(r[c])))]));
        const got = new Map([...(rebuilt.get(t.name) ?? new Map<string, ReferenceRow>())].map(([k, row]) => [k, t.compare.map((c) => row[c] ?? null)]));
        const differ = [...new Set([...got.keys(), ...want.keys()])].filter((k) => JSON.stringify(got.get(k)) !== JSON.stringify(want.get(k))).slice(0, 5);
        const story = differ.map((k) => `${k}: rebuilt ${JSON.stringify(got.get(k) ?? null)}, upstream ${JSON.stringify(want.get(k) ?? null)}, seen ${(seen.get(k)?.events ?? []).join(' → ') || 'nothing'}`).join('; ');
        assert.equal(got.size, want.size, `${id}: ${t.name} rebuilt with ${got.size} rows, the upstream has ${want.size} (${story})`);
        assert.deepEqual(got, want, `${id}: ${t.name} rebuilt equal to the upstream`);
      }
    }
  });
});
