import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { RowChangedEvent } from '../sink/api.js';

/**
 * Every Prometheus metric of one `cdc server` process, in one registry owned by the server (never prom-client's
 * global one: a test process runs many servers). Names are `tidemark_…` and follow TiCDC's where it has one
 * (tiflow `cdc/owner/metrics.go`, `cdc/processor/metrics.go`, `cdc/sink/metrics/…`, `pkg/orchestrator/metrics.go`,
 * `cdc/scheduler/…/metrics.go`), with the unit in the name as Prometheus asks (`_seconds`, `_bytes`, `_total`).
 *
 * Labels are bounded: `namespace` and `changefeed` (one set per changefeed), a kind, a state, an error code, a p2p
 * topic. Per-table series (`table` label) exist only with the server's `per-table-metrics` switch.
 *
 * Two kinds of series:
 * - counted where it happens, through the labelled children of `changefeed(...)`, cached per changefeed (no
 *   label lookup per call) and incremented per batch (`writeRows` call, flush, etcd txn), never per row;
 * - read when scraped: gauges of state the components already keep (checkpoints, quota, spill, reader position)
 *   and counters the components keep as plain numbers (binlog bytes, rows read), filled by the collectors
 *   registered with `onCollect` just before the registry is serialised.
 */
export class TidemarkMetrics {
  readonly registry = new Registry();
  /** `per-table-metrics`: per-table series (table label) are exported. */
  readonly perTable: boolean;
  private readonly collectors = new Set<() => void | Promise<void>>();
  private readonly changefeeds = new Map<string, ChangefeedMetrics>();
  private readonly p2pChildren = new Map<string, { inc(): void }>();

  // ---- capture and cluster
  readonly isOwner: Gauge;
  readonly captureIncarnations: Counter;
  readonly capturesAlive: Gauge;
  readonly httpRequests: Counter<'route' | 'status'>;

  // ---- owner, per changefeed (exported by the owner only, as TiCDC's owner metrics)
  /** TiCDC ticdc_owner_checkpoint_ts_lag. */
  readonly ownerCheckpointLag: Gauge<'namespace' | 'changefeed'>;
  /** TiCDC ticdc_owner_checkpoint_ts (here the ts: binlog file sequence << 32 | position). */
  readonly ownerCheckpointTs: Gauge<'namespace' | 'changefeed'>;
  readonly ownerCheckpointFile: Gauge<'namespace' | 'changefeed'>;
  /** TiCDC ticdc_owner_resolved_ts. */
  readonly ownerResolvedTs: Gauge<'namespace' | 'changefeed'>;
  /** TiCDC ticdc_owner_status: the state as a number (FEED_STATE_CODES). */
  readonly ownerStatus: Gauge<'namespace' | 'changefeed'>;
  /** One series per changefeed and state, 1 for its state (alerts select a state by label). */
  readonly changefeedState: Gauge<'namespace' | 'changefeed' | 'state'>;
  /** 1 while the changefeed's last error has this code. */
  readonly changefeedError: Gauge<'namespace' | 'changefeed' | 'code'>;
  readonly changefeedTables: Gauge<'namespace' | 'changefeed'>;
  /** TiCDC ticdc_owner_owner_tick_duration (whole owner tick, all changefeeds). */
  readonly ownerTickDuration: Histogram;
  /** Table moves the scheduler started (TiCDC ticdc_scheduler_table_replication_state transitions / move table). */
  readonly schedulerMoves: Counter<'namespace' | 'changefeed'>;
  /** Initial snapshot: rows copied and acknowledged (sum of the tables' records in etcd). */
  readonly snapshotRowsCopied: Gauge<'namespace' | 'changefeed'>;
  readonly snapshotRowsEstimated: Gauge<'namespace' | 'changefeed'>;
  readonly snapshotTables: Gauge<'namespace' | 'changefeed' | 'state'>;

  // ---- etcd worker and p2p (per capture)
  /** TiCDC ticdc_etcd_worker_etcd_txn_exec_duration. */
  readonly etcdTxnDuration: Histogram;
  /** Transactions that lost their compare (a key changed since read): re-read and re-ticked. */
  readonly etcdTxnConflicts: Counter;
  /** TiCDC ticdc_message_server_message_count / client messages. */
  readonly p2pMessages: Counter<'direction' | 'topic'>;

