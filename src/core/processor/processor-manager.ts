import type { GlobalReactorState, ChangefeedReactorState } from '../orchestrator/global-state.js';
import { type Reactor } from '../orchestrator/reactor.js';
import { patchTaskPosition, patchTableSnapshot, deletePatch } from '../orchestrator/records.js';
import { changefeedSnapshotKey, taskPositionKey } from '../orchestrator/etcd-keys.js';
import { compactChunks, type TableSnapshotRecord } from '../snapshot/progress.js';
import { TidemarkError } from '../errors/index.js';
import type { Logger } from '../logger/logger.js';
import { parseStoredReplicaConfig } from '../config/replica-config.js';
import { AdminJobType, type ChangefeedStatus, type RunningError } from '../model/changefeed.js';
import type { SinkRegistry } from '../sink/registry.js';
import { Topics, responseParts, type DispatchTableRequest, type HeartbeatRequest, type HeartbeatResponse, type ProgressPush, type TableProgressReport } from '../p2p/messages.js';
import type { Messenger } from '../p2p/messenger.js';
import { changefeedSchemaStorage, type ChangefeedSchemaStore } from '../schema/schema-store.js';
import { replicaServerId } from '../upstream/resumable-reader.js';
import type { LogService } from '../logservice/log-service.js';
import { Processor } from './processor.js';
import { MAX_POSITION_TABLES } from './progress.js';
import type { TidemarkMetrics } from '../metrics/metrics.js';
import { Upstream } from '../upstream/upstream.js';

export interface ProcessorManagerOptions {
  readonly sinks: SinkRegistry;
  readonly dataDir: string;
  readonly logger: Logger;
  /** Task positions are written at most this often (ms); TiCDC's 50–200 ms window. */
  readonly positionIntervalMs?: number;
  /** Where changefeeds keep their schema storage (upstreams without binlog_row_metadata=FULL). */
  readonly schemaStore?: ChangefeedSchemaStore;
  /** The server's metrics (sink calls are counted per changefeed). */
  readonly metrics?: TidemarkMetrics;
  /** The capture's log service: processors of one upstream share its binlog read. */
  readonly logService?: LogService;
}

interface RunningProcessor {
  /** `namespace/id` of the changefeed. */
  readonly key: string;
  readonly processor: Processor;
  readonly controller: AbortController;
  done: Promise<void>;
  readonly epoch: string;
  failure?: TidemarkError;
  stopping: boolean;
  lastReport: string;
  lastReportAt: number;
  /** The last progress pushed to the owner between heartbeats (see progressMoved). */
  lastPushAt: number;
  lastPushedCheckpoint: bigint;
  pushTimer: NodeJS.Timeout | undefined;
  /** Snapshot progress to write to etcd at the next tick, by table. */
  readonly snapshotWrites: Map<string, TableSnapshotRecord>;
  /** Copies recorded as begun, waiting to see it in etcd, by table. */
  readonly snapshotBegins: Map<string, () => void>;
}

/** Progress goes to the owner between its heartbeats at most this often per processor (ms). */
const PUSH_INTERVAL_MS = 25;

const RUNNABLE = new Set(['normal', 'warning']);

/**
 * The processor manager reactor, one per capture (DESIGN §4). It runs a processor for each changefeed the
 * owner scheduled tables of here (dispatch messages over gRPC), answers the owner's heartbeats with each
 * table's state and progress, closes a processor when its changefeed is paused, fails, finishes or is
 * removed (or has no tables left), and reports progress and errors in its task position key. It also checks
 * that its own capture key is alive: when the key is gone, the session is lost and the capture must restart
 * (TiCDC's CheckCaptureAlive).
 */
export class ProcessorManager implements Reactor<GlobalReactorState> {
  lastTickAt = 0;
  private registered = false;
  readonly processors = new Map<string, RunningProcessor>();
  /** Changefeeds whose processor failed here: not restarted until the owner moved them out of normal/warning. */
  private readonly blocked = new Set<string>();
  private state: GlobalReactorState | undefined;
  /** Set by a graceful stop: the owner moves the tables away and schedules none here. */
  draining = false;

  constructor(
    private readonly captureId: string,
    private readonly options?: ProcessorManagerOptions,
    private readonly messenger?: Messenger,
  ) {
    messenger?.on(Topics.dispatchTable, (from, payload) => this.onDispatch(from, payload as DispatchTableRequest));
    messenger?.on(Topics.heartbeat, (from, payload) => this.onHeartbeat(from, payload as HeartbeatRequest));
  }

