import { join } from 'node:path';
import { TidemarkError, isAbortError } from '../errors/index.js';
import { Notifier } from '../lifecycle/abortable.js';
import type { Logger } from '../logger/logger.js';
import type { ReplicaConfig } from '../config/replica-config.js';
import { redactUri } from '../config/uri.js';
import { TableFilter } from '../config/table-filter.js';
import { formatCoordinate } from '../model/ts.js';
import type { TaskPosition } from '../model/task-position.js';
import type { TableProgress } from '../server/table-progress.js';
import type { TableProgressReport } from '../p2p/messages.js';
import type { PartitionDispatcherFactory, RowChangedEvent, Sink, SinkFactory, TableName, Ts } from '../sink/api.js';
import { MemoryQuota } from '../pipeline/sorter/memory-quota.js';
import { SpillStore } from '../pipeline/sorter/spill-store.js';
import { TableSorter, type SorterEvent } from '../pipeline/sorter/table-sorter.js';
import { decodeRow, encodeRow, setCommitTime } from '../pipeline/row-codec.js';
import { columnsOf } from '../pipeline/mounter/index.js';
import type { TableMap } from '../upstream/events.js';
import type { SchemaStorage } from '../schema/schema-storage.js';
import { readerOptionsFor, readFromTs } from '../upstream/resumable-reader.js';
import { TablePipeline } from './table-pipeline.js';
import { TransactionBuffer } from './transaction-buffer.js';

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
}

/** Rows per `writeRows` call (for a sink with `transactionAtomicity: 'table'`, at least to the end of the transaction). */
const WRITE_BATCH = 1024;
/**
 * To a sink with table atomicity, one transaction's rows of one table go in one call up to this many rows (and
 * half the memory quota, which the rows held for it take from); a bigger transaction is handed over in parts.
 */
const MAX_TXN_BATCH = 65_536;
/** Rough bytes of a mounted row beyond its encoded payload (objects, arrays, column list references). */
const MOUNTED_ROW_OVERHEAD = 96;
/** How often the sink loop looks for new resolved-ts when not woken (ms). */
const SINK_LOOP_MS = 50;
/** Tables listed in the task position (for `cdc top` and the API); beyond it, those furthest behind. */
const MAX_POSITION_TABLES = 2000;

/**
 * The part of a changefeed that runs on one capture (DESIGN §4, §5): the table pipelines of the tables the
 * owner scheduled here (puller → sorter → mounter → table sink), fed by one binlog reader. Two loops:
 *
 * - the reader starts at the lowest checkpoint of its tables and reads transactions; each row change goes
 *   into its table's sorter once the commit gives its ts, unless the table already has it (its `floorTs`:
 *   a table added with a checkpoint behind the reader makes the reader start again from there, and the
 *   tables that were already here skip what they have). Resolved-ts moves on commits and heartbeats.
 * - the sink loop takes min(resolved-ts, the owner's barrier-ts), drains every replicating table's sorter
 *   up to it into `Sink.writeRows` in commit order, `flush`es, and only then moves the tables' checkpoints.
 *
 * DDL runs on the owner (the barrier stops every table at the ts before it); rows after an ALTER are mounted
 * with the new TABLE_MAP (full row metadata), or, without it, with the definition the changefeed's schema
 * storage has at that ts (loaded from etcd, then following the DDL this reader reads). A secondary table (a move in progress) is read and sorted but
 * not written until it is promoted with the old capture's final checkpoint. DESIGN §1's invariants are
 * checked after every flush; a broken one stops the processor with a non-retryable error.
 */
export class Processor {
  /** The reader's position: every change with ts ≤ it has been read (for the tables it feeds). */
  readerTs: Ts = 0n;
  readerTime = 0;
  barrierTs: Ts;
  /** Set when reading stopped at target-ts. */
  targetReached = false;
  readonly tables = new Map<string, TablePipeline>();
  /** Tables removed since the last report: reported once as stopped, with their final checkpoint. */
  private readonly stopped = new Map<string, TableProgressReport>();
  readonly quota: MemoryQuota;
  private sink: Sink | undefined;
  private readonly wake = new Notifier();
  private readonly tableAdded = new Notifier();
  private readonly keyOf = new WeakMap<TableMap, string>();
  private readonly mapVersions = new Map<TableMap, number>();
  private readonly mapsByVersion = new Map<number, TableMap>();
  private nextTableId = 1;
  private store: SpillStore | undefined;
  /** The changefeed's schema storage, when the upstream needs one; it follows the DDL this reader reads. */
  private schema: SchemaStorage | undefined;
  private restart: AbortController | undefined;
  /** Serialises calls into the sink. */
  private sinkChain: Promise<unknown> = Promise.resolve();
  private readonly log: Logger;
  /** `[filter] ignore-txn-start-ts`: a MySQL transaction has no start ts; its commit ts (binlog coordinate) is what is matched. */
  private readonly ignoredTs: ReadonlySet<Ts>;
  private started = false;
  private pendingAdds: [string, Ts, boolean, number][] = [];
  /** Tables with rows in the transaction being read (member or not), so a table added mid-transaction is read again. */
  private readonly txnTables = new Set<string>();

