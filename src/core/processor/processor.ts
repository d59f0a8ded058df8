import { sinkError, type SinkEndpoint } from '../sink/endpoint.js';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { TidemarkError, isAbortError } from '../errors/index.js';
import type { Logger } from '../logger/logger.js';
import type { ReplicaConfig } from '../config/replica-config.js';
import { redactUri } from '../config/uri.js';
import { TableFilter } from '../config/table-filter.js';
import type { PartitionDispatcherFactory, RowChangedEvent, Sink, TableName, Ts } from '../sink/api.js';
import { MemoryQuota } from '../pipeline/sorter/memory-quota.js';
import { SpillStore } from '../pipeline/sorter/spill-store.js';
import { TableSorter, type SorterEvent } from '../pipeline/sorter/table-sorter.js';
import { SORTED_ROW_CODEC, type SortedRow } from '../pipeline/row-codec.js';
import { Mounter } from '../pipeline/mounter/index.js';
import { SchemaStorage, type TableLoader } from '../schema/schema-storage.js';
import { readFromTs, type ResumableEvent } from '../upstream/resumable-reader.js';
import type { LogService } from '../logservice/log-service.js';
import type { Upstream } from '../upstream/upstream.js';
import { TablePipeline } from './table-pipeline.js';
import { TableSinkStage } from './table-sink.js';
import { ProcessorProgress, type ProgressFloors, type ProgressSource } from './progress.js';
import { Puller } from '../pipeline/puller/puller.js';
import { TableSnapshot, type SnapshotPiece } from '../snapshot/table-snapshot.js';
import { readTableSnapshot } from '../snapshot/snapshot-reader.js';
import { addChunk, encodeKey, type TableSnapshotRecord } from '../snapshot/progress.js';
import { ReadSlots } from '../snapshot/read-slots.js';
import { compareKeys } from '../snapshot/table-shape.js';
import type { ChangefeedMetrics } from '../metrics/metrics.js';

export interface ProcessorOptions {
  readonly namespace: string;
  readonly changefeedId: string;
  readonly captureId: string;
  readonly sinkUri: string;
  readonly config: ReplicaConfig;
  /** 0 = no end. */
  readonly targetTs: Ts;
  /** The owner's barrier when the processor starts (status `min-table-barrier-ts`); `setBarrier` moves it. */
  readonly barrierTs: Ts;
  readonly upstream: Upstream;
  /** The upstream's binlog file basename (`mysql-bin`), from its record. */
  readonly basename: string;
  /** Loads the sink plugin of the changefeed's URI scheme. */
  /** The changefeed's sink: its plugin, the URI parsed once. */
  readonly loadSink: () => Promise<SinkEndpoint>;
  /** Partition dispatchers from plugins, for the sink context. */
  readonly loadDispatchers?: () => Promise<ReadonlyMap<string, PartitionDispatcherFactory>>;
  readonly dataDir: string;
  readonly logger: Logger;
  /** The replica server id the binlog connection registers with (unique per reader on the upstream). */
  readonly serverId: number;
  /**
   * The capture's log service: with it, the processor reads the binlog through the upstream's shared read (its
   * own connection only while it is behind what that holds), unless it needs its schema storage (no
   * binlog_row_metadata=FULL).
   */
  readonly logService?: LogService;
  /** Heartbeat period asked from the upstream (ms). */
  readonly heartbeatMs?: number;
  /**
   * The schema storage to mount rows with when the upstream's row events lack column names
   * (binlog_row_metadata below FULL); resolves to undefined when they carry them.
   */
  readonly loadSchema?: (signal: AbortSignal) => Promise<SchemaStorage | undefined>;
  /** Called when table checkpoints may have moved (an acknowledgement, or the reader moving idle tables along). */
  readonly onProgress?: () => void;
  /** The initial snapshot's progress per table (`--snapshot initial`), kept in etcd. */
  readonly snapshots?: SnapshotProgressStore;
  /** The changefeed's counted metrics (sink calls, sink errors). */
  readonly metrics?: ChangefeedMetrics;
}

