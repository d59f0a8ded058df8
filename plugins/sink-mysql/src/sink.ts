import mysql from 'mysql2/promise';
import type { ColumnInfo, ColumnValue, DDLEvent, RowChangedEvent, Sink, SinkContext, TableName, Ts } from 'tidemark/sink';
import { readSsl, tlsProblem, type MySqlSinkConfig } from './config.js';
import { DDL_ALREADY_DONE, DDL_REPLAY_ERRORS, ER_LOCAL_INFILE_DISABLED, ER_LOCAL_INFILE_REFUSED, ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT, ER_MAX_PREPARED_STMT_COUNT, MySqlSinkError, TimedOut, downstreamError } from './errors.js';
import { encodeRows, loadPlanOf, loadStatement, textStream } from './load-data.js';
import { STATEMENT_BYTES, groupStatements, insertValues, literal, quoteIdent, renderInserts, sameColumns, writer, type RenderedInserts, type TableShape } from './sql.js';
import { Worker, imageBytes } from './worker.js';

export { MySqlSinkError, type MySqlSinkErrorCode } from './errors.js';

/**
 * Rows, and bytes of them (imageBytes), waiting in the workers' queues before `writeRows` waits (memory bound when
 * the downstream is slow). Narrow rows reach the row bound first. Rows of ~1 KB reach the byte bound: at 64 MiB
 * the queue held rows for ~60 MiB of live heap, and the capture peaked at 366-370 MiB RSS in `bench -- wide
 * --sink mysql`. At 16 MiB it peaked at 285-296 MiB, with the same rows/s (BENCHMARKS.md).
 */
const MAX_QUEUED_ROWS = 32_768;
const MAX_QUEUED_BYTES = 16 << 20;
/** Bytes of values a prepared INSERT carries at most (max_allowed_packet is 4 MiB by default in MySQL 5.7, 16 MiB in MariaDB). */
const PREPARED_BYTES = 2 << 20;
/** Values a prepared statement binds at most (the protocol counts its parameters in two bytes). */
const PREPARED_VALUES = 65_535;
/** Times a transaction rolled back by a deadlock or lock wait timeout is applied before the error stands. */
const LOCK_RETRIES = 5;
/** Prepared statements cached per connection (mysql2 closes the least recently used beyond it). */
const PREPARED_PER_CONNECTION = 64;
/** Workers a table's snapshot rows are spread over at most. */
const SNAPSHOT_WRITERS = 4;
/** Snapshot rows a worker merges into one write at most (one LOAD DATA; 8 pieces of the snapshot reader). */
const SNAPSHOT_BATCH_ROWS = 8192;
/** How long `close` lets accepted changes commit before it ends the connections. */
const CLOSE_DEADLINE_MS = 5_000;

/**
 * The mysql sink (TiCDC's MySQL sink): rows of one upstream transaction for one table are applied in one
 * downstream transaction; a table's transactions keep commit order because each table is served by one worker
 * (assigned on first sight to the worker with the fewest tables, over `worker-count` connections), so two
 * transactions touching the same key never reorder, and different tables run in parallel. Why not a causality
 * map over keys (TiCDC's conflict detector) to run one table's non-conflicting transactions in parallel: it
 * would give up per-table commit order downstream (a reader of the downstream could see a later transaction
 * before an earlier one) and needs every unique key of every row hashed; one worker per table keeps both rules
 * trivially, and batching whole transactions into multi-row statements (up to max-txn-row) recovers most of the
 * throughput (bench/mysql-sink.ts). A single hot table is bound to one connection. Consecutive inserts go as one multi-row INSERT, consecutive deletes as
 * one DELETE … WHERE (key) IN (…). Idempotence: in safe mode (always with `safe-mode=true`, and during the first
 * `safe-mode-duration` (1 minute) after the sink starts, when the changes since the checkpoint come again) inserts are REPLACE and
 * updates DELETE + REPLACE; a duplicate-key error outside it re-applies the batch in safe mode. `flush` resolves
 * once every queued change is committed.
 */
export class MySqlSink implements Sink {
  /** Each upstream transaction of a table is one downstream transaction, unless `[sink] transaction-atomicity = "none"`. */
  readonly transactionAtomicity: 'table' | 'none';
  /** REPLACE and DELETE + REPLACE always: `safe-mode=true` in the URI or `[sink] safe-mode = true` in changefeed.toml. */
  private readonly safeMode: boolean;
  /** Tables without a usable key matched by all columns: `force-replicate` in the URI or in changefeed.toml. */
  private readonly forceReplicate: boolean;
  private readonly workers: Worker[];
  private readonly shapes = new Map<string, Promise<TableShape>>();
  /** Per table: its unique keys downstream (see uniqueKeys). */
  private readonly uniqueKeysOf = new Map<string, Promise<Map<string, { cols: string[]; nullable: boolean }>>>();
  /** Table → its worker, for the sink's lifetime (a table never changes worker, so its order holds). */
  private readonly assigned = new Map<string, Worker>();
  private readonly tablesPerWorker: number[];
  /** Per table, the snapshot rows handed to other workers than its own: how many jobs each had when it got the last. */
  private readonly spread = new Map<string, Map<Worker, number>>();
  /** Set when the downstream ran out of prepared statements: inserts go as text from then on. */
  private preparedOff = false;
  /** Set when the downstream refuses LOAD DATA LOCAL INFILE (local_infile off): snapshot rows go as INSERT from then on. */
  private loadDataOff = false;
  private readonly startedAt = Date.now();
  private waiters: (() => void)[] = [];
  private closed = false;
  /** Until a DDL executes cleanly, DDL_REPLAY_ERRORS mean "already done" (the replay window after a restart). */
  private replayingDDL = true;
  readonly counters = { rows: 0, transactions: 0, statements: 0, safeModeRetries: 0, lockRetries: 0, ddls: 0, loadedRows: 0, loadsRedone: 0 };

