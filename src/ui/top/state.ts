/**
 * `cdc top` state: a pure reducer over typed events (snapshots fetched from the OpenAPI, key presses,
 * connection changes, clock ticks). It returns the next state and the effects the app must run
 * (pause or resume a changefeed, quit). Components render the state and nothing else (vector-top's shape).
 */
import { windowOf } from './components/window.js';

export interface CaptureRow {
  readonly id: string;
  readonly address: string;
  readonly isOwner: boolean;
}

export interface ChangefeedRow {
  readonly id: string;
  readonly namespace: string;
  readonly state: string;
  readonly checkpointTs: string;
  readonly checkpointCoordinate: string;
  /** Commit time of the checkpoint, ms since the epoch; null until the first checkpoint with a time. */
  readonly checkpointTime: number | null;
  readonly rowsPerSecond: number | null;
  readonly error: string | null;
}

export interface TableRow {
  readonly table: string;
  readonly captureId: string;
  readonly resolvedTs: string;
  readonly resolvedCoordinate: string;
  readonly resolvedTime: number | null;
  readonly checkpointTs: string;
  readonly checkpointCoordinate: string;
  readonly checkpointTime: number | null;
  readonly rowsPerSecond: number | null;
  readonly spilledBytes: number;
  /** The table's initial snapshot (`--snapshot initial`), when it has one. */
  readonly snapshot?: TableSnapshotRow;
}

/** How far a table's initial snapshot is (the API's `TableSnapshotProgress`). */
export interface TableSnapshotRow {
  readonly state: 'pending' | 'waiting' | 'copying' | 'done';
  readonly method: 'chunks' | 'one-pass' | null;
  readonly rows: number;
  readonly estimatedRows: number | null;
  readonly chunks: number;
  readonly rowsPerSecond: number | null;
  readonly etaSeconds: number | null;
}

/** A changefeed's tables while its initial snapshot is copied (the one-shot form lists them for every changefeed). */
export interface ChangefeedSnapshotTables {
  readonly changefeedId: string;
  readonly tables: readonly TableRow[];
}

export interface TopSnapshot {
  readonly clusterId: string;
  readonly server: string;
  readonly captures: readonly CaptureRow[];
  readonly changefeeds: readonly ChangefeedRow[];
  /** Tables of the changefeed being looked at, when one is open: all of them, or the page `tablePage` says. */
  readonly tables: readonly TableRow[] | null;
  /**
   * When `tables` is one page the server filtered and sorted (the live view reads only what it shows): where the
   * page starts among the matching tables, how many match, and the sort and filter it was asked with.
   */
  readonly tablePage?: TablePageOf;
  /** The open changefeed's initial snapshot summed over all its tables (from the changefeed), while it is copied. */
  readonly openSnapshot?: SnapshotTotals | null;
  /** The one-shot form only: the tables of every changefeed whose initial snapshot is not done. */
  readonly snapshotTables?: readonly ChangefeedSnapshotTables[];
  readonly takenAt: number;
}

export interface TablePageOf {
  readonly offset: number;
  readonly total: number;
  readonly sort: SortKey;
  readonly filter: string;
}

export type ConnectionStatus =
  | { readonly kind: 'connecting' }
  | { readonly kind: 'connected'; readonly since: number }
  | { readonly kind: 'disconnected'; readonly since: number; readonly retryEveryMs: number; readonly error: string };

export type SortKey = 'lag' | 'name' | 'rows';
export const SORT_KEYS: readonly SortKey[] = ['lag', 'name', 'rows'];

/** A changefeed is named by its id and namespace (two namespaces may hold the same id). */
export type View = { readonly kind: 'changefeeds' } | { readonly kind: 'tables'; readonly changefeedId: string; readonly namespace: string };

export interface KeyPress {
  readonly input: string;
  readonly upArrow?: boolean;
  readonly downArrow?: boolean;
  readonly return?: boolean;
  readonly escape?: boolean;
  readonly backspace?: boolean;
  readonly pageUp?: boolean;
  readonly pageDown?: boolean;
}

export interface TopState {
  readonly connection: ConnectionStatus;
  readonly snapshot: TopSnapshot | null;
  readonly view: View;
  readonly selected: number;
  readonly sort: SortKey;
  readonly filter: string;
  readonly editingFilter: boolean;
  readonly confirm: { readonly action: 'pause' | 'resume'; readonly changefeedId: string; readonly namespace: string } | null;
  readonly help: boolean;
  readonly message: string | null;
  readonly now: number;
}

export type TopEvent =
  | { readonly type: 'snapshot'; readonly snapshot: TopSnapshot }
  | { readonly type: 'connection'; readonly status: ConnectionStatus }
  | { readonly type: 'key'; readonly key: KeyPress }
  | { readonly type: 'tick'; readonly now: number }
  | { readonly type: 'actionDone'; readonly message: string };

export type TopEffect =
  | { readonly kind: 'pause' | 'resume'; readonly changefeedId: string; readonly namespace: string }
  | { readonly kind: 'openChangefeed'; readonly changefeed: { readonly id: string; readonly namespace: string } | null }
  | { readonly kind: 'quit' };

