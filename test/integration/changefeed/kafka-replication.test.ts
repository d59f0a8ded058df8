import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { Etcd3 } from 'etcd3';
import mysql from 'mysql2/promise';
import type { ColumnInfo } from '../../../src/core/sink/api.js';
import { decodeMessage } from '../../../plugins/sink-kafka/src/decoder.js';
import { decodeReference, FormatNotes, KNOWN_TIDEMARK_DEPARTURES, readTopicRecords, type ReferenceEvent, type ReferenceRow } from '../../helpers/kafka-reference-decoders.js';
import { CDC_BIN, CdcServerGroup, freePort } from '../../helpers/cdc-process.js';
import { etcdEndpoint, mysqlUri, requireService, serviceAddress, uniqueName } from '../../helpers/services.js';
import { waitFor } from '../../helpers/wait-for.js';
import { mountedValues, typeFamilies, typeFamilyColumns } from '../../helpers/type-matrix.js';
import { canonical } from '../../../src/core/sink/testkit.js';
import { upstreamEndTs } from '../../helpers/upstream.js';
import { jsonConverter } from '../../helpers/kafka-connect-json.js';

const run = promisify(execFile);
/** Whether something accepts connections on 127.0.0.1:port. */
const portOpen = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => {
      socket.destroy();
      resolve(false);
    });
  });
const PROTOCOLS = ['canal-json', 'open-protocol', 'debezium', 'maxwell'] as const;
const TABLES = 10;
const COLUMNS: ColumnInfo[] = [
  { name: 'id', mysqlType: 'int', primaryKey: true, nullable: false },
  { name: 'v', mysqlType: 'int', primaryKey: false, nullable: false },
  { name: 'note', mysqlType: 'varchar(40)', primaryKey: false, nullable: true },
  { name: 'amount', mysqlType: 'decimal(20,4)', primaryKey: false, nullable: true },
  { name: 'at', mysqlType: 'datetime(6)', primaryKey: false, nullable: true },
];

/**
 * Kafka replication end to end (the Kafka sink issue's acceptance): a real `cdc server` reads the real upstream
 * and writes to the real broker in each protocol; the test consumes every message with a plain Kafka client,
 * decodes it with the reference decoder of test/helpers (written from each format's documentation, sharing no
 * code with the plugin), rebuilds each table and compares it with the upstream; per-key order, the DDL's place
 * between the rows, and watermarks that never go back are checked on the messages themselves. The plugin's own
 * decoder must read every message to the same events.
 */
