import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type mysql from 'mysql2/promise';
import { silentLogger } from '../../../src/core/logger/logger.js';
import { MemoryQuota } from '../../../src/core/pipeline/sorter/memory-quota.js';
import type { ColumnInfo, RowChangedEvent, TableName } from '../../../src/core/sink/api.js';
import { readTableSnapshot } from '../../../src/core/snapshot/snapshot-reader.js';
import { ReadSlots } from '../../../src/core/snapshot/read-slots.js';
import { pendingRecord } from '../../../src/core/snapshot/progress.js';
import { TableSnapshot, type SnapshotPiece } from '../../../src/core/snapshot/table-snapshot.js';
import { Upstream } from '../../../src/core/upstream/upstream.js';
import { mysqlUri } from '../../helpers/services.js';
import { upstreamEndTs, upstreamScratchDatabase } from '../../helpers/upstream.js';
import { waitFor } from '../../helpers/wait-for.js';

const ROWS = 20_000;
const CHUNK_ROWS = 1500;
const READERS = 4;

/**
 * One table's chunks read several at once (real MariaDB; the unit tests of TableSnapshot cover chunks that finish out
 * of key order), while another session inserts, updates and deletes rows
 * all over the key range between the reads: the pieces are written as the table sink stage writes them (the changes
 * up to a piece's position through `keep`, then the piece), and the sink ends equal to the upstream, each key once.
 */