export function initialState(now: number): TopState {
  return {
    connection: { kind: 'connecting' },
    snapshot: null,
    view: { kind: 'changefeeds' },
    selected: 0,
    sort: 'lag',
    filter: '',
    editingFilter: false,
    confirm: null,
    help: false,
    message: null,
    now,
  };
}

/** Lag of a checkpoint (ms), or null when its time is unknown. */
export function lagMs(time: number | null, now: number): number | null {
  return time === null ? null : Math.max(0, now - time);
}

export type LagLevel = 'ok' | 'behind' | 'stalled' | 'unknown';

/** green < 1 s, yellow < 10 s, red beyond. */
export function lagLevel(lag: number | null): LagLevel {
  if (lag === null) return 'unknown';
  if (lag < 1000) return 'ok';
  if (lag < 10_000) return 'behind';
  return 'stalled';
}

/** True while some table has an initial snapshot that is not done: the tables are then shown with its progress. */
export function snapshotInProgress(tables: readonly TableRow[]): boolean {
  return tables.some((t) => t.snapshot !== undefined && t.snapshot.state !== 'done');
}

export interface SnapshotTotals {
  /** Tables with a snapshot. */
  readonly tables: number;
  readonly done: number;
  readonly rows: number;
  /** Rows to copy in all (a done table counts its rows); null while a table not done has no estimate. */
  readonly estimatedRows: number | null;
}

/** The changefeed's snapshot summed over its tables (the line above them). */
export function snapshotTotals(tables: readonly TableRow[]): SnapshotTotals {
  let count = 0;
  let done = 0;
  let rows = 0;
  let estimatedRows: number | null = 0;
  for (const { snapshot: s } of tables) {
    if (s === undefined) continue;
    count++;
    rows += s.rows;
    if (s.state === 'done') done++;
    if (estimatedRows === null) continue;
    if (s.state === 'done') estimatedRows += s.rows;
    else estimatedRows = s.estimatedRows === null ? null : estimatedRows + Math.max(s.estimatedRows, s.rows);
  }
  return { tables: count, done, rows, estimatedRows };
}

/** The changefeed rows as shown: sorted by the current key. */
export function visibleChangefeeds(state: TopState): ChangefeedRow[] {
  const rows = [...(state.snapshot?.changefeeds ?? [])];
  return sortRows(rows, state.sort, state.now, (r) => r.id, (r) => r.checkpointTime, (r) => r.rowsPerSecond);
}

/** The table rows as shown: filtered by name, then sorted (a page the server cut is shown as it came). */
export function visibleTables(state: TopState): TableRow[] {
  if (state.snapshot?.tablePage !== undefined) return [...(state.snapshot.tables ?? [])];
  const needle = state.filter.toLowerCase();
  const all = state.snapshot?.tables ?? [];
  const rows = all.filter((t) => needle === '' || t.table.toLowerCase().includes(needle));
  // while the snapshot is copied, rows/s is the copy's rate (the column shown)
  const rate = snapshotInProgress(all) ? (r: TableRow) => r.snapshot?.rowsPerSecond ?? null : (r: TableRow) => r.rowsPerSecond;
  return sortRows(rows, state.sort, state.now, (r) => r.table, (r) => r.checkpointTime, rate);
}

function sortRows<T>(rows: T[], sort: SortKey, now: number, name: (r: T) => string, time: (r: T) => number | null, rate: (r: T) => number | null): T[] {
  const byName = (a: T, b: T): number => name(a).localeCompare(name(b));
  if (sort === 'name') return rows.sort(byName);
  if (sort === 'rows') return rows.sort((a, b) => (rate(b) ?? -1) - (rate(a) ?? -1) || byName(a, b));
  return rows.sort((a, b) => (lagMs(time(b), now) ?? Infinity) - (lagMs(time(a), now) ?? Infinity) || byName(a, b));
}

function rowCount(state: TopState): number {
  if (state.view.kind === 'changefeeds') return visibleChangefeeds(state).length;
  return state.snapshot?.tablePage?.total ?? visibleTables(state).length;
}

/**
 * The page of tables the live view asks for: the rows around the selection (a screen before and two after), with
 * the current sort and filter, so only what can be shown is read and rendered, whatever the table count.
 */
export function tableWindow(state: TopState, height: number): { readonly offset: number; readonly limit: number; readonly sort: SortKey; readonly filter: string } {
  const size = Math.max(10, height);
  return { offset: Math.max(0, state.selected - size), limit: 3 * size, sort: state.sort, filter: state.filter };
}

/** True when the loaded page does not hold the rows to show (another sort, filter, or rows out of the page). */
export function tablePageStale(state: TopState, height: number): boolean {
  const page = state.snapshot?.tablePage;
  if (state.view.kind !== 'tables' || page === undefined) return false;
  if (page.sort !== state.sort || page.filter !== state.filter) return true;
  const loaded = state.snapshot?.tables?.length ?? 0;
  const { start, end } = windowOf(page.total, state.selected, height);
  return start < page.offset || end > page.offset + loaded;
}

