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
 * MariaDB writes a commit group to the binlog, and its binlog readers may have it, before InnoDB makes it visible.
 * The table sink stage may then have written a copying table past that commit (dropping its changes of keys not
 * copied yet) while a consistent snapshot taken in that moment is still below it: rows read there would lack the
 * dropped changes. The reader takes its snapshot again until it is at or above the table's floor. The moment
 * cannot be caught on a release build, so the floor here is simply beyond the upstream's binlog, and a commit
 * later takes the binlog past it. Real MariaDB.
 */
describe('snapshot reader: a snapshot below what the table was written to is taken again (real MariaDB)', () => {
  const scratch = upstreamScratchDatabase('snapbehind');
  const db = scratch.db;

  for (const shape of ['chunks', 'one-pass'] as const) {
    it(`${shape}: the rows are read at the floor or later, with the commit that took the binlog there`, async () => {
      const name = shape === 'chunks' ? 'keyed' : 'keyless';
      await scratch.conn.query(`CREATE TABLE \`${db}\`.${name} (id INT NOT NULL${shape === 'chunks' ? ' PRIMARY KEY' : ''}, v VARCHAR(20))`);
      await scratch.conn.query(`INSERT INTO \`${db}\`.${name} VALUES ${Array.from({ length: 100 }, (_, i) => `(${i + 1}, 'before')`).join(', ')}`);
      const table: TableName = { schema: db, table: name, tableId: 1 };
      const startTs = await upstreamEndTs(scratch.conn);
      // the table is written one byte past the end of the binlog: no snapshot can be there until the next commit
      const floor = startTs + 1n;
      const snapshot = new TableSnapshot(pendingRecord(startTs), startTs, () => undefined, 4 << 20, Promise.resolve(), () => floor);
      const upstream = Upstream.of(mysqlUri('upstream'));
      const connect = upstream.connect.bind(upstream);
      let snapshotsTaken = 0;
      upstream.connect = async (extra) => {
        const connection = await connect(extra);
        const query = connection.query.bind(connection) as (sql: unknown, ...rest: unknown[]) => Promise<unknown>;
        (connection as unknown as { query: (sql: unknown, ...rest: unknown[]) => Promise<unknown> }).query = async (sql: unknown, ...rest: unknown[]) => {
          if (typeof sql === 'string' && sql.includes('binlog_snapshot_')) snapshotsTaken++;
          return query(sql, ...rest);
        };
        return connection;
      };
      const controller = new AbortController();
      let failure: unknown;
      const reading = readTableSnapshot({ upstream, table, snapshot, chunkRows: 4000, quota: new MemoryQuota(64 << 20), logger: silentLogger, readers: new ReadSlots(1) }, controller.signal).catch((error: unknown) => {
        failure = error;
      });
      try {
        await waitFor(() => snapshotsTaken >= 3 || failure !== undefined, { timeoutMs: 20_000, intervalMs: 5, what: 'three snapshots taken below the floor' });
        assert.equal(failure, undefined, `the reader did not fail on a snapshot below its floor: ${String(failure)}`);
        assert.equal(snapshot.front(), undefined, 'no rows read below the floor');
        await scratch.conn.query(`INSERT INTO \`${db}\`.${name} VALUES (1000, 'after')`);
        const committedAt = await upstreamEndTs(scratch.conn);
        await waitFor(() => snapshot.front() !== undefined || failure !== undefined, { timeoutMs: 20_000, intervalMs: 20, what: 'the first piece queued' });
        assert.equal(failure, undefined, `the reader did not fail: ${String(failure)}`);
        const piece = snapshot.front()!;
        assert.ok(piece.ts >= floor && piece.ts <= committedAt, `read at ${piece.ts}: at or above the floor ${floor}, at or below the commit's end ${committedAt}`);
        const ids = piece.rows.map((r) => r.after![0]);
        assert.equal(ids.length, 101, `read ${ids.length} rows`);
        assert.ok(ids.includes(1000), 'the commit that took the binlog past the floor is in the rows');
      } finally {
        delete (upstream as { connect?: unknown }).connect; // the class's own again
        controller.abort();
        await reading;
      }
    });
  }
});
