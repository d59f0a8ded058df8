/**
 * The sink plugin contract (DESIGN §6, STYLE "Contracts"): the only part of the core a sink plugin
 * imports. Types only. A plugin's package.json names its module under "tidemark": {"sinks": {scheme: path}};
 * that module exports `factory`, a SinkFactory, checked with `satisfies SinkFactory<MyConfig>`.
 */

/** A ts as a bigint binlog coordinate (DESIGN §2): (file sequence << 32) | end position of the commit. */
export type Ts = bigint;

export interface TableName {
  readonly schema: string;
  readonly table: string;
  /** Stable id of the table within the changefeed (survives renames). */
  readonly tableId: number;
}

/**
 * A column value as the mounter decodes it, exact for every MySQL type: integers that may pass 2^53 and
 * DECIMAL as strings or bigint, temporal types as their MySQL text form with fractional seconds, binary
 * data as Buffer, JSON as its text, NULL as null.
 */
export type ColumnValue = null | boolean | number | bigint | string | Buffer;

export interface ColumnInfo {
  readonly name: string;
  /** MySQL type name as in information_schema COLUMN_TYPE, e.g. "decimal(65,30)", "bigint unsigned". */
  readonly mysqlType: string;
  readonly primaryKey: boolean;
  readonly nullable: boolean;
}

/** One row change of one transaction (TiCDC's RowChangedEvent). */
export interface RowChangedEvent {
  readonly table: TableName;
  /** Commit ts of the transaction. */
  readonly commitTs: Ts;
  /** Commit wall time, ms since the epoch. */
  readonly commitTime: number;
  /** Order of the change within its transaction. */
  readonly seq: number;
  readonly kind: 'insert' | 'update' | 'delete';
  readonly columns: readonly ColumnInfo[];
  /**
   * Pre-image (update, delete), in `columns` order. The images (and `columns`) are read-only: the same arrays may
   * be given to the sinks of several changefeeds of a capture that replicate the table.
   */
  readonly before: readonly ColumnValue[] | null;
  /** Post-image (insert, update), in `columns` order. */
  readonly after: readonly ColumnValue[] | null;
  /**
   * Set on a snapshot read (a changefeed created with `--snapshot initial`): the row as it was at `commitTs`, read
   * from the table, not a change; `kind` is 'insert' and `before` null. 'first' marks the table's first snapshot
   * row and 'last' its last ('only' when one row is both); 'row' any other. A capture that resumes a table's
   * snapshot after rows of it were acknowledged goes on with 'row' (its 'first' was delivered before). Undefined
   * on every change read from the binlog. How the sinks show it:
   * - Kafka debezium: `op: "r"`, `before: null`, `source.snapshot` Debezium's SnapshotRecord: 'first' →
   *   "first_in_data_collection", 'row' → "true", 'last' and 'only' → "last_in_data_collection" ("false" on
   *   changes).
   * - Kafka maxwell: `type: "bootstrap-insert"`; a `bootstrap-start` message {database, table, type, ts, data: {}}
   *   before the 'first' (or 'only') row and a `bootstrap-complete` one after the 'last' (or 'only') row.
   * - Kafka canal-json and open-protocol: a plain insert (INSERT / {"u"}); neither format has a snapshot marker.
   * - MySQL: written like any insert.
   * - blackhole: counted as an insert and in `snapshotRows` of its stats.
   */
  readonly snapshot?: 'first' | 'row' | 'last' | 'only';
}

export interface DDLEvent {
  readonly commitTs: Ts;
  readonly commitTime: number;
  /** The default schema the statement ran in upstream. */
  readonly schema: string;
  readonly query: string;
  readonly kind: 'create-table' | 'drop-table' | 'rename-table' | 'truncate-table' | 'alter-table' | 'create-database' | 'drop-database' | 'other';
  /** Tables the statement changes. */
  readonly tables: readonly TableName[];
}

export interface SinkLogger {
  debug(message: string, fields?: Readonly<Record<string, unknown>>): void;
  info(message: string, fields?: Readonly<Record<string, unknown>>): void;
  warn(message: string, fields?: Readonly<Record<string, unknown>>): void;
  error(message: string, fields?: Readonly<Record<string, unknown>>): void;
}

export interface SinkContext {
  /** Aborted when the changefeed stops on this capture; `create` and every call should honour it. */
  readonly signal: AbortSignal;
  readonly changefeedId: string;
  readonly logger: SinkLogger;
  /** The changefeed's `[sink]` section of changefeed.toml (protocol, dispatchers, plugin-specific keys), as parsed. */
  readonly sinkConfig?: Readonly<Record<string, unknown>>;
  /**
   * The changefeed's `force-replicate` (TiCDC's): replicate tables that have no primary key and no NOT NULL
   * unique key too. A sink that matches rows by key (MySQL) then matches them by all their columns.
   */
  readonly forceReplicate?: boolean;
  /** Partition dispatchers that installed plugins ship, by name (`partition = "<name>"` in `[[sink.dispatchers]]`). */
  readonly dispatchers?: ReadonlyMap<string, PartitionDispatcherFactory>;
  /**
   * With `enable-sync-point`: the changefeed's `sync-point-retention` (ms). A sink that stores syncpoints
   * (`writeSyncpoint`) deletes this changefeed's syncpoints older than that when it writes a new one.
   */
  readonly syncPointRetentionMs?: number;
}

