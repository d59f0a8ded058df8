import type { Logger } from '../logger/logger.js';
import type { Ts } from '../model/ts.js';
import { readFromTs, replicaServerId, type ResumableEvent } from '../upstream/resumable-reader.js';
import type { TableDefinitionLoader } from '../upstream/transaction-reader.js';
import { Upstream } from '../upstream/upstream.js';
import { SharedRows } from '../pipeline/mounter/shared-rows.js';
import { SharedBinlog, type SubscribeOptions } from './shared-binlog.js';

export interface LogServiceOptions {
  /** The capture's id: the shared reads' replica server ids derive from it (unique per reader on the upstream). */
  readonly captureId: string;
  readonly logger: Logger;
  /** Table definitions for MariaDB's UUID/INET6/INET4 columns (see readTransactions), per upstream. */
  readonly definitions?: (upstream: Upstream) => TableDefinitionLoader;
  /** Limits of each upstream's store (see SharedBinlogOptions). */
  readonly maxBytes?: number;
  readonly historyBytes?: number;
}

/**
 * The capture's log service (DESIGN §5; TiCDC's new architecture splits it from the per-changefeed work): one
 * binlog read per upstream on this capture, started when the first changefeed reads it and stopped after the
 * last, decoded once and given to every processor (and the owner's DDL reader) from the position each needs.
 * It serves upstreams whose row events carry their column names (binlog_row_metadata=FULL): without them, each
 * changefeed reads with its own schema storage and does not share.
 */
export class LogService {
  private readonly shared = new Map<string, { readonly binlog: SharedBinlog; readonly rows: SharedRows }>();

  constructor(private readonly options: LogServiceOptions) {}

  /** Each upstream read here, by its id (the metrics). */
  *reads(): IterableIterator<[string, SharedBinlog, SharedRows]> {
    for (const [uri, { binlog, rows }] of this.shared) yield [Upstream.of(uri).id, binlog, rows];
  }

  /**
   * The binlog of `upstream` from `start`, as `readFromTs` would give it, read through the upstream's shared
   * read. `options.ownRead` is the reader's own read while it is behind what the shared read holds.
   */
  read(upstream: Upstream, basename: string, start: Ts, signal: AbortSignal, options: SubscribeOptions): AsyncIterable<ResumableEvent> {
    return this.of(upstream, basename).binlog.subscribe(start, signal, options);
  }

  /**
   * What the processors reading `upstream` here share of its rows (their mounters'): the rows of an event the
   * shared read gave to several of them are built, and while they are near one another decoded, once.
   */
  rowsOf(upstream: Upstream, basename: string): SharedRows {
    return this.of(upstream, basename).rows;
  }

  private of(upstream: Upstream, basename: string): { readonly binlog: SharedBinlog; readonly rows: SharedRows } {
    // kept after its last reader left (its read stopped): a reader coming back restarts it, never a second one
    let shared = this.shared.get(upstream.uri);
    if (shared === undefined) {
      const binlog = new SharedBinlog({
        source: (from, readSignal, stats) =>
          readFromTs(
            {
              ...upstream.readerOptions(basename, replicaServerId(`${this.options.captureId}/log/${upstream.id}`)),
              heartbeatMs: 500,
              maxRetries: 5,
              readStats: stats,
              ...(this.options.definitions === undefined ? {} : { definitions: this.options.definitions(upstream) }),
            },
            from,
            readSignal,
          ),
        ...(this.options.maxBytes === undefined ? {} : { maxBytes: this.options.maxBytes }),
        ...(this.options.historyBytes === undefined ? {} : { historyBytes: this.options.historyBytes }),
        logger: this.options.logger.with({ upstream: upstream.shown }),
      });
      shared = { binlog, rows: new SharedRows((layout) => binlog.sharersOf(layout)) };
      this.shared.set(upstream.uri, shared);
    }
    return shared;
  }
}