  /** Tables replicated or prepared on this capture, over all changefeeds. */
  get tableCount(): number {
    let n = 0;
    for (const r of this.processors.values()) if (!r.stopping) n += r.processor.tables.size + r.processor.progress.unreportedStops;
    return n;
  }

  tick(state: GlobalReactorState): Promise<void> {
    this.state = state;
    const alive = state.captures.has(this.captureId);
    if (alive) this.registered = true;
    else if (this.registered) {
      return Promise.reject(new TidemarkError('ErrCaptureSuicide', `capture ${this.captureId} is no longer registered in etcd`));
    }
    this.lastTickAt = Date.now();
    this.messenger?.prune(new Set(state.captures.keys()));
    if (this.options === undefined) return Promise.resolve();
    for (const [key, running] of this.processors) {
      const cf = state.changefeeds.get(key);
      if (cf === undefined) this.stop(key, running);
      else this.tickChangefeed(state, cf, key, running);
    }
    for (const [key, cf] of state.changefeeds) {
      const info = cf.info;
      if (info !== undefined && !RUNNABLE.has(info.state)) this.blocked.delete(key);
    }
    return Promise.resolve();
  }

  /** Stops every processor and waits for them (the capture's incarnation ends). */
  async close(): Promise<void> {
    for (const [key, running] of this.processors) this.stop(key, running);
    await Promise.all([...this.processors.values()].map((r) => r.done));
  }

  /** The processor of a changefeed on this capture, if it runs here. */
  processorOf(namespace: string, id: string): Processor | undefined {
    const running = this.processors.get(`${namespace}/${id}`);
    return running?.stopping === false ? running.processor : undefined;
  }

  private runnable(cf: ChangefeedReactorState | undefined): boolean {
    const info = cf?.info;
    const status = cf?.status;
    return info !== undefined && status !== undefined && RUNNABLE.has(info.state) && status['admin-job-type'] === AdminJobType.none;
  }

  private tickChangefeed(state: GlobalReactorState, cf: ChangefeedReactorState, key: string, running: RunningProcessor): void {
    const info = cf.info;
    const status = cf.status;
    this.writeSnapshotProgress(state, cf, running, status);
    const positionKey = taskPositionKey(state.clusterId, cf.namespace, this.captureId, cf.id);
    if (running.failure !== undefined && !running.stopping) {
      const error: RunningError = { ...running.failure.toJSON(), time: new Date().toISOString(), addr: this.captureId };
      state.queue([patchTaskPosition(positionKey, (old) => ({ ...(old ?? { 'checkpoint-ts': status?.['checkpoint-ts'] ?? '0', 'resolved-ts': status?.['checkpoint-ts'] ?? '0' }), error }))]);
      this.blocked.add(key);
      this.stop(key, running);
      return;
    }
    if (!this.runnable(cf) || running.epoch !== info?.epoch) {
      if (!running.stopping) {
        this.stop(key, running);
        if (cf.taskPositions.has(this.captureId)) state.queue([deletePatch(positionKey)]);
      }
      return;
    }
    if (running.stopping) return;
    if (status !== undefined) {
      running.processor.setBarrier(BigInt(status['min-table-barrier-ts']));
    }
    this.report(state, running, positionKey);
  }

  /**
   * Writes the snapshot progress the processor kept since the last tick. A record is only replaced by one that
   * copied at least as many rows (a late write of a capture the table moved away from does not undo progress)
   * and never once done; chunks before the changefeed checkpoint are merged (no reader goes back before it).
   */
  private writeSnapshotProgress(state: GlobalReactorState, cf: ChangefeedReactorState, running: RunningProcessor, status: ChangefeedStatus | undefined): void {
    for (const [table, resolve] of running.snapshotBegins) {
      const record = cf.snapshots.get(table);
      if (record === undefined || record.state !== 'pending') {
        running.snapshotBegins.delete(table);
        resolve();
      }
    }
    if (running.snapshotWrites.size === 0) return;
    const checkpoint = BigInt(status?.['checkpoint-ts'] ?? '0');
    for (const [table, record] of running.snapshotWrites) {
      const compacted: TableSnapshotRecord = { ...record, chunks: compactChunks(record.chunks, checkpoint) };
      state.queue([
        patchTableSnapshot(changefeedSnapshotKey(state.clusterId, cf.namespace, cf.id, table), (old) => {
          if (old === undefined || old.state === 'done' || old.rows > record.rows) return old;
          return compacted;
        }),
      ]);
    }
    running.snapshotWrites.clear();
  }

