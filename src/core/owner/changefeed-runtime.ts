import { sinkError, type SinkEndpoint } from '../sink/endpoint.js';
import { TidemarkError, isAbortError } from '../errors/index.js';
import { Notifier, sleep } from '../lifecycle/abortable.js';
import type { Logger } from '../logger/logger.js';
import type { ReplicaConfig } from '../config/replica-config.js';
import { TableFilter } from '../config/table-filter.js';
import type { GlobalReactorState } from '../orchestrator/global-state.js';
import { ProgressFloors } from './progress-floors.js';
import { CaptureReports } from './capture-reports.js';
import { Topics, type DispatchTableRequest, type HeartbeatRequest, type ProgressPush, type TableProgressReport } from '../p2p/messages.js';
import type { Messenger } from '../p2p/messenger.js';
import { TableScheduler, type DispatchOp } from '../scheduler/scheduler.js';
import { classifyDDL, type ClassifiedDDL, type QualifiedName } from '../schema/ddl.js';
import { listUpstreamTables } from '../schema/upstream-tables.js';
import { SchemaStorage } from '../schema/schema-storage.js';
import { extendChangefeedSchema, takeChangefeedSchema, type AppliedDDL, type ChangefeedSchemaStore } from '../schema/schema-store.js';
import type { DDLEvent, PartitionDispatcherFactory, Sink, TableName, Ts } from '../sink/api.js';
import type { Upstream } from '../upstream/upstream.js';
import { readFromTs, replicaServerId, type ResumableEvent, type ResumableReaderOptions } from '../upstream/resumable-reader.js';
import type { LogService } from '../logservice/log-service.js';

/** What the owner writes to the changefeed status after a tick. */
export interface ChangefeedProgress {
  readonly checkpointTs: Ts;
  readonly checkpointTime: number | undefined;
  readonly resolvedTs: Ts;
  /** No table may pass it (DESIGN §1): the ts before the next DDL, the DDL puller's position, or target-ts. */
  readonly barrierTs: Ts;
}

export interface ChangefeedRuntimeOptions {
  readonly namespace: string;
  readonly id: string;
  readonly sinkUri: string;
  readonly config: ReplicaConfig;
  readonly startTs: Ts;
  readonly targetTs: Ts;
  readonly upstream: Upstream;
  /** The upstream's binlog file basename (`mysql-bin`), from its record. */
  readonly basename: string;
  /** The changefeed's sink: its plugin, the URI parsed once. */
  readonly loadSink: () => Promise<SinkEndpoint>;
  /** Partition dispatchers from plugins, for the sink context. */
  readonly loadDispatchers?: () => Promise<ReadonlyMap<string, PartitionDispatcherFactory>>;
  readonly ownerCaptureId: string;
  readonly messenger: Messenger;
  readonly logger: Logger;
  /** Where the changefeed's schema storage is kept (upstreams without binlog_row_metadata=FULL). */
  readonly schemaStore?: ChangefeedSchemaStore;
  /** Counts the scheduler's table moves. */
  readonly metrics?: { readonly moves: { inc(): void } };
  /** The owner's capture's log service: the DDL reader shares the upstream's binlog read with the processors there. */
  readonly logService?: LogService;
}

interface PendingDDL {
  readonly ts: Ts;
  /** The last commit before it: every table flushes up to here, then the DDL runs. */
  readonly prevTs: Ts;
  readonly commitTime: number;
  readonly schema: string;
  readonly query: string;
  readonly ddl: ClassifiedDDL;
  readonly done: Notifier;
  executed: boolean;
}

/** A syncpoint (`enable-sync-point`): a barrier at `ts`, the last commit before the interval boundary `time`. */
interface PendingSyncpoint {
  readonly ts: Ts;
  readonly time: number;
  readonly done: Notifier;
  executed: boolean;
}

/**
 * Heartbeats every 250 ms, and slower with many tables (a capture walks its tables to find what changed, the owner
 * checks what it does not list): +250 ms per 10,000, at most 2 s.
 */
const HEARTBEAT_MS = 250;
const MAX_HEARTBEAT_MS = 2000;
/** Watermarks (`writeCheckpoint`) at most this often (ms). */
const WATERMARK_MS = 1000;
/** A table dispatch not acknowledged in this long is sent again (the capture may have been busy closing). */
const RESEND_MS = 2000;
/** A capture's heartbeats list only changed tables; every table is asked for again this often. */
const FULL_REPORT_MS = 30_000;
/** After taking over, wait this long at most for every capture's first heartbeat before scheduling. */
const REBUILD_WAIT_MS = 3000;

