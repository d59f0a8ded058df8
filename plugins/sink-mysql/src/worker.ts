import type { RowChangedEvent, TableName } from 'tidemark/sink';
import type { RenderedInserts } from './sql.js';

export interface Job {
  readonly table: TableName;
  /** The rows: whole upstream transactions, or one transaction rendered as SQL when it was queued. */
  readonly rows: readonly RowChangedEvent[] | RenderedInserts;
  /** About how many bytes the rows hold (imageBytes, or the rendered text's length). */
  readonly bytes: number;
  /** Runs only once these workers have applied these many jobs (the table's snapshot rows spread over other workers). */
  readonly fence?: readonly (readonly [Worker, number])[];
}

/** Bytes of queued jobs merged into one write at most (wide rows: fewer of them per statement). */
const MERGE_BYTES = 8 << 20;

/** About how many bytes rows hold in memory: their images' strings and buffers, and a little per value and row. */
export function imageBytes(rows: readonly RowChangedEvent[]): number {
  let bytes = 0;
  for (const row of rows) bytes += 64 + valuesBytes(row.before) + valuesBytes(row.after);
  return bytes;
}

function valuesBytes(image: RowChangedEvent['after']): number {
  if (image === null) return 0;
  let bytes = 0;
  for (const v of image) bytes += typeof v === 'string' ? 16 + v.length : Buffer.isBuffer(v) ? 32 + v.length : 8;
  return bytes;
}

/** What a worker needs of the sink it works for (the MySQL sink). */
export interface WorkerHost {
  /** Rows per downstream transaction at most (max-txn-row). */
  readonly maxTxnRow: number;
  /** Snapshot rows merged into one write at most. */
  readonly snapshotBatchRows: number;
  /** Applies one table's rows (whole upstream transactions) in one downstream transaction. */
  apply(table: TableName, rows: readonly RowChangedEvent[] | RenderedInserts): Promise<void>;
  /** Resolves once the fence's workers have applied that many jobs. */
  passFence(fence: readonly (readonly [Worker, number])[]): Promise<void>;
  /** A worker made progress (a job done or failed): whoever waits on the workers looks again. */
  wake(): void;
}

/**
 * One worker: applies the jobs of the tables hashed to it, in order, each downstream transaction on a pooled
 * connection. Consecutive queued jobs of the same table are merged (whole upstream transactions, up to
 * max-txn-row rows) so that a pipeline handing over one small transaction per call still gets big batches.
 * Progress is a pair of sequence numbers (`pushed`, `done`) so a flush waits for what was handed over before
 * it, not for an idle queue (which a busy changefeed may never reach).
 */
/** How many rows a job holds. */
function rowsOf(job: Job): number {
  return Array.isArray(job.rows) ? job.rows.length : (job.rows as RenderedInserts).rows;
}

/** A job's rows as row objects, or undefined when it was rendered (it is then applied alone). */
function objectsOf(job: Job): readonly RowChangedEvent[] | undefined {
  return Array.isArray(job.rows) ? (job.rows as readonly RowChangedEvent[]) : undefined;
}

export class Worker {
  private readonly queue: Job[] = [];
  private running: Promise<void> | undefined;
  queuedRows = 0;
  queuedBytes = 0;
  pushed = 0;
  done = 0;
  failure: Error | undefined;

  constructor(private readonly sink: WorkerHost) {}

  push(job: Job): void {
    this.queue.push(job);
    this.pushed++;
    this.queuedRows += rowsOf(job);
    this.queuedBytes += job.bytes;
    this.running ??= this.loop().finally(() => {
      this.running = undefined;
      this.sink.wake();
    });
  }

  idle(): Promise<void> {
    return this.running ?? Promise.resolve();
  }

  private async loop(): Promise<void> {
    while (this.queue.length > 0 && this.failure === undefined) {
      const first = this.queue[0];
      if (first.fence !== undefined) await this.sink.passFence(first.fence);
      let n = 1;
      let count = rowsOf(first);
      let bytes = first.bytes;
      const firstRows = objectsOf(first);
      while (firstRows !== undefined && n < this.queue.length) {
        const next = this.queue[n];
        const nextRows = objectsOf(next);
        if (next.fence !== undefined || nextRows === undefined) break;
        // whole jobs up to max-txn-row: a job that would pass it waits for the next round (apply would split
        // the merged rows there anyway, leaving a small statement behind every full one)
        // (snapshot rows, which are no transactions, up to snapshotBatchRows: one LOAD DATA for several pieces)
        const limit = firstRows[0]?.snapshot !== undefined && nextRows[0]?.snapshot !== undefined ? this.sink.snapshotBatchRows : this.sink.maxTxnRow;
        if (count + nextRows.length > limit || bytes + next.bytes > MERGE_BYTES) break;
        if (next.table.tableId !== first.table.tableId || next.table.table !== first.table.table || next.table.schema !== first.table.schema) break;
        count += nextRows.length;
        bytes += next.bytes;
        n++;
      }
      const rows = n === 1 ? first.rows : this.queue.slice(0, n).flatMap((j) => j.rows as readonly RowChangedEvent[]);
      try {
        await this.sink.apply(first.table, rows);
      } catch (error) {
        this.failure = error instanceof Error ? error : new Error(String(error));
        this.queue.length = 0;
        this.queuedRows = 0;
        this.queuedBytes = 0;
        return;
      }
      this.queue.splice(0, n);
      this.queuedBytes -= bytes;
      this.queuedRows -= count;
      this.done += n;
      this.sink.wake();
    }
  }
}
