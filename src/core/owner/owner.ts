import { randomUUID } from 'node:crypto';
import type { GlobalReactorState, ChangefeedReactorState } from '../orchestrator/global-state.js';
import { type DataPatch, type Reactor } from '../orchestrator/reactor.js';
import { patchChangefeedInfo, patchChangefeedStatus, patchTaskPosition, deletePatch } from '../orchestrator/records.js';
import { changefeedInfoKey, changefeedSnapshotKey, changefeedStatusKey, taskPositionKey } from '../orchestrator/etcd-keys.js';
import { TidemarkError } from '../errors/index.js';
import { FeedStateManager } from './feed-state-manager.js';
import type { ChangefeedProgress } from './changefeed-runtime.js';
import { AdminJobType, type ChangefeedInfo, type FeedState, type RunningError } from '../model/changefeed.js';
import type { Logger } from '../logger/logger.js';
import type { SinkRegistry } from '../sink/registry.js';
import { parseStoredReplicaConfig } from '../config/replica-config.js';
import { Topics, type HeartbeatResponse, type ProgressPush } from '../p2p/messages.js';
import type { Messenger } from '../p2p/messenger.js';
import { ChangefeedRuntime } from './changefeed-runtime.js';
import type { ChangefeedSchemaStore } from '../schema/schema-store.js';
import type { TidemarkMetrics } from '../metrics/metrics.js';
import { Upstream } from '../upstream/upstream.js';
import type { LogService } from '../logservice/log-service.js';

/** What the owner needs to run changefeeds (without it, it only keeps their records: tests of the cluster alone). */
export interface OwnerRuntimeOptions {
  readonly messenger: Messenger;
  readonly sinks: SinkRegistry;
  readonly logger: Logger;
  /** Where changefeeds keep their schema storage (DESIGN §5; every changefeed has one). */
  readonly schemaStore?: ChangefeedSchemaStore;
  /** The server's metrics (the scheduler's moves per changefeed). */
  readonly metrics?: TidemarkMetrics;
  /** The owner's capture's log service (the DDL readers share its binlog reads). */
  readonly logService?: LogService;
}

export type AdminJob =
  | { readonly type: 'pause'; readonly namespace: string; readonly id: string }
  | { readonly type: 'resume'; readonly namespace: string; readonly id: string; readonly overwriteCheckpointTs?: bigint }
  | { readonly type: 'remove'; readonly namespace: string; readonly id: string }
  | { readonly type: 'drain'; readonly captureId: string; readonly namespace: string; readonly id: string };

interface QueuedJob {
  readonly job: AdminJob;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
  /** Set once the patches are queued: the job is done when the mirrored state satisfies it. */
  done?: (state: GlobalReactorState) => boolean;
  readonly deadline: number;
}

/** Admin jobs accepted per state (TiCDC's feed state manager). */
const PAUSABLE: readonly FeedState[] = ['normal', 'warning', 'pending'];
const RESUMABLE: readonly FeedState[] = ['failed', 'stopped', 'finished'];

/**
 * The owner reactor (DESIGN §4): runs on the elected capture only. It initialises new changefeeds (their
 * status key at start-ts) and applies admin jobs (pause, resume, remove) as etcd patches, one changefeed
 * at a time, so every write to a changefeed's state is serialised through the owner. Table scheduling,
 * DDL, barriers and checkpoint aggregation come with the changefeed and scheduling issues.
 */
export class Owner implements Reactor<GlobalReactorState> {
  lastTickAt = 0;
  private readonly jobs: QueuedJob[] = [];
  private readonly feedStates = new FeedStateManager();
  readonly runtimes = new Map<string, { runtime: ChangefeedRuntime; epoch: string }>();
  /** Captures that report draining in their heartbeats, or that the drain API named. */
  private readonly draining = new Set<string>();
  private readonly drainRequested = new Set<string>();
  private closed = false;