/**
 * The owner's half of one changefeed (TiCDC's owner-side changefeed): the table set (the upstream's tables the
 * filter selects, then kept current by DDL), the table scheduler and its dispatches and heartbeats over gRPC,
 * the DDL puller and the DDL sink, the barrier-ts, and the changefeed checkpoint as the minimum over every
 * table in the set (a table nobody replicates right now holds it where it is).
 */
export class ChangefeedRuntime {
  readonly scheduler = new TableScheduler();
  private readonly tableIds = new Map<string, number>();
  private readonly names = new Map<number, string>();
  private readonly wanted = new VersionedSet<number>();
  /** Bumped by whatever moves a table's known checkpoint or resolved-ts (heartbeats, pushes, checkpoint times). */
  private progressVersion = 0;
  /** The minimum over the tables as the last tick took it, and the inputs it was taken from. */
  private minimum: { inputs: string; checkpoint: Ts | undefined; time: number | undefined; resolved: Ts | undefined; slowest: number | undefined } = {
    inputs: '',
    checkpoint: undefined,
    time: undefined,
    resolved: undefined,
    slowest: undefined,
  };
  private readonly checkpoints = new Map<number, { ts: Ts; time: number | undefined }>();
  private lastCheckpoint: Ts = 0n;
  private readonly resolved = new Map<number, Ts>();
  /** Per capture, its tables as its heartbeats say (a full list asked for again every FULL_REPORT_MS per 10,000 tables). */
  private readonly reports = new CaptureReports();
  /** The processors' floors between heartbeats (ProgressPush). */
  private readonly floors = new ProgressFloors();
  /** Consecutive heartbeats in which a capture did not list a table it should replicate. */
  private readonly missing = new Map<string, number>();
  private readonly filter: TableFilter;
  private readonly controller = new AbortController();
  private readonly startedAt = Date.now();
  private initialized = false;
  private rebuilt = false;
  private lastHeartbeatAt = 0;
  private lastResendAt = Date.now();
  /** When each table's last dispatch went out (a step is sent again only when it has waited long enough). */
  private readonly sentAt = new Map<number, number>();
  private nextTableId = 1;
  private ddlResolved: Ts;
  private ddlTime = 0;
  private pendingDDL: PendingDDL | undefined;
  private pendingSyncpoint: PendingSyncpoint | undefined;
  /** Wall time (ms) of the next syncpoint boundary; 0 until the DDL puller saw its first event. */
  private nextSyncpointAt = 0;
  /** A DDL, syncpoint or watermark call on the owner's sink is under way (they go one at a time). */
  private ddlRunning = false;
  private lastWatermarkTs: Ts = 0n;
  private lastWatermarkAt = 0;
  private ddlSink: Sink | undefined;
  private sinkEndpoint: SinkEndpoint | undefined;
  /** The changefeed's schema storage (DESIGN §5), when the upstream's row events lack full metadata. */
  private schema: SchemaStorage | undefined;
  /** The changefeed checkpoint in etcd at the last tick: no reader starts before it (schema compaction). */
  private statusCheckpoint: Ts;
  private readonly log: Logger;
  private done: Promise<void> = Promise.resolve();
  /** An error to report (the changefeed goes to warning or failed); the owner takes it. */
  error: TidemarkError | undefined;

  constructor(private readonly options: ChangefeedRuntimeOptions) {
    this.filter = new TableFilter(options.config.filter.rules, options.config['case-sensitive']);
    this.ddlResolved = options.startTs;
    this.statusCheckpoint = options.startTs;
    this.log = options.logger.with({ changefeed: options.id, role: 'owner' });
  }

  get key(): string {
    return `${this.options.namespace}/${this.options.id}`;
  }

  start(): void {
    const signal = this.controller.signal;
    this.done = (async () => {
      this.sinkEndpoint = await this.options.loadSink();
      this.schema = await this.prepareSchema();
      // with a schema storage, the tables as they were at start-ts (a table renamed or dropped since is still
      // replicated up to that DDL); otherwise the upstream's tables now
      const tables = this.schema === undefined ? await listUpstreamTables(this.options.upstream, this.filter) : this.schema.tablesAt(this.options.startTs).filter((t) => this.filter.match(t.schema, t.table));
      for (const t of tables) this.want(t, this.options.startTs);
      this.initialized = true;
      this.log.info('changefeed tables listed', { tables: this.wanted.size });
      await this.ddlPuller(signal);
    })().catch((error: unknown) => {
      if (signal.aborted && isAbortError(error)) return;
      if (signal.aborted) return;
      this.error = error instanceof TidemarkError ? error : new TidemarkError('ErrUpstreamUnreachable', error instanceof Error ? error.message : String(error), { cause: error });
      this.log.warn('changefeed owner task failed', { error: this.error });
    });
  }