/** Where a processor finds and keeps the progress of its tables' initial snapshots. */
export interface SnapshotProgressStore {
  /** The table's progress; undefined when the table has no snapshot to copy. */
  get(table: string): TableSnapshotRecord | undefined;
  /** Keeps the table's progress (written to etcd shortly after). */
  put(table: string, record: TableSnapshotRecord): void;
  /**
   * Records that the table's copy began (state copying), resolving once etcd has it: a capture that takes the
   * table over after a failure then knows rows may have been written that no record counts.
   */
  begin(table: string, record: TableSnapshotRecord, signal: AbortSignal): Promise<void>;
}

/**
 * The part of a changefeed that runs on one capture (DESIGN §4, §5): it wires the stages of the tables the owner
 * scheduled here and follows the owner's adds, removes and barrier. No row passes through its own code:
 *
 * - the puller (`pipeline/puller`) reads the binlog from the lowest table checkpoint, assembles transactions and
 *   adds each row to its table's sorter at the commit;
 * - each table's sorter (`pipeline/sorter`) holds its rows until resolved-ts passes them, spilling beyond the quota;
 * - the table sink stage (`TableSinkStage`) hands the rows of the tables that got some, mounted once
 *   (`pipeline/mounter`), to `Sink.writeRows` in commit order up to min(resolved-ts, barrier), keeps flushes in
 *   flight while it goes on writing, and moves each table's checkpoint when the flush covering it resolves;
 * - `ProcessorProgress` turns the tables' positions into the heartbeat reports and the task position.
 *
 * DDL runs on the owner (the barrier stops every table at the ts before it); rows after an ALTER are mounted
 * with the new TABLE_MAP (full row metadata), or, without it, with the definition the changefeed's schema
 * storage has at that ts (loaded from etcd, then following the DDL this reader reads). A secondary table (a move
 * in progress) is read and sorted but not written until it is promoted with the old capture's final checkpoint.
 * DESIGN §1's invariants are checked after every flush; a broken one stops the processor with a non-retryable error.
 */
export class Processor implements ProgressSource {
  /** This processor's incarnation, named in heartbeats and progress pushes (a restart is a new one). */
  readonly incarnation = randomUUID();
  /** The owner's barrier (status `min-table-barrier-ts`): DDL, syncpoint, or how far the owner's DDL puller has read. */
  barrierTs: Ts;
  /**
   * DDL this reader has read beyond the owner's barrier, with the ts of the commit before each: no table may pass
   * them until the owner has run them and moved its barrier past (see `writeBarrier`).
   */
  private readonly ddlAhead: { readonly ts: Ts; readonly prevTs: Ts }[] = [];
  /** No syncpoints: the reader's own view of the binlog may extend the owner's barrier. */
  private readonly localBarrier: boolean;
  readonly tables = new Map<string, TablePipeline>();
  readonly quota: MemoryQuota;
  /** The heartbeat reports and the task position. */
  readonly progress: ProcessorProgress;
  /** The binlog reader and transaction assembly feeding the tables' sorters. */
  private readonly puller: Puller<TablePipeline>;
  private sink: Sink | undefined;
  private stage: TableSinkStage | undefined;
  private readonly mounter: Mounter;
  private nextTableId = 1;
  private store: SpillStore | undefined;
  /** The changefeed's schema storage, when the upstream needs one; it follows the DDL this reader reads. */
  private schema: SchemaStorage | undefined;
  private readonly log: Logger;
  private pendingAdds: [string, Ts, boolean, number][] = [];
  /** Tables whose snapshot waits for its copy to start (at most `[snapshot] parallelism` tables are copied at once). */
  private readonly copyQueue: TablePipeline[] = [];
  /** Snapshot readers running, by table. */
  private readonly copies = new Map<TablePipeline, AbortController>();
  /** The chunk reads the tables being copied share (`[snapshot] parallelism` at once). */
  private readonly readSlots: ReadSlots;
  /** The snapshot progress last kept per table. */
  private readonly snapshotRecords = new Map<TablePipeline, TableSnapshotRecord>();
  private runSignal: AbortSignal | undefined;
  private readonly runWaiters: ((signal: AbortSignal) => void)[] = [];
  /** Binlog bytes read by this processor's readers (the binlog read metric, read when scraped). */
  readonly binlogRead = { bytes: 0 };
  /** The changefeed's table filter: the tables it replicates. */
  private readonly filter: TableFilter;
  private failRun: ((error: unknown) => void) | undefined;

