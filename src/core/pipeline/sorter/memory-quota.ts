/**
 * A changefeed's memory budget on one capture (changefeed.toml `memory-quota`): the sorters of all its
 * tables take from it; what does not fit spills to disk.
 */
export class MemoryQuota {
  private usedBytes = 0;
  private peakBytes = 0;
  /** Acquisitions refused (the rows spilled instead): the quota-waits metric, read when scraped. */
  denied = 0;

  constructor(readonly limitBytes: number) {}

  get used(): number {
    return this.usedBytes;
  }

  get peak(): number {
    return this.peakBytes;
  }

  /** Takes `bytes` if they fit under the limit; never blocks. */
  tryAcquire(bytes: number): boolean {
    if (this.usedBytes + bytes > this.limitBytes) {
      this.denied++;
      return false;
    }
    this.usedBytes += bytes;
    if (this.usedBytes > this.peakBytes) this.peakBytes = this.usedBytes;
    return true;
  }

  /** Takes `bytes` even past the limit (rows that must stay together, e.g. a transaction handed to the sink whole). */
  force(bytes: number): void {
    this.usedBytes += bytes;
    if (this.usedBytes > this.peakBytes) this.peakBytes = this.usedBytes;
  }

  release(bytes: number): void {
    this.usedBytes -= bytes;
    if (this.usedBytes < 0) this.usedBytes = 0;
  }
}