  /**
   * Writes the task position (for `cdc top`, the API and the metrics; the owner takes progress from heartbeats and
   * pushes). Its table list (at most MAX_POSITION_TABLES, the furthest behind) costs O(tables) to choose, so it is
   * written at most every 100 ms per 200 tables here (every second from 2,000 tables on), and built only when the
   * progress moved or a second passed.
   */
  private report(state: GlobalReactorState, running: RunningProcessor, positionKey: string): void {
    const now = Date.now();
    const { processor } = running;
    const tables = processor.tables.size;
    const interval = (this.options?.positionIntervalMs ?? 100) * Math.max(1, Math.min(tables, 10 * MAX_POSITION_TABLES) / MAX_POSITION_TABLES);
    if (now - running.lastReportAt < interval) return;
    const floors = processor.floors();
    const progress = `${floors.checkpointTs}/${floors.resolvedTs}/${tables}`;
    if (progress === running.lastReport && now - running.lastReportAt < 1000) return;
    const position = processor.progress.position(now, floors);
    running.lastReport = progress;
    running.lastReportAt = now;
    state.queue([patchTaskPosition(positionKey, (old) => ({ ...position, error: old?.error ?? null, warning: old?.warning ?? null }))]);
  }

  private onDispatch(from: string, request: DispatchTableRequest): void {
    const state = this.state;
    if (state === undefined || this.options === undefined) return;
    if (state.ownerCaptureId !== undefined && from !== state.ownerCaptureId) {
      this.options.logger.warn('ignoring a dispatch from a capture that is not the owner', { from, table: request.table });
      return;
    }
    const key = request.changefeed;
    let running = this.processors.get(key);
    if (request.action === 'remove') {
      if (running === undefined || running.stopping) return;
      running.processor.removeTable(request.table);
      return;
    }
    if (running?.stopping === true) {
      // the old processor is still closing; the owner sends the add again on its next round
      return;
    }
    if (running === undefined) {
      const cf = state.changefeeds.get(key);
      if (cf === undefined || !this.runnable(cf) || this.blocked.has(key)) return;
      running = this.start(state, cf, key);
      if (running === undefined) return;
    }
    running.processor.addTable(request.table, BigInt(request.checkpointTs), request.isSecondary, request.tableId);
  }

  private onHeartbeat(from: string, request: HeartbeatRequest): void {
    const state = this.state;
    const owner = state?.captures.get(from);
    if (state === undefined || owner === undefined || this.messenger === undefined) return;
    const tables: TableProgressReport[] = [];
    const processors: Record<string, string> = {};
    const delta: string[] = [];
    for (const changefeed of request.changefeeds) {
      const running = this.processors.get(changefeed);
      if (running !== undefined && !running.stopping) {
        // an owner that names no `full` list wants every table (an older version)
        const reports = running.processor.progress.reports(request.full === undefined || request.full.includes(changefeed));
        for (const r of reports.tables) tables.push(r);
        if (!reports.full) delta.push(changefeed);
        processors[changefeed] = running.processor.incarnation;
      }
    }
    const response: HeartbeatResponse = { changefeeds: request.changefeeds, delta, tables, draining: this.draining, processors };
    for (const part of responseParts(response)) this.messenger.send(owner, Topics.heartbeatResponse, part);
  }

  /**
   * A processor's checkpoint moved: tell the owner now rather than at its next heartbeat (every 250 ms), at most
   * every PUSH_INTERVAL_MS, so the changefeed checkpoint follows the sink's acknowledgements. The message is the
   * processor's floor (its minimum checkpoint and resolved-ts), the same size for 1 table or 100,000: a push that
   * listed every table, 40 times a second, queued up faster than the owner read it with a few hundred tables
   * (the changefeed checkpoint fell behind by seconds, more every second). Per-table states go with heartbeats.
   */
  private progressMoved(running: RunningProcessor): void {
    if (running.pushTimer !== undefined || running.stopping) return;
    const wait = Math.max(0, running.lastPushAt + PUSH_INTERVAL_MS - Date.now());
    running.pushTimer = setTimeout(() => {
      running.pushTimer = undefined;
      this.pushProgress(running);
    }, wait);
  }