  async close(): Promise<void> {
    this.controller.abort(new TidemarkError('ErrAborted', 'changefeed runtime closed'));
    this.pendingDDL?.done.wake();
    await this.done;
    await this.ddlSink?.close().catch(() => undefined);
    this.ddlSink = undefined;
  }

  /**
   * A processor's floor between heartbeats (ProgressPush): kept for the capture when it comes from the processor
   * incarnation whose heartbeat the owner last read; `tick` raises the tables that heartbeat listed as
   * replicating there, and whose primary the capture still is, to it.
   */
  onProgress(capture: string, push: ProgressPush): void {
    this.floors.push(capture, push);
    this.progressVersion++;
  }

  /**
   * A capture's heartbeat response for this changefeed: all its tables there, or the changes (`delta`); `continued`
   * when more of the same answer follows (a long list in parts): tables it does not list yet are not taken as gone.
   */
  onHeartbeatResponse(capture: string, all: readonly TableProgressReport[], processor?: string, delta = false, continued = false): void {
    // an empty delta from the same processor changes nothing the minimum is taken from (with 100,000 tables,
    // taking it again at every heartbeat was most of an idle owner's work)
    if (!delta || all.length > 0 || this.reports.get(capture)?.processor !== processor) this.progressVersion++;
    const mine: TableProgressReport[] = [];
    for (const r of all) {
      if (r.changefeed !== this.key || r.table === undefined) continue;
      const tableId = this.idFor(r.table);
      mine.push({ ...r, tableId });
      const ts = BigInt(r.checkpointTs);
      const known = this.checkpoints.get(tableId);
      // the time travels with the ts: an older commit's time kept with a newer ts made the changefeed's checkpoint
      // time (and its lag) older than the commit it stands at, until a task position brought the right one
      const time = r.checkpointTime !== undefined && r.checkpointTime > 0 ? r.checkpointTime : undefined;
      if ((r.state === 'replicating' || r.state === 'stopped') && (known === undefined || ts > known.ts)) this.checkpoints.set(tableId, { ts, time });
      else if (known !== undefined && ts === known.ts && time !== undefined && known.time === undefined) known.time = time;
      const resolved = BigInt(r.resolvedTs);
      if (r.state === 'replicating' && resolved > (this.resolved.get(tableId) ?? 0n)) this.resolved.set(tableId, resolved);
    }
    // a delta folds into the list the capture gave before; a full list, or one from another processor incarnation
    // (a restarted processor lists what it has, and has lost the rest), replaces it
    const known = this.reports.fold(capture, mine, processor, delta, continued);
    // a floor holds for the tables the capture lists as replicating, from this processor incarnation on
    this.floors.heartbeat(capture, processor, known.replicating);
    const listed = known.tables;
    if (!this.rebuilt) return;
    this.scheduler.report(capture, mine);
    if (continued) return;
    // tables the capture should have but does not list: absent (a remove that already happened, or a lost table)
    const absent: TableProgressReport[] = [];
    for (const set of this.scheduler.sets.values()) {
      if (listed.has(set.tableId)) continue;
      if (set.primary === capture && (set.phase === 'stopping-primary' || set.phase === 'removing')) absent.push(this.absent(set.tableId));
      else if (set.secondary === capture && set.phase === 'removing') absent.push(this.absent(set.tableId));
      else if (set.primary === capture && set.phase === 'replicating') {
        const key = `${capture}/${set.tableId}`;
        const n = (this.missing.get(key) ?? 0) + 1;
        this.missing.set(key, n);
        if (n >= 3) {
          // the capture lost the table (its processor restarted): schedule it again from its checkpoint
          this.log.warn('a capture stopped reporting a table; scheduling it again', { capture, table: this.names.get(set.tableId) });
          this.scheduler.lose(set.tableId);
          this.missing.delete(key);
        }
      }
    }
    for (const t of mine) if (listed.has(t.tableId)) this.missing.delete(`${capture}/${t.tableId}`);
    if (absent.length > 0) this.scheduler.report(capture, absent);
  }

