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

  writeRows(table: TableName, rows: readonly RowChangedEvent[]): Promise<void> {
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
    return Promise.resolve();
  }

  async flush(upTo: Ts): Promise<void> {
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

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  get isClosed(): boolean {
    return this.closed;
  }
}

const PARAMS = ['delay-ms'];

export const factory = {
  schemes: ['blackhole'],
  parseConfig(uri: URL): BlackholeConfig {
    for (const key of uri.searchParams.keys()) {
      if (!PARAMS.includes(key)) throw new Error(`unknown parameter "${key}" in blackhole sink URI; allowed: ${PARAMS.join(', ')}`);
    }
    const raw = uri.searchParams.get('delay-ms') ?? '0';
    const delayMs = Number(raw);
    if (!Number.isInteger(delayMs) || delayMs < 0 || delayMs > 600_000) {
      throw new Error(`invalid delay-ms "${raw}" in blackhole sink URI: an integer from 0 to 600000`);
    }
    return { delayMs };
  },
  create(_uri: URL, config: BlackholeConfig): Promise<Sink> {
    return Promise.resolve(new BlackholeSink(config));
  },
} satisfies SinkFactory<BlackholeConfig>;