  constructor(private readonly options: ProcessorOptions) {
    this.readSlots = new ReadSlots(options.config.snapshot.parallelism);
    this.filter = new TableFilter(options.config.filter.rules, options.config['case-sensitive']);
    this.barrierTs = options.barrierTs;
    this.localBarrier = options.config['enable-sync-point'] !== true;
    this.quota = new MemoryQuota(options.config['memory-quota']);
    this.progress = new ProcessorProgress(this);
    this.log = options.logger.with({ changefeed: options.changefeedId });
    // with the capture's log service, rows the shared binlog read gives to several changefeeds are built and decoded once
    this.mounter = new Mounter(options.logService?.rowsOf(options.upstream, options.basename));
    this.puller = new Puller<TablePipeline>({
      read: (start, signal) => this.read(start, signal),
      tables: this.tables,
      quota: this.quota,
      store: () => this.store!,
      mounter: this.mounter,
      targetTs: options.targetTs,
      ignoredTs: new Set(options.config.filter['ignore-txn-start-ts'].map((t) => BigInt(t))),
      listener: {
        committed: (tables) => this.stage?.committed(tables),
        ddl: (ts, prevTs) => this.ddlRead(ts, prevTs),
        moved: (ts) => this.readerMoved(ts),
        restarted: (tables) => this.stage?.readerRestarted(tables),
      },
      logger: this.log,
    });
  }

  /** The reader's position: every change with ts ≤ it has been read (for the tables it feeds). */
  get readerTs(): Ts {
    return this.puller.readerTs;
  }

  get readerTime(): number {
    return this.puller.readerTime;
  }

  /** Row changes read from the binlog, by kind. */
  get rowsRead(): Readonly<Record<'insert' | 'update' | 'delete', number>> {
    return this.puller.rowsRead;
  }

  /** Set when reading stopped at target-ts. */
  get targetReached(): boolean {
    return this.puller.targetReached;
  }

  get changefeedKey(): string {
    return `${this.options.namespace}/${this.options.changefeedId}`;
  }

  get basename(): string {
    return this.options.basename;
  }

  /** The upstream it reads (the binlog metrics read its end of binlog). */
  get upstream(): Upstream {
    return this.options.upstream;
  }

  get spilledBytes(): number {
    let bytes = 0;
    for (const t of this.tables.values()) bytes += t.sorter.stats.spilledBytes;
    return bytes;
  }

  /** Bytes spilled to disk since the processor started (read back or not). */
  get totalSpilledBytes(): number {
    let bytes = 0;
    for (const t of this.tables.values()) bytes += t.sorter.stats.totalSpilledBytes;
    return bytes;
  }

  /**
   * The processor's checkpoint (the lowest of its replicating tables', the reader's position when there are none),
   * that commit's wall time (as the slowest replicating table knows it, 0: unknown) and its resolved-ts (the lowest
   * of its tables'), in one walk over the tables: with 100,000 tables each walk was most of an idle capture's work.
   */
  floors(): ProgressFloors {
    let slowest: TablePipeline | undefined;
    let resolved: Ts | undefined;
    for (const t of this.tables.values()) {
      if (t.state === 'replicating' && (slowest === undefined || t.checkpointTs < slowest.checkpointTs)) slowest = t;
      const r = this.resolvedOf(t);
      if (resolved === undefined || r < resolved) resolved = r;
    }
    return { checkpointTs: slowest?.checkpointTs ?? this.readerTs, checkpointTime: slowest?.checkpointTime ?? 0, resolvedTs: resolved ?? this.readerTs };
  }

  /** The sink's own counters, when the plugin offers them (the blackhole's per-table counts). */
  sinkStats(): unknown {
    return this.sink?.stats?.();
  }

  setBarrier(ts: Ts): void {
    if (ts > this.barrierTs) {
      this.barrierTs = ts;
      while (this.ddlAhead.length > 0 && this.ddlAhead[0].ts <= ts) this.ddlAhead.shift();
      this.stage?.barrierMoved(this.writeBarrier());
    }
  }