  constructor(
    private readonly captureId: string,
    private readonly runtime?: OwnerRuntimeOptions,
  ) {
    runtime?.messenger.on(Topics.heartbeatResponse, (from, payload) => {
      if (this.closed) return;
      const response = payload as HeartbeatResponse;
      if (response.draining) this.draining.add(from);
      else this.draining.delete(from);
      for (const { runtime: r } of this.runtimes.values()) {
        // a response lists all tables of the changefeeds it covers only: to another changefeed it says nothing
        if (response.changefeeds === undefined || response.changefeeds.includes(r.key)) r.onHeartbeatResponse(from, response.tables, response.processors?.[r.key], response.delta?.includes(r.key) === true, response.continued?.includes(r.key) === true);
      }
    });
    runtime?.messenger.on(Topics.progress, (from, payload) => {
      if (this.closed) return;
      const push = payload as ProgressPush;
      for (const { runtime: r } of this.runtimes.values()) if (r.key === push.changefeed) r.onProgress(from, push);
    });
  }

  /** Stops the owner's changefeed tasks (DDL pullers, DDL sinks): this capture is no longer the owner. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.runtimes.values()].map(({ runtime }) => runtime.close()));
    this.runtimes.clear();
  }

  /** Tables of every changefeed scheduled on a capture (primaries), for the drain API. */
  tablesOn(captureId: string): number {
    let n = 0;
    for (const { runtime } of this.runtimes.values()) n += runtime.scheduler.loads().get(captureId) ?? 0;
    return n;
  }

  /** Queues an admin job; resolves once its effect is visible in etcd, rejects if the state forbids it. */
  enqueue(job: AdminJob, timeoutMs = 15_000): Promise<void> {
    return new Promise((resolve, reject) => this.jobs.push({ job, resolve, reject, deadline: Date.now() + timeoutMs }));
  }

  /** Fails every queued job: called when this capture stops being the owner. */
  abandonJobs(reason: Error): void {
    for (const queued of this.jobs.splice(0)) queued.reject(reason);
  }

  tick(state: GlobalReactorState): Promise<void> {
    if (state.ownerCaptureId !== this.captureId) {
      return Promise.reject(new TidemarkError('ErrNotOwner', `capture ${this.captureId} is no longer the owner`));
    }
    this.lastTickAt = Date.now();
    for (const id of this.drainRequested) if (!state.captures.has(id)) this.drainRequested.delete(id);
    for (const [key, cf] of state.changefeeds) {
      this.dropStalePositions(state, cf);
      this.initialise(state, cf);
      const progress = this.tickRuntime(state, cf, key);
      this.feedStates.tick(state, cf, progress);
    }
    for (const [key, { runtime }] of this.runtimes) {
      if (!state.changefeeds.has(key)) {
        this.runtimes.delete(key);
        // removed: its schema storage goes once the runtime can no longer write it
        void runtime.close().then(() => this.forgetSchema(key));
      }
    }
    this.runJobs(state);
    return Promise.resolve();
  }

