import { randomUUID } from 'node:crypto';
import type { GlobalReactorState, ChangefeedReactorState } from '../orchestrator/global-state.js';
import { jsonPatch, type DataPatch, type Reactor } from '../orchestrator/reactor.js';
import { changefeedInfoKey, changefeedStatusKey, taskPositionKey } from '../orchestrator/etcd-keys.js';
import { TidemarkError } from '../errors/index.js';
import { FeedStateManager } from './feed-state-manager.js';
import { AdminJobType, type ChangefeedInfo, type ChangefeedStatus, type FeedState } from '../model/changefeed.js';

export type AdminJob =
  | { readonly type: 'pause'; readonly namespace: string; readonly id: string }
  | { readonly type: 'resume'; readonly namespace: string; readonly id: string; readonly overwriteCheckpointTs?: bigint }
  | { readonly type: 'remove'; readonly namespace: string; readonly id: string };

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

  constructor(private readonly captureId: string) {}

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
    for (const cf of state.changefeeds.values()) {
      this.initialise(state, cf);
      this.feedStates.tick(state, cf);
    }
    this.runJobs(state);
    return Promise.resolve();
  }

  private initialise(state: GlobalReactorState, cf: ChangefeedReactorState): void {
    const info = cf.info as ChangefeedInfo | undefined;
    if (info === undefined || cf.status !== undefined) return;
    const startTs = info['start-ts'];
    state.queue([
      jsonPatch<ChangefeedStatus>(changefeedStatusKey(state.clusterId, cf.namespace, cf.id), (old) =>
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
    const cf = state.changefeeds.get(`${job.namespace}/${job.id}`);
    const info = cf?.info as ChangefeedInfo | undefined;
    if (cf === undefined || info === undefined) {
      throw new TidemarkError('ErrChangefeedNotExists', `changefeed ${job.id} does not exist in namespace ${job.namespace}`);
    }
    const { clusterId } = state;
    const infoKey = changefeedInfoKey(clusterId, job.namespace, job.id);
    const statusKey = changefeedStatusKey(clusterId, job.namespace, job.id);
    const current = (s: GlobalReactorState): ChangefeedInfo | undefined =>
      s.changefeeds.get(`${job.namespace}/${job.id}`)?.info as ChangefeedInfo | undefined;

    switch (job.type) {
      case 'pause': {
        if (!PAUSABLE.includes(info.state)) {
          throw new TidemarkError('ErrAdminJobRefused', `cannot pause changefeed ${job.id}: it is ${info.state}; pause applies to ${PAUSABLE.join(', ')}`);
        }
        const epoch = randomUUID();
        state.queue([
          jsonPatch<ChangefeedInfo>(infoKey, (old) => old && { ...old, state: 'stopped', 'admin-job-type': AdminJobType.stop, epoch }),
          jsonPatch<ChangefeedStatus>(statusKey, (old) => old && { ...old, 'admin-job-type': AdminJobType.stop }),
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
          jsonPatch<ChangefeedInfo>(infoKey, (old) =>
            old && { ...old, state: 'normal', 'admin-job-type': AdminJobType.none, error: null, warning: null, epoch, ...(ts === undefined ? {} : { 'start-ts': ts }) },
          ),
          jsonPatch<ChangefeedStatus>(statusKey, (old) =>
            old && { ...old, 'admin-job-type': AdminJobType.none, ...(ts === undefined ? {} : { 'checkpoint-ts': ts, 'resolved-ts': ts, 'min-table-barrier-ts': ts }) },
          ),
        ];
        state.queue(patches);
        return (s) => current(s)?.epoch === epoch;
      }
      case 'remove': {
        const deletions: DataPatch[] = [infoKey, statusKey, ...[...cf.taskPositions.keys()].map((c) => taskPositionKey(clusterId, job.namespace, c, job.id))].map(
          (key) => jsonPatch<unknown>(key, () => undefined),
        );
        state.queue(deletions);
        return (s) => !s.changefeeds.has(`${job.namespace}/${job.id}`);
      }
    }
  }
}
