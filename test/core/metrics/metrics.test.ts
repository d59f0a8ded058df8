import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TidemarkMetrics, lagSeconds } from '../../../src/core/metrics/index.js';
import { caughtUpAt } from '../../../src/core/capture/metrics-collector.js';
import type { RowChangedEvent } from '../../../src/core/sink/api.js';

const row = (kind: RowChangedEvent['kind']): RowChangedEvent => ({ kind }) as RowChangedEvent;

/** The value of one sample of a text exposition, by name and labels. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

describe('TidemarkMetrics', () => {
  it('each server has its own registry: two instances share no series (many servers in one test process)', async () => {
    const a = new TidemarkMetrics({ defaultMetrics: false });
    const b = new TidemarkMetrics({ defaultMetrics: false });
    a.changefeed('default', 'cf').written([row('insert')], 0.01);
    assert.equal(sample(await a.scrape(), 'tidemark_sink_rows_total', { changefeed: 'cf', kind: 'insert' }), 1);
    assert.equal(sample(await b.scrape(), 'tidemark_sink_rows_total', { changefeed: 'cf' }), undefined);
  });

  it('counts a writeRows batch by kind, its size and duration; flushes and sink errors by code', async () => {
    const m = new TidemarkMetrics({ defaultMetrics: false });
    const cf = m.changefeed('ns', 'cf');
    assert.equal(m.changefeed('ns', 'cf'), cf, 'the labelled children are created once per changefeed');
    cf.written([row('insert'), row('insert'), row('update'), row('delete'), row('insert')], 0.02);
    cf.written([row('delete')], 0.5);
    cf.flushed(0.1);
    cf.sinkError('ErrSinkFailed');
    cf.sinkError('ErrSinkFailed');
    cf.sinkError('ErrSinkRejected');
    const text = await m.scrape();
    const labels = { namespace: 'ns', changefeed: 'cf' };
    assert.equal(sample(text, 'tidemark_sink_rows_total', { ...labels, kind: 'insert' }), 3);
    assert.equal(sample(text, 'tidemark_sink_rows_total', { ...labels, kind: 'update' }), 1);
    assert.equal(sample(text, 'tidemark_sink_rows_total', { ...labels, kind: 'delete' }), 2);
    assert.equal(sample(text, 'tidemark_sink_batch_rows_count', labels), 2);
    assert.equal(sample(text, 'tidemark_sink_batch_rows_sum', labels), 6);
    assert.equal(sample(text, 'tidemark_sink_write_duration_seconds_sum', labels), 0.52);
    assert.equal(sample(text, 'tidemark_sink_write_duration_seconds_bucket', { ...labels, le: '0.025' }), 1);
    assert.equal(sample(text, 'tidemark_sink_flush_duration_seconds_count', labels), 1);
    assert.equal(sample(text, 'tidemark_sink_errors_total', { ...labels, code: 'ErrSinkFailed' }), 2);
    assert.equal(sample(text, 'tidemark_sink_errors_total', { ...labels, code: 'ErrSinkRejected' }), 1);
  });

  it('runs its collectors before each scrape; a failing collector does not fail the scrape; removal works', async () => {
    const m = new TidemarkMetrics({ defaultMetrics: false });
    let calls = 0;
    const remove = m.onCollect(() => {
      calls++;
      m.capturesAlive.set(calls);
    });
    m.onCollect(() => {
      throw new Error('broken collector');
    });
    assert.equal(sample(await m.scrape(), 'tidemark_cluster_captures'), 1);
    assert.equal(sample(await m.scrape(), 'tidemark_cluster_captures'), 2);
    remove();
    assert.equal(sample(await m.scrape(), 'tidemark_cluster_captures'), 2);
  });

  it('p2p message counters are cached per direction and topic', async () => {
    const m = new TidemarkMetrics({ defaultMetrics: false });
    assert.equal(m.p2pMessage('sent', 'heartbeat'), m.p2pMessage('sent', 'heartbeat'));
    m.p2pMessage('sent', 'heartbeat').inc();
    m.p2pMessage('received', 'heartbeat').inc();
    m.p2pMessage('sent', 'heartbeat').inc();
    const text = await m.scrape();
    assert.equal(sample(text, 'tidemark_p2p_messages_total', { direction: 'sent', topic: 'heartbeat' }), 2);
    assert.equal(sample(text, 'tidemark_p2p_messages_total', { direction: 'received', topic: 'heartbeat' }), 1);
  });

  it('every metric is named tidemark_…, with the default process metrics under the same prefix', () => {
    const m = new TidemarkMetrics();
    const names = m.registry.getMetricsAsArray().map((x) => (x as unknown as { name: string }).name);
    assert.ok(names.length > 50);
    assert.deepEqual(names.filter((n) => !n.startsWith('tidemark_')), []);
    assert.ok(names.includes('tidemark_process_start_time_seconds'));
    assert.equal(m.perTable, false);
    assert.equal(new TidemarkMetrics({ perTable: true, defaultMetrics: false }).perTable, true);
  });

  it('lag in seconds, never negative', () => {
    assert.equal(lagSeconds(1000, 3500), 2.5);
    assert.equal(lagSeconds(5000, 3500), 0);
  });
});

describe('caughtUpAt: lag measured from when the upstream was last seen with nothing after the position', () => {
  it('notes an end of binlog at or before the position, keeps the newest, forgets it once the position goes back', () => {
    let r = caughtUpAt(undefined, { ts: 100n, at: 1000 }, 90n);
    assert.equal(r.at, undefined, 'the upstream had commits after the position');
    assert.equal(r.known, undefined);
    r = caughtUpAt(undefined, { ts: 100n, at: 2000 }, 100n);
    assert.deepEqual(r, { known: { end: 100n, at: 2000 }, at: 2000 });
    r = caughtUpAt(r.known, { ts: 150n, at: 3000 }, 120n);
    assert.equal(r.at, 2000, 'a newer end beyond the position: still caught up as of the older read');
    r = caughtUpAt(r.known, { ts: 150n, at: 4000 }, 150n);
    assert.equal(r.at, 4000);
    r = caughtUpAt(r.known, undefined, 140n);
    assert.equal(r.at, undefined, 'a reader that went back before the end it had reached');
  });
});