  private pushProgress(running: RunningProcessor): void {
    const state = this.state;
    const owner = state?.ownerCaptureId === undefined ? undefined : state.captures.get(state.ownerCaptureId);
    if (running.stopping || owner === undefined || this.messenger === undefined) return;
    const { processor } = running;
    const { checkpointTs: checkpoint, checkpointTime: time, resolvedTs } = processor.floors();
    if (checkpoint <= running.lastPushedCheckpoint) return;
    running.lastPushedCheckpoint = checkpoint;
    running.lastPushAt = Date.now();
    const push: ProgressPush = { changefeed: running.key, processor: processor.incarnation, checkpointTs: String(checkpoint), resolvedTs: String(resolvedTs), ...(time > 0 ? { checkpointTime: time } : {}) };
    this.messenger.send(owner, Topics.progress, push);
  }

  private start(state: GlobalReactorState, cf: ChangefeedReactorState, key: string): RunningProcessor | undefined {
    const options = this.options!;
    const { info, status } = cf;
    if (info === undefined || status === undefined) return undefined;
    const log = options.logger.with({ changefeed: cf.id });
    const upstream = state.upstreams.get(info['upstream-id']);
    const controller = new AbortController();
    let processor: Processor;
    /** The processor's entry once it exists, for its progress callback. */
    const entry: { running?: RunningProcessor } = {};
    try {
      if (upstream === undefined) throw new TidemarkError('ErrUpstreamMissing', `changefeed ${cf.id}: its upstream ${info['upstream-id']} is not registered in etcd`);
      const store = options.schemaStore;
      processor = new Processor({
        namespace: cf.namespace,
        changefeedId: cf.id,
        captureId: this.captureId,
        sinkUri: info['sink-uri'],
        config: parseStoredReplicaConfig(info.config, `changefeed ${cf.id} config`),
        targetTs: BigInt(info['target-ts']),
        barrierTs: BigInt(status['min-table-barrier-ts']),
        upstream: Upstream.of(upstream.uri),
        basename: upstream.basename,
        loadSink: () => options.sinks.endpoint(info['sink-uri']),
        loadDispatchers: () => options.sinks.dispatchers(),
        dataDir: options.dataDir,
        logger: log,
        ...(options.metrics === undefined ? {} : { metrics: options.metrics.changefeed(cf.namespace, cf.id) }),
        serverId: replicaServerId(`${this.captureId}/${key}`),
        ...(options.logService === undefined ? {} : { logService: options.logService }),
        onProgress: () => {
          if (entry.running !== undefined) this.progressMoved(entry.running);
        },
        snapshots: {
          get: (table) => this.state?.changefeeds.get(key)?.snapshots.get(table),
          put: (table, record) => entry.running?.snapshotWrites.set(table, record),
          begin: (table, record, signal) =>
            new Promise<void>((resolve, reject) => {
              const running = entry.running;
              const stopped = new TidemarkError('ErrAborted', 'processor stopped before the snapshot began');
              if (running === undefined || signal.aborted) return reject(stopped);
              const onAbort = (): void => {
                running.snapshotBegins.delete(table);
                reject(stopped);
              };
              signal.addEventListener('abort', onAbort, { once: true });
              running.snapshotWrites.set(table, record);
              running.snapshotBegins.set(table, () => {
                signal.removeEventListener('abort', onAbort);
                resolve();
              });
            }),
        },
        ...(store === undefined ? {} : { loadSchema: (signal: AbortSignal) => changefeedSchemaStorage(store, { namespace: cf.namespace, id: cf.id, upstream: Upstream.of(upstream.uri) }, signal, log) }),
      });
    } catch (error) {
      log.warn('cannot start the processor', { error });
      return undefined;
    }
    const started: RunningProcessor = { key, processor, controller, epoch: info.epoch, stopping: false, lastReport: '', lastReportAt: 0, lastPushAt: 0, lastPushedCheckpoint: 0n, pushTimer: undefined, snapshotWrites: new Map(), snapshotBegins: new Map(), done: Promise.resolve() };
    entry.running = started;
    started.done = processor.run(controller.signal).catch((error: unknown) => {
      if (controller.signal.aborted) return;
      started.failure = error instanceof TidemarkError ? error : new TidemarkError('ErrSinkFailed', error instanceof Error ? error.message : String(error), { cause: error });
      log.warn('processor failed', { error: started.failure });
    });
    this.processors.set(key, started);
    return started;
  }

  private stop(key: string, running: RunningProcessor): void {
    if (running.stopping) return;
    running.stopping = true;
    clearTimeout(running.pushTimer);
    running.pushTimer = undefined;
    running.controller.abort(new TidemarkError('ErrAborted', 'processor closed'));
    void running.done.finally(() => {
      if (this.processors.get(key) === running) this.processors.delete(key);
    });
  }
}
