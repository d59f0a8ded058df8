import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from '../../../src/core/logger/logger.js';
import { SharedBinlog } from '../../../src/core/logservice/shared-binlog.js';
import { Mounter } from '../../../src/core/pipeline/mounter/index.js';
import { SharedRows, TableMapVersions } from '../../../src/core/pipeline/mounter/shared-rows.js';
import { SORTED_ROW_CODEC, decodedRowBytes, rowSharers, setRowCommitTime, type SortedRow } from '../../../src/core/pipeline/row-codec.js';
import type { RowChangedEvent } from '../../../src/core/sink/api.js';
import type { ResumableEvent } from '../../../src/core/upstream/resumable-reader.js';
import type { RowsLayout } from '../../../src/core/upstream/rows.js';
import { locatedRows, testTableMap } from '../../helpers/binlog-rows.js';

const map = testTableMap('t', ['int', 'bigint', 'text'], { schema: 'a' });
const other = testTableMap('u', ['int'], { schema: 'b', tableId: 2n });
const table = { schema: 'a', table: 't', tableId: 1 };

/** `n` transactions of one insert event of `perEvent` rows each, then a commit at ts 100 + 10 k. */
function transactions(n: number, perEvent: number): ResumableEvent[] {
  const events: ResumableEvent[] = [];
  for (let k = 1; k <= n; k++) {
    const images = Array.from({ length: perEvent }, (_, i) => ({ before: null, after: [k * 100 + i, BigInt(k) << 40n, `row ${k}/${i} ${'x'.repeat(i)}`] }));
    events.push({ kind: 'rows', layout: locatedRows(map, 'insert', images), seq: 0 }, { kind: 'rows', layout: locatedRows(other, 'insert', [{ before: null, after: [k] }]), seq: perEvent });
    events.push({ kind: 'commit', ts: 100n + 10n * BigInt(k), commitTime: 1_700_000_000_000 + k, rows: perEvent + 1 });
  }
  return events;
}

/** A changefeed's puller and mounter in miniature: the rows of a.t, as payloads, with their commit ts and time. */
async function pull(events: AsyncIterable<ResumableEvent>, mounter: Mounter, lastTs: bigint): Promise<{ ts: bigint; seq: number; row: SortedRow }[]> {
  const pulled: { ts: bigint; seq: number; row: SortedRow }[] = [];
  let pending: { seq: number; row: SortedRow }[] = [];
  for await (const e of events) {
    if (e.kind === 'rows' && e.layout.map.table === 't') mounter.rowsOf(e.layout).forEach((row, i) => pending.push({ seq: e.seq + i, row }));
    if (e.kind === 'commit') {
      for (const p of pending) {
        setRowCommitTime(p.row, e.commitTime);
        pulled.push({ ts: e.ts, ...p });
      }
      pending = [];
      if (e.ts === lastTs) break;
    }
  }
  return pulled;
}

function scripted(events: readonly ResumableEvent[]) {
  return async function* (_start: bigint, signal: AbortSignal): AsyncGenerator<ResumableEvent> {
    for (let i = 0; i < events.length; i++) {
      yield events[i];
      if (i % 50 === 49) await new Promise((resolve) => setImmediate(resolve));
    }
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
  };
}

const notOwn = { ownRead: () => { throw new Error('no read of its own expected'); } };