  constructor(private readonly options: ProcessorOptions) {
    this.barrierTs = options.barrierTs;
    this.quota = new MemoryQuota(options.config['memory-quota']);
    this.log = options.logger.with({ changefeed: options.changefeedId });
    this.ignoredTs = new Set(options.config.filter['ignore-txn-start-ts'].map((t) => BigInt(t)));
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
      this.wake.wake();
    }
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
      }
      existing.ownerTableId = ownerTableId;
      return;
    }
    const dot = qualified.indexOf('.');
    const tableId = this.nextTableId++;
    const name: TableName = { schema: qualified.slice(0, dot), table: qualified.slice(dot + 1), tableId };
    const pipeline = new TablePipeline(name, new TableSorter(tableId, this.quota, this.store), checkpointTs);
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
    this.wake.wake();
  }

  /**
   * The owner took a table away: the sink loop finishes the round it is in (so everything written is flushed
   * and in the checkpoint), then the table stops; its final checkpoint is reported once with state `stopped`,
   * and the capture taking it over starts exactly there.
   */
  removeTable(qualified: string): void {
    const pipeline = this.tables.get(qualified);
    if (pipeline === undefined || pipeline.stopRequested) return;
    pipeline.stopRequested = true;
    if (this.sink === undefined) void this.finishRemoval(pipeline);
    this.wake.wake();
  }

  private async finishRemoval(pipeline: TablePipeline): Promise<void> {
    if (this.tables.get(pipeline.key) !== pipeline) return;
    this.tables.delete(pipeline.key);
    pipeline.closed = true;
    this.stopped.set(pipeline.key, this.report(pipeline, 'stopped'));
    await pipeline.sorter.close();
    this.log.info('table removed', { table: pipeline.key, checkpointTs: String(pipeline.checkpointTs) });
  }

  /** Tables stopped here whose final checkpoint the owner has not been told yet (a draining capture waits for them). */
  get unreportedStops(): number {
    return this.stopped.size;
  }

  /** Every table's state and progress for the owner's heartbeat; stopped tables once. */
  reports(): TableProgressReport[] {
    const out: TableProgressReport[] = [];
    for (const t of this.tables.values()) {
      if (t.state === 'preparing' && this.readerTs >= t.catchUpTs && this.readerTs >= t.floorTs) t.state = 'prepared';
      out.push(this.report(t, t.stopRequested ? 'stopping' : t.state));
    }
    out.push(...this.stopped.values());
    this.stopped.clear();
    return out;
  }

  private report(t: TablePipeline, state: TableProgressReport['state']): TableProgressReport {
    const { namespace, changefeedId } = this.options;
    return { changefeed: `${namespace}/${changefeedId}`, tableId: t.ownerTableId, table: t.key, state, checkpointTs: String(t.checkpointTs), resolvedTs: String(this.resolvedOf(t)) };
  }

  /** A table fed by the current read is resolved up to the reader; one waiting for the next read, up to its floor. */
  private resolvedOf(t: TablePipeline): Ts {
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
      this.sink = await this.sinkCall('create', () =>
        factory.create(uri, factory.parseConfig(uri), {
          signal: inner,
          changefeedId: options.changefeedId,
          logger: this.log.with({ sink: uri.protocol.replace(':', '') }),
          sinkConfig: options.config.sink,
          dispatchers,
        }),
      );
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
      await Promise.all([this.readerLoop(inner).catch(fail), this.sinkLoop(inner).catch(fail)]);
      if (first !== undefined && !signal.aborted) throw first;
    } finally {
      stop.abort(new TidemarkError('ErrAborted', 'processor stopped'));
      for (const table of this.tables.values()) await table.sorter.close().catch(() => undefined);
      await this.store?.destroy().catch((error: unknown) => this.log.warn('could not delete the sorter spill files', { error }));
      await this.sink?.close().catch((error: unknown) => this.log.warn('sink close failed', { error }));
      this.log.info('processor stopped', { checkpointTs: String(this.checkpointTs) });
    }
  }

  /** The task position this processor reports (DESIGN §3 task/position key). */
  position(): TaskPosition {
    const basename = this.options.upstream.basename;
    const now = Date.now();
    const tables: Omit<TableProgress, 'capture_id'>[] = [];
    for (const t of this.tables.values()) {
      t.sampleRate(now);
      const resolved = this.resolvedOf(t);
      tables.push({
        table: t.key,
        state: t.state,
        resolved_ts: String(resolved),
        resolved_coordinate: formatCoordinate(resolved, basename),
        resolved_time: this.readerTime || null,
        checkpoint_ts: String(t.checkpointTs),
        checkpoint_coordinate: formatCoordinate(t.checkpointTs, basename),
        checkpoint_time: t.checkpointTime || null,
        rows_per_second: t.rowsPerSecond,
        spilled_bytes: t.sorter.stats.spilledBytes,
        inserts: t.stats.inserts,
        updates: t.stats.updates,
        deletes: t.stats.deletes,
      });
    }
    tables.sort((a, b) => a.table.localeCompare(b.table));
    // an etcd value stays far below its 1.5 MiB limit: with many tables, the position lists the ones furthest behind
    if (tables.length > MAX_POSITION_TABLES) {
      tables.sort((a, b) => (BigInt(a.checkpoint_ts) < BigInt(b.checkpoint_ts) ? -1 : BigInt(a.checkpoint_ts) > BigInt(b.checkpoint_ts) ? 1 : a.table.localeCompare(b.table)));
      tables.length = MAX_POSITION_TABLES;
      tables.sort((a, b) => a.table.localeCompare(b.table));
    }
    const checkpoint = this.checkpointTs;
    const time = [...this.tables.values()].find((t) => t.checkpointTs === checkpoint)?.checkpointTime ?? 0;
    return {
      'checkpoint-ts': String(checkpoint),
      'resolved-ts': String(this.resolvedTs),
      ...(time === 0 ? {} : { 'checkpoint-time': time }),
      tables,
    };
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
    const pending = new TransactionBuffer(this.quota, () => this.store!);
    const touched = new Set<TablePipeline>();
    try {
      for await (const e of readFromTs(this.upstreamOptions(), start, signal)) {
        switch (e.kind) {
          case 'rows': {
            const pipeline = this.pipelineFor(e.table);
            this.txnTables.add(this.keyOf.get(e.table)!);
            if (pipeline === undefined) break;
            const version = this.versionOf(e.table);
            for (let i = 0; i < e.rows.length; i++) {
              const row = e.rows[i];
              // add waits only when the transaction spills and its writes must catch up
              const spilling = pending.add({ pipeline, seq: e.seq + i, payload: encodeRow(e.change, version, row.before, row.after) });
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
                setCommitTime(row.payload, e.commitTime);
                p.sorter.add({ ts: e.ts, seq: row.seq, payload: row.payload });
                touched.add(p);
                // a huge transaction: let the sorter's spill writes catch up as it goes
                return (row.seq & 0x3ff) === 0x3ff ? p.sorter.writable() : undefined;
              });
            }
            this.txnTables.clear();
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
    this.wake.wake();
  }

  private versionOf(map: TableMap): number {
    let version = this.mapVersions.get(map);
    if (version === undefined) {
      version = this.mapVersions.size + 1;
      this.mapVersions.set(map, version);
      this.mapsByVersion.set(version, map);
    }
    return version;
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

  private async sinkLoop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.wake.wait(SINK_LOOP_MS, signal);
      if (signal.aborted) return;
      // each table up to its own resolved-ts (a table added behind the reader lags until the reader is back),
      // never past the owner's barrier
      for (const t of [...this.tables.values()]) if (t.stopRequested) await this.finishRemoval(t);
      const time = this.readerTime;
      const due: [TablePipeline, Ts][] = [];
      let flushTo = 0n;
      for (const t of this.tables.values()) {
        if (t.state !== 'replicating') continue;
        const resolved = this.resolvedOf(t);
        const upTo = resolved < this.barrierTs ? resolved : this.barrierTs;
        if (t.writtenTs >= upTo) continue;
        due.push([t, upTo]);
        if (upTo > flushTo) flushTo = upTo;
      }
      if (due.length > 0) {
        for (const [pipeline, upTo] of due) {
          // an idle table: nothing to hand over, only its position moves (no sorter round trip per table)
          if (pipeline.sorter.isEmpty) pipeline.writtenTs = upTo;
          else await this.drain(pipeline, upTo, signal);
        }
        await this.sinkCall('flush', () => this.sink!.flush(flushTo));
        this.moveCheckpoints(due, time);
      }
    }
  }

  /**
   * Hands every change of the table with writtenTs < ts ≤ upTo to the sink, in commit order, in batches of
   * about WRITE_BATCH rows; for a sink with `transactionAtomicity: 'table'` they end at a transaction boundary.
   */
  private async drain(pipeline: TablePipeline, upTo: Ts, signal: AbortSignal): Promise<void> {
    if (pipeline.closed) return;
    pipeline.sorter.advanceResolved(upTo);
    let batch: RowChangedEvent[] = [];
    let batchBytes = 0;
    /** Batches complete (at a transaction boundary) and not handed over yet, with the quota bytes they hold. */
    const complete: [RowChangedEvent[], number][] = [];
    const maxBatchBytes = this.quota.limitBytes / 2;
    const wholeTransactions = this.sink!.transactionAtomicity === 'table';
    const ready: SorterEvent[] = [];
    const mount = (event: SorterEvent): void => {
      // a promoted secondary holds changes the old primary already wrote
      if (event.ts <= pipeline.writtenTs) return;
      if (batch.length >= WRITE_BATCH) {
        const last = batch[batch.length - 1].commitTs;
        if (!wholeTransactions || event.ts !== last || batch.length >= MAX_TXN_BATCH || batchBytes >= maxBatchBytes) {
          if (wholeTransactions && event.ts === last) this.log.warn('a transaction is handed to the sink in parts: too many rows in one table for one call (65,536) or for half the memory-quota', { table: pipeline.key, ts: String(last), rows: batch.length, bytes: batchBytes });
          complete.push([batch, batchBytes]);
          batch = [];
          batchBytes = 0;
        }
      }
      // the rows held for the sink count against the memory quota, so the sorters spill instead
      const bytes = event.payload.length + MOUNTED_ROW_OVERHEAD;
      this.quota.force(bytes);
      batchBytes += bytes;
      const row = decodeRow(event.payload);
      const map = this.mapsByVersion.get(row.mapVersion)!;
      batch.push({ table: pipeline.name, commitTs: event.ts, commitTime: row.commitTime, seq: event.seq, kind: row.kind, columns: columnsOf(map), before: row.before, after: row.after });
      if (row.kind === 'insert') pipeline.stats.inserts++;
      else if (row.kind === 'update') pipeline.stats.updates++;
      else pipeline.stats.deletes++;
    };
    try {
      for (;;) {
        // what is ready in memory is taken in batches; next() waits for disk reads and reports the resolved-ts
        ready.length = 0;
        pipeline.sorter.takeReady(WRITE_BATCH, ready);
        if (ready.length > 0) {
          for (const event of ready) mount(event);
        } else {
          let out;
          try {
            out = await pipeline.sorter.next(signal);
          } catch (error) {
            if (pipeline.closed) return; // removed while it was drained: the new capture starts from its checkpoint
            throw error;
          }
          if (out.kind === 'resolved') break;
          mount(out.event);
        }
        while (complete.length > 0) {
          const [rows, held] = complete.shift()!;
          await this.handOver(pipeline, rows, held);
        }
      }
      const [rows, held] = [batch, batchBytes];
      batch = [];
      batchBytes = 0;
      if (rows.length > 0) await this.handOver(pipeline, rows, held);
    } finally {
      // left on the way out (the table was removed, or the sink failed): give the quota back
      this.quota.release(batchBytes + complete.reduce((n, [, held]) => n + held, 0));
    }
    if (!pipeline.closed) pipeline.writtenTs = upTo;
  }

  /** One `writeRows`; the quota the rows held is given back once the sink has them. */
  private async handOver(pipeline: TablePipeline, rows: RowChangedEvent[], heldBytes: number): Promise<void> {
    try {
      await this.sinkCall('writeRows', () => this.sink!.writeRows(pipeline.name, rows));
    } finally {
      this.quota.release(heldBytes);
    }
  }

  private moveCheckpoints(tables: readonly [TablePipeline, Ts][], time: number): void {
    for (const [t, ts] of tables) {
      if (t.closed) continue;
      if (ts < t.checkpointTs) throw new TidemarkError('ErrInvariantBroken', `table ${t.key}: checkpoint-ts would go back from ${t.checkpointTs} to ${ts}`);
      if (ts > this.resolvedOf(t)) throw new TidemarkError('ErrInvariantBroken', `table ${t.key}: checkpoint-ts ${ts} would pass its resolved-ts ${this.resolvedOf(t)}`);
      if (t.writtenTs < ts) throw new TidemarkError('ErrInvariantBroken', `table ${t.key}: checkpoint-ts ${ts} would pass what was written to the sink (${t.writtenTs})`);
      t.checkpointTs = ts;
      t.checkpointTime = time;
    }
  }

  /** Runs one sink call after the previous one; a plain error from a plugin becomes a typed, retryable sink error. */
  private sinkCall<T>(what: string, call: () => Promise<T>): Promise<T> {
    const result = this.sinkChain.then(call).catch((error: unknown) => {
      if (error instanceof TidemarkError) throw error;
      const message = error instanceof Error ? error.message : String(error);
      const retryable = (error as { retryable?: unknown } | null)?.retryable !== false;
      throw new TidemarkError(retryable ? 'ErrSinkFailed' : 'ErrSinkRejected', `sink ${redactUri(this.options.sinkUri)} failed in ${what}: ${message}`, { cause: error, retryable });
    });
    this.sinkChain = result.catch(() => undefined);
    return result;
  }
}