describe('Kafka replication end to end (real cdc server, upstream MariaDB, Kafka broker)', { timeout: 900_000 }, () => {
  const clusterId = uniqueName('kafkarep').replaceAll('_', '-');
  const statusKey = (id: string): string => `/tidb/cdc/${clusterId}/default/changefeed/status/${id}`;
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-kafkarep-'));
  const cluster = new CdcServerGroup({ pd: etcdEndpoint(), clusterId, extraArgs: ['--upstream', mysqlUri('upstream')] });
  let etcd: Etcd3;
  let up: mysql.Connection;
  const broker = (): string => `${serviceAddress('kafka').host}:${serviceAddress('kafka').port}`;

  const endTs = (): Promise<bigint> => upstreamEndTs(up);
  const checkpoint = async (id: string): Promise<bigint> => BigInt(JSON.parse((await etcd.get(statusKey(id)).string()) ?? '{"checkpoint-ts":"0"}')['checkpoint-ts'] as string);
  const caughtUp = (id: string, ts: bigint) =>
    waitFor(async () => (await checkpoint(id)) >= ts, { timeoutMs: 120_000, intervalMs: 200, what: `${id}'s checkpoint to reach ${ts}` }).catch((error: unknown) => {
      console.log(`# ${id} did not catch up; server log tail:\n${cluster.newest().output.join('').slice(-5000)}`);
      throw error;
    });

  /** Creates the tables and a changefeed into `topic`, runs the workload (with an ALTER in the middle), returns the upstream state. */
  async function replicate(id: string, protocol: string, topic: string, middle?: (db: string) => Promise<void>, brokerAddr = broker()): Promise<{ db: string }> {
    const db = uniqueName('kfk');
    const config = join(dir, `${id}.toml`);
    writeFileSync(config, `[filter]\nrules = ["${db}.*"]\n`);
    const extension = protocol === 'canal-json' ? '&enable-tidb-extension=true' : '';
    await run(process.execPath, [CDC_BIN, 'changefeed', 'create', '--server', cluster.newest().url, '--sink-uri', `kafka://${brokerAddr}/${topic}?protocol=${protocol}&partition-num=3${extension}`, '-c', id, '--config', config]);
    await waitFor(async () => (await checkpoint(id)) > 0n, { what: `${id}'s status` });
    await up.query(`CREATE DATABASE \`${db}\``);
    for (let t = 0; t < TABLES; t++) await up.query(`CREATE TABLE \`${db}\`.t${t} (id INT PRIMARY KEY, v INT NOT NULL, note VARCHAR(40), amount DECIMAL(20,4), at DATETIME(6))`);
    // the type matrix: its golden rows and a row of NULLs in every family
    for (const [f, family] of typeFamilies.entries()) {
      await up.query(`CREATE TABLE \`${db}\`.m${f} (id INT PRIMARY KEY, ${family.columns})`);
      for (const [r, [sql]] of family.rows.entries()) await up.query(`INSERT INTO \`${db}\`.m${f} VALUES (${r + 1}, ${sql})`);
      await up.query(`INSERT INTO \`${db}\`.m${f} VALUES (0, ${family.rows[0][1].map(() => 'NULL').join(', ')})`);
      // an update from row 1's values to the NULLs' and a delete, so every type also comes in before-images
      const names = typeFamilyColumns(family.columns).slice(1).map((c) => `\`${c.name}\``);
      const m = `\`${db}\`.m${f}`;
      await up.query(`INSERT INTO ${m} SELECT 1000, ${names.join(', ')} FROM ${m} WHERE id = 1`);
      await up.query(`UPDATE ${m} a JOIN ${m} b ON b.id = 0 SET ${names.map((n) => `a.${n} = b.${n}`).join(', ')} WHERE a.id = 1000`);
      await up.query(`DELETE FROM ${m} WHERE id = 1000`);
    }
    for (let round = 0; round < 4; round++) {
      for (let t = 0; t < TABLES; t++) {
        const base = round * 50;
        const rows = Array.from({ length: 50 }, (_, i) => [base + i + 1, i, i % 9 === 0 ? null : `r${round} ‘${i}’`, `${i}.${String(round * 7).padStart(4, '0')}`, `2024-05-06 07:08:09.${String(base + i).padStart(6, '0')}`]);
        await up.query(`INSERT INTO \`${db}\`.t${t} (id, v, note, amount, at) VALUES ?`, [rows]);
        await up.query(`UPDATE \`${db}\`.t${t} SET v = v + 100, note = CONCAT(IFNULL(note, ''), ' u') WHERE id % 4 = 0`);
        await up.query(`DELETE FROM \`${db}\`.t${t} WHERE id % 10 = ${round}`);
      }
      if (round === 1) {
        await up.query(`ALTER TABLE \`${db}\`.t0 ADD COLUMN extra VARCHAR(10) NULL`);
        await up.query(`UPDATE \`${db}\`.t0 SET extra = 'x' WHERE id % 2 = 0`);
        if (middle !== undefined) await middle(db);
      }
    }
    await caughtUp(id, await endTs());
    return { db };
  }

  /** The upstream's rows in the decoder's canonical text. */
  async function upstreamState(db: string, t: number): Promise<Map<string, ReferenceRow>> {
    const [rows] = await up.query<mysql.RowDataPacket[]>({ sql: `SELECT * FROM \`${db}\`.t${t} ORDER BY id`, dateStrings: true, supportBigNumbers: true, bigNumberStrings: true });
    const state = new Map<string, ReferenceRow>();
    for (const r of rows) {
      const row: ReferenceRow = {};
      for (const [k, v] of Object.entries(r)) row[k] = v === null ? null : String(v);
      state.set(String(r['id']), row);
    }
    return state;
  }

  function columnsOf(schema: string, table: string): readonly ColumnInfo[] {
    void schema;
    const family = /^m(\d+)$/.exec(table);
    if (family !== null) return typeFamilyColumns(typeFamilies[Number(family[1])].columns);
    return table === 't0' ? [...COLUMNS, { name: 'extra', mysqlType: 'varchar(10)', primaryKey: false, nullable: true }] : COLUMNS;
  }

  async function check(protocol: (typeof PROTOCOLS)[number], topic: string, db: string, changefeedId: string, brokerAddr = broker()): Promise<{ messages: number; duplicates: number }> {
    const messages = await readTopicRecords([brokerAddr], topic, 60_000);
    const byPartition = new Map<number, ReferenceEvent[]>();
    const notes = new FormatNotes();
    for (const m of messages) {
      const events = decodeReference(protocol, m.key, m.value, { columnTypes: columnsOf, notes });
      // the plugin's decoder, which shares helpers with the encoders, reads the message to the same events
      const plugin = decodeMessage(protocol, m.key, m.value, columnsOf);
      assert.deepEqual(plugin, events, `${protocol}: partition ${m.partition} offset ${m.offset}: the plugin's decoder agrees with the reference decoder`);
      byPartition.set(m.partition, [...(byPartition.get(m.partition) ?? []), ...events]);
    }
    // where a message departs from the documented format, only in the ways already known (and reported)
    if (notes.codes.length > 0) console.log(`# ${protocol}: departures from the documented format:\n#   ${notes.describe().join('\n#   ')}`);
    assert.deepEqual(
      notes.codes.filter((code) => !KNOWN_TIDEMARK_DEPARTURES[protocol].includes(code)),
      [],
      `${protocol}: no unknown departure from the documented format`,
    );
    // watermarks (from the owner) arrive where the protocol has them, and never go back, per partition
    let watermarks = 0;
    for (const [p, events] of byPartition) {
      let last = 0n;
      for (const e of events) {
        if (e.kind !== 'watermark') continue;
        watermarks++;
        assert.ok(e.ts >= last, `${protocol}: partition ${p}: watermark ${e.ts} after ${last}`);
        last = e.ts;
      }
    }
    if (protocol === 'canal-json' || protocol === 'open-protocol') assert.ok(watermarks > 0, `${protocol}: watermarks arrived`);
    // the ALTER lies between the rows without and with the new column, in every partition that carries it
    let ddlSeen = false;
    for (const events of byPartition.values()) {
      const at = events.findIndex((e) => e.kind === 'ddl' && /ADD COLUMN extra/i.test(e.query));
      if (at < 0) continue;
      ddlSeen = true;
      events.forEach((e, i) => {
        if (e.kind !== 'row' || e.table !== 't0' || e.schema !== db) return;
        const image = e.after ?? e.before!;
        if (i < at) assert.ok(!('extra' in image), `${protocol}: a t0 row before the ALTER has the new column`);
        else assert.ok('extra' in image, `${protocol}: a t0 row after the ALTER lacks the new column`);
      });
    }
    if (protocol === 'debezium') {
      // Debezium writes DDL to the schema-change topic (named after the topic prefix, the changefeed id), never to a
      // data topic: the ALTER is there, and in the data topic every t0 row after the first with the new column has it
      assert.equal(ddlSeen, false, 'debezium: no DDL in the data topic');
      const schemaTopic = await readTopicRecords([brokerAddr], changefeedId, 30_000);
      const schemaChanges = schemaTopic.flatMap((m) => decodeReference(protocol, m.key, m.value, { columnTypes: columnsOf }));
      const alter = schemaChanges.find((e) => e.kind === 'ddl' && e.schema === db && /ADD COLUMN extra/i.test(e.query));
      assert.ok(alter !== undefined && alter.kind === 'ddl' && alter.commitTs !== undefined, `debezium: the ALTER TABLE arrived in the schema-change topic ${changefeedId}`);
      for (const events of byPartition.values()) {
        let widened = false;
        for (const e of events) {
          if (e.kind !== 'row' || e.table !== 't0' || e.schema !== db) continue;
          const has = 'extra' in (e.after ?? e.before!);
          assert.ok(!widened || has, 'debezium: a t0 row without the new column after one with it');
          assert.equal(has, e.commitTs! > alter.commitTs, `debezium: a t0 row at ${e.commitTs} against the ALTER at ${alter.commitTs}`);
          widened ||= has;
        }
      }
      // Kafka Connect's own JsonConverter accepts every record, data and schema-change topics, tombstones included
      const records = [...messages.map((r) => ({ topic, key: r.key, value: r.value })), ...schemaTopic.map((r) => ({ topic: changefeedId, key: r.key, value: r.value }))];
      const { status, lines } = jsonConverter(records);
      assert.deepEqual(lines.filter((l) => !l.startsWith('ok ')).slice(0, 5), [], "debezium: JsonConverter refused no record");
      assert.equal(lines.length, records.length, 'debezium: JsonConverter read every record');
      assert.equal(status, 0);
      assert.ok(messages.some((m) => m.value === null), 'debezium: tombstones follow deletes');
    } else assert.ok(ddlSeen, `${protocol}: the ALTER TABLE message arrived`);
    // per-key order: a key's changes in one partition, in commit order; then replay per table
    const keyPartition = new Map<string, number>();
    const lastTs = new Map<string, bigint>();
    const states = new Map<string, Map<string, ReferenceRow>>();
    const seen = new Set<string>();
    let duplicates = 0;
    for (const [p, events] of byPartition) {
      for (const e of events) {
        if (e.kind !== 'row' || e.schema !== db) continue;
        const id = (e.after ?? e.before)!['id']!;
        const key = `${e.table}/${id}`;
        const fingerprint = `${e.commitTs}/${e.type}/${JSON.stringify(e.before)}/${JSON.stringify(e.after)}`;
        if (e.commitTs !== undefined && seen.has(`${key}/${fingerprint}`)) duplicates++;
        seen.add(`${key}/${fingerprint}`);
        const before = keyPartition.get(key);
        // an update that changes no key stays with its key; all changes here keep their primary key
        assert.ok(before === undefined || before === p, `${protocol}: ${key} in partitions ${before} and ${p}`);
        keyPartition.set(key, p);
        if (e.commitTs !== undefined) {
          assert.ok((lastTs.get(key) ?? 0n) <= e.commitTs, `${protocol}: ${key}: ${e.commitTs} after ${lastTs.get(key)}`);
          lastTs.set(key, e.commitTs);
        }
      }
    }
    for (const events of byPartition.values()) {
      for (const e of events) {
        if (e.kind !== 'row' || e.schema !== db) continue;
        let state = states.get(e.table);
        if (state === undefined) states.set(e.table, (state = new Map()));
        if (e.before) state.delete(e.before['id']!);
        if (e.after) state.set(e.after['id']!, e.after);
      }
    }
    for (let t = 0; t < TABLES; t++) {
      const want = await upstreamState(db, t);
      const got = states.get(`t${t}`) ?? new Map<string, ReferenceRow>();
      // a row last changed before ADD COLUMN has no value for it: the upstream shows the column's default (NULL)
      for (const row of got.values()) if (t === 0 && !('extra' in row)) row['extra'] = null;
      assert.deepEqual(new Map([...got].sort()), new Map([...want].sort()), `${protocol}: t${t} rebuilt from the messages equals the upstream`);
    }
    // the type matrix, value by value in canonical text (with the formats' documented losses)
    for (const [f, family] of typeFamilies.entries()) {
      const cols = typeFamilyColumns(family.columns);
      const got = states.get(`m${f}`) ?? new Map<string, ReferenceRow>();
      // the values a changefeed delivers (MariaDB's UUID/INET6/INET4 as their text)
      const rows = [...family.rows.map((row, r) => [BigInt(r + 1), ...mountedValues(row)]), [0n, ...family.rows[0][1].map(() => null)]];
      assert.equal(got.size, rows.length, `${protocol}: m${f} has every row`);
      for (const values of rows) {
        const decoded = got.get(String(values[0]));
        assert.ok(decoded !== undefined, `${protocol}: m${f} row ${String(values[0])} arrived`);
        cols.forEach((c, i) => {
          let want = canonical(values[i] ?? null);
          if (protocol === 'debezium' && want !== null && /^(date|datetime|timestamp)/.test(c.mysqlType) && want.startsWith('0000-00-00')) want = null;
          // (MariaDB's JSON is LONGTEXT in the binlog, so maxwell keeps its text as it is here)
          assert.equal(decoded[c.name], want, `${protocol} ${family.name}: ${c.name} ${c.mysqlType}`);
        });
      }
    }
    if (protocol === 'canal-json') await checkCanalTypes(messages.map((m) => m.value), db);
    return { messages: messages.length, duplicates };
  }

  /**
   * canal-json's `mysqlType` is the upstream's information_schema COLUMN_TYPE, column by column, in every row message
   * (`char(4)`, `varchar(300)`, `enum('','x','y😀')`, `uuid`…); integer display widths aside (MariaDB's `int(11)`,
   * `year(4)`: the binlog has none, Tidemark writes `int` as MySQL 8 does). And MariaDB's UUID/INET6/INET4 values are
   * their text in `data` itself.
   */
  async function checkCanalTypes(values: readonly (Buffer | null)[], db: string): Promise<void> {
    const [rows] = await up.query<mysql.RowDataPacket[]>('SELECT TABLE_NAME t, COLUMN_NAME c, COLUMN_TYPE ct FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ?', [db]);
    const want = new Map<string, string>(rows.map((r) => [`${String(r['t'])}.${String(r['c'])}`, String(r['ct']).replace(/^(tinyint|smallint|mediumint|int|bigint|year)\(\d+\)/, '$1')]));
    const checked = new Set<string>();
    const texts = new Map<string, unknown>();
    for (const value of values) {
      const m = JSON.parse(value?.toString() ?? 'null') as { database?: string; table?: string; isDdl?: boolean; type?: string; mysqlType?: Record<string, string> | null; data?: Record<string, unknown>[] | null } | null;
      if (m === null || m.isDdl === true || m.database !== db || m.mysqlType === null || m.mysqlType === undefined) continue;
      for (const [column, type] of Object.entries(m.mysqlType)) {
        // (information_schema is utf8mb3 on MariaDB: its COLUMN_TYPE shows a character beyond the BMP, as in enum('y😀'), as '?')
        assert.equal(type.replace(/[\u{10000}-\u{10FFFF}]/gu, '?'), want.get(`${m.table}.${column}`), `canal-json ${m.table}.${column}: mysqlType is the COLUMN_TYPE`);
        checked.add(`${m.table}.${column}`);
      }
      const family = typeFamilies.findIndex((f) => f.columns.includes(' UUID'));
      if (m.table === `m${family}` && m.type === 'INSERT') for (const [k, v] of Object.entries(m.data?.[0] ?? {})) texts.set(`${String(m.data?.[0]?.['id'])}.${k}`, v);
    }
    assert.deepEqual([...want.keys()].filter((k) => !checked.has(k)), [], 'every column of every table had its mysqlType checked');
    assert.deepEqual(
      ['1', '2', '3', '0'].map((id) => ['u', 'ip', 'ip4'].map((c) => texts.get(`${id}.${c}`))),
      [
        ['123e4567-e89b-12d3-a456-426655440000', '2001:db8::1', '10.0.0.1'],
        ['123e4567-e89b-12d3-a456-426614174000', '::ffff:10.0.0.1', '0.0.0.0'],
        ['00000000-0000-0000-0000-000000000000', '2001:db8::ff00:42:8329', '255.255.255.255'],
        [null, null, null],
      ],
      'canal-json data: UUID, INET6, INET4 as their text',
    );
  }

  before(async () => {
    await requireService('etcd');
    await requireService('upstream');
    await requireService('kafka');
    etcd = new Etcd3({ hosts: etcdEndpoint() });
    up = await mysql.createConnection({ uri: mysqlUri('upstream'), timezone: 'Z' });
    await up.query("SET time_zone = '+00:00', sql_mode = ''");
    await cluster.start();
  });
  after(async () => {
    await cluster.stopAll();
    await up.end();
    await etcd.delete().prefix(`/tidb/cdc/${clusterId}/`);
    etcd.close();
  });

  for (const protocol of PROTOCOLS) {
    it(`${protocol}: the tables rebuilt from the messages equal the upstream; per-key order, the DDL between the rows, watermarks`, async () => {
      const topic = uniqueName(`kfk-${protocol}`).replaceAll('_', '-');
      const id = `k-${protocol}`;
      const { db } = await replicate(id, protocol, topic);
      const { messages, duplicates } = await check(protocol, topic, db, id);
      console.log(`# ${protocol}: ${messages} messages, ${duplicates} duplicate row changes`);
      await run(process.execPath, [CDC_BIN, 'changefeed', 'remove', '--server', cluster.newest().url, '-c', id]);
    });
  }

  it('canal-json: kill -9 of the capture mid-workload and a restart: no row change missing', async () => {
    const topic = uniqueName('kfk-kill').replaceAll('_', '-');
    const { db } = await replicate('k-kill', 'canal-json', topic, async () => {
      const victim = cluster.newest();
      victim.kill('SIGKILL');
      await victim.exited;
      await cluster.start();
    });
    const { duplicates } = await check('canal-json', topic, db, 'k-kill');
    console.log(`# kafka kill -9: ${duplicates} duplicate row changes (the at-least-once window)`);
  });

  it('canal-json: the broker restarted mid-workload: no row change missing', async () => {
    // a broker of its own (scripts/services.sh with another data dir and port), so stopping it touches no other test
    let port = await freePort();
    while (await portOpen(port + 1)) port = await freePort(); // the KRaft controller listens on port + 1
    const services = new URL('../../../scripts/services.sh', import.meta.url).pathname;
    const servicesDir = mkdtempSync(join(tmpdir(), 'tidemark-broker-'));
    const sharedDir = process.env['TIDEMARK_SERVICES_DIR'] ?? new URL('../../../.services', import.meta.url).pathname;
    // Kafka's resolved classpath, so this broker does not ask Maven again
    mkdirSync(join(servicesDir, 'kafka'), { recursive: true });
    if (existsSync(join(sharedDir, 'kafka'))) for (const f of readdirSync(join(sharedDir, 'kafka'))) if (f.startsWith('classpath-')) copyFileSync(join(sharedDir, 'kafka', f), join(servicesDir, 'kafka', f));
    const brokerEnv = { ...process.env, TIDEMARK_SERVICES_DIR: servicesDir, TIDEMARK_KAFKA_ADDR: `127.0.0.1:${port}` };
    const own = `127.0.0.1:${port}`;
    await run('bash', [services, 'up', 'kafka'], { env: brokerEnv, timeout: 180_000 });
    try {
      const topic = uniqueName('kfk-broker').replaceAll('_', '-');
      let outage = 0;
      const { db } = await replicate(
        'k-broker',
        'canal-json',
        topic,
        async (db) => {
          await run('bash', [services, 'down', 'kafka'], { env: brokerEnv, timeout: 60_000 });
          const stoppedAt = Date.now();
          assert.equal(await portOpen(port), false, 'the broker stopped');
          // the workload goes on upstream while the broker is away
          for (let t = 0; t < TABLES; t++) await up.query(`UPDATE \`${db}\`.t${t} SET v = v + 1 WHERE id % 5 = 0`);
          // the broker stays away a few seconds: the outage is the subject here, not a wait for something to happen
          await new Promise((resolve) => setTimeout(resolve, 3000));
          await run('bash', [services, 'up', 'kafka'], { env: brokerEnv, timeout: 180_000 });
          outage = Date.now() - stoppedAt;
        },
        own,
      );
      const { duplicates } = await check('canal-json', topic, db, 'k-broker', own);
      console.log(`# kafka broker restart: away ${(outage / 1000).toFixed(1)} s, ${duplicates} duplicate row changes (the at-least-once window)`);
    } finally {
      await run('bash', [services, 'down', 'kafka'], { env: brokerEnv, timeout: 60_000 });
    }
  });
});
