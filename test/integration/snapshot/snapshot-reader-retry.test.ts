import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Readable } from 'node:stream';
import type mysql from 'mysql2/promise';
import { silentLogger } from '../../../src/core/logger/logger.js';
import { MemoryQuota } from '../../../src/core/pipeline/sorter/memory-quota.js';
import type { ColumnInfo, RowChangedEvent, TableName, Ts } from '../../../src/core/sink/api.js';
import { readTableSnapshot } from '../../../src/core/snapshot/snapshot-reader.js';
import { ReadSlots } from '../../../src/core/snapshot/read-slots.js';
import { pendingRecord } from '../../../src/core/snapshot/progress.js';
import { TableSnapshot } from '../../../src/core/snapshot/table-snapshot.js';
import { Upstream } from '../../../src/core/upstream/upstream.js';
import { mysqlUri } from '../../helpers/services.js';
import { upstreamEndTs, upstreamScratchDatabase } from '../../helpers/upstream.js';
import { waitFor } from '../../helpers/wait-for.js';

/** Rows in the table: a chunk of 4,000 (four pieces), then the rest. */
const ROWS = 5000;
const FILL = 'x'.repeat(100);

/**
 * What the table sink stage does with a snapshotting table, on a map standing for the sink: the table's binlog
 * changes up to each piece's position go through `keep`, then the piece is written (after a TRUNCATE when asked).
 * Rows are counted by their whole image (a table without a key may hold the same row twice).
 */
class SinkStandIn {
  readonly rows = new Map<string, number>();
  private next = 0;

  constructor(
    private readonly snapshot: TableSnapshot,
    private readonly changes: RowChangedEvent[],
  ) {}

  /** Writes what is queued; returns whether the table is finished. */
  writeQueued(): boolean {
    for (let front = this.snapshot.front(); front !== undefined; front = this.snapshot.front()) {
      this.applyChanges(front.ts);
      const piece = this.snapshot.begin(front);
      if (this.snapshot.truncateFirst) {
        this.rows.clear();
        this.snapshot.truncateFirst = false;
      }
      for (const row of piece.rows) this.add(row.after!);
      this.snapshot.written(piece);
    }
    if (this.snapshot.finished) this.applyChanges(undefined);
    return this.snapshot.finished;
  }

  private applyChanges(upTo: Ts | undefined): void {
    while (this.next < this.changes.length && (upTo === undefined || this.changes[this.next].commitTs <= upTo)) {
      const kept = this.snapshot.keep(this.changes[this.next++]);
      if (kept?.kind === 'delete') this.remove(kept.before!);
      else if (kept !== undefined) throw new Error(`unexpected ${kept.kind}`);
    }
  }

  private add(image: readonly unknown[]): void {
    const key = JSON.stringify(image);
    this.rows.set(key, (this.rows.get(key) ?? 0) + 1);
  }

  private remove(image: readonly unknown[]): void {
    const key = JSON.stringify(image);
    const n = this.rows.get(key) ?? 0;
    if (n <= 1) this.rows.delete(key);
    else this.rows.set(key, n - 1);
  }
}

/**
 * A snapshot read whose connection is lost part-way through a chunk, after some of its rows were handed on, while
 * a row it had handed on is deleted upstream: the read goes on, and the sink ends equal to the upstream. Before,
 * the chunk was read again from its start at a later position, and the deleted row, written from the first read,
 * stayed: its delete fell before the re-read chunk's position and was dropped (a one-pass read also wrote its rows
 * twice). Real MariaDB; the failure is injected into the reader's own connection.
 */