  // ---- processor, per changefeed on this capture
  /** TiCDC ticdc_processor_checkpoint_ts_lag. */
  readonly processorCheckpointLag: Gauge<'namespace' | 'changefeed'>;
  /** TiCDC ticdc_processor_resolved_ts_lag. */
  readonly processorResolvedLag: Gauge<'namespace' | 'changefeed'>;
  readonly processorCheckpointTs: Gauge<'namespace' | 'changefeed'>;
  readonly processorResolvedTs: Gauge<'namespace' | 'changefeed'>;
  readonly processorTables: Gauge<'namespace' | 'changefeed'>;
  /** Row changes read from the binlog for the tables here (TiCDC ticdc_puller_txn_collect_event_count). */
  readonly rowsRead: Counter<'namespace' | 'changefeed' | 'kind'>;
  /** TiCDC ticdc_sink_total_rows_count / ticdc_sink_txn_... by kind. */
  readonly sinkRows: Counter<'namespace' | 'changefeed' | 'kind'>;
  /** TiCDC ticdc_sink_txn_exec_duration: one `writeRows` call. */
  readonly sinkWriteDuration: Histogram<'namespace' | 'changefeed'>;
  /** TiCDC ticdc_sink_flush_event_duration_seconds: one `flush` until acknowledged. */
  readonly sinkFlushDuration: Histogram<'namespace' | 'changefeed'>;
  /** TiCDC ticdc_sink_batch_row_count: rows per `writeRows` call. */
  readonly sinkBatchRows: Histogram<'namespace' | 'changefeed'>;
  /** TiCDC ticdc_sink_execution_error, by Tidemark error code. */
  readonly sinkErrors: Counter<'namespace' | 'changefeed' | 'code'>;
  /** TiCDC ticdc_sorter_in_memory_data_size_gauge. */
  readonly sorterMemory: Gauge<'namespace' | 'changefeed'>;
  readonly sorterMemoryQuota: Gauge<'namespace' | 'changefeed'>;
  /** Bytes spilled to disk now (TiCDC ticdc_sorter_on_disk_data_size_gauge). */
  readonly sorterSpilled: Gauge<'namespace' | 'changefeed'>;
  readonly sorterSpilledTotal: Counter<'namespace' | 'changefeed'>;
  /** Quota acquisitions refused (rows spilled instead of held in memory). */
  readonly sorterQuotaWaits: Counter<'namespace' | 'changefeed'>;
  /** TiCDC ticdc_puller_... : binlog bytes read by the changefeed's reader here. */
  readonly binlogReadBytes: Counter<'namespace' | 'changefeed'>;
  /** The reader's waits for the sink to take rows (a backlog waits in the binlog), their seconds, and the stalls (it read on). */
  readonly binlogReaderSinkWaits: Counter<'namespace' | 'changefeed'>;
  readonly binlogReaderSinkWaitSeconds: Counter<'namespace' | 'changefeed'>;
  readonly binlogReaderStalls: Counter<'namespace' | 'changefeed'>;
  readonly binlogReaderTs: Gauge<'namespace' | 'changefeed'>;
  readonly binlogReaderFile: Gauge<'namespace' | 'changefeed'>;
  /** The reader's distance to the upstream's end of binlog, in bytes (a lower bound across a rotate). */
  readonly binlogReaderLagBytes: Gauge<'namespace' | 'changefeed'>;
  readonly binlogReaderLagFiles: Gauge<'namespace' | 'changefeed'>;
  /** The oldest binlog file the upstream still has (SHOW BINARY LOGS), as this changefeed's reader sees it. */
  readonly upstreamFirstBinlogFile: Gauge<'namespace' | 'changefeed'>;

  // ---- the log service, per upstream read on this capture
  /** 1 while the capture's shared binlog read of the upstream runs. */
  readonly logServiceReading: Gauge<'upstream'>;
  /** Readers of the upstream's binlog here: taking it from the shared read, or reading on their own while behind. */
  readonly logServiceReaders: Gauge<'upstream' | 'mode'>;
  readonly logServiceStoredBytes: Gauge<'upstream'>;
  /** Readers let go because they fell behind while others waited (they read on their own until they catch up). */
  readonly logServiceFellBehind: Counter<'upstream'>;
  /** Rows mounted by this capture's processors of the upstream: decoded by the processor, or shared by another one. */
  readonly logServiceRowsDecoded: Counter<'upstream' | 'decode'>;

  // ---- per table (only with per-table-metrics)
  readonly tableCheckpointLag: Gauge<'namespace' | 'changefeed' | 'table'>;
  readonly tableResolvedTs: Gauge<'namespace' | 'changefeed' | 'table'>;

