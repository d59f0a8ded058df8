import { join } from 'node:path';
import { TidemarkError, isAbortError } from '../errors/index.js';
import { Notifier } from '../lifecycle/abortable.js';
import type { Logger } from '../logger/logger.js';
import type { ReplicaConfig } from '../config/replica-config.js';
import { redactUri } from '../config/uri.js';
import { TableFilter } from '../config/table-filter.js';
import type { PartitionDispatcherFactory, RowChangedEvent, Sink, SinkFactory, TableName, Ts } from '../sink/api.js';
import { MemoryQuota } from '../pipeline/sorter/memory-quota.js';
import { SpillStore } from '../pipeline/sorter/spill-store.js';
import { TableSorter, type SorterEvent } from '../pipeline/sorter/table-sorter.js';
import { SORTED_ROW_CODEC, decodedRow, encodeRow, rowChangeBytes, setRowCommitTime, type SortedRow } from '../pipeline/row-codec.js';
import { Mounter } from '../pipeline/mounter/index.js';
import type { TableMap } from '../upstream/events.js';
import type { SchemaStorage } from '../schema/schema-storage.js';
import { readerOptionsFor, readFromTs } from '../upstream/resumable-reader.js';
import { TablePipeline } from './table-pipeline.js';
import { TableSinkStage } from './table-sink.js';
import { ProcessorProgress, type ProgressSource } from './progress.js';
import { TransactionBuffer } from '../pipeline/puller/transaction-buffer.js';

/** Above this much of the memory quota in use (or an eighth of the quota, if less), new rows wait compact. */
const COMPACT_ABOVE_BYTES = 16 * 1024 * 1024;
/** Rows of a transaction past this many wait compact: they stay until its commit. */
const COMPACT_AFTER_ROWS = 256;

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
  readonly upstream: { readonly uri: string; readonly basename: string };
  /** Loads the sink plugin of the changefeed's URI scheme. */
  readonly loadSinkFactory: () => Promise<SinkFactory<unknown>>;
  /** Partition dispatchers from plugins, for the sink context. */
  readonly loadDispatchers?: () => Promise<ReadonlyMap<string, PartitionDispatcherFactory>>;
  readonly dataDir: string;
  readonly logger: Logger;
  /** The replica server id the binlog connection registers with (unique per reader on the upstream). */
  readonly serverId: number;
  /** Heartbeat period asked from the upstream (ms). */
  readonly heartbeatMs?: number;
  /**
   * The schema storage to mount rows with when the upstream's row events lack column names
   * (binlog_row_metadata below FULL); resolves to undefined when they carry them.
   */
  readonly loadSchema?: (signal: AbortSignal) => Promise<SchemaStorage | undefined>;
  /** Called when table checkpoints may have moved (an acknowledgement, or the reader moving idle tables along). */
  readonly onProgress?: () => void;
}

/**
 * The part of a changefeed that runs on one capture (DESIGN §4, §5): the table pipelines of the tables the
 * owner scheduled here (puller → sorter → mounter → table sink), fed by one binlog reader. Two loops:
 *
 * - the reader starts at the lowest checkpoint of its tables and reads transactions; each row change goes
 *   into its table's sorter once the commit gives its ts, unless the table already has it (its `floorTs`:
 *   a table added with a checkpoint behind the reader makes the reader start again from there, and the
 *   tables that were already here skip what they have). Resolved-ts moves on commits and heartbeats.
 * - the table sink stage (`TableSinkStage`) acts on those events: it hands the changes of the tables that got
 *   some to `Sink.writeRows` in commit order up to min(resolved-ts, the owner's barrier-ts), keeps flushes in
 *   flight while it goes on writing, and moves each table's checkpoint when the flush covering it resolves.
 *
 * DDL runs on the owner (the barrier stops every table at the ts before it); rows after an ALTER are mounted
 * with the new TABLE_MAP (full row metadata), or, without it, with the definition the changefeed's schema
 * storage has at that ts (loaded from etcd, then following the DDL this reader reads). A secondary table (a move in progress) is read and sorted but
 * not written until it is promoted with the old capture's final checkpoint. DESIGN §1's invariants are
 * checked after every flush; a broken one stops the processor with a non-retryable error.
 */
