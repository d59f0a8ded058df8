import type { TableProgressReport, TableState } from '../p2p/messages.js';

/**
 * Where one table runs (TiCDC's replication set). A move is two-phase: a secondary is prepared on the
 * target and catches up while the primary keeps replicating; then the primary is stopped; then the
 * secondary is promoted. So a table never has two writers and never stops for longer than the switch.
 */
export interface ReplicationSet {
  readonly tableId: number;
  primary: string | undefined;
  secondary: string | undefined;
  phase: 'absent' | 'adding' | 'replicating' | 'preparing-secondary' | 'stopping-primary' | 'removing';
}

export type DispatchOp =
  | { readonly kind: 'add'; readonly tableId: number; readonly capture: string; readonly isSecondary: boolean }
  | { readonly kind: 'remove'; readonly tableId: number; readonly capture: string };

export interface ScheduleInput {
  /** The tables the changefeed must replicate now. */
  readonly tables: Iterable<number>;
  /**
   * Changes whenever `tables` does (a counter): with it, a pass whose inputs and replication sets are as the last
   * pass left them is skipped (it would send nothing), so an idle changefeed's tick costs nothing per table.
   */
  readonly tablesVersion?: number;
  /** Alive captures. */
  readonly captures: readonly string[];
  /** Captures that must give their tables away and take no new ones. */
  readonly draining: ReadonlySet<string>;
}

/** Without a set bound, one move in flight per this many tables (4 at least). */
const MOVES_PER_TABLES = 25;

export interface SchedulerOptions {
  /** Moves (rebalance or drain) in flight at once. */
  readonly maxMovesInFlight?: number;
}

/**
 * The owner's table scheduler for one changefeed (DESIGN §4): assigns tables to captures balanced by
 * count (max − min ≤ 1 over captures that are not draining), re-adds the tables of a dead capture,
 * moves tables off draining captures, and rebalances when a capture joins, with at most N moves in
 * flight. It is pure bookkeeping: `schedule` returns the operations to send, `report` folds in what
 * processors said of their tables. Both are cheap and run on every owner tick.
 */
export class TableScheduler {
  readonly sets = new Map<number, ReplicationSet>();
  /** Moves in flight at once; undefined: 4, or one per MOVES_PER_TABLES tables when there are more. */
  private readonly maxMoves: number | undefined;
  /** Operations that reports made due (the next step of a move), sent with the next `schedule`. */
  private outbox: DispatchOp[] = [];
  /** Bumped by every change of the replication sets from outside a pass (reports, rebuild, a lost table). */
  private version = 0;
  /** The inputs and set version a pass left, when it sent nothing: the same again is skipped. */
  private settled: string | undefined;
  /** Passes run and skipped (for tests: an idle tick does not walk the tables). */
  readonly passes = { run: 0, skipped: 0 };

  /** Changes whenever the replication sets may have (a report, a rebuild, a lost table, a pass): for caches of what they give. */
  get revision(): number {
    return this.version + this.passes.run;
  }

  constructor(options: SchedulerOptions = {}) {
    this.maxMoves = options.maxMovesInFlight;
  }

  /** Folds a capture's heartbeat into the replication sets. */
  report(capture: string, tables: readonly TableProgressReport[]): void {
    for (const t of tables) {
      const set = this.sets.get(t.tableId);
      if (set === undefined) continue;
      this.advance(set, capture, t.state);
    }
  }

  /** A capture lost the table (it stopped reporting it): it is scheduled again by the next pass. */
  lose(tableId: number): void {
    const set = this.sets.get(tableId);
    if (set === undefined) return;
    set.primary = undefined;
    set.phase = 'absent';
    this.version++;
  }