  /**
   * One owner tick: heartbeats, scheduling, DDL at the barrier; returns the progress to write, or undefined
   * while the table set or the first heartbeats are not in yet.
   */
  tick(state: GlobalReactorState, currentCheckpoint: Ts, draining: ReadonlySet<string>, ownerRevision: bigint | undefined): ChangefeedProgress | undefined {
    const now = Date.now();
    if (currentCheckpoint > this.statusCheckpoint) this.statusCheckpoint = currentCheckpoint;
    const captures = [...state.captures.values()];
    if (now - this.lastHeartbeatAt >= this.heartbeatIntervalMs()) {
      this.lastHeartbeatAt = now;
      // a full list is a safety net (deltas travel on an acknowledged stream): with 100,000 tables it is 17 MB
      const fullEvery = FULL_REPORT_MS * Math.max(1, this.wanted.size / 10_000);
      for (const capture of captures) {
        // every table again from a capture this runtime has no list of, or an old one (a lost delta is repaired so)
        const fullAt = this.reports.get(capture.id)?.fullAt ?? 0;
        const request: HeartbeatRequest = { changefeeds: [this.key], full: now - fullAt >= fullEvery ? [this.key] : [] };
        this.options.messenger.send(capture, Topics.heartbeat, request, ownerRevision);
      }
    }
    if (!this.initialized) return undefined;
    if (!this.rebuilt) {
      const all = captures.every((c) => this.reports.get(c.id)?.whole === true);
      if (!all && now - this.startedAt < REBUILD_WAIT_MS) return undefined;
      this.scheduler.rebuild(this.reports.tablesByCapture());
      this.rebuilt = true;
    }
    const alive = captures.map((c) => c.id);
    const ops = this.scheduler.schedule({ tables: this.wanted, tablesVersion: this.wanted.version, captures: alive, draining });
    for (const op of ops) {
      if (op.kind === 'add' && op.isSecondary) this.options.metrics?.moves.inc();
      this.dispatch(state, op, currentCheckpoint, ownerRevision);
    }
    if (now - this.lastResendAt >= RESEND_MS) {
      this.lastResendAt = now;
      this.resendInFlight(state, currentCheckpoint, ownerRevision, now);
    }

    const target = this.options.targetTs;
    const syncpoint = this.pendingSyncpoint !== undefined && !this.pendingSyncpoint.executed ? this.pendingSyncpoint : undefined;
    let barrier = this.pendingDDL !== undefined && !this.pendingDDL.executed ? this.pendingDDL.prevTs : syncpoint !== undefined ? syncpoint.ts : this.ddlResolved;
    if (target !== 0n && barrier > target) barrier = target;
    if (this.floors.prune((capture) => state.captures.has(capture))) this.progressVersion++;
    this.reports.prune((capture) => state.captures.has(capture));
    // the minimum over the tables is taken again only when a report, a push, the tables or their places changed
    const inputs = `${this.progressVersion}|${this.wanted.version}|${this.scheduler.revision}|${currentCheckpoint}`;
    if (inputs !== this.minimum.inputs) {
      let checkpointMin: Ts | undefined;
      let timeMin: number | undefined;
      let resolvedMin: Ts | undefined;
      let slowestId: number | undefined;
      for (const id of this.wanted) {
        if (this.floors.size > 0) this.floors.raise(id, this.scheduler.sets.get(id), this.checkpoints, this.resolved);
        const c = this.checkpoints.get(id);
        const ts = c === undefined || c.ts < currentCheckpoint ? currentCheckpoint : c.ts;
        if (checkpointMin === undefined || ts < checkpointMin) {
          checkpointMin = ts;
          timeMin = c?.time;
          slowestId = id;
        }
        const r = this.resolved.get(id) ?? ts;
        if (resolvedMin === undefined || r < resolvedMin) resolvedMin = r;
      }
      this.minimum = { inputs, checkpoint: checkpointMin, time: timeMin, resolved: resolvedMin, slowest: slowestId };
    }
    let { checkpoint, time, resolved } = this.minimum;
    const { slowest } = this.minimum;
    if (checkpoint === undefined || checkpoint > barrier) {
      checkpoint = barrier > currentCheckpoint ? barrier : currentCheckpoint;
      time = checkpoint === this.ddlResolved ? this.ddlTime : undefined;
    }
    if (resolved === undefined || resolved < checkpoint) resolved = checkpoint;
    if (time === undefined && checkpoint === this.ddlResolved && this.ddlTime > 0) time = this.ddlTime;
    const pending = this.pendingDDL;
    if (pending !== undefined && !pending.executed && !this.ddlRunning && checkpoint >= pending.prevTs) void this.runDDL(pending);
    if (syncpoint !== undefined && !this.ddlRunning && checkpoint >= syncpoint.ts) void this.runSyncpoint(syncpoint);
    // watermarks come from the owner only (TiCDC's), at the checkpoint already in etcd: a new owner starts from
    // there, so what consumers see never goes back, whichever captures write the rows
    if (currentCheckpoint > this.lastWatermarkTs && !this.ddlRunning && now - this.lastWatermarkAt >= WATERMARK_MS) void this.writeWatermark(currentCheckpoint);
    if (checkpoint !== this.lastCheckpoint) {
      this.lastCheckpoint = checkpoint;
      const where = slowest === undefined ? undefined : this.scheduler.capturesOf(slowest);
      this.log.debug('changefeed checkpoint', { checkpointTs: String(checkpoint), slowestTable: slowest === undefined ? undefined : this.names.get(slowest), capture: where?.primary, barrierTs: String(barrier) });
    }
    return { checkpointTs: checkpoint, checkpointTime: time, resolvedTs: resolved, barrierTs: barrier };
  }

