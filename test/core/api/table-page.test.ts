import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mergeTablePages, pageOfTables, parseTableQuery, partQuery, tableQueryParams, type TableQuery } from '../../../src/core/api/table-page.js';
import type { TableProgress } from '../../../src/core/api/model.js';

const NOW = 1_700_000_000_000;

function table(name: string, capture: string, lagMs: number | null, rate: number | null = null, state = 'replicating'): TableProgress {
  return {
    table: name, capture_id: capture, state, resolved_ts: '2', resolved_coordinate: 'b.000001:9', resolved_time: NOW,
    checkpoint_ts: '1', checkpoint_coordinate: 'b.000001:4', checkpoint_time: lagMs === null ? null : NOW - lagMs, rows_per_second: rate, spilled_bytes: 0,
  };
}

const query = (text: string): TableQuery => parseTableQuery(new URLSearchParams(text));

/** 1,000 tables over three captures; t0500 is being moved (on c3 and c1); lag grows with the number. */
function cluster(): Map<string, TableProgress[]> {
  const captures = new Map<string, TableProgress[]>([['c1', []], ['c2', []], ['c3', []]]);
  for (let i = 0; i < 1000; i++) {
    const name = `db.t${String(i).padStart(4, '0')}`;
    captures.get(`c${(i % 3) + 1}`)!.push(table(name, `c${(i % 3) + 1}`, i === 7 ? null : i * 10, i % 50));
  }
  captures.get('c1')!.push(table('db.t0500', 'c1', 5000, 0, 'preparing'));
  return captures;
}

/** What the route does: each capture answers its part, the parts are merged. */
function page(captures: Map<string, TableProgress[]>, q: TableQuery) {
  return mergeTablePages([...captures.values()].map((tables) => pageOfTables(tables, partQuery(q), NOW)), q, NOW);
}

describe('pages of a changefeed\'s tables (GET /api/v2/changefeeds/{id}/tables)', () => {
  it('pages by name with after=: every entry exactly once over the captures, a moved table\'s two entries on one page', () => {
    const captures = cluster();
    const seen: string[] = [];
    let after: string | undefined;
    let pages = 0;
    for (;;) {
      const p = page(captures, query(tableQueryParams({ limit: 99, after }).toString()));
      pages++;
      assert.equal(p.total, 1001 - seen.length, 'total counts what is left after the cursor');
      for (const t of p.items) seen.push(`${t.table}@${t.capture_id}`);
      if (p.next === null) break;
      assert.equal(p.next, p.items[p.items.length - 1].table);
      after = p.next;
    }
    assert.equal(seen.length, 1001);
    assert.equal(new Set(seen).size, 1001);
    assert.deepEqual(seen, [...seen].sort());
    assert.ok(seen.includes('db.t0500@c1') && seen.includes('db.t0500@c3'));
    assert.equal(pages, 11);
  });

  it('sorts by lag (unknown first, then furthest behind) and by rows/s, paged with offset=', () => {
    const captures = cluster();
    const first = page(captures, query('sort=lag&limit=3'));
    assert.deepEqual(first.items.map((t) => t.table), ['db.t0007', 'db.t0999', 'db.t0998']);
    const second = page(captures, query('sort=lag&limit=3&offset=3'));
    assert.deepEqual(second.items.map((t) => t.table), ['db.t0997', 'db.t0996', 'db.t0995']);
    assert.equal(second.offset, 3);
    assert.equal(second.next, null, 'after= is for the name order');
    const busiest = page(captures, query('sort=rows&limit=2'));
    assert.deepEqual(busiest.items.map((t) => [t.table, t.rows_per_second]), [['db.t0049', 49], ['db.t0099', 49]]);
  });

  it('filters by state, by lag and by name, and counts the matches', () => {
    const captures = cluster();
    const preparing = page(captures, query('state=preparing'));
    assert.deepEqual(preparing.items.map((t) => `${t.table}@${t.capture_id}`), ['db.t0500@c1']);
    assert.equal(preparing.total, 1);
    const behind = page(captures, query('min-lag-ms=9950&sort=lag'));
    assert.deepEqual(behind.items.map((t) => t.table), ['db.t0007', 'db.t0999', 'db.t0998', 'db.t0997', 'db.t0996', 'db.t0995'], 'no checkpoint time counts as behind');
    const named = page(captures, query('filter=T012&limit=5'));
    assert.equal(named.total, 10);
    assert.deepEqual(named.items.map((t) => t.table), ['db.t0120', 'db.t0121', 'db.t0122', 'db.t0123', 'db.t0124']);
    assert.equal(named.next, 'db.t0124');
  });

  it('refuses a wrong parameter, naming it and what is allowed', () => {
    assert.throws(() => query('limit=0'), /invalid limit "0": expected an integer from 1 to 10000/);
    assert.throws(() => query('limit=20000'), /invalid limit "20000"/);
    assert.throws(() => query('offset=-1'), /invalid offset "-1"/);
    assert.throws(() => query('sort=size'), /invalid sort "size": expected one of name, lag, rows/);
    assert.throws(() => query('state=running'), /invalid state "running": expected one of preparing, prepared, replicating, stopping, stopped/);
    assert.throws(() => query('sort=lag&after=db.t1'), /after= pages tables sorted by name; with sort=lag use offset=/);
    assert.throws(() => query('min-lag-ms=soon'), /invalid min-lag-ms "soon"/);
    assert.deepEqual(query(''), { limit: 1000, after: undefined, offset: 0, sort: 'name', state: undefined, minLagMs: undefined, filter: undefined });
  });

  it('a capture\'s part is cut at offset + limit (+1), not at the whole list: the work per page does not grow with the table count', () => {
    const tables = Array.from({ length: 50_000 }, (_, i) => table(`db.t${i}`, 'c1', i));
    const part = pageOfTables(tables, partQuery(query('sort=lag&limit=20&offset=40')), NOW);
    assert.equal(part.items.length, 61);
    assert.equal(part.total, 50_000);
    assert.equal(part.items[0].table, 'db.t49999');
  });
});