  /**
   * How far tables may be written. The owner's barrier stops every table before a DDL (or a syncpoint) until the
   * owner has run it; between DDL it only says how far the owner's DDL puller has read, which trails this reader by
   * an owner tick and a status write. This reader reads the same binlog, so every DDL passes through it too: where
   * it has read with no DDL beyond the owner's barrier, tables may go up to its own position, and at a DDL it saw
   * first they stop at the commit before it, where the owner's barrier will stop them. With syncpoints on, the
   * owner's barrier alone (a syncpoint's ts is the owner's to choose).
   */
  private writeBarrier(): Ts {
    if (!this.localBarrier) return this.barrierTs;
    const local = this.ddlAhead.length > 0 ? this.ddlAhead[0].prevTs : this.readerTs;
    return local > this.barrierTs ? local : this.barrierTs;
  }

  /**
   * The owner scheduled a table here. A primary starts replicating from `checkpointTs`; a secondary is read
   * and sorted but not written until a primary add promotes it (with the old capture's final checkpoint).
   */
  addTable(qualified: string, checkpointTs: Ts, isSecondary: boolean, ownerTableId: number): void {
    if (this.store === undefined) {
      // still starting (spill store, sink): added once it is ready
      this.pendingAdds.push([qualified, checkpointTs, isSecondary, ownerTableId]);
      return;
    }
    const existing = this.tables.get(qualified);
    if (existing !== undefined) {
      if (!isSecondary && existing.state !== 'replicating') {
        // promotion: the old primary stopped at checkpointTs; what it wrote is not written again
        existing.state = 'replicating';
        if (checkpointTs > existing.checkpointTs) {
          existing.checkpointTs = checkpointTs;
          existing.writtenTs = checkpointTs;
        }
        this.progress.tableChanged(existing);
        this.log.info('table promoted', { table: qualified, checkpointTs: String(checkpointTs) });
        this.startSnapshot(existing);
        this.stage?.added(existing);
      }
      existing.ownerTableId = ownerTableId;
      return;
    }
    const dot = qualified.indexOf('.');
    const tableId = this.nextTableId++;
    const name: TableName = { schema: qualified.slice(0, dot), table: qualified.slice(dot + 1), tableId };
    const pipeline = new TablePipeline(name, new TableSorter(tableId, this.quota, this.store, SORTED_ROW_CODEC), checkpointTs);
    pipeline.ownerTableId = ownerTableId;
    pipeline.floorTs = checkpointTs;
    pipeline.state = isSecondary ? 'preparing' : 'replicating';
    pipeline.catchUpTs = this.readerTs;
    this.tables.set(qualified, pipeline);
    this.progress.tableChanged(pipeline);
    this.log.info('table added', { table: qualified, checkpointTs: String(checkpointTs), secondary: isSecondary });
    // behind the reader: the reader starts again at its checkpoint (tables already here skip what they have)
    this.puller.tableAdded(pipeline);
    if (!isSecondary) this.startSnapshot(pipeline);
    this.stage?.added(pipeline);
  }

  /**
   * The owner took a table away: nothing more of it is written, and once what was written is acknowledged
   * (so it is in the checkpoint) the table stops; its final checkpoint is reported once with state `stopped`,
   * and the capture taking it over starts exactly there.
   */
  removeTable(qualified: string): void {
    const pipeline = this.tables.get(qualified);
    if (pipeline === undefined || pipeline.stopRequested) return;
    pipeline.stopRequested = true;
    this.progress.tableChanged(pipeline);
    this.stopSnapshot(pipeline);
    if (this.stage === undefined) void this.finishRemoval(pipeline);
    else this.stage.removed(pipeline);
  }

  private async finishRemoval(pipeline: TablePipeline): Promise<void> {
    if (this.tables.get(pipeline.key) !== pipeline) return;
    this.tables.delete(pipeline.key);
    pipeline.closed = true;
    this.stopSnapshot(pipeline);
    pipeline.snapshot = undefined;
    this.progress.tableStopped(pipeline);
    await pipeline.sorter.close();
    this.log.info('table removed', { table: pipeline.key, checkpointTs: String(pipeline.checkpointTs) });
  }