describe('snapshot reader: one table read in chunks at once (real MariaDB)', () => {
  const scratch = upstreamScratchDatabase('snappar');
  const db = scratch.db;

  it('reads several chunks at once, finishes them in any order, and the sink ends equal to the upstream', async () => {
    await scratch.conn.query(`CREATE TABLE \`${db}\`.t (id INT NOT NULL PRIMARY KEY, v INT NOT NULL)`);
    for (let i = 1; i <= ROWS; i += 2000) {
      await scratch.conn.query(`INSERT INTO \`${db}\`.t VALUES ${Array.from({ length: 2000 }, (_, j) => `(${(i + j) * 2}, 0)`).join(', ')}`);
    }
    const table: TableName = { schema: db, table: 't', tableId: 1 };
    const columns: ColumnInfo[] = [
      { name: 'id', mysqlType: 'int', primaryKey: true, nullable: false },
      { name: 'v', mysqlType: 'int', primaryKey: false, nullable: false },
    ];
    const startTs = await upstreamEndTs(scratch.conn);
    const snapshot = new TableSnapshot(pendingRecord(startTs), startTs, () => undefined, 64 << 10);
    const quota = new MemoryQuota(256 << 20);
    const controller = new AbortController();
    // how many chunk reads hold a transaction at once (the reader's own connections, to the real server)
    const upstream = Upstream.of(mysqlUri('upstream'));
    const connect = upstream.connect.bind(upstream);
    let open = 0;
    let mostOpen = 0;
    // the first chunk's read takes its snapshot only after the others and some changes: it is read at a later
    // position than the chunks after it, which are written first (the table's keys below them not copied yet)
    let started = 0;
    let releaseFirst: () => void = () => undefined;
    const firstWaits = new Promise<void>((resolve) => (releaseFirst = resolve));
    upstream.connect = async (extra) => {
      const connection = await connect(extra);
      const query = connection.query.bind(connection) as (sql: unknown, ...rest: unknown[]) => Promise<unknown>;
      (connection as unknown as { query: (sql: unknown, ...rest: unknown[]) => Promise<unknown> }).query = async (sql: unknown, ...rest: unknown[]) => {
        if (typeof sql === 'string' && sql.startsWith('START TRANSACTION') && started++ === 0) await firstWaits;
        if (typeof sql === 'string' && sql.startsWith('START TRANSACTION')) mostOpen = Math.max(mostOpen, ++open);
        if (typeof sql === 'string' && sql === 'COMMIT') open--;
        return query(sql, ...rest);
      };
      return connection;
    };
    const reading = readTableSnapshot({ upstream, table, snapshot, chunkRows: CHUNK_ROWS, quota, logger: silentLogger, readers: new ReadSlots(READERS) }, controller.signal);

    const changes: RowChangedEvent[] = [];
    const sink = new Map<number, number>();
    let applied = 0;
    const apply = (upTo: bigint | undefined): void => {
      while (applied < changes.length && (upTo === undefined || changes[applied].commitTs <= upTo)) {
        const kept = snapshot.keep(changes[applied++]);
        if (kept === undefined) continue;
        if (kept.kind === 'delete') assert.ok(sink.delete(kept.before![0] as number), `a delete of key ${String(kept.before![0])}, which the sink does not hold`);
        else {
          const id = kept.after![0] as number;
          if (kept.kind === 'insert') assert.equal(sink.has(id), false, `an insert of key ${id}, which the sink holds already`);
          else assert.equal(sink.has(id), true, `an update of key ${id}, which the sink does not hold`);
          sink.set(id, kept.after![1] as number);
        }
      }
    };
    const order: SnapshotPiece[] = [];
    const writeQueued = (): void => {
      for (let front = snapshot.front(); front !== undefined; front = snapshot.front()) {
        apply(front.ts);
        const piece = snapshot.begin(front);
        for (const row of piece.rows) {
          const id = row.after![0] as number;
          assert.equal(sink.has(id), false, `key ${id} copied twice`);
          sink.set(id, row.after![1] as number);
        }
        order.push(piece);
        snapshot.written(piece);
        quota.release(piece.bytes);
      }
    };

    let seed = 7;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    try {
      // rounds of changes while the chunks are read, each followed by writing what is queued (so every change at or
      // before a piece's position is known when the piece is written)
      for (let round = 0; !snapshot.finished; round++) {
        if (round < 40) {
          for (let k = 0; k < 15; k++) {
            const id = 1 + random(ROWS * 2 + 100);
            const [found] = await scratch.conn.query<mysql.RowDataPacket[]>(`SELECT v FROM \`${db}\`.t WHERE id = ?`, [id]);
            const v = round * 100 + k + 1;
            let change: Omit<RowChangedEvent, 'commitTs'>;
            if (found.length === 0) {
              await scratch.conn.query(`INSERT INTO \`${db}\`.t VALUES (?, ?)`, [id, v]);
              change = { table, commitTime: 0, seq: 0, kind: 'insert', columns, before: null, after: [id, v] };
            } else if (k % 3 === 0) {
              await scratch.conn.query(`DELETE FROM \`${db}\`.t WHERE id = ?`, [id]);
              change = { table, commitTime: 0, seq: 0, kind: 'delete', columns, before: [id, found[0]['v'] as number], after: null };
            } else {
              await scratch.conn.query(`UPDATE \`${db}\`.t SET v = ? WHERE id = ?`, [v, id]);
              change = { table, commitTime: 0, seq: 0, kind: 'update', columns, before: [id, found[0]['v'] as number], after: [id, v] };
            }
            changes.push({ ...change, commitTs: await upstreamEndTs(scratch.conn) });
          }
        } else await new Promise((resolve) => setTimeout(resolve, 10));
        if (round === 2) releaseFirst();
        writeQueued();
      }
      await waitFor(() => snapshot.finished, { timeoutMs: 60_000, intervalMs: 20, what: 'every piece written' });
      await reading;
      apply(undefined);

      const [rows] = await scratch.conn.query<mysql.RowDataPacket[]>(`SELECT id, v FROM \`${db}\`.t`);
      const upstreamRows = new Map(rows.map((r) => [r['id'] as number, r['v'] as number]));
      assert.equal(sink.size, upstreamRows.size, `the sink holds ${sink.size} keys, the upstream ${upstreamRows.size}`);
      const differ = [...upstreamRows].filter(([id, v]) => sink.get(id) !== v).map(([id]) => id);
      assert.deepEqual(differ.slice(0, 10), [], `${differ.length} keys differ`);
      assert.ok(mostOpen >= 2, `chunk reads at once: at most ${mostOpen}`);
      assert.ok(snapshot.chunksWritten >= ROWS / CHUNK_ROWS, `${snapshot.chunksWritten} chunks`);
      const positions = order.map((p) => p.ts);
      assert.deepEqual(positions, [...positions].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)), 'pieces are written in the order of their positions');
      const lowers = order.filter((p) => p.chunkEnd !== undefined).map((p) => (p.chunkEnd!.lower?.[0] ?? 0) as number);
      assert.notEqual(lowers[0], 0, `the first chunk by key, read last, is not written first: chunks written from ${lowers.slice(0, 5).join(', ')}`);
      assert.equal(order[0].rows[0]?.snapshot, 'first');
      const last = order[order.length - 1];
      assert.equal(last.final, true);
      assert.equal(last.rows[last.rows.length - 1]?.snapshot, 'last');
      assert.equal(quota.used, 0, 'the quota is given back');
    } finally {
      releaseFirst();
      delete (upstream as { connect?: unknown }).connect; // the class's own again
      controller.abort();
      await reading.catch(() => undefined);
    }
  });
});
