import { setTimeout as wait } from 'node:timers/promises';
import type { ColumnInfo, ColumnValue, DDLEvent, RowChangedEvent, Sink, SinkContext, SinkFactory, TableName, Ts } from 'tidemark/sink';

/** Per-table counts of what the blackhole was given, for tests and benchmarks. */
export interface BlackholeTableCounts {
  inserts: number;
  updates: number;
  deletes: number;
}

/** The URI parameters, each named once so messages quote them exactly. */
const DELAY_MS = 'delay-ms';
const WRITE_DELAY_MS = 'write-delay-ms';
const ROW_DELAY_US = 'row-delay-us';
const FAIL_UNTIL = 'fail-until';
const FAIL_FATAL = 'fail-fatal';
const RECORD = 'record';
const PARAMS = [DELAY_MS, WRITE_DELAY_MS, ROW_DELAY_US, FAIL_UNTIL, FAIL_FATAL, RECORD];
/** What a recording's name may be: it is a key in this process's registry, not a path. */
const RECORD_NAME = /^[A-Za-z0-9._-]{1,128}$/;

export interface BlackholeConfig {
  /** `blackhole://?delay-ms=N` slows every flush down, to test backpressure and spilling. */
  readonly delayMs: number;
  /** `write-delay-ms=N` slows every `writeRows` call down (a slow downstream: the sorter spills behind it). */
  readonly writeDelayMs: number;
  /** `row-delay-us=N` slows `writeRows` by N µs per row (a downstream with a throughput limit, whatever the batch size). */
  readonly rowDelayUs: number;
  /** `fail-until=<ms since the epoch>`: every flush fails (retryable) until then, to exercise the changefeed's backoff. */
  readonly failUntil: number;
  /** `fail-fatal=true`: every flush fails with a non-retryable error. */
  readonly failFatal: boolean;
  /**
   * `record=<name>`: keep what every flush acknowledged, table by table, in this process's registry under
   * `name` (read with `blackholeRecording`). Absent (the default): nothing is kept.
   */
  readonly record?: string;
}

/** A recorded row: its values by column name, as the last acknowledged change left them. */
export type RecordedRow = ReadonlyMap<string, ColumnValue>;

/** What the sinks created with `record=<name>` acknowledged, in this process. */
export interface BlackholeRecording {
  /** Per table (`schema.table`), the rows acknowledged so far, by primary key (the key text is internal). */
  readonly tables: ReadonlyMap<string, ReadonlyMap<string, RecordedRow>>;
  /** Every DDL, in the order received. */
  readonly ddls: readonly DDLEvent[];
  /** The highest `upTo` acknowledged. */
  readonly flushedTs: Ts;
}

/** The text of a value in a row key: the same for a bigint and a number of the same value. */
function keyPart(value: ColumnValue | undefined): string {
  if (value === null || value === undefined) return '\u0000null';
  if (Buffer.isBuffer(value)) return `0x${value.toString('hex')}`;
  if (typeof value === 'boolean') return value ? '1' : '0';
  return String(value);
}

/** A row's identity: its primary-key values, or every value when the table has no primary key. */
function rowKey(columns: readonly ColumnInfo[], values: readonly ColumnValue[]): string {
  const hasPk = columns.some((c) => c.primaryKey);
  const parts: string[] = [];
  columns.forEach((column, i) => {
    if (!hasPk || column.primaryKey) parts.push(keyPart(values[i]));
  });
  return parts.join('\u0001');
}

class Recording implements BlackholeRecording {
  readonly tables = new Map<string, Map<string, Map<string, ColumnValue>>>();
  readonly ddls: DDLEvent[] = [];
  flushedTs: Ts = 0n;

  /** Applies acknowledged changes in order: a pre-image removes its row, a post-image sets its row. */
  applyRows(table: TableName, rows: readonly RowChangedEvent[]): void {
    const key = `${table.schema}.${table.table}`;
    let state = this.tables.get(key);
    if (state === undefined) {
      state = new Map();
      this.tables.set(key, state);
    }
    for (const row of rows) {
      if (row.before !== null) state.delete(rowKey(row.columns, row.before));
      if (row.after !== null) {
        const after = row.after;
        state.set(rowKey(row.columns, after), new Map(row.columns.map((c, i) => [c.name, copy(after[i] ?? null)])));
      }
    }
  }

  /** Keeps the DDL; DROP and TRUNCATE empty the tables they name (DROP DATABASE every table of the schema). */
  applyDDL(ddl: DDLEvent): void {
    this.ddls.push(ddl);
    if (ddl.kind === 'drop-table' || ddl.kind === 'truncate-table') {
      for (const t of ddl.tables) this.tables.delete(`${t.schema}.${t.table}`);
    } else if (ddl.kind === 'drop-database') {
      for (const key of [...this.tables.keys()]) if (key.startsWith(`${ddl.schema}.`)) this.tables.delete(key);
    }
  }
}