  /** Runs the owner's half of a running changefeed (scheduling, DDL, barrier) and returns its progress. */
  private tickRuntime(state: GlobalReactorState, cf: ChangefeedReactorState, key: string): ChangefeedProgress | undefined {
    if (this.runtime === undefined) return undefined;
    const info = cf.info;
    const status = cf.status;
    const runnable = info !== undefined && status !== undefined && (info.state === 'normal' || info.state === 'warning') && status['admin-job-type'] === AdminJobType.none;
    let entry = this.runtimes.get(key);
    if (entry !== undefined && (!runnable || entry.epoch !== info?.epoch)) {
      this.runtimes.delete(key);
      void entry.runtime.close();
      entry = undefined;
    }
    if (!runnable) return undefined;
    if (entry === undefined) {
      const upstream = state.upstreams.get(info['upstream-id']);
      if (upstream === undefined) return undefined;
      let config;
      let source: Upstream;
      try {
        config = parseStoredReplicaConfig(info.config, `changefeed ${cf.id} config`);
        source = Upstream.of(upstream.uri);
      } catch {
        return undefined;
      }
      const sinks = this.runtime.sinks;
      const runtime = new ChangefeedRuntime({
        namespace: cf.namespace,
        id: cf.id,
        sinkUri: info['sink-uri'],
        config,
        startTs: BigInt(status['checkpoint-ts']),
        targetTs: BigInt(info['target-ts']),
        upstream: source,
        basename: upstream.basename,
        loadSink: () => sinks.endpoint(info['sink-uri']),
        loadDispatchers: () => sinks.dispatchers(),
        ownerCaptureId: this.captureId,
        messenger: this.runtime.messenger,
        logger: this.runtime.logger,
        ...(this.runtime.schemaStore === undefined ? {} : { schemaStore: this.runtime.schemaStore }),
        ...(this.runtime.logService === undefined ? {} : { logService: this.runtime.logService }),
        ...(this.runtime.metrics === undefined ? {} : { metrics: this.runtime.metrics.changefeed(cf.namespace, cf.id) }),
      });
      runtime.start();
      entry = { runtime, epoch: info.epoch };
      this.runtimes.set(key, entry);
    }
    const { runtime } = entry;
    // checkpoint wall times come with the task positions
    for (const position of cf.taskPositions.values()) {
      for (const t of position.tables ?? []) {
        runtime.noteCheckpointTime(t.table, BigInt(t.checkpoint_ts), t.checkpoint_time);
      }
    }
    const draining = new Set([...this.draining, ...this.drainRequested]);
    const progress = runtime.tick(state, BigInt(status['checkpoint-ts']), draining, this.ownerRevision(state));
    if (runtime.error !== undefined) {
      const error: RunningError = { ...runtime.error.toJSON(), time: new Date().toISOString(), addr: this.captureId };
      runtime.error = undefined;
      state.queue([patchTaskPosition(taskPositionKey(state.clusterId, cf.namespace, this.captureId, cf.id), (old) => ({ ...(old ?? { 'checkpoint-ts': status['checkpoint-ts'], 'resolved-ts': status['checkpoint-ts'] }), error }))]);
    }
    return progress;
  }

  /** Deletes a removed changefeed's schema storage from etcd (a failure only leaves it behind: logged). */
  private async forgetSchema(key: string): Promise<void> {
    const store = this.runtime?.schemaStore;
    if (store === undefined) return;
    const slash = key.indexOf('/');
    try {
      await store.remove(key.slice(0, slash), key.slice(slash + 1));
    } catch (error) {
      this.runtime?.logger.warn('could not delete the schema storage of a removed changefeed', { changefeed: key, error });
    }
  }

  private ownerRevision(state: GlobalReactorState): bigint | undefined {
    for (const candidate of state.ownerCandidates.values()) if (candidate.captureId === this.captureId) return candidate.createRevision;
    return undefined;
  }

  /** Task positions of captures that are gone would hold the changefeed checkpoint back forever. */
  private dropStalePositions(state: GlobalReactorState, cf: ChangefeedReactorState): void {
    for (const captureId of cf.taskPositions.keys()) {
      if (!state.captures.has(captureId)) state.queue([deletePatch(taskPositionKey(state.clusterId, cf.namespace, captureId, cf.id))]);
    }
  }

  private initialise(state: GlobalReactorState, cf: ChangefeedReactorState): void {
    const info = cf.info;
    if (info === undefined || cf.status !== undefined) return;
    const startTs = info['start-ts'];
    state.queue([
      patchChangefeedStatus(changefeedStatusKey(state.clusterId, cf.namespace, cf.id), (old) =>
        old ?? { 'checkpoint-ts': startTs, 'resolved-ts': startTs, 'min-table-barrier-ts': startTs, 'admin-job-type': info['admin-job-type'] },
      ),
    ]);
  }

  private runJobs(state: GlobalReactorState): void {
    const now = Date.now();
    for (let i = 0; i < this.jobs.length; i++) {
      const queued = this.jobs[i];
      const finish = (error?: Error): void => {
        this.jobs.splice(i--, 1);
        if (error === undefined) queued.resolve();
        else queued.reject(error);
      };
      if (queued.done !== undefined) {
        if (queued.done(state)) finish();
        else if (now > queued.deadline) finish(new TidemarkError('ErrTimeout', `${queued.job.type} of changefeed ${queued.job.id} was not applied in time`));
        continue;
      }
      try {
        queued.done = this.apply(state, queued.job);
      } catch (error) {
        finish(error as Error);
      }
    }
  }

