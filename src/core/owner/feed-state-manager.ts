import type { ChangefeedReactorState, GlobalReactorState } from '../orchestrator/global-state.js';
import { type DataPatch } from '../orchestrator/reactor.js';
import { patchChangefeedInfo, patchChangefeedStatus, patchTaskPosition } from '../orchestrator/records.js';
import { changefeedInfoKey, changefeedStatusKey, taskPositionKey } from '../orchestrator/etcd-keys.js';
import { BugIndicatingError } from '../errors/index.js';
import { parseDuration } from '../config/duration.js';
import { AdminJobType, type ChangefeedInfo, type ChangefeedStatus, type RunningError } from '../model/changefeed.js';
import { randomUUID } from 'node:crypto';
import type { ChangefeedProgress } from './changefeed-runtime.js';

/** TiCDC's backoff for a changefeed in error: 10 s doubling to 10 min, for at most changefeed-error-stuck-duration. */
export const BACKOFF_INITIAL_MS = 10_000;
export const BACKOFF_MAX_MS = 600_000;
/** The changefeed status (checkpoint, resolved-ts) is written at most this often. */
export const STATUS_WRITE_INTERVAL_MS = 100;
/** An idle changefeed's checkpoint time is written when it has moved on by this much (ms). */
const IDLE_TIME_WRITE_MS = 1000;

interface Backoff {
  /** When the first error of this streak happened. */
  readonly since: number;
  /** When the changefeed may run again. */
  retryAt: number;
  nextDelay: number;
  /** Checkpoint when it last restarted; passing it means the error is behind us. */
  checkpointAtRetry: bigint;
}

/**
 * The owner's per-changefeed state machine (TiCDC's feed state manager; seed document 002 ① to ⑧):
 * takes the errors processors put in their task positions and moves the changefeed between normal,
 * pending (waiting out the backoff), warning (running again after an error), failed (a non-retryable
 * error, or errors for longer than changefeed-error-stuck-duration) and finished (checkpoint reached
 * target-ts). It writes the changefeed checkpoint the owner's runtime computed, which never goes back.
 */
export class FeedStateManager {
  private readonly backoffs = new Map<string, Backoff>();
  private readonly lastStatusWrite = new Map<string, number>();

  constructor(private readonly now: () => number = Date.now) {}

  /**
   * `progress` is what the owner's changefeed runtime computed (checkpoint = min over the table set, barrier);
   * without it the checkpoint stays where it is (see advanceCheckpoint).
   */
  tick(state: GlobalReactorState, cf: ChangefeedReactorState, progress?: ChangefeedProgress): void {
    const info = cf.info;
    const status = cf.status;
    if (info === undefined || status === undefined) return;
    const key = `${cf.namespace}/${cf.id}`;
    const infoKey = changefeedInfoKey(state.clusterId, cf.namespace, cf.id);
    const statusKey = changefeedStatusKey(state.clusterId, cf.namespace, cf.id);
    if (info.state !== 'normal' && info.state !== 'warning' && info.state !== 'pending') {
      this.backoffs.delete(key);
      return;
    }

    // errors reported by processors: take them (clear them from the task positions) and act on the worst
    const errors: [string, RunningError][] = [];
    for (const [captureId, position] of cf.taskPositions) {
      const error = position.error;
      if (error !== undefined && error !== null) errors.push([captureId, error]);
    }
    const now = this.now();
    const stuckMs = parseDuration(String(info.config['changefeed-error-stuck-duration'] ?? '30m')) ?? 1_800_000;
    const checkpoint = BigInt(status['checkpoint-ts']);
    const patches: DataPatch[] = errors.map(([captureId]) =>
      patchTaskPosition(taskPositionKey(state.clusterId, cf.namespace, captureId, cf.id), (old) => old && { ...old, error: null }),
    );

    if (errors.length > 0) {
      const fatal = errors.find(([, e]) => !e.retryable);
      const [, error] = fatal ?? errors[0];
      let backoff = this.backoffs.get(key);
      if (fatal !== undefined || (backoff !== undefined && now - backoff.since >= stuckMs)) {
        this.backoffs.delete(key);
        const epoch = randomUUID();
        patches.push(
          patchChangefeedInfo(infoKey, (old) => old && { ...old, state: 'failed', error, 'admin-job-type': AdminJobType.stop, epoch }),
          patchChangefeedStatus(statusKey, (old) => old && { ...old, 'admin-job-type': AdminJobType.stop }),
        );
      } else {
        if (backoff === undefined) {
          backoff = { since: now, retryAt: now + BACKOFF_INITIAL_MS, nextDelay: BACKOFF_INITIAL_MS * 2, checkpointAtRetry: checkpoint };
          this.backoffs.set(key, backoff);
        } else {
          backoff.retryAt = now + backoff.nextDelay;
          backoff.nextDelay = Math.min(backoff.nextDelay * 2, BACKOFF_MAX_MS);
          backoff.checkpointAtRetry = checkpoint;
        }
        patches.push(patchChangefeedInfo(infoKey, (old) => old && { ...old, state: 'pending', error, 'admin-job-type': AdminJobType.stop }));
      }
      state.queue(patches);
      return;
    }

    const backoff = this.backoffs.get(key);
    if (info.state === 'pending' && backoff !== undefined && now >= backoff.retryAt) {
      if (now - backoff.since >= stuckMs) {
        this.backoffs.delete(key);
        state.queue([patchChangefeedInfo(infoKey, (old) => old && { ...old, state: 'failed', 'admin-job-type': AdminJobType.stop })]);
        return;
      }
      state.queue([patchChangefeedInfo(infoKey, (old) => old && { ...old, state: 'warning', 'admin-job-type': AdminJobType.none })]);
      return;
    }
    if (info.state === 'pending' && backoff === undefined) {
      // an owner that took over mid-backoff: start the wait again
      this.backoffs.set(key, { since: now, retryAt: now + BACKOFF_INITIAL_MS, nextDelay: BACKOFF_INITIAL_MS * 2, checkpointAtRetry: checkpoint });
      return;
    }
    if (info.state === 'warning' && backoff !== undefined && checkpoint > backoff.checkpointAtRetry) {
      this.backoffs.delete(key);
      state.queue([patchChangefeedInfo(infoKey, (old) => old && { ...old, state: 'normal', error: null })]);
      return;
    }
    if (info.state === 'pending') return;
    this.advanceCheckpoint(state, cf, info, status, statusKey, infoKey, progress);
  }

