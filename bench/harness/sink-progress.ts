/**
 * How far the sink has got, per table, seen from outside the cdc server: for the sink lag of a fixed-rate run
 * (upstream commit → the row handed to the blackhole, acknowledged by Kafka and read back, committed downstream).
 * Each is polled or consumed every POLL_MS, so a lag is known to within that.
 */
import { Kafka, logLevel, type Consumer } from 'kafkajs';
import mysql from 'mysql2/promise';
import { ApiClient } from '../../src/core/api/client.js';
import { DEFAULT_NAMESPACE } from '../../src/core/orchestrator/etcd-keys.js';

export const POLL_MS = 10;

export interface SinkProgress {
  /**
   * What the generator compares with, per table: `count` (rows the sink has been given, for the blackhole) or
   * `maxId` (the highest id that arrived, for MySQL and Kafka).
   */
  readonly measure: 'count' | 'maxId';
  /** The latest figure per table name (without the schema). */
  readonly seen: Map<string, number>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Polls the changefeed's sink counters (the blackhole counts the rows it was given per table). */
export function blackholeProgress(serverUrl: string, changefeedId: string, db: string): SinkProgress {
  const seen = new Map<string, number>();
  let running = true;
  let loop: Promise<void> = Promise.resolve();
  return {
    measure: 'count',
    seen,
    start() {
      const api = new ApiClient(serverUrl, 3000);
      loop = (async () => {
        while (running) {
          const info = await api.sinkInfo(changefeedId, DEFAULT_NAMESPACE).catch(() => undefined);
          if (info !== undefined) {
            const stats = info.stats as { tables?: Record<string, { inserts?: number }> } | null;
            for (const [name, counts] of Object.entries(stats?.tables ?? {})) {
              if (name.startsWith(`${db}.`)) seen.set(name.slice(db.length + 1), counts.inserts ?? 0);
            }
          }
          await new Promise((resolve) => setTimeout(resolve, POLL_MS));
        }
      })();
      return Promise.resolve();
    },
    async stop() {
      running = false;
      await loop;
    },
  };
}

/** Polls MAX(id) of each table on the downstream (committed rows only). */
export function mysqlProgress(host: string, port: number, db: string, tables: readonly string[]): SinkProgress {
  const seen = new Map<string, number>();
  let running = true;
  let loop: Promise<void> = Promise.resolve();
  let conn: mysql.Connection | undefined;
  const sql = tables.map((t) => `SELECT '${t}' AS t, MAX(id) AS m FROM \`${db}\`.\`${t}\``).join(' UNION ALL ');
  return {
    measure: 'maxId',
    seen,
    async start() {
      conn = await mysql.createConnection({ host, port, user: 'root' });
      const c = conn;
      loop = (async () => {
        while (running) {
          const [rows] = await c.query<mysql.RowDataPacket[]>(sql).catch(() => [[]] as unknown as [mysql.RowDataPacket[]]);
          for (const row of rows) if (row['m'] !== null) seen.set(String(row['t']), Number(row['m']));
          await new Promise((resolve) => setTimeout(resolve, POLL_MS));
        }
      })();
    },
    async stop() {
      running = false;
      await loop;
      await conn?.end();
    },
  };
}

/** Consumes the topic as it is written (canal-json) and keeps the highest id per table. */
export function kafkaProgress(broker: string, topic: string): SinkProgress {
  const seen = new Map<string, number>();
  const kafka = new Kafka({ clientId: 'tidemark-bench-lag', brokers: [broker], logLevel: logLevel.NOTHING });
  let consumer: Consumer | undefined;
  return {
    measure: 'maxId',
    seen,
    async start() {
      // the sink creates the topic with its first rows, after this starts: create it first (3 partitions, the
      // sink's default), or the subscription fails on an unknown topic
      const admin = kafka.admin();
      await admin.connect();
      try {
        await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
      } finally {
        await admin.disconnect();
      }
      consumer = kafka.consumer({ groupId: `tidemark-bench-lag-${process.pid}-${Date.now().toString(36)}`, maxWaitTimeInMs: POLL_MS });
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      void consumer.run({
        eachMessage: ({ message }) => {
          if (message.value === null) return Promise.resolve();
          const m = JSON.parse(message.value.toString()) as { table?: string; isDdl?: boolean; data?: { id?: string | number }[] | null };
          if (m.isDdl === true || m.table === undefined || !Array.isArray(m.data)) return Promise.resolve();
          let max = seen.get(m.table) ?? 0;
          for (const row of m.data) if (row.id !== undefined && Number(row.id) > max) max = Number(row.id);
          seen.set(m.table, max);
          return Promise.resolve();
        },
      });
      return Promise.resolve();
    },
    async stop() {
      await consumer?.disconnect();
    },
  };
}