  /** How often captures are asked for their tables: heartbeats list changes only, but a capture still walks its tables. */
  private heartbeatIntervalMs(): number {
    return Math.min(MAX_HEARTBEAT_MS, HEARTBEAT_MS * Math.max(1, this.wanted.size / 10_000));
  }

  /** Records wall times of checkpoints from the task positions (heartbeats carry no time). */
  noteCheckpointTime(tableName: string, ts: Ts, time: number | null): void {
    if (time === null) return;
    const id = this.tableIds.get(tableName);
    if (id === undefined) return;
    const c = this.checkpoints.get(id);
    if (c !== undefined && c.ts === ts && c.time !== time) {
      c.time = time;
      this.progressVersion++;
    }
  }

  private absent(tableId: number): TableProgressReport {
    return { changefeed: this.key, tableId, table: this.names.get(tableId) ?? '', state: 'absent', checkpointTs: '0', resolvedTs: '0' };
  }

  private dispatch(state: GlobalReactorState, op: DispatchOp, currentCheckpoint: Ts, ownerRevision: bigint | undefined): void {
    const capture = state.captures.get(op.capture);
    const table = this.names.get(op.tableId);
    if (capture === undefined || table === undefined) return;
    const known = this.checkpoints.get(op.tableId)?.ts;
    const checkpoint = known !== undefined && known > currentCheckpoint ? known : currentCheckpoint;
    const request: DispatchTableRequest = {
      changefeed: this.key,
      tableId: op.tableId,
      table,
      action: op.kind,
      isSecondary: op.kind === 'add' && op.isSecondary,
      checkpointTs: String(checkpoint),
    };
    this.log.debug('dispatch', { capture: op.capture, table, action: op.kind, secondary: request.isSecondary, checkpointTs: request.checkpointTs });
    this.sentAt.set(op.tableId, Date.now());
    this.options.messenger.send(capture, Topics.dispatchTable, request, ownerRevision);
  }

  /** Sends again the step each move or add in flight waits for; processors treat repeats as no-ops. */
  private resendInFlight(state: GlobalReactorState, currentCheckpoint: Ts, ownerRevision: bigint | undefined, now: number): void {
    // a step is sent again once the capture has had two heartbeats to say it took it, and later the more there are in
    // flight (1 ms per step): 100,000 tables added at once were all sent again every 2 s, before a heartbeat confirmed them
    let inFlight = 0;
    for (const set of this.scheduler.sets.values()) if (set.phase !== 'replicating' && set.phase !== 'absent') inFlight++;
    const after = Math.max(RESEND_MS, 2 * this.heartbeatIntervalMs(), inFlight);
    for (const set of this.scheduler.sets.values()) {
      if (set.phase === 'replicating' || set.phase === 'absent') continue;
      if (now - (this.sentAt.get(set.tableId) ?? 0) < after) continue;
      const ops: DispatchOp[] = [];
      if (set.phase === 'adding' && set.primary !== undefined) ops.push({ kind: 'add', tableId: set.tableId, capture: set.primary, isSecondary: false });
      if (set.phase === 'preparing-secondary' && set.secondary !== undefined) ops.push({ kind: 'add', tableId: set.tableId, capture: set.secondary, isSecondary: true });
      if (set.phase === 'stopping-primary' && set.primary !== undefined) ops.push({ kind: 'remove', tableId: set.tableId, capture: set.primary });
      if (set.phase === 'removing') for (const c of [set.primary, set.secondary]) if (c !== undefined) ops.push({ kind: 'remove', tableId: set.tableId, capture: c });
      for (const op of ops) this.dispatch(state, op, currentCheckpoint, ownerRevision);
    }
  }