  /**
   * The changefeed checkpoint from the owner's runtime (the minimum over the changefeed's table set), never
   * backwards; target-ts reached → finished. Without the runtime's progress (a new owner still listing tables
   * or waiting for the first heartbeats) the checkpoint stays where it is: the task positions cannot stand in
   * for it, since they do not list the tables of a capture that died (its position is dropped) or of tables
   * not scheduled yet, and their minimum could pass rows nobody has written.
   */
  private advanceCheckpoint(
    state: GlobalReactorState,
    cf: ChangefeedReactorState,
    info: ChangefeedInfo,
    status: ChangefeedStatus,
    statusKey: string,
    infoKey: string,
    progress: ChangefeedProgress | undefined,
  ): void {
    const minCheckpoint = progress?.checkpointTs;
    const minResolved = progress?.resolvedTs;
    const checkpointTime = progress?.checkpointTime;
    const barrier = progress?.barrierTs;
    const barrierMoved = barrier !== undefined && BigInt(status['min-table-barrier-ts']) < barrier;
    const current = BigInt(status['checkpoint-ts']);
    const target = BigInt(info['target-ts']);
    let next = minCheckpoint !== undefined && minCheckpoint > current ? minCheckpoint : current;
    if (target !== 0n && next > target) next = target;
    if (next < current) throw new BugIndicatingError(`changefeed ${cf.id} checkpoint would go back from ${current} to ${next}`);
    // TiCDC writes the status at most every 50–200 ms; the checkpoint of a busy changefeed moves every tick.
    // Reaching target-ts is written at once.
    const key = `${cf.namespace}/${cf.id}`;
    const now = this.now();
    const reachedTarget = target !== 0n && next >= target;
    // an idle changefeed's checkpoint stays put while its time moves on (the upstream's heartbeats): written
    // when it is a second newer, so the lag that `changefeed query` and `cdc top` show stays true
    const timeMoved = next === current && checkpointTime !== undefined && checkpointTime >= (status['checkpoint-time'] ?? 0) + IDLE_TIME_WRITE_MS;
    if ((next > current || barrierMoved || timeMoved) && !reachedTarget && now - (this.lastStatusWrite.get(key) ?? 0) < STATUS_WRITE_INTERVAL_MS) return;
    if (next > current || barrierMoved || timeMoved) {
      this.lastStatusWrite.set(key, now);
      const resolved = minResolved !== undefined && minResolved > next ? minResolved : next;
      state.queue([
        patchChangefeedStatus(statusKey, (old) => {
          if (old === undefined) return old;
          let updated = old;
          // the barrier only moves forward (processors may flush up to it)
          if (barrier !== undefined && BigInt(old['min-table-barrier-ts']) < barrier) updated = { ...updated, 'min-table-barrier-ts': barrier.toString() };
          // never backwards, even against a concurrent writer
          if (next > current && BigInt(old['checkpoint-ts']) < next) {
            updated = { ...updated, 'checkpoint-ts': next.toString(), 'resolved-ts': resolved.toString(), ...(checkpointTime === undefined ? {} : { 'checkpoint-time': checkpointTime }) };
          } else if (timeMoved && BigInt(old['checkpoint-ts']) === next && checkpointTime > (old['checkpoint-time'] ?? 0)) {
            updated = { ...updated, 'checkpoint-time': checkpointTime };
          }
          return updated;
        }),
      ]);
    }
    if (target !== 0n && next >= target && info.state !== 'finished') {
      state.queue([
        patchChangefeedInfo(infoKey, (old) => old && { ...old, state: 'finished', 'admin-job-type': AdminJobType.finish }),
        patchChangefeedStatus(statusKey, (old) => old && { ...old, 'admin-job-type': AdminJobType.finish }),
      ]);
    }
  }
}
