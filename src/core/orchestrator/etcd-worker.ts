import type { Etcd3, IKeyValue, IWatchResponse, Watcher } from 'etcd3';
import { BugIndicatingError, TidemarkError } from '../errors/index.js';
import { Notifier, abortReason, sleep, withTimeout } from '../lifecycle/abortable.js';
import type { Logger } from '../logger/logger.js';
import { PatchSkip, type DataPatch, type Reactor, type ReactorState } from './reactor.js';

/** etcd's default `--max-txn-ops`. */
export const MAX_TXN_OPS = 128;
/** TiCDC's limit on one batched transaction (etcd's default request limit is 1.5 MiB). */
export const MAX_TXN_BYTES = 1024 * (1024 + 256);

export interface EtcdWorkerOptions<S extends ReactorState> {
  readonly client: Etcd3;
  /** Every key under this prefix is mirrored into `state`. */
  readonly prefix: string;
  readonly reactor: Reactor<S>;
  readonly state: S;
  /** The reactor ticks at least this often, and at most about this often plus once per watch batch. */
  readonly tickIntervalMs?: number;
  readonly logger?: Logger;
  /** etcd transaction duration and conflicts, and the reactor's tick duration (the owner's tick metric). */
  readonly metrics?: {
    readonly txnDuration: { observe(seconds: number): void };
    readonly txnConflicts: { inc(): void };
    readonly tickDuration?: { observe(seconds: number): void };
  };
}

interface RawValue {
  readonly value: Uint8Array;
  readonly createRevision: bigint;
  readonly modRevision: bigint;
}

export interface EtcdWorkerStats {
  ticks: number;
  commits: number;
  conflicts: number;
  relists: number;
}

/** How long a list or a watch creation may take before it is retried. */
const ETCD_CALL_TIMEOUT_MS = 10_000;

/**
 * Settles like `promise`, or rejects with a retryable ErrTimeout after `ms`, or with the abort reason as soon as
 * `signal` aborts, leaving `promise` to settle on its own. Leaves no timer or listener behind in any case.
 */
