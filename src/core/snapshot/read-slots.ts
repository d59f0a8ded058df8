import { TidemarkError } from '../errors/index.js';

/**
 * The chunk reads a capture runs at once for a changefeed's snapshot (`[snapshot] parallelism`), over every table
 * it copies: a table that is copied alone gets them all, tables copied together share them in the order they ask.
 */
export class ReadSlots {
  private free: number;
  private readonly waiters: (() => void)[] = [];

  constructor(readonly size: number) {
    this.free = size;
  }

  /** Waits for a slot; resolves to the function that gives it back (call it once). */
  async acquire(signal: AbortSignal): Promise<() => void> {
    signal.throwIfAborted();
    if (this.free > 0) this.free--;
    else {
      await new Promise<void>((resolve, reject) => {
        const onAbort = (): void => {
          const at = this.waiters.indexOf(granted);
          if (at >= 0) this.waiters.splice(at, 1);
          reject(signal.reason instanceof Error ? signal.reason : new TidemarkError('ErrAborted', 'stopped while waiting to read a snapshot chunk'));
        };
        const granted = (): void => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        };
        this.waiters.push(granted);
        signal.addEventListener('abort', onAbort, { once: true });
      });
    }
    let given = false;
    return () => {
      if (given) return;
      given = true;
      const next = this.waiters.shift();
      if (next !== undefined) next();
      else this.free++;
    };
  }
}