  /** A table fed by the current read is resolved up to the reader; one waiting for the next read, up to its floor. */
  resolvedOf(t: TablePipeline): Ts {
    return this.puller.resolvedOf(t);
  }

  /** The commit time to give a checkpoint at `ts` (see Puller.timeAt). */
  timeAt(ts: Ts): number {
    return this.puller.timeAt(ts);
  }

  /** Runs until `signal` aborts (resolves) or an error stops it (rejects with a TidemarkError). */
  async run(signal: AbortSignal): Promise<void> {
    const { options } = this;
    const stop = new AbortController();
    const inner = AbortSignal.any([signal, stop.signal]);
    try {
      const endpoint = await options.loadSink();
      const dispatchers = (await options.loadDispatchers?.()) ?? new Map<string, PartitionDispatcherFactory>();
      const store = await SpillStore.open(join(options.dataDir, 'sorter', `${options.namespace}.${options.changefeedId}`));
      this.store = store;
      for (const args of this.pendingAdds.splice(0)) this.addTable(...args);
      try {
        this.sink = await endpoint.open({
          signal: inner,
          changefeedId: options.changefeedId,
          logger: this.log.with({ sink: endpoint.scheme }),
          sinkConfig: options.config.sink,
          forceReplicate: options.config['force-replicate'],
          dispatchers,
        });
      } catch (error) {
        throw this.sinkError('create', error);
      }
      const stage = new TableSinkStage({
        sink: this.sink,
        ...(this.options.metrics === undefined ? {} : { metrics: this.options.metrics }),
        quota: this.quota,
        reader: this,
        mount: (table, event) => this.mount(table, event),
        onSnapshotAcknowledged: (table, pieces) => this.snapshotAcknowledged(table, pieces),
        truncate: (table, ts) => this.truncateForSnapshot(table, ts),
        sinkError: (call, error) => this.sinkError(call, error),
        onRemoved: (table) => this.finishRemoval(table),
        onProgress: () => this.options.onProgress?.(),
        logger: this.log,
        barrierTs: this.writeBarrier(),
      });
      this.stage = stage;
      for (const table of this.tables.values()) {
        if (table.stopRequested) stage.removed(table);
        else stage.added(table);
      }
      this.schema = await options.loadSchema?.(inner);
      if (this.schema !== undefined) this.schema.tableFilter = (schema, table) => this.filter.match(schema, table);
      this.log.info('processor started', { sink: redactUri(options.sinkUri) });
      let first: Error | undefined;
      const fail = (error: unknown): void => {
        if (first === undefined && !(inner.aborted && isAbortError(error))) first = error instanceof Error ? error : new Error(String(error));
        stop.abort(error);
      };
      this.runSignal = inner;
      this.failRun = fail;
      for (const waiter of this.runWaiters.splice(0)) waiter(inner);
      this.startCopies();
      await Promise.all([this.puller.run(inner).catch(fail), stage.run(inner).catch(fail)]);
      if (first !== undefined && !signal.aborted) throw first;
    } finally {
      stop.abort(new TidemarkError('ErrAborted', 'processor stopped'));
      this.failRun = undefined;
      for (const copy of this.copies.values()) copy.abort();
      this.copies.clear();
      for (const table of this.tables.values()) await table.sorter.close().catch(() => undefined);
      await this.store?.destroy().catch((error: unknown) => this.log.warn('could not delete the sorter spill files', { error }));
      await this.sink?.close().catch((error: unknown) => this.log.warn('sink close failed', { error }));
      this.log.info('processor stopped', { checkpointTs: String(this.floors().checkpointTs) });
    }
  }

  /** The binlog from `start`: through the capture's log service when the rows need no schema storage, else on its own. */
  private read(start: Ts, signal: AbortSignal): AsyncIterable<ResumableEvent> {
    const { logService, upstream, basename, changefeedId } = this.options;
    if (logService === undefined || this.schema !== undefined) return readFromTs(this.upstreamOptions(), start, signal);
    return logService.read(upstream, basename, start, signal, {
      ownRead: (from, ownSignal) => readFromTs(this.upstreamOptions(), from, ownSignal),
      stats: this.binlogRead,
      who: `changefeed ${this.options.namespace}/${changefeedId}`,
      // rows of tables the changefeed does not replicate, and commits with none of its rows, are passed over
      selects: (schema, table) => this.filter.match(schema, table),
    });
  }

