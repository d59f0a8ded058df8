import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from '../../../src/core/logger/logger.js';
import { MemoryQuota } from '../../../src/core/pipeline/sorter/memory-quota.js';
import type { TableName } from '../../../src/core/sink/api.js';
import { readTableSnapshot } from '../../../src/core/snapshot/snapshot-reader.js';
import { ReadSlots } from '../../../src/core/snapshot/read-slots.js';
import { pendingRecord } from '../../../src/core/snapshot/progress.js';
import { TableSnapshot } from '../../../src/core/snapshot/table-snapshot.js';
import { Upstream } from '../../../src/core/upstream/upstream.js';
import { mysqlUri } from '../../helpers/services.js';
import { upstreamEndTs, upstreamScratchDatabase } from '../../helpers/upstream.js';
import { waitFor } from '../../helpers/wait-for.js';

/**
 * An upstream whose sessions default to READ COMMITTED: there InnoDB ignores WITH CONSISTENT SNAPSHOT, and each
 * SELECT would read the table as of its own start, later than the binlog position the snapshot reports, so a row
 * committed in between would be in the chunk and again in the binlog after its position (twice in the sink). The
 * reader's session asks for REPEATABLE READ itself. Real MariaDB; the row is committed between the reader's
 * position and its SELECT.
 */
describe('snapshot reader: an upstream whose default isolation is READ COMMITTED (real MariaDB)', () => {
  const scratch = upstreamScratchDatabase('snapiso');
  const db = scratch.db;

  for (const shape of ['chunks', 'one-pass'] as const) {
    it(`${shape}: a row committed after the snapshot's position is not in the rows read at it`, async () => {
      const name = shape === 'chunks' ? 'keyed' : 'keyless';
      await scratch.conn.query(`CREATE TABLE \`${db}\`.${name} (id INT NOT NULL${shape === 'chunks' ? ' PRIMARY KEY' : ''}, v VARCHAR(20))`);
      await scratch.conn.query(`INSERT INTO \`${db}\`.${name} VALUES ${Array.from({ length: 100 }, (_, i) => `(${i + 1}, 'before')`).join(', ')}`);
      await scratch.conn.query('SET GLOBAL TRANSACTION ISOLATION LEVEL READ COMMITTED');
      const table: TableName = { schema: db, table: name, tableId: 1 };
      const startTs = await upstreamEndTs(scratch.conn);
      const snapshot = new TableSnapshot(pendingRecord(startTs), startTs, () => undefined, 4);
      const controller = new AbortController();
      // the reader's connection: once it has its snapshot's position, another session commits a row
      const upstream = Upstream.of(mysqlUri('upstream'));
      const connect = upstream.connect.bind(upstream);
      let insertedAt: bigint | undefined;
      upstream.connect = async (extra) => {
        const connection = await connect(extra);
        const query = connection.query.bind(connection) as (sql: unknown, ...rest: unknown[]) => Promise<unknown>;
        (connection as unknown as { query: (sql: unknown, ...rest: unknown[]) => Promise<unknown> }).query = async (sql: unknown, ...rest: unknown[]) => {
          const result = await query(sql, ...rest);
          if (typeof sql === 'string' && sql.includes('binlog_snapshot_') && insertedAt === undefined) {
            await scratch.conn.query(`INSERT INTO \`${db}\`.${name} VALUES (1000, 'after')`);
            insertedAt = await upstreamEndTs(scratch.conn);
          }
          return result;
        };
        return connection;
      };
      const reading = readTableSnapshot({ upstream, table, snapshot, chunkRows: 4000, quota: new MemoryQuota(64 << 20), logger: silentLogger, readers: new ReadSlots(1) }, controller.signal);
      try {
        await waitFor(() => snapshot.front() !== undefined, { timeoutMs: 20_000, intervalMs: 20, what: 'the first piece queued' });
        const piece = snapshot.front()!;
        assert.ok(insertedAt !== undefined && insertedAt > piece.ts, 'the row was committed after the position the rows were read at');
        const ids = piece.rows.map((r) => r.after![0]);
        assert.equal(ids.length, 100, `read ${ids.length} rows at the snapshot's position, ids up to ${Math.max(...(ids as number[]))}`);
        assert.ok(!ids.includes(1000), 'the row committed after the position comes from the binlog only');
      } finally {
        delete (upstream as { connect?: unknown }).connect; // the class's own again
        controller.abort();
        await reading.catch(() => undefined);
        await scratch.conn.query('SET GLOBAL TRANSACTION ISOLATION LEVEL REPEATABLE READ');
      }
    });
  }
});