  constructor(options: { readonly perTable?: boolean; readonly defaultMetrics?: boolean } = {}) {
    this.perTable = options.perTable === true;
    const registers = [this.registry];
    const cf = ['namespace', 'changefeed'] as const;
    const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[] = []): Gauge<L> => new Gauge<L>({ name, help, labelNames, registers });
    const counter = <L extends string>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> => new Counter<L>({ name, help, labelNames, registers });
    const histogram = <L extends string>(name: string, help: string, buckets: number[], labelNames: readonly L[] = []): Histogram<L> =>
      new Histogram<L>({ name, help, labelNames, buckets, registers });
    const seconds = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

    this.isOwner = gauge('tidemark_owner_is_owner', '1 while this capture is the owner');
    this.captureIncarnations = counter('tidemark_capture_incarnations_total', 'Capture incarnations started (1 + etcd session losses)');
    this.capturesAlive = gauge('tidemark_cluster_captures', 'Captures registered in etcd, as this capture sees them');
    this.httpRequests = counter('tidemark_http_requests_total', 'HTTP API requests by route and status', ['route', 'status']);

    this.ownerCheckpointLag = gauge('tidemark_owner_checkpoint_ts_lag_seconds', 'Changefeed checkpoint lag: now minus the commit time of the checkpoint-ts (owner)', cf);
    this.ownerCheckpointTs = gauge('tidemark_owner_checkpoint_ts', 'Changefeed checkpoint-ts (binlog file sequence << 32 | position) (owner)', cf);
    this.ownerCheckpointFile = gauge('tidemark_owner_checkpoint_binlog_file_sequence', 'Binlog file sequence number of the changefeed checkpoint-ts (owner)', cf);
    this.ownerResolvedTs = gauge('tidemark_owner_resolved_ts', 'Changefeed resolved-ts (owner)', cf);
    this.ownerStatus = gauge('tidemark_owner_status', `Changefeed state as a number: ${FEED_STATE_CODES.map((s, i) => `${i} ${s}`).join(', ')} (owner)`, cf);
    this.changefeedState = gauge('tidemark_changefeed_state', 'Changefeed state: 1 on the series of its current state (owner)', [...cf, 'state']);
    this.changefeedError = gauge('tidemark_changefeed_error', '1 while the changefeed last error has this code (owner)', [...cf, 'code']);
    this.changefeedTables = gauge('tidemark_owner_changefeed_tables', 'Tables the changefeed replicates (owner)', cf);
    this.ownerTickDuration = histogram('tidemark_owner_tick_duration_seconds', 'Duration of one owner tick over all changefeeds', seconds);
    this.schedulerMoves = counter('tidemark_scheduler_table_moves_total', 'Table moves between captures started by the scheduler (owner)', cf);
    this.snapshotRowsCopied = gauge('tidemark_snapshot_rows_copied', 'Initial snapshot: rows copied and acknowledged by the sink (owner)', cf);
    this.snapshotRowsEstimated = gauge('tidemark_snapshot_rows_estimated', 'Initial snapshot: estimated rows of the tables whose copy began (owner)', cf);
    this.snapshotTables = gauge('tidemark_snapshot_tables', 'Initial snapshot: tables by state (pending, copying, done) (owner)', [...cf, 'state']);

    this.etcdTxnDuration = histogram('tidemark_etcd_worker_txn_duration_seconds', 'Duration of one etcd transaction committing reactor patches', seconds);
    this.etcdTxnConflicts = counter('tidemark_etcd_worker_txn_conflicts_total', 'etcd transactions whose revision check failed (re-read and re-ticked)');
    this.p2pMessages = counter('tidemark_p2p_messages_total', 'Capture-to-capture messages by direction (sent, received) and topic', ['direction', 'topic']);

