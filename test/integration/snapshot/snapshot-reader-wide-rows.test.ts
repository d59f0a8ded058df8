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

/** 80 rows of 512 KiB: 40 MiB, five times the quota below. */
const ROWS = 80;
const BLOB = 512 << 10;
const QUOTA = 8 << 20;

/**
 * Rows far wider than usual: pieces were cut at 1,024 rows only, so one piece of this table held all of it (40 MiB,
 * taken from an 8 MiB quota by force). Pieces are now also cut by bytes (a share of the quota), and the reader
 * holds no more than a few of them. Real MariaDB; the pieces are taken as the table sink stage takes them.
 */
describe('snapshot reader: rows wider than a piece (real MariaDB)', () => {
  const scratch = upstreamScratchDatabase('snapwide');
  const db = scratch.db;

  for (const shape of ['chunks', 'one-pass'] as const) {
    it(`${shape}: every row arrives, in pieces that keep the quota's use within its limit`, async () => {
      const name = shape === 'chunks' ? 'keyed' : 'keyless';
      await scratch.conn.query(`CREATE TABLE \`${db}\`.${name} (id INT NOT NULL${shape === 'chunks' ? ' PRIMARY KEY' : ''}, b LONGBLOB)`);
      for (let id = 1; id <= ROWS; id++) await scratch.conn.query(`INSERT INTO \`${db}\`.${name} VALUES (?, REPEAT(CHAR(?), ?))`, [id, 65 + (id % 26), BLOB]);
      const table: TableName = { schema: db, table: name, tableId: 1 };
      const startTs = await upstreamEndTs(scratch.conn);
      const quota = new MemoryQuota(QUOTA);
      const snapshot = new TableSnapshot(pendingRecord(startTs), startTs, () => undefined, QUOTA / 8);
      const controller = new AbortController();
      const reading = readTableSnapshot({ upstream: Upstream.of(mysqlUri('upstream')), table, snapshot, chunkRows: 4000, quota, logger: silentLogger, readers: new ReadSlots(1) }, controller.signal);
      const ids: number[] = [];
      let pieces = 0;
      let largest = 0;
      try {
        // taken as the table sink stage takes them: a piece at a time, its bytes given back once written
        await waitFor(
          () => {
            for (let front = snapshot.front(); front !== undefined; front = snapshot.front()) {
              const piece = snapshot.begin(front);
              for (const row of piece.rows) {
                const image = row.after!;
                assert.equal((image[1] as Buffer).length, BLOB);
                ids.push(image[0] as number);
              }
              pieces++;
              largest = Math.max(largest, piece.bytes);
              snapshot.written(piece);
              quota.release(piece.bytes);
            }
            return snapshot.finished;
          },
          { timeoutMs: 60_000, intervalMs: 10, what: 'every piece taken' },
        );
        await reading;
      } finally {
        controller.abort();
        await reading.catch(() => undefined);
      }
      assert.deepEqual([...ids].sort((a, b) => a - b), Array.from({ length: ROWS }, (_, i) => i + 1), 'every row once');
      assert.ok(pieces >= ROWS / 2, `${pieces} pieces for ${ROWS} rows of ${BLOB} bytes`);
      assert.ok(largest <= 2 * (BLOB + 1024), `the largest piece holds ${largest} bytes`);
      assert.ok(quota.peak <= QUOTA, `the quota's use peaked at ${quota.peak} bytes, its limit is ${QUOTA}`);
    });
  }
});