  private constructor(
    private readonly pool: mysql.Pool,
    private readonly config: MySqlSinkConfig,
    private readonly ctx: SinkContext,
  ) {
    this.transactionAtomicity = ctx.sinkConfig?.['transaction-atomicity'] === 'none' ? 'none' : 'table';
    this.safeMode = config.safeMode || ctx.sinkConfig?.['safe-mode'] === true;
    this.forceReplicate = config.forceReplicate || ctx.forceReplicate === true;
    this.workers = Array.from({ length: config.workerCount }, () => new Worker(this));
    this.tablesPerWorker = this.workers.map(() => 0);
  }

  static async create(config: MySqlSinkConfig, ctx: SinkContext): Promise<MySqlSink> {
    ctx.signal.throwIfAborted();
    let ssl = readSsl(config.ssl);
    let pool = MySqlSink.pool(config, ctx, ssl);
    try {
      const conn = await pool.getConnection();
      conn.release();
    } catch (error) {
      await pool.end().catch(() => undefined);
      const code = (error as { code?: string }).code;
      if (config.ssl.mode === 'preferred' && code === 'HANDSHAKE_NO_SSL_SUPPORT') {
        // preferred: plaintext when the downstream offers no TLS (MySQL's meaning)
        ssl = undefined;
        pool = MySqlSink.pool(config, ctx, ssl);
        try {
          const conn = await pool.getConnection();
          conn.release();
        } catch (plainError) {
          await pool.end().catch(() => undefined);
          throw new MySqlSinkError('ErrMySQLConnectionError', `cannot connect to the downstream ${config.host}:${config.port} as ${config.user}: ${(plainError as Error).message}`, true, plainError);
        }
        return new MySqlSink(pool, config, ctx);
      }
      const plaintextRefused = ssl === undefined && (error as { errno?: number }).errno === 1045 && (await MySqlSink.acceptsOnlyTls(config));
      const problem = tlsProblem(error, config.ssl, plaintextRefused);
      if (problem !== undefined) {
        throw new MySqlSinkError('ErrMySQLTLSError', `cannot connect to the downstream ${config.host}:${config.port} as ${config.user}: ${problem}`, false, error);
      }
      throw new MySqlSinkError('ErrMySQLConnectionError', `cannot connect to the downstream ${config.host}:${config.port} as ${config.user}: ${(error as Error).message}`, true, error);
    }
    return new MySqlSink(pool, config, ctx);
  }

  /**
   * Whether the downstream takes over TLS the login it refused in plaintext (require_secure_transport answers a
   * plaintext login with a bare "Access denied"). The certificate is not verified on this probe, so no
   * authentication that would send the password in clear over it is allowed (caching_sha2_password's full
   * authentication, sha256_password, mysql_clear_password): those make the probe inconclusive.
   */
  private static async acceptsOnlyTls(config: MySqlSinkConfig): Promise<boolean> {
    const refuse = (): (() => never) => () => {
      throw new Error('not on a probe');
    };
    try {
      const conn = await mysql.createConnection({
        host: config.host,
        port: config.port,
        user: config.user,
        password: config.password,
        connectTimeout: 5000,
        ssl: { rejectUnauthorized: false },
        authPlugins: { caching_sha2_password: refuse, sha256_password: refuse, mysql_clear_password: refuse },
      });
      await conn.end().catch(() => undefined);
      return true;
    } catch {
      return false;
    }
  }

  private static pool(config: MySqlSinkConfig, ctx: SinkContext, ssl: ReturnType<typeof readSsl>): mysql.Pool {
    const pool = mysql.createPool({
      host: config.host,
      port: config.port,
      user: config.user,
      password: config.password,
      connectionLimit: config.workerCount + 1,
      connectTimeout: 10_000,
      // prepared statements are per connection and shape; evicted ones are closed, so the server's global
      // max_prepared_stmt_count (16,382 by default) holds workerCount × this with room for other clients
      maxPreparedStatements: PREPARED_PER_CONNECTION,
      supportBigNumbers: true,
      bigNumberStrings: true,
      dateStrings: true,
      multipleStatements: config.multiStmtEnable,
      charset: 'utf8mb4',
      // a statement without values goes as it is: mysql2 would scan its whole text for placeholders (a batch of rows
      // is up to 4 MiB of text; the scan took about 5 % of the capture's CPU in a MySQL backlog)
      queryFormat: (sql: string, values: Parameters<typeof mysql.format>[1]): string => (values === undefined || (Array.isArray(values) && values.length === 0) ? sql : mysql.format(sql, values)),
      ...(ssl === undefined ? {} : { ssl }),
    });
    // every session: the upstream's values as they are (UTC TIMESTAMPs, id 0 kept, zero dates allowed), no FK checks
    pool.on('connection', (conn) => {
      // queued first on the new connection, so it runs before any write; the event hands over the
      // callback-style connection (mysql2's typings say otherwise)
      const callbackConn = conn as unknown as { query(sql: string, done: (error: Error | null) => void): void };
      callbackConn.query(`SET time_zone = ${mysql.escape(config.timeZone)}, sql_mode = 'NO_AUTO_VALUE_ON_ZERO', foreign_key_checks = 0`, (error) => {
        if (error !== null) ctx.logger.error('could not set up a downstream session (time_zone, sql_mode)', { error: error.message });
      });
    });
    return pool;
  }