const copy = (value: ColumnValue): ColumnValue => (Buffer.isBuffer(value) ? Buffer.from(value) : value);

/** The recordings of this process, by name: module state, so it is shared by every sink of this module. */
const recordings = new Map<string, Recording>();

/**
 * What the sinks created with `record=<name>` acknowledged (undefined when none was created under that name).
 * It lives in the instance of this module that created the sinks: a test reads it from the module it took the
 * factory from.
 */
export function blackholeRecording(name: string): BlackholeRecording | undefined {
  return recordings.get(name);
}

/** Forgets the recording `name`, or every recording. A sink still open under that name starts a new one. */
export function clearBlackholeRecordings(name?: string): void {
  if (name === undefined) recordings.clear();
  else recordings.delete(name);
}

function recordingFor(name: string): Recording {
  let recording = recordings.get(name);
  if (recording === undefined) {
    recording = new Recording();
    recordings.set(name, recording);
  }
  return recording;
}

/** The error of a call refused because the changefeed's signal was aborted: an AbortError naming the reason. */
function abortError(ctx: SinkContext, call: string): Error {
  const reason: unknown = ctx.signal.reason;
  const because = reason instanceof Error ? reason.message : String(reason);
  const error = new Error(`blackhole sink of changefeed ${ctx.changefeedId}: ${call} refused, the changefeed's signal was aborted: ${because}`, { cause: reason });
  error.name = 'AbortError';
  return error;
}

/**
 * The blackhole sink: acknowledges everything at once (after `delay-ms`, when set) and keeps counts. With
 * `record=<name>` it also keeps the rows each flush acknowledged (see `blackholeRecording`); without it, it
 * keeps no rows at all. Every call rejects once the context's signal is aborted; `close` still resolves.
 * It is the first sink plugin and the reference for third-party ones.
 */
export class BlackholeSink implements Sink {
  readonly counts = new Map<string, BlackholeTableCounts>();
  /** Per table, the snapshot reads (`row.snapshot` set, `--snapshot initial`) among its inserts; tables with none are absent. */
  readonly snapshotRows = new Map<string, number>();
  readonly ddls: DDLEvent[] = [];
  flushedTs: Ts = 0n;
  checkpointTs: Ts = 0n;
  private closed = false;
  /** With `record`: the rows handed over since the last flush took them, in order. */
  private readonly pending: [TableName, readonly RowChangedEvent[]][] = [];
  private readonly recording: Recording | undefined;

  constructor(
    private readonly config: BlackholeConfig,
    private readonly ctx: SinkContext,
  ) {
    this.recording = config.record === undefined ? undefined : recordingFor(config.record);
  }

  /** May buffer (only with `record`); resolves after `write-delay-ms` and `row-delay-us`. Rejects once aborted. */
  async writeRows(table: TableName, rows: readonly RowChangedEvent[]): Promise<void> {
    this.throwIfAborted('writeRows');
    const delay = this.config.writeDelayMs + Math.round((rows.length * this.config.rowDelayUs) / 1000);
    if (delay > 0) await this.sleep(delay, 'writeRows');
    const key = `${table.schema}.${table.table}`;
    let counts = this.counts.get(key);
    if (counts === undefined) {
      counts = { inserts: 0, updates: 0, deletes: 0 };
      this.counts.set(key, counts);
    }
    let snapshotRows = 0;
    for (const row of rows) {
      if (row.kind === 'insert') {
        counts.inserts++;
        if (row.snapshot !== undefined) snapshotRows++;
      } else if (row.kind === 'update') counts.updates++;
      else counts.deletes++;
    }
    if (snapshotRows > 0) this.snapshotRows.set(key, (this.snapshotRows.get(key) ?? 0) + snapshotRows);
    if (this.recording !== undefined) this.pending.push([table, rows]);
  }

  /** Acknowledges every row handed over before it (after `delay-ms`); with `record`, they are then in the recording. */
  async flush(upTo: Ts): Promise<void> {
    this.throwIfAborted('flush');
    if (this.config.failFatal) throw Object.assign(new Error('blackhole configured to fail (fail-fatal=true)'), { retryable: false });
    if (Date.now() < this.config.failUntil) throw new Error(`blackhole configured to fail until ${new Date(this.config.failUntil).toISOString()} (fail-until)`);
    // with `record`: the rows this flush covers are those handed over before it was called
    const batch = this.recording === undefined ? undefined : this.pending.splice(0);
    if (this.config.delayMs > 0) await this.sleep(this.config.delayMs, 'flush');
    if (upTo > this.flushedTs) this.flushedTs = upTo;
    if (this.recording !== undefined && batch !== undefined) {
      for (const [table, rows] of batch) this.recording.applyRows(table, rows);
      if (upTo > this.recording.flushedTs) this.recording.flushedTs = upTo;
    }
  }

