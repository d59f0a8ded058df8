import { TidemarkError } from '../errors/index.js';
import type { TableProgress } from '../model/task-position.js';
import { topK } from '../model/top-k.js';

/**
 * One page of a changefeed's tables (`GET /api/v2/changefeeds/{id}/tables`): the tables are listed by every
 * capture that replicates some of them, each from its own processor, so a changefeed of 100,000 tables is read a
 * page at a time and nothing keeps the whole list in etcd. Pure: the route and each capture's part use it alike.
 */

export type TableSort = 'name' | 'lag' | 'rows';
export const TABLE_SORTS: readonly TableSort[] = ['name', 'lag', 'rows'];
export const TABLE_STATES = ['preparing', 'prepared', 'replicating', 'stopping', 'stopped'] as const;
export const DEFAULT_TABLE_LIMIT = 1000;
export const MAX_TABLE_LIMIT = 10_000;

/** What a request asks of the table list. */
export interface TableQuery {
  readonly limit: number;
  /** By name only: the page starts after this table (the `next` of the page before). */
  readonly after: string | undefined;
  /** Tables to skip first (any sort; the way to page when sorted by lag or rows). */
  readonly offset: number;
  /** name: ascending; lag: furthest behind first (unknown lag first of all); rows: busiest first (a copy's rate while copied). Ties by name. */
  readonly sort: TableSort;
  readonly state: string | undefined;
  /** Only tables whose checkpoint is at least this far behind (ms); a table with no checkpoint time yet counts as behind. */
  readonly minLagMs: number | undefined;
  /** Only tables whose `schema.table` contains this (case-insensitive). */
  readonly filter: string | undefined;
}

export interface TablePage {
  /** Tables matching the filters, on every capture (a table being moved counts on both). */
  readonly total: number;
  readonly offset: number;
  readonly items: TableProgress[];
  /** Sorted by name with more to come: the `after` of the next page; otherwise null. */
  readonly next: string | null;
}

/** The query parameters of the route, each checked: a wrong value is refused naming it and what is allowed. */
export function parseTableQuery(params: URLSearchParams): TableQuery {
  const integer = (name: string, min: number, max: number, fallback: number): number => {
    const raw = params.get(name);
    if (raw === null || raw === '') return fallback;
    const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) throw new TidemarkError('ErrInvalidArgument', `invalid ${name} "${raw}": expected an integer from ${min} to ${max}`);
    return n;
  };
  const sort = params.get('sort') ?? 'name';
  if (!(TABLE_SORTS as readonly string[]).includes(sort)) throw new TidemarkError('ErrInvalidArgument', `invalid sort "${sort}": expected one of ${TABLE_SORTS.join(', ')}`);
  const state = params.get('state') ?? undefined;
  if (state !== undefined && !(TABLE_STATES as readonly string[]).includes(state)) {
    throw new TidemarkError('ErrInvalidArgument', `invalid state "${state}": expected one of ${TABLE_STATES.join(', ')}`);
  }
  const after = params.get('after') ?? undefined;
  if (after !== undefined && sort !== 'name') throw new TidemarkError('ErrInvalidArgument', `after= pages tables sorted by name; with sort=${sort} use offset=`);
  const minLag = params.get('min-lag-ms');
  const filter = params.get('filter') ?? '';
  return {
    limit: integer('limit', 1, MAX_TABLE_LIMIT, DEFAULT_TABLE_LIMIT),
    after,
    offset: integer('offset', 0, Number.MAX_SAFE_INTEGER, 0),
    sort: sort as TableSort,
    state,
    minLagMs: minLag === null ? undefined : integer('min-lag-ms', 0, Number.MAX_SAFE_INTEGER, 0),
    filter: filter === '' ? undefined : filter.toLowerCase(),
  };
}