  private idFor(name: string): number {
    let id = this.tableIds.get(name);
    if (id === undefined) {
      id = this.nextTableId++;
      this.tableIds.set(name, id);
      this.names.set(id, name);
    }
    return id;
  }

  private want(t: QualifiedName, checkpoint: Ts): void {
    const id = this.idFor(`${t.schema}.${t.table}`);
    this.wanted.add(id);
    const known = this.checkpoints.get(id);
    if (known === undefined || known.ts < checkpoint) {
      this.checkpoints.set(id, { ts: checkpoint, time: undefined });
      this.progressVersion++;
    }
  }

  private unwant(t: QualifiedName): void {
    const id = this.tableIds.get(`${t.schema}.${t.table}`);
    if (id === undefined) return;
    this.wanted.delete(id);
    this.sentAt.delete(id);
  }

  private relevant(ddl: ClassifiedDDL): boolean {
    if (ddl.database !== undefined) return this.filter.matchSchema(ddl.database);
    if (ddl.kind === 'other') return false;
    return [...ddl.tables, ...ddl.renamedTo].some((t) => this.filter.match(t.schema, t.table));
  }

  /** Binlog reader options for the owner's readers of this changefeed (`purpose` keeps their server ids apart). */
  private readerOptions(purpose: string): ResumableReaderOptions {
    const { upstream, basename } = this.options;
    return { ...upstream.readerOptions(basename, replicaServerId(`${purpose}/${this.options.ownerCaptureId}/${this.key}`)), heartbeatMs: 500, rows: false };
  }

  /**
   * The changefeed's schema storage: the one in etcd (written by this or an earlier owner), or a new snapshot of
   * the upstream's tables. Either way it must answer from start-ts on: the DDL between start-ts and the snapshot
   * is read, and a table it changed is unknown before it (ErrSchemaUnknown if a row of it comes). Saved before
   * any table is scheduled. Every upstream has one: it gives the tables as they were at the checkpoint (a table
   * renamed while the changefeed was paused or down is scheduled under its old name, and its rows from before
   * the RENAME are read), and without binlog_row_metadata=FULL it also gives the processors the columns.
   */
  private async prepareSchema(): Promise<SchemaStorage | undefined> {
    const store = this.options.schemaStore;
    const upstream = this.options.upstream;
    if (store === undefined) return undefined;
    const { namespace, id, startTs } = this.options;
    const reader = this.readerOptions('schema');
    // with FULL metadata the storage only gives the table set, which needs no definitions before the snapshot:
    // the binlog between start-ts and the snapshot (a whole backlog, for an early start-ts) is not read back.
    // Should the upstream lose FULL later, a row before the storage's start is ErrSchemaUnknown, never a guess.
    let storage = await store.load(namespace, id);
    let changed = false;
    if (storage === undefined) {
      // `changefeed create` saves one; a changefeed created without it (or whose storage was lost) gets one now
      storage = await takeChangefeedSchema(upstream, reader, (await upstream.hasFullRowMetadata()) ? undefined : startTs);
      changed = true;
      this.log.info('schema snapshot taken', { coveredFrom: String(storage.coveredFrom) });
    } else {
      // resumed with an earlier checkpoint (--overwrite-checkpoint-ts); the upstream is asked only then
      if (startTs < storage.coveredFrom && !(await upstream.hasFullRowMetadata())) changed = await extendChangefeedSchema(storage, reader, startTs);
      storage.loader = SchemaStorage.upstreamLoader(upstream);
    }
    storage.log = this.log;
    if (changed) await store.save(namespace, id, storage);
    return storage;
  }

  /**
   * Records a DDL the schema storage applied, before the barrier may pass it: a processor or owner that starts
   * later at a checkpoint beyond the DDL must find it applied. Usually only the DDL's own record is written;
   * when the whole storage is written again, versions no reader can ask for any more are dropped first.
   */
  private async saveSchema(ddl: AppliedDDL, signal: AbortSignal): Promise<void> {
    const store = this.options.schemaStore!;
    const ts = ddl.ts;
    this.schema!.compact(this.statusCheckpoint);
    for (let attempt = 1; ; attempt++) {
      try {
        await store.appendDDL(this.options.namespace, this.options.id, this.schema!, ddl);
        return;
      } catch (error) {
        if (attempt >= 5 || signal.aborted) {
          throw new TidemarkError('ErrEtcdUnreachable', `cannot save the schema storage of changefeed ${this.options.id} after the DDL at ${ts}: ${(error as Error).message}`, { cause: error });
        }
        this.log.warn('saving the schema storage failed; trying again', { error, attempt });
        await sleep(200 * attempt, signal);
      }
    }
  }

