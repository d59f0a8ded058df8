import type { DDLEvent, RowChangedEvent, Sink, SinkFactory, TableName, Ts } from 'tidemark/sink';

/** Per-table counts of what the blackhole was given, for tests and benchmarks. */
export interface BlackholeTableCounts {
  inserts: number;
  updates: number;
  deletes: number;
}

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
}

/**
 * The blackhole sink: acknowledges everything at once (after `delay-ms`, when set) and keeps counts.
 * It is the first sink plugin and the reference for third-party ones.
 */
export class BlackholeSink implements Sink {
  readonly counts = new Map<string, BlackholeTableCounts>();
  readonly ddls: DDLEvent[] = [];
  flushedTs: Ts = 0n;
  checkpointTs: Ts = 0n;
  private closed = false;

  constructor(private readonly config: BlackholeConfig) {}

  async writeRows(table: TableName, rows: readonly RowChangedEvent[]): Promise<void> {
    const delay = this.config.writeDelayMs + Math.round((rows.length * this.config.rowDelayUs) / 1000);
    if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
    const key = `${table.schema}.${table.table}`;
    let counts = this.counts.get(key);
    if (counts === undefined) {
      counts = { inserts: 0, updates: 0, deletes: 0 };
      this.counts.set(key, counts);
    }
    for (const row of rows) {
      if (row.kind === 'insert') counts.inserts++;
      else if (row.kind === 'update') counts.updates++;
      else counts.deletes++;
    }
  }

  async flush(upTo: Ts): Promise<void> {
    if (this.config.failFatal) throw Object.assign(new Error('blackhole configured to fail (fail-fatal=true)'), { retryable: false });
    if (Date.now() < this.config.failUntil) throw new Error(`blackhole configured to fail until ${new Date(this.config.failUntil).toISOString()} (fail-until)`);
    if (this.config.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.config.delayMs));
    if (upTo > this.flushedTs) this.flushedTs = upTo;
  }

  writeDDL(ddl: DDLEvent): Promise<void> {
    this.ddls.push(ddl);
    return Promise.resolve();
  }

  writeCheckpoint(ts: Ts): Promise<void> {
    if (ts > this.checkpointTs) this.checkpointTs = ts;
    return Promise.resolve();
  }

  stats(): { tables: Record<string, BlackholeTableCounts>; flushedTs: string; checkpointTs: string; ddls: number } {
    return { tables: Object.fromEntries(this.counts), flushedTs: String(this.flushedTs), checkpointTs: String(this.checkpointTs), ddls: this.ddls.length };
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  get isClosed(): boolean {
    return this.closed;
  }
}

const PARAMS = ['delay-ms', 'write-delay-ms', 'row-delay-us', 'fail-until', 'fail-fatal'];

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
    const delayMs = delay('delay-ms');
    const writeDelayMs = delay('write-delay-ms');
    const rowDelayUs = delay('row-delay-us');
    const untilRaw = uri.searchParams.get('fail-until') ?? '0';
    const failUntil = Number(untilRaw);
    if (!Number.isSafeInteger(failUntil) || failUntil < 0) {
      throw new Error(`invalid fail-until "${untilRaw}" in blackhole sink URI: a time in ms since the epoch`);
    }
    const fatalRaw = uri.searchParams.get('fail-fatal') ?? 'false';
    if (fatalRaw !== 'true' && fatalRaw !== 'false') throw new Error(`invalid fail-fatal "${fatalRaw}" in blackhole sink URI: true or false`);
    return { delayMs, writeDelayMs, rowDelayUs, failUntil, failFatal: fatalRaw === 'true' };
  },
  create(_uri: URL, config: BlackholeConfig): Promise<Sink> {
    return Promise.resolve(new BlackholeSink(config));
  },
} satisfies SinkFactory<BlackholeConfig>;