  /** Queues the patches of one job and returns the condition that says it took effect. */
  private apply(state: GlobalReactorState, job: AdminJob): (s: GlobalReactorState) => boolean {
    if (job.type === 'drain') {
      if (!state.captures.has(job.captureId)) throw new TidemarkError('ErrCaptureNotExist', `capture ${job.captureId} does not exist`);
      if (job.captureId === this.captureId) throw new TidemarkError('ErrAdminJobRefused', `cannot drain capture ${job.captureId}: it is the owner; stop it (SIGTERM) to hand ownership over first`);
      if (state.captures.size <= 1) throw new TidemarkError('ErrAdminJobRefused', `cannot drain capture ${job.captureId}: it is the only capture; its tables have nowhere to go`);
      this.drainRequested.add(job.captureId);
      return () => true;
    }
    const cf = state.changefeeds.get(`${job.namespace}/${job.id}`);
    const info = cf?.info;
    if (cf === undefined || info === undefined) {
      throw new TidemarkError('ErrChangefeedNotExists', `changefeed ${job.id} does not exist in namespace ${job.namespace}`);
    }
    const { clusterId } = state;
    const infoKey = changefeedInfoKey(clusterId, job.namespace, job.id);
    const statusKey = changefeedStatusKey(clusterId, job.namespace, job.id);
    const current = (s: GlobalReactorState): ChangefeedInfo | undefined =>
      s.changefeeds.get(`${job.namespace}/${job.id}`)?.info;

    switch (job.type) {
      case 'pause': {
        if (!PAUSABLE.includes(info.state)) {
          throw new TidemarkError('ErrAdminJobRefused', `cannot pause changefeed ${job.id}: it is ${info.state}; pause applies to ${PAUSABLE.join(', ')}`);
        }
        const epoch = randomUUID();
        state.queue([
          patchChangefeedInfo(infoKey, (old) => old && { ...old, state: 'stopped', 'admin-job-type': AdminJobType.stop, epoch }),
          patchChangefeedStatus(statusKey, (old) => old && { ...old, 'admin-job-type': AdminJobType.stop }),
        ]);
        return (s) => current(s)?.epoch === epoch;
      }
      case 'resume': {
        if (!RESUMABLE.includes(info.state)) {
          throw new TidemarkError('ErrAdminJobRefused', `cannot resume changefeed ${job.id}: it is ${info.state}; resume applies to ${RESUMABLE.join(', ')}`);
        }
        const epoch = randomUUID();
        const ts = job.overwriteCheckpointTs?.toString();
        const patches: DataPatch[] = [
          patchChangefeedInfo(infoKey, (old) =>
            old && { ...old, state: 'normal', 'admin-job-type': AdminJobType.none, error: null, warning: null, epoch, ...(ts === undefined ? {} : { 'start-ts': ts }) },
          ),
          patchChangefeedStatus(statusKey, (old) =>
            old && { ...old, 'admin-job-type': AdminJobType.none, ...(ts === undefined ? {} : { 'checkpoint-ts': ts, 'resolved-ts': ts, 'min-table-barrier-ts': ts }) },
          ),
        ];
        state.queue(patches);
        return (s) => current(s)?.epoch === epoch;
      }
      case 'remove': {
        const deletions: DataPatch[] = [infoKey, statusKey, ...[...cf.taskPositions.keys()].map((c) => taskPositionKey(clusterId, job.namespace, c, job.id))].map(
          (key) => deletePatch(key),
        );
        state.queue(deletions);
        // the snapshot's progress keys go too, in groups an etcd transaction takes (128 operations by default)
        const snapshotKeys = [...cf.snapshots.keys()].map((table) => changefeedSnapshotKey(clusterId, job.namespace, job.id, table));
        for (let i = 0; i < snapshotKeys.length; i += 100) state.queue(snapshotKeys.slice(i, i + 100).map((key) => deletePatch(key)));
        // a changefeed that runs here loses its schema storage when its runtime has closed (tick)
        if (!this.runtimes.has(`${job.namespace}/${job.id}`)) void this.forgetSchema(`${job.namespace}/${job.id}`);
        return (s) => !s.changefeeds.has(`${job.namespace}/${job.id}`);
      }
    }
  }
}
