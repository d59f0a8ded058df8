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
import { etcdEndpoint, mysqlUri, requireService, uniqueName } from '../../helpers/services.js';
import { waitFor } from '../../helpers/wait-for.js';
import type { ChangefeedDetail, TablePage } from '../../../src/core/api/model.js';

const run = promisify(execFile);
const TABLES = 300;

/**
 * `GET /api/v2/changefeeds/{id}/tables` pages (#23): real cdc servers (two captures) on the real etcd and upstream.
 * Each capture lists its own tables from its processor; the answer merges them, whatever the etcd task positions hold.
 */
describe('the tables of a changefeed, a page at a time (real cdc servers, two captures)', { timeout: 180_000 }, () => {
  const clusterId = uniqueName('pages').replaceAll('_', '-');
  const db = uniqueName('pages');
  const cluster = new CdcServerGroup({ pd: etcdEndpoint(), clusterId, extraArgs: ['--upstream', mysqlUri('upstream')] });
  let upstream: mysql.Connection;
  const names = Array.from({ length: TABLES }, (_, i) => `${db}.t${String(i).padStart(3, '0')}`);
  const page = (query: string, server = cluster.alive()[0]): Promise<TablePage> => server.api<TablePage>(`/api/v2/changefeeds/pages/tables?${query}`);

  before(async () => {
    await requireService('etcd');
    await requireService('upstream');
    upstream = await mysql.createConnection({ uri: mysqlUri('upstream'), multipleStatements: true });
    await upstream.query(`CREATE DATABASE \`${db}\``);
    await upstream.query(names.map((n) => `CREATE TABLE ${n.replace(/^([^.]+)\./, '`$1`.')} (id INT PRIMARY KEY)`).join(';'));
    await cluster.start();
    await cluster.start();
  });
  after(async () => {
    await cluster.stopAll();
    await upstream.query(`DROP DATABASE IF EXISTS \`${db}\``);
    await upstream.end();
    const etcd = new Etcd3({ hosts: etcdEndpoint() });
    await etcd.delete().prefix(`/tidb/cdc/${clusterId}/`);
    etcd.close();
  });

  it('pages by name over both captures: every table once, in order, with next as the cursor', async () => {
    const config = join(mkdtempSync(join(tmpdir(), 'tidemark-pages-')), 'cf.toml');
    writeFileSync(config, `[filter]\nrules = ["${db}.*"]\n`);
    await run(process.execPath, [CDC_BIN, 'changefeed', 'create', '--server', cluster.alive()[0].url, '--sink-uri', 'blackhole://', '-c', 'pages', '--config', config]);
    // settled: every table replicating, balanced over both captures, no move in flight (a table being moved is
    // listed by both its captures)
    await waitFor(
      async () => {
        const replicating = await page('state=replicating&limit=1');
        const parts = await Promise.all(cluster.alive().map((server) => page('local=true&limit=1', server)));
        return replicating.total === TABLES && parts.every((p) => Math.abs(p.total - TABLES / 2) <= 1) && parts.reduce((n, p) => n + p.total, 0) === TABLES;
      },
      { timeoutMs: 90_000, intervalMs: 500, what: `${TABLES} tables replicating, balanced over two captures` },
    );

    const seen: string[] = [];
    const captures = new Set<string>();
    let after: string | null = null;
    let pages = 0;
    do {
      const p: TablePage = await page(`limit=37${after === null ? '' : `&after=${encodeURIComponent(after)}`}`, cluster.alive()[pages % 2]);
      assert.equal(p.total, TABLES - seen.length, 'total counts the tables after the cursor');
      assert.ok(p.items.length <= 37 || p.next === null);
      for (const t of p.items) {
        seen.push(t.table);
        captures.add(t.capture_id);
      }
      after = p.next;
      pages++;
    } while (after !== null);
    assert.deepEqual(seen, names, 'every table once, by name');
    assert.equal(pages, Math.ceil(TABLES / 37));
    assert.equal(captures.size, 2, 'both captures listed their own tables');

    // each capture's own part, as the others ask it
    const parts = await Promise.all(cluster.alive().map((s) => page('local=true&limit=1', s)));
    assert.equal(parts.reduce((n, p) => n + p.total, 0), TABLES);
    assert.ok(parts.every((p) => p.total > 0));
  });

  it('sorts by lag and filters by state and name; a wrong parameter is refused naming it', async () => {
    await upstream.query(`INSERT INTO \`${db}\`.t123 VALUES (1)`);
    const byLag = await page('sort=lag&limit=10');
    assert.equal(byLag.items.length, 10);
    assert.equal(byLag.total, TABLES);
    const lags = byLag.items.map((t) => (t.checkpoint_time === null ? Infinity : Date.now() - t.checkpoint_time));
    for (let i = 1; i < lags.length; i++) assert.ok(lags[i - 1] >= lags[i] - 50, `lag order: ${JSON.stringify(lags)}`);
    // idle tables' checkpoints move all the time, so their lag order between two requests may change: the offset
    // is checked within one answer (the unit test checks that pages by offset neither overlap nor skip)
    const next = await page('sort=lag&limit=10&offset=10');
    assert.equal(next.offset, 10);
    assert.equal(next.items.length, 10);
    assert.equal(next.total, TABLES);

    assert.equal((await page('state=preparing')).total, 0);
    const named = await page('filter=T01&limit=4');
    assert.equal(named.total, 10, 't010…t019');
    assert.deepEqual(named.items.map((t) => t.table), names.slice(10, 14));

    await assert.rejects(page('limit=0'), /HTTP 400 .*invalid limit \\"0\\": expected an integer from 1 to 10000/);
    await assert.rejects(page('sort=size'), /HTTP 400 .*invalid sort \\"size\\": expected one of name, lag, rows/);
    await assert.rejects(page('state=running'), /HTTP 400 .*invalid state \\"running\\"/);
  });

  it('changefeed query gives each capture\'s table count, not its table list', async () => {
    const { stdout } = await run(process.execPath, [CDC_BIN, 'changefeed', 'query', '--server', cluster.alive()[0].url, '-c', 'pages', '--json']);
    const detail = JSON.parse(stdout) as ChangefeedDetail;
    assert.equal(detail.task_status.length, 2);
    await waitFor(async () => {
      const d = JSON.parse((await run(process.execPath, [CDC_BIN, 'changefeed', 'query', '--server', cluster.alive()[0].url, '-c', 'pages', '--json'])).stdout) as ChangefeedDetail;
      return d.task_status.reduce((n, t) => n + t.table_count, 0) === TABLES;
    }, { what: 'the task positions to count every table' });
    for (const t of detail.task_status) assert.equal('tables' in t.position, false, 'no table list in the answer');
    const { stdout: text } = await run(process.execPath, [CDC_BIN, 'changefeed', 'query', '--server', cluster.alive()[0].url, '-c', 'pages']);
    assert.match(text, new RegExp(`Tables: +${TABLES} on 2 captures`));
  });
});