    this.processorCheckpointLag = gauge('tidemark_processor_checkpoint_ts_lag_seconds', 'Checkpoint lag of the changefeed tables on this capture', cf);
    this.processorResolvedLag = gauge('tidemark_processor_resolved_ts_lag_seconds', 'Resolved-ts lag of the changefeed on this capture: now minus the commit time the binlog reader is at', cf);
    this.processorCheckpointTs = gauge('tidemark_processor_checkpoint_ts', 'Lowest checkpoint-ts of the changefeed tables on this capture', cf);
    this.processorResolvedTs = gauge('tidemark_processor_resolved_ts', 'Resolved-ts of the changefeed tables on this capture', cf);
    this.processorTables = gauge('tidemark_processor_tables', 'Tables of the changefeed on this capture', cf);
    this.rowsRead = counter('tidemark_processor_rows_read_total', 'Row changes read from the binlog for the tables on this capture, by kind', [...cf, 'kind']);
    this.sinkRows = counter('tidemark_sink_rows_total', 'Row changes handed to the sink, by kind (insert, update, delete)', [...cf, 'kind']);
    this.sinkWriteDuration = histogram('tidemark_sink_write_duration_seconds', 'Duration of one sink writeRows call', seconds, cf);
    this.sinkFlushDuration = histogram('tidemark_sink_flush_duration_seconds', 'Duration of one sink flush, from the call to the acknowledgement', seconds, cf);
    this.sinkBatchRows = histogram('tidemark_sink_batch_rows', 'Rows per sink writeRows call', [1, 4, 16, 64, 256, 1024, 4096, 16384], cf);
    this.sinkErrors = counter('tidemark_sink_errors_total', 'Sink call failures by error code', [...cf, 'code']);
    this.sorterMemory = gauge('tidemark_sorter_memory_bytes', 'Memory the changefeed sorters hold on this capture (memory-quota in use)', cf);
    this.sorterMemoryQuota = gauge('tidemark_sorter_memory_quota_bytes', 'The changefeed memory-quota on this capture', cf);
    this.sorterSpilled = gauge('tidemark_sorter_spilled_bytes', 'Bytes the changefeed sorters have on disk now', cf);
    this.sorterSpilledTotal = counter('tidemark_sorter_spilled_bytes_total', 'Bytes the changefeed sorters spilled to disk', cf);
    this.sorterQuotaWaits = counter('tidemark_sorter_quota_waits_total', 'Memory-quota acquisitions refused (rows spilled instead)', cf);
    this.binlogReadBytes = counter('tidemark_binlog_read_bytes_total', 'Binlog bytes read by the changefeed reader on this capture', cf);
    this.binlogReaderSinkWaits = counter('tidemark_binlog_reader_sink_waits_total', 'Times the changefeed binlog reader waited for the sink to take the rows it holds (a backlog waits in the binlog)', cf);
    this.binlogReaderSinkWaitSeconds = counter('tidemark_binlog_reader_sink_wait_seconds_total', 'Seconds the changefeed binlog reader spent waiting for the sink; a rate near 1 means the sink sets the pace', cf);
    this.binlogReaderStalls = counter('tidemark_binlog_reader_stalls_total', 'Waits for the sink that ended with no row taken for the stall time: the reader read on and the sorters may spill', cf);
    this.logServiceReading = gauge('tidemark_log_service_reading', "1 while this capture's shared binlog read of the upstream runs", ['upstream']);
    this.logServiceReaders = gauge('tidemark_log_service_readers', "Readers of the upstream's binlog on this capture: mode shared (from the shared read) or own (their own read, while behind it)", ['upstream', 'mode']);
    this.logServiceStoredBytes = gauge('tidemark_log_service_stored_bytes', 'Binlog bytes the shared read holds for its readers', ['upstream']);
    this.logServiceFellBehind = counter('tidemark_log_service_fell_behind_total', 'Readers let go by the shared read because they fell behind while others waited', ['upstream']);
    this.logServiceRowsDecoded = counter('tidemark_log_service_rows_decoded_total', "Rows mounted by the upstream's changefeeds on this capture: decode own (decoded by the changefeed) or shared (decoded once by another changefeed given the same rows)", ['upstream', 'decode']);
    this.binlogReaderTs = gauge('tidemark_binlog_reader_ts', 'Position of the changefeed binlog reader (binlog file sequence << 32 | position)', cf);
    this.binlogReaderFile = gauge('tidemark_binlog_reader_file_sequence', 'Binlog file sequence number the changefeed reader is at', cf);
    this.binlogReaderLagBytes = gauge('tidemark_binlog_reader_lag_bytes', 'Bytes between the reader and the upstream end of binlog (lower bound across a rotate)', cf);
    this.binlogReaderLagFiles = gauge('tidemark_binlog_reader_lag_files', 'Binlog files between the reader and the upstream end of binlog', cf);
    this.upstreamFirstBinlogFile = gauge('tidemark_upstream_first_binlog_file_sequence', 'Oldest binlog file sequence the upstream still has (SHOW BINARY LOGS)', cf);