describe('snapshot reader: a read that fails part-way (real MariaDB)', () => {
  const scratch = upstreamScratchDatabase('snapretry');
  const db = scratch.db;

  for (const shape of ['chunks', 'one-pass'] as const) {
    it(`${shape}: the rows handed on before the failure are not written again at a later position; the sink ends equal`, async () => {
      const name = shape === 'chunks' ? 'keyed' : 'keyless';
      await scratch.conn.query(`CREATE TABLE \`${db}\`.${name} (id INT NOT NULL${shape === 'chunks' ? ' PRIMARY KEY' : ''}, v VARCHAR(100))`);
      for (let i = 1; i <= ROWS; i += 1000) {
        await scratch.conn.query(`INSERT INTO \`${db}\`.${name} VALUES ${Array.from({ length: 1000 }, (_, j) => `(${i + j}, '${FILL}')`).join(', ')}`);
      }
      const table: TableName = { schema: db, table: name, tableId: 1 };
      const startTs = await upstreamEndTs(scratch.conn);
      // one piece queued at a time: the reader waits with its stream paused until the stand-in takes it
      const snapshot = new TableSnapshot(pendingRecord(startTs), startTs, () => undefined, 1);
      const quota = new MemoryQuota(256 << 20);
      const controller = new AbortController();
      // the reader's first connection and its row stream, to break them part-way (the server is the real one): rows
      // the server sent but the reader did not take yet go with them, as in a lost connection
      const upstream = Upstream.of(mysqlUri('upstream'));
      const connect = upstream.connect.bind(upstream);
      let readerConnection: mysql.Connection | undefined;
      let readerStream: Readable | undefined;
      upstream.connect = async (extra) => {
        const connection = await connect(extra);
        if (readerConnection === undefined) {
          readerConnection = connection;
          const inner = (connection as unknown as { connection: { query: (...args: unknown[]) => { stream: (options: unknown) => Readable } } }).connection;
          const query = inner.query;
          inner.query = (...args) => {
            const q = query.apply(inner, args);
            const stream = q.stream;
            q.stream = (options) => (readerStream = stream.call(q, options));
            return q;
          };
        }
        return connection;
      };
      const reading = readTableSnapshot({ upstream, table, snapshot, chunkRows: 4000, quota, logger: silentLogger, readers: new ReadSlots(1) }, controller.signal);
      try {
        await waitFor(() => snapshot.front() !== undefined, { timeoutMs: 20_000, intervalMs: 20, what: 'the first piece queued' });
        const firstPiece = snapshot.front()!;
        const readAt = firstPiece.ts;
        const handed = firstPiece.rows[0].after!;
        assert.equal(handed[0], 1, 'the first piece starts at the first row');

        // a row already handed on, and one not read yet, deleted while the read is paused
        const columns: ColumnInfo[] = [
          { name: 'id', mysqlType: 'int', primaryKey: shape === 'chunks', nullable: false },
          { name: 'v', mysqlType: 'varchar', primaryKey: false, nullable: true },
        ];
        const changes: RowChangedEvent[] = [];
        for (const id of [10, 4500]) {
          await scratch.conn.query(`DELETE FROM \`${db}\`.${name} WHERE id = ${id}`);
          changes.push({ table, commitTs: await upstreamEndTs(scratch.conn), commitTime: 0, seq: 0, kind: 'delete', columns, before: [id, FILL], after: null });
        }
        assert.ok(changes[0].commitTs > readAt);

        // the read's connection is lost part-way through the chunk (rows already sent but not read by the reader
        // go with it, as in a network failure)
        assert.ok(readerConnection !== undefined && readerStream !== undefined, 'the reader is reading');
        readerStream.destroy(new Error('connection lost (test)'));
        readerConnection.destroy();
        const sink = new SinkStandIn(snapshot, changes);
        let finished = false;
        await waitFor(() => (finished = sink.writeQueued()), { timeoutMs: 60_000, intervalMs: 20, what: 'every piece written' });
        assert.ok(finished);
        await reading;

        const [rows] = await scratch.conn.query<mysql.RowDataPacket[]>({ sql: `SELECT id, v FROM \`${db}\`.${name}`, rowsAsArray: true });
        const upstreamRows = new Map<string, number>();
        for (const r of rows as unknown as unknown[][]) upstreamRows.set(JSON.stringify(r), (upstreamRows.get(JSON.stringify(r)) ?? 0) + 1);
        assert.equal(sink.rows.size, upstreamRows.size, `the sink holds ${sink.rows.size} distinct rows, the upstream ${upstreamRows.size}`);
        assert.deepEqual([...sink.rows.keys()].filter((k) => upstreamRows.get(k) !== sink.rows.get(k)).map((k) => k.slice(0, 20)), [], 'every row as the upstream has it');
        assert.equal(upstreamRows.has(JSON.stringify([10, FILL])), false);
        assert.ok(snapshot.chunksWritten >= (shape === 'chunks' ? 2 : 1), `${snapshot.chunksWritten} chunks`);
      } finally {
        delete (upstream as { connect?: unknown }).connect; // the class's own again
        controller.abort();
        await reading.catch(() => undefined);
      }
    });
  }
});