  get maxTxnRow(): number {
    return this.config.maxTxnRow;
  }

  get snapshotBatchRows(): number {
    return SNAPSHOT_BATCH_ROWS;
  }

  /** Waits until each worker has applied its jobs up to the given count (or one failed). */
  async passFence(fence: readonly (readonly [Worker, number])[]): Promise<void> {
    while (!fence.every(([w, n]) => w.done >= n || w.failure !== undefined)) await this.waitForProgress();
  }

  wake(): void {
    for (const resolve of this.waiters.splice(0)) resolve();
  }

  private async waitForProgress(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.waiters.push(resolve);
      setTimeout(resolve, 100).unref();
    });
  }

  private get queuedRows(): number {
    let n = 0;
    for (const w of this.workers) n += w.queuedRows;
    return n;
  }

  private get queuedBytes(): number {
    let n = 0;
    for (const w of this.workers) n += w.queuedBytes;
    return n;
  }

  private throwIfFailed(): void {
    for (const w of this.workers) if (w.failure !== undefined) throw w.failure;
  }

  /** A table's worker: on first sight the one with the fewest tables (a hash would put two tables of four on one worker of 16 now and then). */
  private workerOf(table: TableName): Worker {
    const key = `${table.schema}.${table.table}`;
    let worker = this.assigned.get(key);
    if (worker === undefined) {
      let best = 0;
      for (let i = 1; i < this.workers.length; i++) if (this.tablesPerWorker[i] < this.tablesPerWorker[best]) best = i;
      this.tablesPerWorker[best]++;
      worker = this.workers[best]!;
      this.assigned.set(key, worker);
    }
    return worker;
  }

  async writeRows(table: TableName, rows: readonly RowChangedEvent[]): Promise<void> {
    if (this.closed) throw new MySqlSinkError('ErrMySQLSinkClosed', 'the mysql sink is closed', true);
    this.throwIfFailed();
    if (rows.length === 0) return;
    const key = `${table.schema}.${table.table}`;
    const own = this.workerOf(table);
    if (rows[0].snapshot !== undefined && this.workers.length > 1) {
      const bytes = imageBytes(rows);
      // snapshot reads are inserts of distinct keys, read at one position: they go to the least busy worker; the
      // table's next changes wait for them (a fence), so no change of a key overtakes its snapshot row. At most
      // SNAPSHOT_WRITERS of them per table: more writers into one B-tree cost the downstream more CPU than they
      // gain on a small machine (bench/snapshot.ts, with the loads below: 16 writers of 1,024 rows spent 3.5
      // downstream CPU-s on 1M narrow rows, 4 of up to 8,192 rows 3.0)
      let spread = this.spread.get(key);
      if (spread === undefined) this.spread.set(key, (spread = new Map<Worker, number>()));
      const candidates = spread.size < SNAPSHOT_WRITERS ? this.workers : [...spread.keys()];
      let best = candidates[0];
      for (const w of candidates) if (w.queuedRows < best.queuedRows) best = w;
      best.push({ table, rows, bytes });
      spread.set(best, best.pushed);
    } else {
      const spread = this.spread.get(key);
      this.spread.delete(key);
      const fence = spread === undefined ? undefined : [...spread].filter(([w]) => w !== own);
      // a transaction with too many values for a prepared statement goes as text anyway, alone (it is over
      // max-txn-row): rendered now, its row objects die young instead of waiting in the queue
      const rendered = this.config.batchDmlEnable && rows[0].snapshot === undefined && rows.length * rows[0].columns.length > PREPARED_VALUES ? renderInserts(rows) : undefined;
      const job = rendered === undefined ? { table, rows, bytes: imageBytes(rows) } : { table, rows: rendered, bytes: rendered.bytes };
      own.push(fence === undefined || fence.length === 0 ? job : { ...job, fence });
    }
    while ((this.queuedRows > MAX_QUEUED_ROWS || this.queuedBytes > MAX_QUEUED_BYTES) && !this.ctx.signal.aborted) {
      this.throwIfFailed();
      await this.waitForProgress();
    }
  }

  /**
   * Resolves once every job handed over before this call is committed downstream (the caller hands over only
   * rows ≤ upTo before flushing upTo, so that covers them); rejects with the first worker's error. Jobs handed
   * over while it waits are not waited for, so a busy table cannot starve a flush.
   */
  async flush(upTo: Ts): Promise<void> {
    void upTo;
    const targets = this.workers.map((w) => w.pushed);
    for (;;) {
      this.throwIfFailed();
      this.ctx.signal.throwIfAborted(); // the changefeed stopped here: do not wait for a downstream that may hang
      if (this.workers.every((w, i) => w.done >= targets[i])) return;
      if (this.closed) throw new MySqlSinkError('ErrMySQLSinkClosed', 'the mysql sink was closed during flush', true);
      await this.waitForProgress();
    }
  }

  async writeDDL(ddl: DDLEvent): Promise<void> {
    await this.flush(ddl.commitTs);
    let conn: mysql.PoolConnection | undefined;
    try {
      conn = await this.pool.getConnection();
      if (ddl.kind !== 'create-database' && ddl.kind !== 'drop-database' && ddl.schema !== '') {
        await conn.query(`CREATE DATABASE IF NOT EXISTS ${quoteIdent(ddl.schema)}`);
        await conn.query(`USE ${quoteIdent(ddl.schema)}`);
      }
      // no timeout: an ALTER of a big table takes as long as the downstream needs
      await conn.query(ddl.query);
      this.counters.ddls++;
      this.replayingDDL = false;
    } catch (error) {
      const errno = (error as { errno?: number }).errno;
      if (errno !== undefined && (DDL_ALREADY_DONE[ddl.kind] ?? []).includes(errno)) {
        this.ctx.logger.info('DDL already applied downstream (a replay after a restart, or a schema snapshot of a table that exists there): left as it is', { query: ddl.query, error: (error as Error).message });
      } else if (errno !== undefined && this.replayingDDL && DDL_REPLAY_ERRORS.has(errno)) {
        this.ctx.logger.warn('DDL already applied downstream: taken as the replay of a DDL executed before a restart', { query: ddl.query, commitTs: String(ddl.commitTs), error: (error as Error).message });
      } else {
        throw downstreamError('ErrMySQLDDLError', `the downstream rejected DDL "${ddl.query}"`, error);
      }
    } finally {
      conn?.release();
    }
    // what was read of the tables' keys (cached per table and column count) is read again after their DDL
    const prefixes = ddl.kind === 'create-database' || ddl.kind === 'drop-database' ? [''] : ddl.tables.map((t) => `${t.schema}.${t.table}/`);
    for (const cache of [this.shapes, this.uniqueKeysOf]) {
      for (const key of [...cache.keys()]) if (prefixes.some((prefix) => key.startsWith(prefix))) cache.delete(key);
    }
  }

  writeCheckpoint(): Promise<void> {
    return Promise.resolve();
  }

  /**
   * A syncpoint row in tidb_cdc.syncpoint_v1 (created if absent): the changefeed, its ts (primary_ts) and the
   * downstream's position at the barrier (secondary_ts: MariaDB's @@gtid_current_pos, MySQL's gtid_executed, or
   * the downstream's NOW(6) when it has no GTIDs), created_at by the downstream. Waits for everything handed
   * over before it to be committed first; a replayed syncpoint overwrites its row; this changefeed's rows older
   * than `sync-point-retention` are deleted. Rejects with a MySqlSinkError.
   */
  async writeSyncpoint(ts: Ts): Promise<void> {
    await this.flush(ts);
    try {
      await this.pool.query('CREATE DATABASE IF NOT EXISTS tidb_cdc');
      await this.pool.query(
        'CREATE TABLE IF NOT EXISTS tidb_cdc.syncpoint_v1 (ticdc_cluster_id VARCHAR(255) NOT NULL, changefeed VARCHAR(255) NOT NULL, primary_ts VARCHAR(64) NOT NULL, secondary_ts VARCHAR(255) NOT NULL, created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), PRIMARY KEY (changefeed, primary_ts))',
      );
      let secondary = '';
      for (const sql of ['SELECT @@gtid_current_pos AS pos', 'SELECT @@global.gtid_executed AS pos']) {
        try {
          const [rows] = await this.pool.query<mysql.RowDataPacket[]>(sql);
          secondary = String(rows[0]?.['pos'] ?? '');
          break;
        } catch {
          // not this flavour's variable: try the next
        }
      }
      if (secondary === '') secondary = String((await this.pool.query<mysql.RowDataPacket[]>('SELECT NOW(6) AS now'))[0][0]?.['now'] ?? '');
      await this.pool.query('REPLACE INTO tidb_cdc.syncpoint_v1 (ticdc_cluster_id, changefeed, primary_ts, secondary_ts) VALUES (?, ?, ?, ?)', ['default', this.ctx.changefeedId, ts.toString(), secondary]);
      // sync-point-retention (TiCDC's): this changefeed's syncpoints older than the retention go
      const retention = this.ctx.syncPointRetentionMs;
      if (retention !== undefined && retention > 0) {
        await this.pool.query('DELETE FROM tidb_cdc.syncpoint_v1 WHERE changefeed = ? AND created_at < NOW(6) - INTERVAL ? MICROSECOND', [this.ctx.changefeedId, retention * 1000]);
      }
    } catch (error) {
      throw downstreamError('ErrMySQLTxnError', `writing the syncpoint ${ts} of changefeed ${this.ctx.changefeedId} into tidb_cdc.syncpoint_v1 failed downstream`, error);
    }
  }

  async check(): Promise<void> {
    await this.pool.query('SELECT 1');
  }

  stats(): unknown {
    return { ...this.counters };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // what was accepted gets CLOSE_DEADLINE_MS to commit (a hung downstream must not hang the changefeed's stop)
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(this.workers.map((w) => w.idle().catch(() => undefined))),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, CLOSE_DEADLINE_MS);
      }),
    ]);
    clearTimeout(timer);
    await this.pool.end().catch(() => undefined);
    this.wake();
  }

  /** The key a table's rows are matched on: primary key, else a NOT NULL unique key downstream, else refused. */
  private shapeOf(table: TableName, columns: readonly ColumnInfo[]): Promise<TableShape> {
    const qualified = `${quoteIdent(table.schema)}.${quoteIdent(table.table)}`;
    const cacheKey = `${table.schema}.${table.table}/${columns.length}`;
    let shape = this.shapes.get(cacheKey);
    if (shape === undefined) {
      shape = (async (): Promise<TableShape> => {
        const pk = columns.flatMap((c, i) => (c.primaryKey ? [i] : []));
        if (pk.length > 0) return { qualified, key: pk, allColumns: false };
        const byIndex = await this.uniqueKeys(table);
        for (const { cols, nullable } of byIndex.values()) {
          if (nullable) continue;
          const key = cols.map((name) => columns.findIndex((c) => c.name === name));
          if (key.every((i) => i >= 0)) return { qualified, key, allColumns: false };
        }
        if (!this.forceReplicate) {
          throw new MySqlSinkError('ErrMySQLTableNoKey', `table ${table.schema}.${table.table} has no primary key and no NOT NULL unique key, so its rows cannot be matched downstream; add one, or set force-replicate=true in the sink URI (or force-replicate = true in changefeed.toml)`, false);
        }
        return { qualified, key: columns.map((_, i) => i), allColumns: true };
      })();
      shape.catch(() => this.shapes.delete(cacheKey));
      this.shapes.set(cacheKey, shape);
    }
    return shape;
  }

  /** Applies one table's rows: whole upstream transactions, merged into downstream transactions of up to max-txn-row rows. */
  async apply(table: TableName, rows: readonly RowChangedEvent[] | RenderedInserts): Promise<void> {
    if (!isRowList(rows)) {
      await this.applyTransaction(table, rows);
      this.counters.rows += rows.rows;
      return;
    }
    let start = 0;
    while (start < rows.length) {
      // whole upstream transactions (rows with the same commit ts), merged while they fit in max-txn-row
      let end = start;
      while (end < rows.length) {
        let txnEnd = end + 1;
        while (txnEnd < rows.length && rows[txnEnd].commitTs === rows[end].commitTs) txnEnd++;
        if (end > start && txnEnd - start > this.config.maxTxnRow) break;
        end = txnEnd;
      }
      await this.applyTransaction(table, rows.slice(start, end));
      start = end;
    }
    this.counters.rows += rows.length;
  }

  private async applyTransaction(table: TableName, rows: readonly RowChangedEvent[] | RenderedInserts): Promise<void> {
    // snapshot reads are inserts of rows read once: INSERT (a row there already, after a failure, is a
    // duplicate key, and the batch goes again idempotently); REPLACE's next-key locks make parallel writers of
    // one table deadlock
    let safe = (!isRowList(rows) || rows[0].snapshot === undefined) && (this.safeMode || Date.now() - this.startedAt < this.config.safeModeDurationMs);
    for (let attempt = 1; ; attempt++) {
      try {
        await this.execute(table, rows, safe);
        return;
      } catch (error) {
        const errno = (error as { errno?: number; cause?: { errno?: number } }).errno ?? (error as { cause?: { errno?: number } }).cause?.errno;
        if (!safe && errno === 1062) {
          // a duplicate key outside the safe window: these changes were applied before (a replay, or snapshot rows
          // copied again after a failure); apply them idempotently, and a deadlock of that form is retried too
          // (before, it failed the changefeed, which then waited out its backoff: minutes of a copy standing still)
          this.counters.safeModeRetries++;
          safe = true;
          attempt--;
          continue;
        }
        if ((errno === ER_LOCK_DEADLOCK || errno === ER_LOCK_WAIT_TIMEOUT) && attempt < LOCK_RETRIES) {
          // the downstream rolled the transaction back: it is applied again (TiCDC retries these too)
          this.counters.lockRetries++;
          this.ctx.logger.warn('a downstream transaction hit a deadlock or lock wait timeout; applying it again', { table: `${table.schema}.${table.table}`, attempt, errno });
          await new Promise((resolve) => setTimeout(resolve, 50 * attempt));
          continue;
        }
        throw error;
      }
    }
  }

  /**
   * A downstream transaction of inserts only, as one prepared multi-row INSERT (REPLACE in safe mode) in
   * autocommit (one statement is atomic), or undefined when the rows do not fit that form. mysql2 caches the
   * prepared statement per connection and shape (table, columns, row count). Measured on this machine: 1.3–1.4×
   * the rate of the same rows as an escaped text INSERT (binary protocol: no escaping, no parsing of values).
   * bigint values are bound as numbers only when they are safe integers (a string would turn into text for a
   * BIT column), otherwise the text form is used for the whole batch.
   */
  private async prepared(table: TableName, rows: readonly RowChangedEvent[], safe: boolean): Promise<{ sql: string; params: (string | number | Buffer | null)[] } | undefined> {
    if (!this.config.batchDmlEnable) return undefined;
    const columns = rows[0].columns;
    if (rows.length * columns.length > PREPARED_VALUES) return undefined;
    const params: (string | number | Buffer | null)[] = [];
    // no statement near the downstream's max_allowed_packet: wide rows go as text statements of STATEMENT_BYTES
    let bytes = 0;
    for (const row of rows) {
      if (row.kind !== 'insert' || !sameColumns(row.columns, columns)) return undefined;
      for (const v of row.after!) {
        if (typeof v === 'string' || Buffer.isBuffer(v)) {
          bytes += v.length;
          if (bytes > PREPARED_BYTES) return undefined;
        }
        if (typeof v === 'bigint') {
          if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) return undefined;
          params.push(Number(v));
        } else if (typeof v === 'boolean') params.push(v ? 1 : 0);
        else if (typeof v === 'number' && !Number.isFinite(v)) params.push(null);
        else params.push(v);
      }
    }
    const shape = await this.shapeOf(table, columns);
    const marks = `(${columns.map(() => '?').join(', ')})`;
    return { sql: `${safe ? 'REPLACE' : 'INSERT'} INTO ${shape.qualified} (${columns.map((c) => quoteIdent(c.name)).join(', ')}) VALUES ${Array.from({ length: rows.length }, () => marks).join(', ')}`, params };
  }

  private async execute(table: TableName, rows: readonly RowChangedEvent[] | RenderedInserts, safe: boolean): Promise<void> {
    if (!isRowList(rows)) {
      const shape = await this.shapeOf(table, rows.columns);
      const head = `${safe ? 'REPLACE' : 'INSERT'} INTO ${shape.qualified} (${rows.columns.map((c) => quoteIdent(c.name)).join(', ')}) VALUES `;
      return this.writeStatements(table, rows.values.map((values) => head + values), rows.rows, rows.firstCommitTs, rows.lastCommitTs);
    }
    if (!safe && rows[0].snapshot !== undefined && !this.loadDataOff && (await this.loadData(table, rows))) return;
    const insert = this.preparedOff ? undefined : await this.prepared(table, rows, safe);
    if (insert !== undefined) {
      let conn: mysql.PoolConnection | undefined;
      try {
        conn = await this.pool.getConnection();
        const c = conn;
        await this.timed(c, 'write-timeout', this.config.writeTimeoutMs, `writing ${rows.length} row(s) of ${table.schema}.${table.table}`, () => c.execute(insert.sql, insert.params));
        this.counters.transactions++;
        this.counters.statements++;
      } catch (error) {
        if (error instanceof TimedOut) {
          conn = undefined; // destroyed: the statement may still run downstream
          throw error.sinkError;
        }
        if ((error as { errno?: number }).errno === ER_MAX_PREPARED_STMT_COUNT) {
          // nothing was written: go on with the text form for the rest of the sink's life
          this.preparedOff = true;
          this.ctx.logger.warn('the downstream has no prepared statements left (max_prepared_stmt_count); writing inserts as text', {});
          conn?.release();
          conn = undefined;
          return this.execute(table, rows, safe);
        }
        throw downstreamError('ErrMySQLTxnError', `writing ${rows.length} row(s) of ${table.schema}.${table.table} (commit ts ${rows[0].commitTs}…${rows[rows.length - 1].commitTs}) failed downstream`, error);
      } finally {
        conn?.release();
      }
      return;
    }
    return this.writeStatements(table, await this.statements(table, rows, safe), rows.length, rows[0].commitTs, rows[rows.length - 1].commitTs);
  }

  /** One downstream transaction of text statements (`count` rows, commit ts first…last, for errors). */
  private async writeStatements(table: TableName, statements: readonly string[], count: number, first: Ts, last: Ts): Promise<void> {
    const timeout = this.config.writeTimeoutMs;
    const what = `writing ${count} row(s) of ${table.schema}.${table.table}`;
    let conn: mysql.PoolConnection | undefined;
    try {
      conn = await this.pool.getConnection();
      const c = conn;
      try {
        // one round trip with multi-stmt-enable (a failing statement stops the rest; the ROLLBACK below ends the
        // transaction); a big transaction in several, each well below max_allowed_packet (16 MiB by default)
        if (this.config.multiStmtEnable) {
          const groups = groupStatements(statements);
          if (groups.length === 1) await this.timed(c, 'write-timeout', timeout, what, () => c.query(`BEGIN;\n${groups[0]};\nCOMMIT`));
          else {
            await c.query('BEGIN');
            for (const group of groups) await this.timed(c, 'write-timeout', timeout, what, () => c.query(group));
            await this.timed(c, 'write-timeout', timeout, what, () => c.query('COMMIT'));
          }
        } else {
          await c.query('BEGIN');
          for (const sql of statements) await this.timed(c, 'write-timeout', timeout, what, () => c.query(sql));
          await this.timed(c, 'write-timeout', timeout, what, () => c.query('COMMIT'));
        }
      } catch (error) {
        if (error instanceof TimedOut) {
          conn = undefined; // destroyed: the server rolls the transaction back when it sees the connection closed
          throw error.sinkError;
        }
        await c.query('ROLLBACK').catch(() => undefined);
        throw error;
      }
      this.counters.transactions++;
      this.counters.statements += statements.length;
    } catch (error) {
      if (error instanceof MySqlSinkError) throw error;
      throw downstreamError('ErrMySQLTxnError', `${what} (commit ts ${first}…${last}) failed downstream`, error);
    } finally {
      conn?.release();
    }
  }

  /**
   * Snapshot rows (inserts of distinct keys read at one position) with one LOAD DATA LOCAL INFILE (load-data.ts),
   * in autocommit: one statement, atomic. False when these rows cannot be loaded (a column type or value without
   * an exact text form, or the downstream refuses local files); the caller writes them with INSERT then. With
   * LOCAL the server skips a duplicate key and turns a value it cannot take exactly into a warning instead of
   * failing; so when it skipped or warned about anything, the rows are written again with REPLACE, which is what
   * INSERT's duplicate-key error leads to as well, and the downstream ends with exactly the rows an INSERT gives.
   */
  private async loadData(table: TableName, rows: readonly RowChangedEvent[]): Promise<boolean> {
    const plan = loadPlanOf(rows[0].columns);
    if (plan === null) return false;
    const images: (readonly ColumnValue[])[] = new Array<readonly ColumnValue[]>(rows.length);
    for (let i = 0; i < rows.length; i++) {
      if (rows[i].kind !== 'insert' || !sameColumns(rows[i].columns, rows[0].columns)) return false;
      images[i] = rows[i].after!;
    }
    const text = encodeRows(images, plan);
    if (text === undefined) return false;
    const shape = await this.shapeOf(table, rows[0].columns);
    const what = `loading ${rows.length} snapshot row(s) of ${table.schema}.${table.table}`;
    let conn: mysql.PoolConnection | undefined;
    let result: mysql.ResultSetHeader;
    try {
      conn = await this.pool.getConnection();
      const c = conn;
      [result] = await this.timed(c, 'write-timeout', this.config.writeTimeoutMs, what, () => c.query<mysql.ResultSetHeader>({ sql: loadStatement(shape.qualified, plan), infileStreamFactory: () => textStream(text) }));
    } catch (error) {
      if (error instanceof TimedOut) {
        conn = undefined; // destroyed: the statement may still run downstream
        throw error.sinkError;
      }
      const errno = (error as { errno?: number }).errno;
      if (errno === ER_LOCAL_INFILE_REFUSED || (errno !== undefined && ER_LOCAL_INFILE_DISABLED.has(errno))) {
        // (once: loads on other workers may have been refused too meanwhile)
        if (!this.loadDataOff) this.ctx.logger.warn('the downstream refuses LOAD DATA LOCAL INFILE (local_infile is off); snapshot rows are written with INSERT, which is slower', { error: (error as Error).message });
        this.loadDataOff = true;
        return false;
      }
      throw downstreamError('ErrMySQLTxnError', `${what} (snapshot position ${rows[0].commitTs}) failed downstream`, error);
    } finally {
      conn?.release();
    }
    this.counters.transactions++;
    this.counters.statements++;
    if (result.affectedRows === rows.length && result.warningStatus === 0) {
      this.counters.loadedRows += rows.length;
      return true;
    }
    // a key already there (rows copied again after a failure) or a value the server did not take as it is
    this.counters.loadsRedone++;
    this.ctx.logger.info('snapshot rows loaded with skips or warnings; writing them again with REPLACE', { table: `${table.schema}.${table.table}`, rows: rows.length, loaded: result.affectedRows, warnings: result.warningStatus });
    await this.execute(table, rows, true);
    return true;
  }

  /**
   * Runs one downstream call with `read-timeout`/`write-timeout`: past it the connection is destroyed (the call
   * may still run downstream; a transaction is rolled back when the server sees the connection gone) and a
   * TimedOut carrying a retryable error is thrown. Own timer rather than mysql2's `timeout` option, which leaves
   * its timer behind when the connection fails.
   */
  private async timed<T>(conn: mysql.PoolConnection, key: 'write-timeout' | 'read-timeout', ms: number, what: string, call: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        conn.destroy();
        reject(new TimedOut(new MySqlSinkError('ErrMySQLConnectionError', `${what}: no answer from the downstream ${this.config.host}:${this.config.port} within ${key} (${ms / 1000} s); the changefeed retries from its checkpoint`, true)));
      }, ms);
    });
    try {
      return await Promise.race([call(), expired]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The statements of one downstream transaction: consecutive inserts and deletes batched, order kept. */
  private async statements(table: TableName, rows: readonly RowChangedEvent[], safe: boolean): Promise<string[]> {
    const out: string[] = [];
    let i = 0;
    while (i < rows.length) {
      const row = rows[i];
      const shape = await this.shapeOf(table, row.columns);
      const names = row.columns.map((c) => quoteIdent(c.name)).join(', ');
      const batch = this.config.batchDmlEnable;
      if (row.kind === 'insert') {
        const { values, end } = insertValues(rows, i, batch);
        out.push(`${safe ? 'REPLACE' : 'INSERT'} INTO ${shape.qualified} (${names}) VALUES ${values}`);
        i = end;
      } else if (row.kind === 'delete') {
        let j = i;
        if (shape.allColumns) {
          out.push(`DELETE FROM ${shape.qualified} WHERE ${this.where(row, row.before!, shape)} LIMIT 1`);
          i++;
          continue;
        }
        writer.begin();
        while (j < rows.length && rows[j].kind === 'delete' && sameColumns(rows[j].columns, row.columns) && (batch || j === i) && writer.length < STATEMENT_BYTES) {
          if (j > i) writer.comma();
          writer.key(rows[j++].before!, shape.key);
        }
        out.push(`DELETE FROM ${shape.qualified} WHERE (${shape.key.map((k) => quoteIdent(row.columns[k].name)).join(', ')}) IN (${writer.take()})`);
        i = j;
      } else if (batch && !shape.allColumns && sameKey(row, shape) && (await this.updatesInPlace(table, shape, row.columns))) {
        // a run of updates that keep their keys as one INSERT … ON DUPLICATE KEY UPDATE of the post-images: each row
        // is changed where it is (a DELETE and an INSERT cost the downstream more), and a row missing downstream is
        // written whole, as the DELETE and INSERT below would; the same key again in the run: the last one wins
        let j = i;
        writer.begin();
        while (j < rows.length && rows[j].kind === 'update' && sameColumns(rows[j].columns, row.columns) && sameKey(rows[j], shape) && writer.length < STATEMENT_BYTES) {
          if (j > i) writer.comma();
          writer.tuple(rows[j++].after!);
        }
        const set = row.columns.flatMap((c, k) => (shape.key.includes(k) ? [] : [`${quoteIdent(c.name)} = VALUES(${quoteIdent(c.name)})`])).join(', ');
        out.push(`INSERT INTO ${shape.qualified} (${names}) VALUES ${writer.take()} ON DUPLICATE KEY UPDATE ${set}`);
        i = j;
      } else if (batch && !shape.allColumns) {
        // a run of updates as one DELETE of the pre-image keys and one multi-row INSERT (REPLACE in safe mode)
        // of the post-images; the run ends before an update whose pre-image key is a post-image key of the run
        // (the same row changed again, or a key moved onto), so deleting first never removes a row written in it
        let j = i;
        const keyOf = (image: readonly ColumnValue[]): string => `(${shape.key.map((k) => literal(image[k] ?? null)).join(', ')})`;
        const befores: string[] = [];
        const afters: string[] = [];
        const written = new Set<string>();
        let bytes = 0;
        while (j < rows.length && rows[j].kind === 'update' && sameColumns(rows[j].columns, row.columns) && bytes < STATEMENT_BYTES) {
          const before = keyOf(rows[j].before!);
          if (written.has(before)) break;
          befores.push(before);
          written.add(keyOf(rows[j].after!));
          const after = `(${rows[j++].after!.map(literal).join(', ')})`;
          bytes += before.length + after.length;
          afters.push(after);
        }
        out.push(`DELETE FROM ${shape.qualified} WHERE (${shape.key.map((k) => quoteIdent(row.columns[k].name)).join(', ')}) IN (${befores.join(', ')})`);
        out.push(`${safe ? 'REPLACE' : 'INSERT'} INTO ${shape.qualified} (${names}) VALUES ${afters.join(', ')}`);
        i = j;
      } else {
        if (safe) {
          out.push(`DELETE FROM ${shape.qualified} WHERE ${this.where(row, row.before!, shape)}${shape.allColumns ? ' LIMIT 1' : ''}`);
          out.push(`REPLACE INTO ${shape.qualified} (${names}) VALUES (${row.after!.map(literal).join(', ')})`);
        } else {
          const set = row.columns.map((c, k) => `${quoteIdent(c.name)} = ${literal(row.after![k] ?? null)}`).join(', ');
          out.push(`UPDATE ${shape.qualified} SET ${set} WHERE ${this.where(row, row.before!, shape)}${shape.allColumns ? ' LIMIT 1' : ''}`);
        }
        i++;
      }
    }
    return out;
  }

  /**
   * The downstream table's unique keys (primary included): per index, its columns in order and whether one of them
   * is nullable. Read once per table, and again after a DDL of it.
   */
  private uniqueKeys(table: TableName): Promise<Map<string, { cols: string[]; nullable: boolean }>> {
    const cacheKey = `${table.schema}.${table.table}/`;
    let keys = this.uniqueKeysOf.get(cacheKey);
    if (keys === undefined) {
      keys = (async (): Promise<Map<string, { cols: string[]; nullable: boolean }>> => {
        const conn = await this.pool.getConnection();
        let rows: mysql.RowDataPacket[];
        try {
          [rows] = await this.timed(conn, 'read-timeout', this.config.readTimeoutMs, `reading the keys of ${table.schema}.${table.table}`, () => conn.query<mysql.RowDataPacket[]>({
            sql: `SELECT s.INDEX_NAME AS idx, s.COLUMN_NAME AS col, c.IS_NULLABLE AS nullable FROM information_schema.STATISTICS s
             JOIN information_schema.COLUMNS c ON c.TABLE_SCHEMA = s.TABLE_SCHEMA AND c.TABLE_NAME = s.TABLE_NAME AND c.COLUMN_NAME = s.COLUMN_NAME
            WHERE s.TABLE_SCHEMA = ? AND s.TABLE_NAME = ? AND s.NON_UNIQUE = 0 ORDER BY s.INDEX_NAME, s.SEQ_IN_INDEX`,
            values: [table.schema, table.table],
          }));
          conn.release();
        } catch (error) {
          if (error instanceof TimedOut) throw error.sinkError; // its connection is destroyed
          conn.release();
          throw error;
        }
        const byIndex = new Map<string, { cols: string[]; nullable: boolean }>();
        for (const r of rows) {
          const entry = byIndex.get(String(r['idx'])) ?? { cols: [], nullable: false };
          entry.cols.push(String(r['col']));
          if (String(r['nullable']) === 'YES') entry.nullable = true;
          byIndex.set(String(r['idx']), entry);
        }
        return byIndex;
      })();
      keys.catch(() => this.uniqueKeysOf.delete(cacheKey));
      this.uniqueKeysOf.set(cacheKey, keys);
    }
    return keys;
  }

  /**
   * Whether updates of the table that keep their key may go as INSERT … ON DUPLICATE KEY UPDATE: its rows' key is
   * the only unique key of the downstream table (with another, a row taking a unique value another row gives up in
   * the same run would update that other row instead), and it has columns besides the key.
   */
  private async updatesInPlace(table: TableName, shape: TableShape, columns: readonly ColumnInfo[]): Promise<boolean> {
    if (shape.key.length === columns.length) return false;
    const only = [...(await this.uniqueKeys(table)).values()];
    if (only.length !== 1) return false;
    const cols = new Set(only[0].cols.map((c) => c.toLowerCase()));
    return cols.size === shape.key.length && shape.key.every((k) => cols.has(columns[k].name.toLowerCase()));
  }

  private where(row: RowChangedEvent, image: readonly ColumnValue[], shape: TableShape): string {
    return shape.key.map((k) => `${quoteIdent(row.columns[k].name)} ${shape.allColumns ? '<=>' : '='} ${literal(image[k] ?? null)}`).join(' AND ');
  }
}

function isRowList(rows: readonly RowChangedEvent[] | RenderedInserts): rows is readonly RowChangedEvent[] {
  return Array.isArray(rows);
}

/** Whether an update keeps its row's key (the same key values before and after). */
function sameKey(row: RowChangedEvent, shape: TableShape): boolean {
  for (const k of shape.key) {
    const before = row.before![k] ?? null;
    const after = row.after![k] ?? null;
    if (before !== after && !(Buffer.isBuffer(before) && Buffer.isBuffer(after) && before.equals(after))) return false;
  }
  return true;
}