describe('SharedRows: rows the shared binlog read gives to several changefeeds, built and decoded once', () => {
  it('three changefeeds selecting a table take one set of rows and decode each row once; the result is what each decodes alone', async () => {
    const events = transactions(40, 5);
    const last = 100n + 10n * 40n;
    const log = new SharedBinlog({ source: scripted(events), logger: silentLogger });
    const rows = new SharedRows((layout) => log.sharersOf(layout));
    const stop = new AbortController();
    const mounters = [0, 1, 2].map(() => new Mounter(rows));
    const selectsT = (schema: string) => schema === 'a';
    const pulled = await Promise.all([
      ...mounters.map((m, i) => pull(log.subscribe(100n, stop.signal, { ...notOwn, who: `changefeed ${i}`, selects: selectsT }), m, last)),
      // a changefeed of other tables is not a sharer of a.t's rows
      pull(log.subscribe(100n, stop.signal, { ...notOwn, who: 'b only', selects: (schema) => schema === 'b' }), new Mounter(rows), last),
    ]);
    stop.abort();
    assert.equal(pulled[0].length, 200);
    assert.equal(pulled[3].length, 0);
    for (let i = 0; i < 200; i++) {
      assert.ok(pulled[1][i].row === pulled[0][i].row && pulled[2][i].row === pulled[0][i].row, 'the same row buffer for each changefeed');
    }
    assert.equal(rowSharers(pulled[0][0].row), 3, 'given to three changefeeds (not the one of other tables)');
    // each changefeed mounts its rows in turn: the first decodes, the two others take its images
    const mounted = mounters.map((m, c) => pulled[c].map((p) => m.mount(table, p.ts, p.seq, p.row)));
    assert.deepEqual(rows.decodes, { decoded: 200, shared: 400 });
    assert.equal(rows.keptDecodedBytes, 0, 'nothing kept once every sharer took it');
    // what a changefeed on its own (nothing shared) mounts from a copy of the same bytes
    const alone = new Mounter();
    alone.versionOf(map);
    const expected = pulled[0].map((p) => alone.mount(table, p.ts, p.seq, Buffer.from(p.row)));
    for (const m of mounted) assert.deepEqual(m, expected);
    assert.equal(expected[7].commitTime, 1_700_000_000_002);
    assert.deepEqual(expected[7].after, [202, 2n << 40n, 'row 2/2 xx']);
  });

  it('keeps decoded rows within its bound: a changefeed far behind decodes its own rows', () => {
    const layout = locatedRows(map, 'insert', Array.from({ length: 100 }, (_, i) => ({ before: null, after: [i, BigInt(i), 'y'.repeat(i)] })));
    const rows = new SharedRows(() => 2, 20 * decodedRowBytes(Buffer.alloc(80)));
    const [ahead, behind] = [new Mounter(rows), new Mounter(rows)];
    const payloads = ahead.rowsOf(layout);
    assert.equal(behind.rowsOf(layout), payloads, 'one set of rows for both');
    const first: RowChangedEvent[] = [];
    for (let i = 0; i < 100; i++) {
      first.push(ahead.mount(table, 110n, i, payloads[i]));
      assert.ok(rows.keptDecodedBytes <= 20 * decodedRowBytes(Buffer.alloc(80)), `kept ${rows.keptDecodedBytes} bytes`);
    }
    const second = payloads.map((row, i) => behind.mount(table, 110n, i, row));
    assert.deepEqual(second, first, 'the same rows, decoded again where nothing was kept');
    assert.ok(rows.decodes.shared > 0 && rows.decodes.shared < 40, `the newest kept rows were shared (${rows.decodes.shared})`);
    assert.equal(rows.decodes.decoded + rows.decodes.shared, 200);
  });

  it('shares nothing for rows of one changefeed, and a spilled copy of a shared row decodes by itself', () => {
    const layout = locatedRows(map, 'update', [{ before: [1, 2n, 'a'], after: [1, 3n, 'b'] }]);
    const alone = new SharedRows();
    const mounter = new Mounter(alone);
    const [row] = mounter.rowsOf(layout);
    assert.notEqual(mounter.rowsOf(layout)[0], row, 'rows of an event not shared are built for each call (each puller)');
    assert.equal(rowSharers(row), 1);
    mounter.mount(table, 110n, 0, row);
    assert.deepEqual([alone.decodes, alone.keptDecodedBytes], [{ decoded: 1, shared: 0 }, 0]);

    const rows = new SharedRows(() => 2);
    const [a, b] = [new Mounter(rows), new Mounter(rows)];
    const [shared] = a.rowsOf(layout);
    const spilled = SORTED_ROW_CODEC.decode(Buffer.from(SORTED_ROW_CODEC.encode(shared)));
    const event = a.mount(table, 110n, 0, shared);
    assert.deepEqual(b.mount(table, 110n, 0, spilled), event);
    assert.equal(rows.decodes.shared, 0, 'a copy is another buffer: decoded');
    assert.equal(b.mount(table, 110n, 0, shared).after, event.after, 'the buffer itself: the same images');
  });
});

describe('TableMapVersions: versions follow table definitions, not reads', () => {
  it('a TABLE_MAP read again with the same content keeps its version; a changed one gets the next', () => {
    const versions = new TableMapVersions();
    const first = testTableMap('t', ['int', 'bigint']);
    const again = testTableMap('t', ['int', 'bigint']);
    const altered = testTableMap('t', ['int', 'bigint', 'text']);
    assert.notEqual(first, again);
    assert.deepEqual([versions.versionOf(first), versions.versionOf(again), versions.versionOf(altered), versions.versionOf(first)], [1, 1, 2, 1]);
    assert.equal(versions.versionOf(testTableMap('t', ['int', 'bigint'])), 3, 'read again after the change: compared with the newest');
    assert.equal(versions.versionOf(testTableMap('t', ['int', 'bigint'], { schema: 'other' })), 4, 'another table');
    assert.equal(versions.mapOf(1), first);
    assert.equal(versions.mapOf(2), altered);
    const layout: RowsLayout = locatedRows(first, 'insert', [{ before: null, after: [1, 1n] }]);
    assert.equal(new SharedRows().versions.versionOf(layout.map), 1);
  });
});
