import { createHash } from 'node:crypto';
import { TidemarkError } from '../errors/index.js';
import { tsFile, tsPosition, type Ts } from '../model/ts.js';
import { BinlogReader, type BinlogReaderOptions } from './binlog-reader.js';
import { readTransactions, type SchemaTracker, type TableDefinitionLoader, type UpstreamEvent } from './transaction-reader.js';

export interface ResumableReaderOptions extends BinlogReaderOptions {
  /** The binlog basename (`mysql-bin`), to turn a ts back into a file name. */
  readonly basename: string;
  /** Consecutive failed reconnections before the error is given up to the caller. */
  readonly maxRetries?: number;
  readonly retryDelayMs?: number;
  /** false: row events are skipped undecoded (the owner's DDL puller needs only commits and DDL). */
  readonly rows?: boolean;
  /** Table definitions for an upstream without binlog_row_metadata=FULL (see readTransactions). */
  readonly schema?: SchemaTracker;
  /** Table definitions for MariaDB's UUID/INET6/INET4 columns (see readTransactions). */
  readonly definitions?: TableDefinitionLoader;
}

/**
 * A replica server id for a binlog connection, stable for `seed` (who reads, for what), away from the small
 * ids servers use: two readers on one upstream must not share one, or the server drops the older.
 */
export function replicaServerId(seed: string): number {
  return 0x100000 + (createHash('sha1').update(seed).digest().readUInt32BE(0) % 0x7fe00000);
}

export type ResumableEvent =
  | UpstreamEvent
  /**
   * The connection was lost (a retryable error) and reading starts again at `ts`, the last complete
   * transaction: row changes delivered since that commit will come again and must be discarded.
   */
  | { readonly kind: 'reset'; readonly ts: Ts; readonly error: TidemarkError };

/**
 * Reads transactions from `start` (a ts: the position after a commit) and survives lost connections: on a
 * retryable error it reconnects at the last commit's ts and says so with a `reset` event, so nothing is
 * lost and nothing committed is repeated. A non-retryable error (purged binlog, privileges) ends the read.
 */
export async function* readFromTs(options: ResumableReaderOptions, start: Ts, signal?: AbortSignal): AsyncGenerator<ResumableEvent> {
  let ts = start;
  let failures = 0;
  const maxRetries = options.maxRetries ?? 5;
  for (;;) {
    signal?.throwIfAborted();
    let reader: BinlogReader | undefined;
    try {
      reader = await BinlogReader.open(options, tsFile(ts, options.basename), tsPosition(ts), signal);
      for await (const e of readTransactions(reader, {
        rows: options.rows ?? true,
        ...(options.schema === undefined ? {} : { schema: options.schema }),
        ...(options.definitions === undefined ? {} : { definitions: options.definitions }),
      })) {
        if (e.kind === 'commit' || e.kind === 'ddl') {
          ts = e.ts;
          failures = 0;
        }
        yield e;
      }
      return;
    } catch (error) {
      if (signal?.aborted === true) throw error;
      if (!(error instanceof TidemarkError) || !error.retryable || ++failures > maxRetries) throw error;
      yield { kind: 'reset', ts, error };
      await new Promise((resolve) => setTimeout(resolve, (options.retryDelayMs ?? 200) * failures));
    } finally {
      reader?.close();
    }
  }
}

/**
 * The DDL statements committed between `from` and `to` (ts), read without decoding rows: what a schema
 * snapshot taken while the upstream was busy must check (SchemaStorage.snapshot). Gives up with a
 * retryable ErrTimeout when the reader does not reach `to` within `timeoutMs`.
 */
export async function readDDLBetween(options: ResumableReaderOptions, from: Ts, to: Ts, timeoutMs = 10_000): Promise<{ ts: Ts; schema: string; query: string }[]> {
  const out: { ts: Ts; schema: string; query: string }[] = [];
  if (to <= from) return out;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    for await (const e of readFromTs({ ...options, rows: false }, from, controller.signal)) {
      if (e.kind === 'ddl' && e.ts <= to) out.push({ ts: e.ts, schema: e.schema, query: e.query });
      if ((e.kind === 'commit' || e.kind === 'ddl' || e.kind === 'resolved') && e.ts >= to) return out;
    }
    return out;
  } catch (error) {
    if (controller.signal.aborted) throw new TidemarkError('ErrTimeout', `reading the DDL between ${String(from)} and ${String(to)} did not reach the end in ${timeoutMs} ms`, { cause: error });
    throw error;
  } finally {
    clearTimeout(timer);
  }
}