/** The query as parameters again (for asking another capture, or the next page). */
export function tableQueryParams(q: Partial<TableQuery>): URLSearchParams {
  const params = new URLSearchParams();
  if (q.limit !== undefined) params.set('limit', String(q.limit));
  if (q.after !== undefined) params.set('after', q.after);
  if (q.offset !== undefined && q.offset > 0) params.set('offset', String(q.offset));
  if (q.sort !== undefined && q.sort !== 'name') params.set('sort', q.sort);
  if (q.state !== undefined) params.set('state', q.state);
  if (q.minLagMs !== undefined) params.set('min-lag-ms', String(q.minLagMs));
  if (q.filter !== undefined) params.set('filter', q.filter);
  return params;
}

/** Lag of a table's checkpoint at `now`; Infinity while it has no checkpoint time (it sorts as the furthest behind). */
function lagOf(t: TableProgress, now: number): number {
  return t.checkpoint_time === null ? Infinity : Math.max(0, now - t.checkpoint_time);
}

function byName(a: TableProgress, b: TableProgress): number {
  return a.table < b.table ? -1 : a.table > b.table ? 1 : a.capture_id < b.capture_id ? -1 : a.capture_id > b.capture_id ? 1 : 0;
}

function comparator(sort: TableSort, now: number): (a: TableProgress, b: TableProgress) => number {
  if (sort === 'lag') return (a, b) => lagOf(b, now) - lagOf(a, now) || byName(a, b);
  // while a table's snapshot is copied, its rate is the copy's
  const rate = (t: TableProgress): number => t.snapshot?.rows_per_second ?? t.rows_per_second ?? -1;
  if (sort === 'rows') return (a, b) => rate(b) - rate(a) || byName(a, b);
  return byName;
}

function matches(t: TableProgress, q: TableQuery, now: number): boolean {
  if (q.after !== undefined && t.table <= q.after) return false;
  if (q.state !== undefined && (t.state ?? 'replicating') !== q.state) return false;
  if (q.minLagMs !== undefined && lagOf(t, now) < q.minLagMs) return false;
  if (q.filter !== undefined && !t.table.toLowerCase().includes(q.filter)) return false;
  return true;
}

/**
 * The page `q` asks for among `tables`: filtered, counted, sorted and cut. `total` counts every match (after the
 * cursor's tables excluded). A page sorted by name never splits the entries of one table (a table being moved is
 * listed by both its captures), so `next` may be used as `after` without losing one.
 */
export function pageOfTables(tables: Iterable<TableProgress>, q: TableQuery, now: number): TablePage {
  const matching: TableProgress[] = [];
  for (const t of tables) if (matches(t, q, now)) matching.push(t);
  return cut(matching, matching.length, q, now);
}

/**
 * Merges the parts several captures answered for the same query (each cut at offset + limit, from offset 0) into
 * the page asked for.
 */
export function mergeTablePages(parts: readonly TablePage[], q: TableQuery, now: number): TablePage {
  const all: TableProgress[] = [];
  let total = 0;
  for (const p of parts) {
    total += p.total;
    for (const t of p.items) all.push(t);
  }
  return cut(all, total, q, now);
}

/** The query a capture answers for its part of `q`: the first offset + limit of its own tables (and one more, to see a split table). */
export function partQuery(q: TableQuery): TableQuery {
  return { ...q, offset: 0, limit: Math.min(q.offset + q.limit + 1, Number.MAX_SAFE_INTEGER) };
}

function cut(matching: TableProgress[], total: number, q: TableQuery, now: number): TablePage {
  const end = q.offset + q.limit;
  const ordered = topK(matching, end + 1, comparator(q.sort, now));
  let stop = Math.min(end, ordered.length);
  // by name, the entries of one table stay on one page
  if (q.sort === 'name') while (stop > q.offset && stop < ordered.length && ordered[stop].table === ordered[stop - 1].table) stop++;
  const items = ordered.slice(q.offset, stop);
  const more = total > q.offset + items.length;
  return { total, offset: q.offset, items, next: q.sort === 'name' && more && items.length > 0 ? items[items.length - 1].table : null };
}