  /**
   * Rebuilds the replication sets from what the captures report (a new owner after failover): a table
   * replicating somewhere keeps its capture, a prepared or preparing copy becomes the secondary of a move
   * in flight, and tables nobody reports are absent (scheduled by the next `schedule`). Never schedules a
   * second writer for a table a capture still replicates.
   */
  rebuild(reports: ReadonlyMap<string, readonly TableProgressReport[]>): void {
    this.version++;
    this.sets.clear();
    this.outbox = [];
    const seen = new Map<number, { replicating?: string; stopping?: string; secondary?: string }>();
    for (const [capture, tables] of reports) {
      for (const t of tables) {
        const entry = seen.get(t.tableId) ?? {};
        seen.set(t.tableId, entry);
        if (t.state === 'replicating') entry.replicating = capture;
        else if (t.state === 'stopping') entry.stopping = capture;
        else if (t.state === 'preparing' || t.state === 'prepared') entry.secondary = capture;
      }
    }
    for (const [tableId, entry] of seen) {
      const set: ReplicationSet = { tableId, primary: undefined, secondary: undefined, phase: 'absent' };
      this.sets.set(tableId, set);
      if (entry.replicating !== undefined) {
        set.primary = entry.replicating;
        set.secondary = entry.secondary;
        set.phase = entry.secondary === undefined ? 'replicating' : 'preparing-secondary';
      } else if (entry.stopping !== undefined) {
        // a capture is finishing its last round of the table: nobody else writes it until it has stopped
        set.primary = entry.stopping;
        set.secondary = entry.secondary;
        set.phase = entry.secondary === undefined ? 'removing' : 'stopping-primary';
      } else if (entry.secondary !== undefined) {
        // a secondary whose primary is gone: promote it
        set.primary = entry.secondary;
        set.phase = 'adding';
        this.outbox.push({ kind: 'add', tableId, capture: set.primary, isSecondary: false });
      }
      // a move in flight goes on: the secondary reports prepared again, then the primary is stopped
    }
  }

  /** The captures a table runs on (primary first). */
  capturesOf(tableId: number): { primary: string | undefined; secondary: string | undefined } | undefined {
    const set = this.sets.get(tableId);
    return set === undefined ? undefined : { primary: set.primary, secondary: set.secondary };
  }

  /** The operations to send now. */
  schedule(input: ScheduleInput): DispatchOp[] {
    const signature = input.tablesVersion === undefined ? undefined : `${input.tablesVersion}|${this.version}|${input.captures.join(',')}|${[...input.draining].join(',')}`;
    if (signature !== undefined && signature === this.settled && this.outbox.length === 0) {
      this.passes.skipped++;
      return [];
    }
    this.passes.run++;
    const ops = this.pass(input);
    // a pass that sent nothing changed nothing another pass would act on: until an input or a set changes, skip
    this.settled = ops.length === 0 ? signature : undefined;
    return ops;
  }

