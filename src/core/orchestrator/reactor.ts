/**
 * The reactor contract of DESIGN §4 (TiCDC's `pkg/orchestrator`). The EtcdWorker mirrors etcd into a
 * `ReactorState`, calls `Reactor.tick`, and commits the patches the reactor queued, each inner array
 * in one etcd transaction guarded by the mod revision of every key it touches.
 */

/** What the EtcdWorker knows of a key besides its value. */
export interface KeyMeta {
  readonly createRevision: bigint;
  readonly modRevision: bigint;
}

export interface PatchResult {
  readonly value: Uint8Array | undefined;
  readonly changed: boolean;
}

/**
 * A change to one key as a pure function of its old value (`undefined` when absent). It may run
 * several times, on newer values, when a transaction conflicts; it must not have side effects.
 * Returning `value: undefined` deletes the key. Throwing `PatchSkip` drops the whole group.
 */
export interface DataPatch {
  readonly key: string;
  apply(old: Uint8Array | undefined): PatchResult;
}

/** Thrown from `DataPatch.apply` to drop the patch group without writing (the precondition no longer holds). */
export class PatchSkip extends Error {
  override readonly name = 'PatchSkip';
}

export interface ReactorState {
  /** Called by the EtcdWorker for every key under its prefix: `value === undefined` is a delete. */
  update(key: string, value: Uint8Array | undefined, meta: KeyMeta | undefined, isInit: boolean): void;
  /** Takes the queued patches; each inner array is committed atomically. */
  takePatches(): DataPatch[][];
}

export interface Reactor<S extends ReactorState> {
  /**
   * Called on every change the watch delivered and at least once per tick interval, never concurrently
   * with itself or with `update`. Queues patches on `state`. Rejecting stops the EtcdWorker with that error.
   */
  tick(state: S, signal: AbortSignal): Promise<void>;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A patch that rewrites a JSON value; `fn` gets a deep copy (or undefined) and returns the new value or undefined to delete. */
export function jsonPatch<T>(key: string, fn: (old: T | undefined) => T | undefined): DataPatch {
  return {
    key,
    apply(old) {
      const before = old === undefined ? undefined : decoder.decode(old);
      const next = fn(before === undefined ? undefined : (JSON.parse(before) as T));
      const after = next === undefined ? undefined : JSON.stringify(next);
      return { value: after === undefined ? undefined : encoder.encode(after), changed: after !== before };
    },
  };
}