  writeDDL(ddl: DDLEvent): Promise<void> {
    if (this.ctx.signal.aborted) return Promise.reject(abortError(this.ctx, 'writeDDL'));
    this.ddls.push(ddl);
    if (this.recording !== undefined) {
      // rows before the barrier were flushed already; any left over go first, in order
      for (const [table, rows] of this.pending.splice(0)) this.recording.applyRows(table, rows);
      this.recording.applyDDL(ddl);
    }
    return Promise.resolve();
  }

  writeCheckpoint(ts: Ts): Promise<void> {
    if (this.ctx.signal.aborted) return Promise.reject(abortError(this.ctx, 'writeCheckpoint'));
    if (ts > this.checkpointTs) this.checkpointTs = ts;
    return Promise.resolve();
  }

  /**
   * The counts: `tables` every row by kind (a snapshot read counts as an insert there), `snapshotRows` the snapshot
   * reads per table (only tables that had some), `snapshotRowsTotal` their sum.
   */
  stats(): { tables: Record<string, BlackholeTableCounts>; snapshotRows: Record<string, number>; snapshotRowsTotal: number; flushedTs: string; checkpointTs: string; ddls: number } {
    let snapshotRowsTotal = 0;
    for (const n of this.snapshotRows.values()) snapshotRowsTotal += n;
    return {
      tables: Object.fromEntries(this.counts),
      snapshotRows: Object.fromEntries(this.snapshotRows),
      snapshotRowsTotal,
      flushedTs: String(this.flushedTs),
      checkpointTs: String(this.checkpointTs),
      ddls: this.ddls.length,
    };
  }

  /** Idempotent; resolves even after the signal was aborted. Rows not flushed are dropped. */
  close(): Promise<void> {
    this.closed = true;
    this.pending.length = 0;
    return Promise.resolve();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private throwIfAborted(call: string): void {
    if (this.ctx.signal.aborted) throw abortError(this.ctx, call);
  }

  /** Waits `ms`, cut short (rejecting) when the signal is aborted. */
  private async sleep(ms: number, call: string): Promise<void> {
    try {
      await wait(ms, undefined, { signal: this.ctx.signal });
    } catch (error) {
      if (this.ctx.signal.aborted) throw abortError(this.ctx, call);
      throw error;
    }
  }
}

export const factory = {
  schemes: ['blackhole'],
  parseConfig(uri: URL): BlackholeConfig {
    for (const key of uri.searchParams.keys()) {
      if (!PARAMS.includes(key)) throw new Error(`unknown parameter "${key}" in blackhole sink URI; allowed: ${PARAMS.join(', ')}`);
    }
    const delay = (key: string): number => {
      const raw = uri.searchParams.get(key) ?? '0';
      const ms = Number(raw);
      if (!Number.isInteger(ms) || ms < 0 || ms > 600_000) throw new Error(`invalid ${key} "${raw}" in blackhole sink URI: an integer from 0 to 600000`);
      return ms;
    };
    const delayMs = delay(DELAY_MS);
    const writeDelayMs = delay(WRITE_DELAY_MS);
    const rowDelayUs = delay(ROW_DELAY_US);
    const untilRaw = uri.searchParams.get(FAIL_UNTIL) ?? '0';
    const failUntil = Number(untilRaw);
    if (!Number.isSafeInteger(failUntil) || failUntil < 0) {
      throw new Error(`invalid ${FAIL_UNTIL} "${untilRaw}" in blackhole sink URI: a time in ms since the epoch`);
    }
    const fatalRaw = uri.searchParams.get(FAIL_FATAL) ?? 'false';
    if (fatalRaw !== 'true' && fatalRaw !== 'false') throw new Error(`invalid ${FAIL_FATAL} "${fatalRaw}" in blackhole sink URI: true or false`);
    const record = uri.searchParams.get(RECORD);
    if (record !== null && !RECORD_NAME.test(record)) {
      throw new Error(`invalid ${RECORD} "${record}" in blackhole sink URI: a name of 1 to 128 letters, digits, '.', '_' or '-'`);
    }
    return { delayMs, writeDelayMs, rowDelayUs, failUntil, failFatal: fatalRaw === 'true', ...(record === null ? {} : { record }) };
  },
  /** Resolves at once; rejects (an AbortError naming the reason) when ctx.signal is already aborted. */
  create(_uri: URL, config: BlackholeConfig, ctx: SinkContext): Promise<Sink> {
    if (ctx.signal.aborted) return Promise.reject(abortError(ctx, 'create'));
    return Promise.resolve(new BlackholeSink(config, ctx));
  },
} satisfies SinkFactory<BlackholeConfig>;