  private pass(input: ScheduleInput): DispatchOp[] {
    const ops: DispatchOp[] = this.outbox.filter((op) => input.captures.includes(op.capture));
    this.outbox = [];
    const alive = new Set(input.captures);
    const wanted = new Set(input.tables);
    const eligible = input.captures.filter((c) => !input.draining.has(c));

    // captures that died: their tables start again elsewhere (from the table checkpoint)
    for (const set of this.sets.values()) {
      if (set.secondary !== undefined && !alive.has(set.secondary)) {
        set.secondary = undefined;
        if (set.phase === 'preparing-secondary' || set.phase === 'stopping-primary') set.phase = set.primary === undefined ? 'absent' : 'replicating';
      }
      if (set.primary !== undefined && !alive.has(set.primary)) {
        set.primary = undefined;
        if (set.secondary !== undefined) {
          // the secondary (prepared or still preparing) takes over at once: tell it to start writing
          set.primary = set.secondary;
          set.secondary = undefined;
          set.phase = 'adding';
          ops.push({ kind: 'add', tableId: set.tableId, capture: set.primary, isSecondary: false });
        } else set.phase = 'absent';
      }
    }
    // tables dropped from the changefeed
    for (const set of [...this.sets.values()]) {
      if (wanted.has(set.tableId)) continue;
      if (set.primary === undefined && set.secondary === undefined) {
        this.sets.delete(set.tableId);
        continue;
      }
      if (set.phase !== 'removing') {
        set.phase = 'removing';
        for (const capture of [set.primary, set.secondary]) if (capture !== undefined) ops.push({ kind: 'remove', tableId: set.tableId, capture });
      }
    }
    if (eligible.length === 0) return ops;

    const load = new Map<string, number>(eligible.map((c) => [c, 0]));
    // one walk over the sets: the loads, the moves in flight, and the tables each capture could give away (in
    // the sets' order); a pass costs O(tables), never O(tables) per table (with 100,000 tables and two captures
    // joining, tens of thousands of moves are started)
    let inFlight = 0;
    const movable = new Map<string, ReplicationSet[]>();
    for (const set of this.sets.values()) {
      // a table being moved counts where it goes: counted on both sides, every pass while moves were in flight
      // saw the source still too full and started more, and thousands in flight overshot and moved tables back
      const moving = set.phase === 'preparing-secondary' || set.phase === 'stopping-primary';
      const at = moving ? set.secondary : set.primary;
      if (at !== undefined && load.has(at)) load.set(at, load.get(at)! + 1);
      if (moving) inFlight++;
      else if (set.phase === 'replicating' && set.primary !== undefined && wanted.has(set.tableId)) {
        const list = movable.get(set.primary);
        if (list === undefined) movable.set(set.primary, [set]);
        else list.push(set);
      }
    }
    /** The capture with the fewest tables (`most`: the most), the first by id on a tie. */
    const pick = (most: boolean): [string, number] => {
      let best: [string, number] | undefined;
      for (const entry of load) if (best === undefined || (most ? entry[1] > best[1] : entry[1] < best[1]) || (entry[1] === best[1] && entry[0] < best[0])) best = entry;
      return best!;
    };
    const leastLoaded = (): string => pick(false)[0];

    // new and orphaned tables, by table id
    const absent: ReplicationSet[] = [];
    for (const tableId of wanted) {
      let set = this.sets.get(tableId);
      if (set === undefined) {
        set = { tableId, primary: undefined, secondary: undefined, phase: 'absent' };
        this.sets.set(tableId, set);
      }
      if (set.phase === 'absent') absent.push(set);
    }
    absent.sort((a, b) => a.tableId - b.tableId);
    for (const set of absent) {
      const capture = leastLoaded();
      set.primary = capture;
      set.phase = 'adding';
      load.set(capture, load.get(capture)! + 1);
      ops.push({ kind: 'add', tableId: set.tableId, capture, isSecondary: false });
    }

    // moves: first off draining captures, then from the most to the least loaded; with many tables, more at once
    // (each move waits for heartbeats, so a bound of 4 moved 100,000 tables' share in hours, not minutes)
    const maxMoves = this.maxMoves ?? Math.max(4, Math.ceil(this.sets.size / MOVES_PER_TABLES));
    const startMove = (set: ReplicationSet, target: string): void => {
      set.secondary = target;
      set.phase = 'preparing-secondary';
      load.set(target, load.get(target)! + 1);
      inFlight++;
      ops.push({ kind: 'add', tableId: set.tableId, capture: target, isSecondary: true });
    };
    const draining: ReplicationSet[] = [];
    for (const capture of input.draining) for (const set of movable.get(capture) ?? []) draining.push(set);
    draining.sort((a, b) => a.tableId - b.tableId);
    for (const set of draining) {
      if (inFlight >= maxMoves) break;
      startMove(set, leastLoaded());
    }
    const next = new Map<string, number>();
    while (inFlight < maxMoves) {
      const busiest = pick(true);
      const idlest = leastLoaded();
      if (busiest[1] - load.get(idlest)! <= 1) break;
      const list = movable.get(busiest[0]) ?? [];
      const i = next.get(busiest[0]) ?? 0;
      if (i >= list.length) break;
      next.set(busiest[0], i + 1);
      load.set(busiest[0], busiest[1] - 1);
      startMove(list[i], idlest);
    }
    return ops;
  }

  /** Tables per capture (primaries only), for balance checks and `cdc processor` views. */
  loads(): Map<string, number> {
    const out = new Map<string, number>();
    for (const set of this.sets.values()) if (set.primary !== undefined) out.set(set.primary, (out.get(set.primary) ?? 0) + 1);
    return out;
  }

  private advance(set: ReplicationSet, capture: string, state: TableState): void {
    const { phase, primary, secondary } = set;
    this.step(set, capture, state);
    if (set.phase !== phase || set.primary !== primary || set.secondary !== secondary || !this.sets.has(set.tableId)) this.version++;
  }

  private step(set: ReplicationSet, capture: string, state: TableState): void {
    if (set.phase === 'adding' && capture === set.primary && state === 'replicating') set.phase = 'replicating';
    else if (set.phase === 'preparing-secondary' && capture === set.secondary && state === 'prepared') {
      // the secondary caught up: stop the primary
      set.phase = 'stopping-primary';
      if (set.primary !== undefined) this.outbox.push({ kind: 'remove', tableId: set.tableId, capture: set.primary });
    } else if (set.phase === 'stopping-primary' && capture === set.primary && (state === 'stopped' || state === 'absent')) {
      // the old primary stopped: the secondary takes over from its checkpoint
      set.primary = set.secondary;
      set.secondary = undefined;
      set.phase = 'adding';
      if (set.primary !== undefined) this.outbox.push({ kind: 'add', tableId: set.tableId, capture: set.primary, isSecondary: false });
    } else if (set.phase === 'removing' && (state === 'stopped' || state === 'absent')) {
      if (capture === set.primary) set.primary = undefined;
      if (capture === set.secondary) set.secondary = undefined;
      if (set.primary === undefined && set.secondary === undefined) this.sets.delete(set.tableId);
    }
  }
}