export class Processor implements ProgressSource {
  /** The reader's position: every change with ts ≤ it has been read (for the tables it feeds). */
  readerTs: Ts = 0n;
  readerTime = 0;
  /** The owner's barrier (status `min-table-barrier-ts`): DDL, syncpoint, or how far the owner's DDL puller has read. */
  barrierTs: Ts;
  /**
   * DDL this reader has read beyond the owner's barrier, with the ts of the commit before each: no table may pass
   * them until the owner has run them and moved its barrier past (see `writeBarrier`).
   */
  private readonly ddlAhead: { readonly ts: Ts; readonly prevTs: Ts }[] = [];
  /** No syncpoints: the reader's own view of the binlog may extend the owner's barrier. */
  private readonly localBarrier: boolean;
  /** Rows read while the changefeed holds more than this wait compact (see SortedRow). */
  private readonly compactAboveBytes: number;
  /** Set when reading stopped at target-ts. */
  targetReached = false;
  readonly tables = new Map<string, TablePipeline>();
  readonly quota: MemoryQuota;
  /** The heartbeat reports and the task position. */
  readonly progress: ProcessorProgress;
  private sink: Sink | undefined;
  private stage: TableSinkStage | undefined;
  private readonly tableAdded = new Notifier();
  private readonly keyOf = new WeakMap<TableMap, string>();
  private readonly mounter = new Mounter();
  private nextTableId = 1;
  private store: SpillStore | undefined;
  /** The changefeed's schema storage, when the upstream needs one; it follows the DDL this reader reads. */
  private schema: SchemaStorage | undefined;
  private restart: AbortController | undefined;
  private readonly log: Logger;
  /** `[filter] ignore-txn-start-ts`: a MySQL transaction has no start ts; its commit ts (binlog coordinate) is what is matched. */
  private readonly ignoredTs: ReadonlySet<Ts>;
  private started = false;
  private pendingAdds: [string, Ts, boolean, number][] = [];
  /** Tables with rows in the transaction being read (member or not), so a table added mid-transaction is read again. */
  private readonly txnTables = new Set<string>();

  constructor(private readonly options: ProcessorOptions) {
    this.barrierTs = options.barrierTs;
    this.localBarrier = options.config['enable-sync-point'] !== true;
    this.quota = new MemoryQuota(options.config['memory-quota']);
    this.compactAboveBytes = Math.min(COMPACT_ABOVE_BYTES, this.quota.limitBytes / 8);
    this.progress = new ProcessorProgress(this);
    this.log = options.logger.with({ changefeed: options.changefeedId });
    this.ignoredTs = new Set(options.config.filter['ignore-txn-start-ts'].map((t) => BigInt(t)));
  }

  get changefeedKey(): string {
    return `${this.options.namespace}/${this.options.changefeedId}`;
  }