  /**
   * The binlog from start-ts for the DDL reader: the shared read of the owner's capture when the upstream's rows
   * carry their columns (the processors there read it too; rows are passed over here), else a read of its own
   * that skips rows undecoded.
   */
  private async ddlEvents(signal: AbortSignal): Promise<AsyncIterable<ResumableEvent>> {
    const { logService, upstream, basename, startTs } = this.options;
    const own = (from: Ts, ownSignal: AbortSignal): AsyncIterable<ResumableEvent> => readFromTs(this.readerOptions('ddl'), from, ownSignal);
    if (logService === undefined || !(await upstream.hasFullRowMetadata().catch(() => false))) return own(startTs, signal);
    // no rows: it gets DDL, resets and the position the shared read reached, once per batch of events; a processor
    // behind it (the changefeed's start) takes the shared read from it
    return logService.read(upstream, basename, startTs, signal, { ownRead: own, who: `the owner's DDL reader of ${this.key}`, noRows: true });
  }

  /** Reads the binlog for DDL (rows are skipped undecoded) and moves the barrier as it goes. */
  private async ddlPuller(signal: AbortSignal): Promise<void> {
    const target = this.options.targetTs;
    if (target !== 0n && this.options.startTs >= target) return;
    const events = await this.ddlEvents(signal);
    for await (const e of events) {
      if (e.kind === 'rows' || e.kind === 'reset') continue;
      // the schema storage follows every DDL as it is read
      if (e.kind === 'ddl') this.schema?.applyDDL(e.ts, e.schema, e.query);
      const ts = e.ts;
      const time = e.kind === 'resolved' ? e.time : e.commitTime;
      if (target !== 0n && ts > target) {
        this.advance(target, time);
        return;
      }
      if (this.options.config['enable-sync-point']) {
        await this.maybeSyncpoint(time, signal);
        if (signal.aborted) return;
      }
      if (e.kind === 'ddl') {
        if (this.schema !== undefined) await this.saveSchema({ ts, schema: e.schema, query: e.query }, signal);
        const ddl = classifyDDL(e.query, e.schema);
        if (this.relevant(ddl)) {
          const pending: PendingDDL = { ts, prevTs: this.ddlResolved, commitTime: e.commitTime, schema: e.schema, query: e.query, ddl, done: new Notifier(), executed: false };
          this.pendingDDL = pending;
          this.log.info('DDL waits at the barrier', { ts: String(ts), barrierTs: String(pending.prevTs), query: e.query });
          while (!pending.executed && !signal.aborted) await pending.done.wait(1000, signal);
          if (signal.aborted) return;
          this.pendingDDL = undefined;
        }
      }
      this.advance(ts, time);
      if (target !== 0n && ts === target) return;
    }
  }

  /**
   * Syncpoints are barriers like DDL (TiCDC's): when commit time crosses a multiple of `sync-point-interval`, every
   * table on every capture stops at the last commit before it; once the changefeed checkpoint is there, the
   * owner writes the syncpoint to the sink, so the downstream holds exactly the upstream's state at that ts.
   */
  private async maybeSyncpoint(time: number, signal: AbortSignal): Promise<void> {
    const interval = this.options.config['sync-point-interval'];
    if (this.nextSyncpointAt === 0) {
      this.nextSyncpointAt = (Math.floor(time / interval) + 1) * interval;
      return;
    }
    if (time < this.nextSyncpointAt) return;
    const pending: PendingSyncpoint = { ts: this.ddlResolved, time: this.nextSyncpointAt, done: new Notifier(), executed: false };
    this.nextSyncpointAt = (Math.floor(time / interval) + 1) * interval;
    this.pendingSyncpoint = pending;
    this.log.debug('syncpoint waits at the barrier', { ts: String(pending.ts), time: new Date(pending.time).toISOString() });
    while (!pending.executed && !signal.aborted) await pending.done.wait(1000, signal);
    this.pendingSyncpoint = undefined;
  }