    this.tableCheckpointLag = gauge('tidemark_table_checkpoint_ts_lag_seconds', 'Checkpoint lag per table on this capture (only with per-table-metrics)', [...cf, 'table']);
    this.tableResolvedTs = gauge('tidemark_table_resolved_ts', 'Resolved-ts per table on this capture (only with per-table-metrics)', [...cf, 'table']);

    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'tidemark_' });
  }

  /** The cached counter of p2p messages of one direction and topic (topics are a fixed set). */
  p2pMessage(direction: 'sent' | 'received', topic: string): { inc(): void } {
    const key = `${direction}/${topic}`;
    let c = this.p2pChildren.get(key);
    if (c === undefined) {
      c = this.p2pMessages.labels({ direction, topic });
      this.p2pChildren.set(key, c);
    }
    return c;
  }

  /** Registers a function run before every scrape (fills the gauges read when scraped); returns its removal. */
  onCollect(collector: () => void | Promise<void>): () => void {
    this.collectors.add(collector);
    return () => this.collectors.delete(collector);
  }

  /** Runs the collectors, then serialises the registry (GET /metrics). A failing collector leaves its series as they were. */
  async scrape(): Promise<string> {
    await Promise.all([...this.collectors].map(async (c) => {
      try {
        await c();
      } catch {
        // a collector reads what components keep; it must never fail the scrape
      }
    }));
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The labelled children of one changefeed, created once and cached (hot paths call them without label lookups). */
  changefeed(namespace: string, id: string): ChangefeedMetrics {
    const key = `${namespace}/${id}`;
    let m = this.changefeeds.get(key);
    if (m === undefined) {
      m = new ChangefeedMetrics(this, namespace, id);
      this.changefeeds.set(key, m);
    }
    return m;
  }
}

/** TiCDC's feed-state numbering for tidemark_owner_status (index = value). */
export const FEED_STATE_CODES = ['normal', 'pending', 'failed', 'stopped', 'finished', 'removed', 'warning'] as const;

type Inc = { inc(value?: number): void };
type Observe = { observe(value: number): void };

/**
 * The counted series of one changefeed on this capture, labelled once. The table sink calls `written` per
 * `writeRows` batch and `flushed` per acknowledgement; the processor calls `sinkError` per failure.
 */
export class ChangefeedMetrics {
  private readonly rows: Record<RowChangedEvent['kind'], Inc>;
  private readonly writeDuration: Observe;
  private readonly flushDuration: Observe;
  private readonly batchRows: Observe;
  private readonly errors = new Map<string, Inc>();
  readonly moves: Inc;

  constructor(
    private readonly metrics: TidemarkMetrics,
    readonly namespace: string,
    readonly id: string,
  ) {
    const labels = { namespace, changefeed: id };
    this.rows = {
      insert: metrics.sinkRows.labels({ ...labels, kind: 'insert' }),
      update: metrics.sinkRows.labels({ ...labels, kind: 'update' }),
      delete: metrics.sinkRows.labels({ ...labels, kind: 'delete' }),
    };
    this.writeDuration = metrics.sinkWriteDuration.labels(labels);
    this.flushDuration = metrics.sinkFlushDuration.labels(labels);
    this.batchRows = metrics.sinkBatchRows.labels(labels);
    this.moves = metrics.schedulerMoves.labels(labels);
  }

  /** One `writeRows` call of `rows` that took `seconds` (counted per batch; kinds by one pass over the batch). */
  written(rows: readonly RowChangedEvent[], seconds: number): void {
    let inserts = 0;
    let updates = 0;
    for (const r of rows) {
      if (r.kind === 'insert') inserts++;
      else if (r.kind === 'update') updates++;
    }
    const deletes = rows.length - inserts - updates;
    if (inserts > 0) this.rows.insert.inc(inserts);
    if (updates > 0) this.rows.update.inc(updates);
    if (deletes > 0) this.rows.delete.inc(deletes);
    this.batchRows.observe(rows.length);
    this.writeDuration.observe(seconds);
  }

  flushed(seconds: number): void {
    this.flushDuration.observe(seconds);
  }

  sinkError(code: string): void {
    let c = this.errors.get(code);
    if (c === undefined) {
      c = this.metrics.sinkErrors.labels({ namespace: this.namespace, changefeed: this.id, code });
      this.errors.set(code, c);
    }
    c.inc();
  }
}

/** Seconds since `ms` (a wall time), never negative. */
export function lagSeconds(ms: number, now = Date.now()): number {
  return Math.max(0, now - ms) / 1000;
}