function clampSelection(state: TopState): TopState {
  const count = rowCount(state);
  const selected = count === 0 ? 0 : Math.min(Math.max(state.selected, 0), count - 1);
  return selected === state.selected ? state : { ...state, selected };
}

function selectedChangefeed(state: TopState): ChangefeedRow | undefined {
  if (state.view.kind === 'tables') {
    const { changefeedId, namespace } = state.view;
    return state.snapshot?.changefeeds.find((c) => c.id === changefeedId && c.namespace === namespace);
  }
  return visibleChangefeeds(state)[state.selected];
}

const PAUSABLE = ['normal', 'warning', 'pending'];
const RESUMABLE = ['stopped', 'failed', 'finished'];

export function reduce(state: TopState, event: TopEvent): { state: TopState; effects: TopEffect[] } {
  switch (event.type) {
    case 'snapshot':
      return { state: clampSelection({ ...state, snapshot: event.snapshot, now: Math.max(state.now, event.snapshot.takenAt) }), effects: [] };
    case 'connection':
      return { state: { ...state, connection: event.status }, effects: [] };
    case 'tick':
      return { state: { ...state, now: event.now }, effects: [] };
    case 'actionDone':
      return { state: { ...state, message: event.message }, effects: [] };
    case 'key':
      return reduceKey(state, event.key);
  }
}

function reduceKey(state: TopState, key: KeyPress): { state: TopState; effects: TopEffect[] } {
  const none: TopEffect[] = [];
  if (state.editingFilter) {
    if (key.return || key.escape) return { state: clampSelection({ ...state, editingFilter: false, ...(key.escape ? { filter: '' } : {}) }), effects: none };
    if (key.backspace) return { state: clampSelection({ ...state, filter: state.filter.slice(0, -1) }), effects: none };
    if (key.input.length > 0 && !key.upArrow && !key.downArrow) return { state: clampSelection({ ...state, filter: state.filter + key.input, selected: 0 }), effects: none };
    return { state, effects: none };
  }
  if (state.confirm !== null) {
    if (key.input === 'y' || key.input === 'Y' || key.return) {
      const { action, changefeedId, namespace } = state.confirm;
      return { state: { ...state, confirm: null, message: `${action === 'pause' ? 'pausing' : 'resuming'} ${changefeedId}…` }, effects: [{ kind: action, changefeedId, namespace }] };
    }
    return { state: { ...state, confirm: null, message: 'cancelled' }, effects: none };
  }
  if (state.help) return { state: { ...state, help: key.input === 'q' ? state.help : false }, effects: key.input === 'q' ? [{ kind: 'quit' }] : none };
  if (key.input === 'q') return { state, effects: [{ kind: 'quit' }] };
  if (key.input === '?') return { state: { ...state, help: true }, effects: none };
  if (key.upArrow) return { state: clampSelection({ ...state, selected: state.selected - 1 }), effects: none };
  if (key.downArrow) return { state: clampSelection({ ...state, selected: state.selected + 1 }), effects: none };
  if (key.pageUp) return { state: clampSelection({ ...state, selected: state.selected - 10 }), effects: none };
  if (key.pageDown) return { state: clampSelection({ ...state, selected: state.selected + 10 }), effects: none };
  if (key.input === 's') {
    const sort = SORT_KEYS[(SORT_KEYS.indexOf(state.sort) + 1) % SORT_KEYS.length];
    return { state: { ...state, sort, message: `sorted by ${sort}` }, effects: none };
  }
  if (key.return && state.view.kind === 'changefeeds') {
    const cf = selectedChangefeed(state);
    if (cf === undefined) return { state, effects: none };
    return {
      state: { ...state, view: { kind: 'tables', changefeedId: cf.id, namespace: cf.namespace }, selected: 0, filter: '', message: null },
      effects: [{ kind: 'openChangefeed', changefeed: { id: cf.id, namespace: cf.namespace } }],
    };
  }
  if (key.escape && state.view.kind === 'tables') {
    const back = visibleChangefeeds(state).findIndex((c) => state.view.kind === 'tables' && c.id === state.view.changefeedId && c.namespace === state.view.namespace);
    return { state: { ...state, view: { kind: 'changefeeds' }, selected: Math.max(back, 0), filter: '', message: null }, effects: [{ kind: 'openChangefeed', changefeed: null }] };
  }
  if (key.input === '/' && state.view.kind === 'tables') return { state: { ...state, editingFilter: true }, effects: none };
  if (key.input === 'p' || key.input === 'r') {
    const cf = selectedChangefeed(state);
    if (cf === undefined) return { state, effects: none };
    const action = key.input === 'p' ? 'pause' : 'resume';
    const allowed = action === 'pause' ? PAUSABLE : RESUMABLE;
    if (!allowed.includes(cf.state)) return { state: { ...state, message: `cannot ${action} ${cf.id}: it is ${cf.state}` }, effects: none };
    return { state: { ...state, confirm: { action, changefeedId: cf.id, namespace: cf.namespace }, message: null }, effects: none };
  }
  return { state, effects: none };
}