  private upstreamOptions(): Parameters<typeof readFromTs>[0] {
    return {
      ...this.options.upstream.readerOptions(this.options.basename, this.options.serverId),
      heartbeatMs: this.options.heartbeatMs ?? 500,
      maxRetries: 5,
      readStats: this.binlogRead,
      ...(this.schema === undefined ? {} : { schema: this.schema }),
      definitions: this.definitions(),
    };
  }

  /** The current definition of a table of the changefeed (for MariaDB's UUID/INET6/INET4 columns, see readTransactions). */
  private definitions(): TableLoader {
    const load = SchemaStorage.upstreamLoader(this.options.upstream);
    return (schema, table) => (this.filter.match(schema, table) ? load(schema, table) : Promise.resolve(undefined));
  }

  /** A DDL read: beyond the owner's barrier, tables stop before it until the owner has run it (read again: noted once). */
  private ddlRead(ts: Ts, prevTs: Ts): void {
    if (ts > this.barrierTs && (this.ddlAhead.length === 0 || ts > this.ddlAhead[this.ddlAhead.length - 1].ts)) {
      this.ddlAhead.push({ ts, prevTs });
    }
  }

  private readerMoved(ts: Ts): void {
    if (this.stage === undefined) return;
    if (this.localBarrier && this.ddlAhead.length === 0) this.stage.barrierMoved(ts);
    this.stage.readerMoved(ts);
    this.options.onProgress?.();
  }

  /** A sorted change, mounted for the sink and counted in the table's stats. */
  private mount(pipeline: TablePipeline, event: SorterEvent<SortedRow>): RowChangedEvent | undefined {
    const mounted = this.mounter.mount(pipeline.name, event.ts, event.seq, event.payload);
    const row = pipeline.snapshot === undefined ? mounted : pipeline.snapshot.keep(mounted);
    if (row === undefined) return undefined;
    if (row.kind === 'insert') pipeline.stats.inserts++;
    else if (row.kind === 'update') pipeline.stats.updates++;
    else pipeline.stats.deletes++;
    return row;
  }

  // ---------------------------------------------------------------------------------------------- snapshot

  /** A table that starts replicating here and has rows to copy (`--snapshot initial`): its copy is queued. */
  private startSnapshot(pipeline: TablePipeline): void {
    if (pipeline.snapshot !== undefined || this.options.config.snapshot.mode !== 'initial') return;
    const record = this.options.snapshots?.get(pipeline.key);
    if (record === undefined || record.state === 'done') return;
    const store = this.options.snapshots!;
    // a copy that begins here is recorded as begun before its first row reaches the sink
    const ready = record.state === 'pending' ? this.whenRunning().then((signal) => store.begin(pipeline.key, { ...record, state: 'copying' }, signal)) : Promise.resolve();
    ready.catch(() => undefined);
    // each chunk read may run ahead of the sink by a share of an eighth of the quota
    const chunkQueueBytes = Math.max(1 << 20, this.quota.limitBytes / 8 / this.options.config.snapshot.parallelism);
    pipeline.snapshot = new TableSnapshot(record, pipeline.checkpointTs, () => this.stage?.snapshotPiece(pipeline), chunkQueueBytes, ready, () => pipeline.handedTs);
    this.snapshotRecords.set(pipeline, record);
    this.copyQueue.push(pipeline);
    this.log.info('snapshot: table queued for copying', { table: pipeline.key, state: record.state, rowsCopied: record.rows, chunksCopied: record.chunks.length });
    this.startCopies();
  }

  /** The run's signal, once the processor runs. */
  private whenRunning(): Promise<AbortSignal> {
    if (this.runSignal !== undefined) return Promise.resolve(this.runSignal);
    return new Promise((resolve) => this.runWaiters.push(resolve));
  }

  private stopSnapshot(pipeline: TablePipeline): void {
    const at = this.copyQueue.indexOf(pipeline);
    if (at >= 0) this.copyQueue.splice(at, 1);
    this.copies.get(pipeline)?.abort();
    this.copies.delete(pipeline);
    this.snapshotRecords.delete(pipeline);
  }