  get basename(): string {
    return this.options.upstream.basename;
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

  /** The lowest checkpoint of the replicating tables (the reader's position when there are none). */
  get checkpointTs(): Ts {
    let min: Ts | undefined;
    for (const t of this.tables.values()) if (t.state === 'replicating' && (min === undefined || t.checkpointTs < min)) min = t.checkpointTs;
    return min ?? this.readerTs;
  }

  get resolvedTs(): Ts {
    let min: Ts | undefined;
    for (const t of this.tables.values()) {
      const r = this.resolvedOf(t);
      if (min === undefined || r < min) min = r;
    }
    return min ?? this.readerTs;
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
        this.log.info('table promoted', { table: qualified, checkpointTs: String(checkpointTs) });
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
    // behind the reader, or the transaction being read already had rows of it (dropped, it was not here yet):
    // not fed by the current read (it would get changes out of order or miss some); the next read starts at its checkpoint
    pipeline.awaitingRestart = this.started && (checkpointTs < this.readerTs || this.txnTables.has(qualified));
    this.tables.set(qualified, pipeline);
    this.log.info('table added', { table: qualified, checkpointTs: String(checkpointTs), secondary: isSecondary });
    // the reader is past the table's checkpoint: read again from there (tables already here skip what they have)
    if (pipeline.awaitingRestart) this.restart?.abort(new TidemarkError('ErrAborted', 'reader restarts for a new table'));
    this.tableAdded.wake();
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
    if (this.stage === undefined) void this.finishRemoval(pipeline);
    else this.stage.removed(pipeline);
  }

  private async finishRemoval(pipeline: TablePipeline): Promise<void> {
    if (this.tables.get(pipeline.key) !== pipeline) return;
    this.tables.delete(pipeline.key);
    pipeline.closed = true;
    this.progress.tableStopped(pipeline);
    await pipeline.sorter.close();
    this.log.info('table removed', { table: pipeline.key, checkpointTs: String(pipeline.checkpointTs) });
  }

  /** A table fed by the current read is resolved up to the reader; one waiting for the next read, up to its floor. */
  resolvedOf(t: TablePipeline): Ts {
    if (t.awaitingRestart) return t.floorTs;
    return t.floorTs > this.readerTs ? t.floorTs : this.readerTs;
  }

  /** Runs until `signal` aborts (resolves) or an error stops it (rejects with a TidemarkError). */
  async run(signal: AbortSignal): Promise<void> {
    const { options } = this;
    const stop = new AbortController();
    const inner = AbortSignal.any([signal, stop.signal]);
    const uri = new URL(options.sinkUri);
    try {
      const factory = await options.loadSinkFactory();
      const dispatchers = (await options.loadDispatchers?.()) ?? new Map<string, PartitionDispatcherFactory>();
      const store = await SpillStore.open(join(options.dataDir, 'sorter', `${options.namespace}.${options.changefeedId}`));
      this.store = store;
      for (const args of this.pendingAdds.splice(0)) this.addTable(...args);
      try {
        this.sink = await factory.create(uri, factory.parseConfig(uri), {
          signal: inner,
          changefeedId: options.changefeedId,
          logger: this.log.with({ sink: uri.protocol.replace(':', '') }),
          sinkConfig: options.config.sink,
          dispatchers,
        });
      } catch (error) {
        throw this.sinkError('create', error);
      }
      const stage = new TableSinkStage({
        sink: this.sink,
        quota: this.quota,
        reader: this,
        mount: (table, event) => this.mount(table, event),
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
      if (this.schema !== undefined) {
        const filter = new TableFilter(options.config.filter.rules, options.config['case-sensitive']);
        this.schema.tableFilter = (schema, table) => filter.match(schema, table);
      }
      this.log.info('processor started', { sink: redactUri(options.sinkUri) });
      let first: Error | undefined;
      const fail = (error: unknown): void => {
        if (first === undefined && !(inner.aborted && isAbortError(error))) first = error instanceof Error ? error : new Error(String(error));
        stop.abort(error);
      };
      await Promise.all([this.readerLoop(inner).catch(fail), stage.run(inner).catch(fail)]);
      if (first !== undefined && !signal.aborted) throw first;
    } finally {
      stop.abort(new TidemarkError('ErrAborted', 'processor stopped'));
      for (const table of this.tables.values()) await table.sorter.close().catch(() => undefined);
      await this.store?.destroy().catch((error: unknown) => this.log.warn('could not delete the sorter spill files', { error }));
      await this.sink?.close().catch((error: unknown) => this.log.warn('sink close failed', { error }));
      this.log.info('processor stopped', { checkpointTs: String(this.checkpointTs) });
    }
  }

  private upstreamOptions(): Parameters<typeof readFromTs>[0] {
    return {
      ...readerOptionsFor(this.options.upstream.uri, this.options.upstream.basename, this.options.serverId),
      heartbeatMs: this.options.heartbeatMs ?? 500,
      maxRetries: 5,
      ...(this.schema === undefined ? {} : { schema: this.schema }),
    };
  }

  /** Runs the reader from the lowest table checkpoint; starts it again when a table needs older changes. */
  private async readerLoop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      if (this.tables.size === 0) {
        await this.tableAdded.wait(1000, signal);
        continue;
      }
      let start: Ts | undefined;
      for (const t of this.tables.values()) if (start === undefined || t.floorTs < start) start = t.floorTs;
      // tables already fed have everything up to the old position: they skip it when it comes again
      for (const t of this.tables.values()) {
        if (this.started && !t.awaitingRestart && t.floorTs < this.readerTs) t.floorTs = this.readerTs;
        t.awaitingRestart = false;
      }
      if (this.started) this.log.debug('binlog reader restarts', { from: String(start), readerTs: String(this.readerTs), floors: [...this.tables.values()].map((t) => `${t.key}@${t.floorTs}`).join(' ') });
      this.readerTs = start!;
      if (this.started) this.stage?.readerRestarted(this.tables.values());
      this.started = true;
      const restart = new AbortController();
      this.restart = restart;
      this.txnTables.clear();
      try {
        await this.pullerLoop(start!, AbortSignal.any([signal, restart.signal]));
        if (!restart.signal.aborted && !signal.aborted) {
          // reading ended at target-ts: wait for a restart (a new table) or the end
          await new Promise<void>((resolve) => {
            const done = (): void => resolve();
            restart.signal.addEventListener('abort', done, { once: true });
            signal.addEventListener('abort', done, { once: true });
          });
        }
      } catch (error) {
        if (!restart.signal.aborted || signal.aborted) throw error;
      }
      if (restart.signal.aborted && !signal.aborted) this.log.info('binlog reader starts again for a table added behind it');
    }
  }

  private async pullerLoop(start: Ts, signal: AbortSignal): Promise<void> {
    const target = this.options.targetTs;
    if (target !== 0n && start >= target) {
      this.finishAt(target, this.readerTime);
      return;
    }
    const pending = new TransactionBuffer<TablePipeline>(this.quota, () => this.store!);
    const touched = new Set<TablePipeline>();
    try {
      for await (const e of readFromTs(this.upstreamOptions(), start, signal)) {
        switch (e.kind) {
          case 'rows': {
            const pipeline = this.pipelineFor(e.table);
            this.txnTables.add(this.keyOf.get(e.table)!);
            if (pipeline === undefined) break;
            const version = this.mounter.versionOf(e.table);
            // decoded once, here: a row of a small transaction, while the changefeed holds few rows, travels as it is
            // to the mounter; rows that will wait (a big transaction, a backlog) wait as their compact bytes (see
            // SortedRow), which the mounter decodes
            const compact = pending.size >= COMPACT_AFTER_ROWS || this.quota.used >= this.compactAboveBytes;
            const bytes = rowChangeBytes(Math.ceil(e.bytes / e.rows.length));
            for (let i = 0; i < e.rows.length; i++) {
              const row = e.rows[i];
              const payload: SortedRow = compact ? encodeRow(e.change, version, row.before, row.after) : { kind: e.change, mapVersion: version, commitTime: 0, before: row.before, after: row.after, bytes };
              // add waits only when the transaction spills and its writes must catch up
              const spilling = pending.add({ pipeline, seq: e.seq + i, payload });
              if (spilling !== undefined) await spilling;
            }
            break;
          }
          case 'commit':
            if (target !== 0n && e.ts > target) {
              this.finishAt(target, e.commitTime);
              return;
            }
            if (this.ignoredTs.has(e.ts)) {
              await pending.reset();
              this.log.info('transaction skipped ([filter] ignore-txn-start-ts)', { ts: String(e.ts) });
            } else {
              await pending.drain((row) => {
                const p = row.pipeline;
                if (p.closed || p.awaitingRestart || e.ts <= p.floorTs) return undefined;
                setRowCommitTime(row.payload, e.commitTime);
                p.sorter.add({ ts: e.ts, seq: row.seq, payload: row.payload });
                touched.add(p);
                // a huge transaction: let the sorter's spill writes catch up as it goes
                return (row.seq & 0x3ff) === 0x3ff ? p.sorter.writable() : undefined;
              });
            }
            this.txnTables.clear();
            this.stage?.committed(touched);
            this.advanceReader(e.ts, e.commitTime);
            // a slow sink makes the sorters spill; wait while the disk catches up, so memory stays bounded
            for (const pipeline of touched) await pipeline.sorter.writable();
            touched.clear();
            if (target !== 0n && e.ts === target) {
              this.finishAt(target, e.commitTime);
              return;
            }
            break;
          case 'ddl':
            if (target !== 0n && e.ts > target) {
              this.finishAt(target, e.commitTime);
              return;
            }
            // beyond the owner's barrier: tables stop before it until the owner has run it (read again: noted once)
            if (e.ts > this.barrierTs && (this.ddlAhead.length === 0 || e.ts > this.ddlAhead[this.ddlAhead.length - 1].ts)) {
              this.ddlAhead.push({ ts: e.ts, prevTs: this.readerTs });
            }
            // the owner runs DDL at its barrier; here it only moves the position
            this.advanceReader(e.ts, e.commitTime);
            break;
          case 'resolved':
            this.advanceReader(e.ts, e.time);
            break;
          case 'reset':
            // the reader reconnects at the last commit: rows of the unfinished transaction come again
            await pending.reset();
            this.txnTables.clear();
            this.log.warn('upstream connection lost; reading again from the last commit', { ts: String(e.ts), error: e.error.message });
            break;
        }
      }
    } finally {
      await pending.reset().catch(() => undefined);
    }
  }

  private finishAt(target: Ts, time: number): void {
    this.targetReached = true;
    this.advanceReader(target, time);
    this.log.info('reached target-ts', { targetTs: String(target) });
  }

  private advanceReader(ts: Ts, time: number): void {
    if (ts <= this.readerTs) return;
    this.readerTs = ts;
    this.readerTime = time;
    if (this.stage === undefined) return;
    if (this.localBarrier && this.ddlAhead.length === 0) this.stage.barrierMoved(ts);
    this.stage.readerMoved(ts, time);
    this.options.onProgress?.();
  }

  /** The pipeline of a table scheduled here, or undefined. */
  private pipelineFor(map: TableMap): TablePipeline | undefined {
    let key = this.keyOf.get(map);
    if (key === undefined) {
      key = `${map.schema}.${map.table}`;
      this.keyOf.set(map, key);
    }
    const pipeline = this.tables.get(key);
    if (pipeline !== undefined && map.names === undefined) {
      throw new TidemarkError('ErrBinlogRowImageNotFull', `the upstream sent no column names for ${key}: set binlog_row_metadata=FULL on the upstream`);
    }
    return pipeline;
  }

  /** A sorted change, mounted for the sink and counted in the table's stats. */
  private mount(pipeline: TablePipeline, event: SorterEvent<SortedRow>): RowChangedEvent {
    const row = decodedRow(event.payload);
    if (row.kind === 'insert') pipeline.stats.inserts++;
    else if (row.kind === 'update') pipeline.stats.updates++;
    else pipeline.stats.deletes++;
    return this.mounter.mount(pipeline.name, event.ts, event.seq, row);
  }

  /** A plain error from a plugin's call becomes a typed sink error, retryable unless the plugin says otherwise. */
  private sinkError(what: string, error: unknown): TidemarkError {
    if (error instanceof TidemarkError) return error;
    const message = error instanceof Error ? error.message : String(error);
    const retryable = (error as { retryable?: unknown } | null)?.retryable !== false;
    return new TidemarkError(retryable ? 'ErrSinkFailed' : 'ErrSinkRejected', `sink ${redactUri(this.options.sinkUri)} failed in ${what}: ${message}`, { cause: error, retryable });
  }
}