/** Chooses a row's partition among `partitions`: an integer in [0, partitions); one key must always get the same one. */
export type PartitionDispatch = (row: RowChangedEvent, partitions: number) => number;

/**
 * A partition dispatcher a plugin ships: its package.json declares `"tidemark": {"dispatchers": {"<name>":
 * "./dist/x.js"}}` and the module exports `dispatcher` (this). Sinks that route rows to partitions (Kafka) use
 * it for rules with `partition = "<name>"`.
 */
export interface PartitionDispatcherFactory {
  /** Builds the dispatcher of one rule (its `columns`, if given); throws a message naming what is wrong. */
  create(rule: { readonly columns?: readonly string[] }): PartitionDispatch;
}

/**
 * A sink runs in the capture's own thread, beside what keeps its etcd session alive: its calls must never block
 * the event loop (no fsyncSync, writeFileSync or busy loops per batch). A call that blocks for the session TTL
 * (10 s by default) makes the capture lose its session and give up its tables; a blocking fsync per flush on a
 * busy disk was enough for that (the test plugin `test/fixtures/plugins/sink-file` uses fs.fsync).
 */
export interface Sink {
  /**
   * `table`: the sink applies each upstream transaction of a table atomically, so the processor hands it over
   * whole in one `writeRows` call (holding its rows within the memory quota; only a transaction of more than
   * 65,536 rows or half the quota is split). `none` (the default): batches of about 1,024 rows, cut anywhere.
   */
  readonly transactionAtomicity?: 'table' | 'none';
  /**
   * May buffer; never implies durability. Called for one table at a time, rows in commit order; the next call
   * comes after this one resolved. It is also called while flushes are pending: the processor goes on writing
   * rows of later transactions while it waits for an acknowledgement.
   */
  writeRows(table: TableName, rows: readonly RowChangedEvent[]): Promise<void>;
  /**
   * The only acknowledgement: resolves when every change with commitTs ≤ upTo is durable downstream. It covers
   * every row handed over by `writeRows` calls that resolved before it was called (those are the rows ≤ upTo);
   * rows written after the call need not be waited for. Several flushes may be pending at once (up to 4, with
   * increasing upTo), and `writeRows` may be called while they are; a rejected flush fails the changefeed on this
   * capture (retryable unless the error says `retryable: false`), which then restarts from its checkpoint.
   */
  flush(upTo: Ts): Promise<void>;
  /** Called at the DDL barrier, after every row before it was flushed. */
  writeDDL(ddl: DDLEvent): Promise<void>;
  /**
   * A watermark, for protocols that carry one (Kafka); others may ignore it. Called on the owner's sink only
   * (about once a second, with the changefeed checkpoint stored in etcd and the changefeed's tables), so it never
   * goes back, whichever captures wrote the rows: everything ≤ ts was flushed by the processors' sinks before.
   */
  writeCheckpoint(ts: Ts, tables: readonly TableName[]): Promise<void>;
  /**
   * Optional: a syncpoint (changefeed.toml `enable-sync-point`), called every `sync-point-interval` of commit
   * time at a barrier: every change ≤ ts is flushed and nothing after it was written yet. The MySQL sink
   * records (changefeed, ts, downstream position) so both sides can be compared at that point.
   */
  writeSyncpoint?(ts: Ts, commitTime: number): Promise<void>;
  /** Optional healthcheck that imitates a write. */
  check?(signal: AbortSignal): Promise<void>;
  /** Optional counters the API shows for the sink (`GET /api/v2/changefeeds/{id}/sink`), JSON-serialisable. */
  stats?(): unknown;
  /** Idempotent; leaves no timers or sockets behind. */
  close(): Promise<void>;
}

/**
 * Errors: a sink call rejects with an Error whose message says what failed downstream. The processor treats it
 * as retryable (the changefeed goes to warning and restarts from its checkpoint with backoff) unless the error
 * carries `retryable: false`, which fails the changefeed at once.
 */
export interface SinkFactory<C> {
  readonly schemes: readonly string[];
  /** Pure, no I/O: validates the URI's parameters; throws an error naming the bad key and what is allowed. */
  parseConfig(uri: URL): C;
  /** May connect; honours ctx.signal. */
  create(uri: URL, config: C, ctx: SinkContext): Promise<Sink>;
  /**
   * Optional, pure: validates the changefeed's `[sink]` section for this sink (protocol, dispatcher rules, given
   * the names of the dispatchers plugins ship), so `changefeed create` refuses it instead of the changefeed
   * failing when the sink opens. Throws an error naming the bad key and what is allowed.
   */
  validateSinkConfig?(config: C, sinkConfig: Readonly<Record<string, unknown>>, dispatchers: readonly string[]): void;
  /**
   * Optional: the keys of the changefeed's `[sink]` section this sink owns (the Kafka sink: protocol,
   * dispatchers). A key that neither the sink nor Tidemark itself (safe-mode, transaction-atomicity) reads is
   * refused at `changefeed create`, naming the ones allowed.
   */
  readonly sinkConfigKeys?: readonly string[];
}