  /** Starts snapshot readers for queued tables while fewer than `[snapshot] parallelism` run. */
  private startCopies(): void {
    const signal = this.runSignal;
    if (signal === undefined || signal.aborted) return;
    while (this.copies.size < this.options.config.snapshot.parallelism && this.copyQueue.length > 0) {
      const pipeline = this.copyQueue.shift()!;
      const snapshot = pipeline.snapshot;
      if (snapshot === undefined || pipeline.closed || pipeline.stopRequested) continue;
      const controller = new AbortController();
      this.copies.set(pipeline, controller);
      readTableSnapshot(
        { upstream: this.options.upstream, table: pipeline.name, snapshot, chunkRows: this.options.config.snapshot['chunk-rows'], quota: this.quota, logger: this.log, readers: this.readSlots },
        AbortSignal.any([signal, controller.signal]),
      ).then(
        () => {
          if (this.copies.get(pipeline) === controller) this.copies.delete(pipeline);
          this.startCopies();
        },
        (error: unknown) => {
          if (this.copies.get(pipeline) === controller) this.copies.delete(pipeline);
          if (controller.signal.aborted || signal.aborted) return;
          this.failRun?.(error);
        },
      );
    }
  }

  /**
   * A table without a key whose copy an earlier run began and did not finish: what that run wrote of it cannot be
   * told from the rows copied again, so the table is emptied in the sink first (TRUNCATE, as a DDL at the pass's ts).
   */
  private async truncateForSnapshot(pipeline: TablePipeline, ts: Ts): Promise<void> {
    const { schema, table } = pipeline.name;
    const quote = (ident: string): string => `\`${ident.replaceAll('`', '``')}\``;
    this.log.warn('snapshot: a copy of a table without a key starts over after a failure; the table is emptied in the sink first', { table: pipeline.key });
    try {
      await this.sink!.writeDDL({ commitTs: ts, commitTime: Date.now(), schema, query: `TRUNCATE TABLE ${quote(schema)}.${quote(table)}`, kind: 'truncate-table', tables: [pipeline.name] });
    } catch (error) {
      throw this.sinkError('writeDDL', error);
    }
  }

  /** The sink acknowledged snapshot pieces of the table: its progress is kept (and the copy ends with the last). */
  private snapshotAcknowledged(pipeline: TablePipeline, pieces: readonly SnapshotPiece[]): void {
    const before = this.snapshotRecords.get(pipeline);
    const snapshot = pipeline.snapshot;
    if (before === undefined || snapshot === undefined) return;
    let chunks = before.chunks;
    let rows = before.rows;
    let final = false;
    for (const piece of pieces) {
      rows += piece.rows.length;
      const end = piece.chunkEnd;
      if (end !== undefined) {
        chunks = addChunk(chunks, { lower: end.lower === null ? null : encodeKey(end.lower), upper: end.upper === null ? null : encodeKey(end.upper), ts: String(piece.ts) }, compareKeys);
      }
      if (piece.final) final = true;
    }
    snapshot.rowsAcknowledged = rows;
    const record: TableSnapshotRecord = {
      ...before,
      state: final ? 'done' : 'copying',
      chunks,
      rows,
      ...(snapshot.method === undefined ? {} : { method: snapshot.method }),
      ...(snapshot.estimatedRows === undefined ? {} : { 'estimated-rows': snapshot.estimatedRows }),
    };
    this.snapshotRecords.set(pipeline, record);
    this.options.snapshots?.put(pipeline.key, record);
    if (final) {
      this.snapshotRecords.delete(pipeline);
      pipeline.snapshot = undefined;
      this.log.info('snapshot: table copied', { table: pipeline.key, rows, chunks: chunks.length, method: snapshot.method, seconds: Math.round((Date.now() - (snapshot.copyStartedAt ?? Date.now())) / 100) / 10 });
    }
  }

  /** A plain error from a plugin's call becomes a typed sink error, retryable unless the plugin says otherwise. */
  private sinkError(what: string, error: unknown): TidemarkError {
    const typed = sinkError(error, `sink ${redactUri(this.options.sinkUri)} failed in ${what}`);
    this.options.metrics?.sinkError(typed.code);
    return typed;
  }
}