  private runSyncpoint(pending: PendingSyncpoint): Promise<void> {
    return this.onOwnerSink(`the sink could not write the syncpoint at ts ${pending.ts}`, async (sink) => {
      await sink.writeSyncpoint?.(pending.ts, pending.time);
      this.log.info('syncpoint written', { ts: String(pending.ts), time: new Date(pending.time).toISOString() });
      pending.executed = true;
      pending.done.wake();
    });
  }

  private writeWatermark(ts: Ts): Promise<void> {
    this.lastWatermarkAt = Date.now();
    return this.onOwnerSink(`the sink could not write the watermark at ts ${ts}`, async (sink) => {
      const tables: TableName[] = [];
      for (const id of this.wanted) {
        const name = this.names.get(id)!;
        const dot = name.indexOf('.');
        tables.push({ schema: name.slice(0, dot), table: name.slice(dot + 1), tableId: id });
      }
      await sink.writeCheckpoint(ts, tables);
      this.lastWatermarkTs = ts;
    });
  }

  /**
   * One DDL, syncpoint or watermark on the owner's sink, one at a time (`ddlRunning`); a failure becomes the
   * changefeed's error (warning or failed), unless the runtime is closing.
   */
  private async onOwnerSink(failure: string, call: (sink: Sink) => Promise<void>): Promise<void> {
    this.ddlRunning = true;
    try {
      await call(await this.openDDLSink());
    } catch (error) {
      if (!this.controller.signal.aborted) this.error = sinkError(error, failure);
    } finally {
      this.ddlRunning = false;
    }
  }

  /** The owner's own sink connection, for DDL, syncpoints and watermarks (opened at the first one). */
  private async openDDLSink(): Promise<Sink> {
    if (this.ddlSink === undefined) {
      this.ddlSink = await this.sinkEndpoint!.open({
        signal: this.controller.signal,
        changefeedId: this.options.id,
        logger: this.log.with({ sink: 'ddl' }),
        sinkConfig: this.options.config.sink,
        forceReplicate: this.options.config['force-replicate'],
        dispatchers: (await this.options.loadDispatchers?.()) ?? new Map<string, PartitionDispatcherFactory>(),
        ...(this.options.config['enable-sync-point'] ? { syncPointRetentionMs: this.options.config['sync-point-retention'] } : {}),
      });
    }
    return this.ddlSink;
  }

  private advance(ts: Ts, time: number): void {
    if (ts > this.ddlResolved || (ts === this.ddlResolved && time > this.ddlTime)) {
      this.ddlResolved = ts;
      this.ddlTime = time;
    }
  }

  /** Every table reached the ts before the DDL: write it to the sink, then change the table set. */
  private runDDL(pending: PendingDDL): Promise<void> {
    return this.onOwnerSink(`the sink refused DDL "${pending.query}"`, async (sink) => {
      const { ddl } = pending;
      const event: DDLEvent = {
        commitTs: pending.ts,
        commitTime: pending.commitTime,
        schema: pending.schema,
        query: pending.query,
        kind: ddl.kind,
        tables: ddl.tables.map((t) => ({ schema: t.schema, table: t.table, tableId: this.tableIds.get(`${t.schema}.${t.table}`) ?? 0 })),
      };
      await sink.writeDDL(event);
      this.log.info('DDL replicated', { ts: String(pending.ts), kind: ddl.kind, query: pending.query });
      switch (ddl.kind) {
        case 'create-table':
          for (const t of ddl.tables) if (this.filter.match(t.schema, t.table)) this.want(t, pending.ts);
          break;
        case 'drop-table':
          for (const t of ddl.tables) this.unwant(t);
          break;
        case 'rename-table':
          ddl.tables.forEach((from, i) => {
            this.unwant(from);
            const to = ddl.renamedTo[i];
            if (to !== undefined && this.filter.match(to.schema, to.table)) this.want(to, pending.ts);
          });
          break;
        case 'drop-database':
          for (const [name, id] of this.tableIds) if (name.startsWith(`${ddl.database}.`)) this.wanted.delete(id);
          break;
        default:
          break;
      }
      pending.executed = true;
      pending.done.wake();
    });
  }
}

/** A set that counts its changes (the scheduler skips a pass when neither it nor the replication sets changed). */
class VersionedSet<T> extends Set<T> {
  version = 0;

  override add(value: T): this {
    if (!this.has(value)) this.version++;
    return super.add(value);
  }

  override delete(value: T): boolean {
    const deleted = super.delete(value);
    if (deleted) this.version++;
    return deleted;
  }

  override clear(): void {
    this.version++;
    super.clear();
  }
}