function within<T>(promise: Promise<T>, ms: number, what: string, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(abortReason(signal));
  return new Promise<T>((resolve, reject) => {
    const settle = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    };
    const onAbort = (): void => {
      settle();
      reject(abortReason(signal));
    };
    const timer = setTimeout(() => {
      settle();
      reject(new TidemarkError('ErrTimeout', `${what} did not finish within ${ms} ms`));
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        settle();
        resolve(value);
      },
      (error: unknown) => {
        settle();
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

/** Cancels a watcher without waiting long: over a dead connection etcd never answers the cancel. */
async function cancelWatcher(watcher: Watcher): Promise<void> {
  watcher.removeAllListeners();
  watcher.on('error', () => undefined);
  await withTimeout(watcher.cancel(), 1000, 'cancelling the etcd watch').catch(() => undefined);
}

/** The watch broke (compaction, cancel): re-list and watch again. */
class WatchBroken extends Error {}

/**
 * Mirrors a prefix of etcd into a reactor state and drives the reactor (TiCDC's EtcdWorker, DESIGN §4).
 * - Reads the whole prefix, then watches it from the next revision; a broken or compacted watch re-lists.
 * - Ticks the reactor on watch events and on a timer, never concurrently.
 * - Commits queued patch groups in transactions that compare the mod revision of every key they change
 *   (create revision 0 for a new key), batched under etcd's ops and size limits. A failed compare keeps
 *   the patches and re-applies them to the values the watch brings next; no tick happens until they commit.
 * - After its own commit it waits until the watch has delivered that revision before ticking again,
 *   so a reactor always sees its own writes.
 */
export class EtcdWorker<S extends ReactorState> {
  readonly stats: EtcdWorkerStats = { ticks: 0, commits: 0, conflicts: 0, relists: 0 };
  private readonly raw = new Map<string, RawValue>();
  private readonly notifier = new Notifier();
  private pendingPatches: DataPatch[][] = [];
  private watchedRevision = 0n;
  private barrierRevision = 0n;
  private readonly tickIntervalMs: number;

  constructor(private readonly options: EtcdWorkerOptions<S>) {
    this.tickIntervalMs = options.tickIntervalMs ?? 50;
  }

  /** Runs until `signal` aborts (then resolves) or the reactor fails (then rejects with its error). */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        await this.runWatch(signal);
      } catch (error) {
        if (signal.aborted) return;
        if (error instanceof TidemarkError && error.code === 'ErrTimeout') {
          // etcd did not answer the list or the watch: try again (the capture's session decides liveness)
          this.options.logger?.warn('etcd did not answer; retrying', { prefix: this.options.prefix, reason: error.message });
          await sleep(500, signal).catch(() => undefined);
          continue;
        }
        if (!(error instanceof WatchBroken)) throw error;
        this.stats.relists++;
        this.options.logger?.warn('etcd watch broke; re-listing', { prefix: this.options.prefix, reason: error.message });
      }
    }
  }

  private async runWatch(signal: AbortSignal): Promise<void> {
    const { client, prefix } = this.options;
    const listed = await within(client.getAll().prefix(prefix).exec(), ETCD_CALL_TIMEOUT_MS, 'listing etcd', signal);
    const revision = BigInt(listed.header.revision);
    this.resync(listed.kvs, revision);

    let broken: Error | undefined;
    const pending: IWatchResponse[] = [];
    const creating = client.watch().prefix(prefix).startRevision(String(revision + 1n)).create();
    let watcher: Watcher;
    try {
      watcher = await within(creating, ETCD_CALL_TIMEOUT_MS, 'watching etcd', signal);
    } catch (error) {
      // a watcher that connects after we gave up on it would stay attached to the client's watch stream
      void creating.then(cancelWatcher, () => undefined);
      throw error;
    }
    try {
      watcher.on('data', (res: IWatchResponse) => {
        pending.push(res);
        this.notifier.wake();
      });
      watcher.on('error', (error: Error) => {
        broken = new WatchBroken(error.message || 'watch error');
        this.notifier.wake();
      });
      watcher.on('end', () => {
        broken ??= new WatchBroken('watch ended');
        this.notifier.wake();
      });
      const onAbort = (): void => this.notifier.wake();
      signal.addEventListener('abort', onAbort, { once: true });
      try {
        await this.loop(signal, pending, () => broken);
      } finally {
        signal.removeEventListener('abort', onAbort);
      }
    } finally {
      await cancelWatcher(watcher);
    }
  }

  private async loop(signal: AbortSignal, pending: IWatchResponse[], broken: () => Error | undefined): Promise<void> {
    let first = true;
    while (!signal.aborted) {
      if (!first) await this.notifier.wait(this.tickIntervalMs, signal);
      first = false;
      if (signal.aborted) return;
      const brokenError = broken();
      if (brokenError !== undefined) throw brokenError;
      this.applyWatchResponses(pending.splice(0));

      if (this.pendingPatches.length > 0) {
        await this.commitPending();
        if (this.pendingPatches.length > 0) continue; // conflict: wait for the watch to bring newer values
      }
      if (this.watchedRevision < this.barrierRevision) continue; // read our own writes first

      const tickStarted = performance.now();
      await this.options.reactor.tick(this.options.state, signal);
      this.options.metrics?.tickDuration?.observe((performance.now() - tickStarted) / 1000);
      this.stats.ticks++;
      this.pendingPatches = this.options.state.takePatches().filter((group) => group.length > 0);
      if (this.pendingPatches.length > 0) await this.commitPending();
    }
  }

  private resync(kvs: readonly IKeyValue[], revision: bigint): void {
    const seen = new Set<string>();
    for (const kv of kvs) {
      const key = kv.key.toString();
      seen.add(key);
      this.store(key, kv, true);
    }
    for (const key of [...this.raw.keys()]) {
      if (!seen.has(key)) {
        this.raw.delete(key);
        this.options.state.update(key, undefined, undefined, true);
      }
    }
    this.watchedRevision = revision;
  }

  private store(key: string, kv: IKeyValue, isInit: boolean): void {
    const value = new Uint8Array(kv.value);
    const meta = { createRevision: BigInt(kv.create_revision), modRevision: BigInt(kv.mod_revision) };
    this.raw.set(key, { value, ...meta });
    this.options.state.update(key, value, meta, isInit);
  }

  private applyWatchResponses(responses: readonly IWatchResponse[]): void {
    for (const res of responses) {
      for (const event of res.events) {
        const key = event.kv.key.toString();
        if (event.type === 'Put') {
          this.store(key, event.kv, false);
        } else {
          this.raw.delete(key);
          this.options.state.update(key, undefined, undefined, false);
        }
      }
      const revision = BigInt(res.header.revision);
      if (revision > this.watchedRevision) this.watchedRevision = revision;
    }
  }

  /** Commits as many pending groups as possible; stops at the first conflict, keeping what is left. */
  private async commitPending(): Promise<void> {
    while (this.pendingPatches.length > 0) {
      const { size, changes } = this.nextBatch();
      const groups = this.pendingPatches.slice(0, size);
      if (changes.size === 0) {
        this.pendingPatches.splice(0, size);
        continue;
      }
      const { client } = this.options;
      const entries = [...changes];
      const [firstKey, firstChange] = entries[0];
      let txn =
        firstChange.before === undefined
          ? client.if(firstKey, 'Create', '==', 0)
          : client.if(firstKey, 'Mod', '==', String(firstChange.before.modRevision));
      for (const [key, change] of entries.slice(1)) {
        txn =
          change.before === undefined
            ? txn.and(key, 'Create', '==', 0)
            : txn.and(key, 'Mod', '==', String(change.before.modRevision));
      }
      const ops = entries.map(([key, change]) =>
        change.after === undefined ? client.delete().key(key) : client.put(key).value(Buffer.from(change.after)),
      );
      let result;
      const txnStarted = performance.now();
      try {
        result = await txn.then(...ops).commit();
        this.options.metrics?.txnDuration.observe((performance.now() - txnStarted) / 1000);
      } catch (error) {
        // etcd unreachable or slow: keep the patches and try again on the next loop (the session decides liveness)
        this.options.logger?.warn('etcd transaction failed; will retry', { error: errorMessage(error) });
        return;
      }
      if (!result.succeeded) {
        this.stats.conflicts++;
        this.options.metrics?.txnConflicts.inc();
        return;
      }
      this.stats.commits++;
      this.barrierRevision = BigInt(result.header.revision);
      this.pendingPatches.splice(0, groups.length);
    }
  }

  /**
   * Applies the leading pending groups to the mirrored values, merging groups while the batch stays under
   * etcd's limits. Returns how many groups the batch holds and the net change per key.
   */
  private nextBatch(): { size: number; changes: Map<string, { before: RawValue | undefined; after: Uint8Array | undefined }> } {
    const changes = new Map<string, { before: RawValue | undefined; after: Uint8Array | undefined }>();
    let bytes = 0;
    let size = 0;
    for (const group of this.pendingPatches) {
      const staged = new Map(changes);
      let groupBytes = 0;
      let skipped = false;
      for (const patch of group) {
        const prior = staged.get(patch.key);
        const before = prior === undefined ? this.raw.get(patch.key) : prior.before;
        const current = prior === undefined ? before?.value : prior.after;
        let result;
        try {
          result = patch.apply(current);
        } catch (error) {
          if (error instanceof PatchSkip) {
            skipped = true;
            break;
          }
          throw error;
        }
        if (!result.changed) continue;
        staged.set(patch.key, { before, after: result.value });
        groupBytes += patch.key.length + (result.value?.length ?? 0);
      }
      if (!skipped) {
        for (const [key, change] of [...staged]) {
          if (sameBytes(change.before?.value, change.after)) staged.delete(key);
        }
      }
      const groupOps = skipped ? 0 : staged.size;
      if (groupOps > MAX_TXN_OPS || groupBytes > MAX_TXN_BYTES) {
        throw new BugIndicatingError(`one patch group changes ${groupOps} keys / ${groupBytes} bytes, over etcd's limits`, {
          maxOps: MAX_TXN_OPS,
          maxBytes: MAX_TXN_BYTES,
        });
      }
      if (size > 0 && (staged.size > MAX_TXN_OPS || bytes + groupBytes > MAX_TXN_BYTES)) break;
      size++;
      if (skipped) continue;
      changes.clear();
      for (const [k, v] of staged) changes.set(k, v);
      bytes += groupBytes;
    }
    return { size, changes };
  }
}

function sameBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return Buffer.compare(a, b) === 0;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

