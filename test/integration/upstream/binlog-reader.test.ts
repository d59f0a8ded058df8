import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { BinlogReader, EventType, fileSeqOf, type RawBinlogEvent } from '../../../src/core/upstream/binlog-reader.js';
import { readTransactions, type UpstreamEvent } from '../../../src/core/upstream/transaction-reader.js';
import { formatCoordinate, makeTs } from '../../../src/core/model/ts.js';
import { decodeTableMap, type TableMap } from '../../../src/core/upstream/events.js';
import { decodeRows } from '../../../src/core/upstream/rows.js';
import { freePort } from '../../helpers/cdc-process.js';
import { mysqlUri, requireService, serviceAddress, uniqueName } from '../../helpers/services.js';
import { leakCheck } from '../../helpers/leak-check.js';

interface Coordinate {
  file: string;
  pos: number;
}

let serverIds = 5000 + (process.pid % 1000) * 10;

function options() {
  const { host, port } = serviceAddress('upstream');
  return { host, port, user: 'root', password: '', serverId: serverIds++, heartbeatMs: 200 };
}

/**
 * Reads events from `from` until `stop` says so. `visit` sees each event while its body is valid (a body is a view
 * into the packet, reused by the next read); `slowMs` makes the consumer slow, after each event.
 */
async function readUntil(
  from: Coordinate,
  stop: (e: RawBinlogEvent, seen: RawBinlogEvent[]) => boolean,
  extra: Partial<ReturnType<typeof options>> & { highWaterMark?: number; highWaterBytes?: number } = {},
  slowMs = 0,
  visit?: (e: RawBinlogEvent) => void,
): Promise<{ events: RawBinlogEvent[]; reader: BinlogReader }> {
  const reader = await BinlogReader.open({ ...options(), ...extra }, from.file, from.pos, AbortSignal.timeout(30_000));
  const events: RawBinlogEvent[] = [];
  try {
    for await (const e of reader) {
      if (e.type === EventType.HEARTBEAT) continue;
      events.push(e);
      visit?.(e);
      if (slowMs > 0) await new Promise((resolve) => setTimeout(resolve, slowMs));
      if (stop(e, events)) break;
    }
  } finally {
    reader.close();
  }
  return { events, reader };
}

describe('BinlogReader: our own replication connection to the real upstream MariaDB', () => {
  const leaks = leakCheck();
  const db = uniqueName('tm_bl');
  let conn: mysql.Connection;
  const masterStatus = async (): Promise<Coordinate> => {
    const [rows] = await conn.query<mysql.RowDataPacket[]>('SHOW MASTER STATUS');
    return { file: String(rows[0]['File']), pos: Number(rows[0]['Position']) };
  };

  before(async () => {
    await requireService('upstream');
    conn = await mysql.createConnection({ uri: mysqlUri('upstream'), multipleStatements: true });
    await conn.query(`CREATE DATABASE ${db}; CREATE TABLE ${db}.t (id INT PRIMARY KEY, v VARCHAR(20))`);
  });
  after(async () => {
    await conn.query(`DROP DATABASE IF EXISTS ${db}`);
    await conn.end();
    await leaks.check();
  });

  it('positions every event exactly where the server says, across a FLUSH BINARY LOGS rotate', async () => {
    const start = await masterStatus();
    await conn.query(`INSERT INTO ${db}.t VALUES (1, 'a'), (2, 'b'), (3, 'c')`);
    await conn.query('FLUSH BINARY LOGS');
    const afterRotate = await masterStatus();
    await conn.query(`INSERT INTO ${db}.t VALUES (4, 'd')`);
    // other writers may share the upstream: our table's rows events are told apart by their TABLE_MAP's table id,
    // and reading stops at the commit after our insert in the new file
    const ourTableIds = new Set<number>();
    const ourRowsFiles: string[] = [];
    const ours = (e: RawBinlogEvent): void => {
      if (e.type === EventType.TABLE_MAP) {
        const map = decodeTableMap(e.body);
        if (map.schema === db && map.table === 't') ourTableIds.add(Number(map.tableId));
      } else if ((e.type === EventType.WRITE_ROWS_V1 || e.type === EventType.WRITE_ROWS_V2) && ourTableIds.has(e.body.readUIntLE(0, 6))) {
        ourRowsFiles.push(e.file);
      }
    };
    const { events } = await readUntil(start, (e) => e.type === EventType.XID && ourRowsFiles.includes(afterRotate.file), {}, 0, ours);

    const types = events.map((e) => e.type);
    assert.ok(types.includes(EventType.TABLE_MAP), JSON.stringify(types));
    assert.deepEqual(ourRowsFiles, [start.file, afterRotate.file], 'one rows event of our table before the rotate, one after');
    assert.ok(types.filter((t) => t === EventType.XID).length >= 2, 'both inserts committed');
    assert.ok(events.every((e) => e.serverId === 1));

    // the server's own account of the same events
    for (const file of [start.file, afterRotate.file]) {
      const [rows] = await conn.query<mysql.RowDataPacket[]>(`SHOW BINLOG EVENTS IN '${file}'`);
      const truth = new Map(rows.map((r) => [Number(r['Pos']), Number(r['End_log_pos'])]));
      for (const e of events.filter((x) => x.file === file)) {
        assert.equal(truth.get(e.startPos), e.endPos, `${file}: event of type ${e.type} at ${e.startPos} should end at ${truth.get(e.startPos)}`);
      }
    }
    const first = events.filter((e) => e.file === start.file);
    for (let i = 1; i < first.length; i++) assert.equal(first[i].startPos, first[i - 1].endPos, 'events chain without gaps');
    assert.equal(first[0].startPos, start.pos);
  });

  it('gives the same coordinates for the same transaction to readers that started elsewhere', async () => {
    const early = await masterStatus();
    await conn.query(`INSERT INTO ${db}.t VALUES (10, 'x')`);
    const middle = await masterStatus();
    await conn.query(`INSERT INTO ${db}.t VALUES (11, 'y')`);
    const xidOf = async (from: Coordinate) =>
      (await readUntil(from, (e, seen) => seen.filter((x) => x.type === EventType.XID).length === (from === early ? 2 : 1))).events
        .filter((e) => e.type === EventType.XID)
        .map((e) => `${e.file}:${e.endPos}`);
    const fromEarly = await xidOf(early);
    const fromMiddle = await xidOf(middle);
    assert.equal(fromEarly.length, 2);
    assert.deepEqual(fromMiddle, [fromEarly[1]]);
  });

  it('an idle upstream after a rotate: heartbeats move the resolved-ts to the new file, with no commit there', async () => {
    const start = await masterStatus();
    await conn.query(`INSERT INTO ${db}.t VALUES (20, 'r')`);
    const reader = await BinlogReader.open(options(), start.file, start.pos, AbortSignal.timeout(30_000));
    const seen: string[] = [];
    let target: bigint | undefined;
    let reached: UpstreamEvent | undefined;
    try {
      for await (const e of readTransactions(reader, { rows: false })) {
        if (e.kind === 'commit') {
          seen.push(`commit ${formatCoordinate(e.ts)}`);
          if (target === undefined) {
            // the insert's commit read: rotate, with nothing written after it
            await conn.query('FLUSH BINARY LOGS');
            const rotated = await masterStatus();
            target = makeTs(fileSeqOf(rotated.file), rotated.pos);
          } else if (e.ts >= target) break; // someone wrote after the rotate: a commit got there first
        } else if (e.kind === 'resolved' && target !== undefined && e.ts >= target) {
          reached = e;
          break;
        }
      }
    } finally {
      reader.close();
    }
    assert.ok(target !== undefined, `the insert's commit was read (${seen.join(', ')})`);
    assert.equal(reached?.kind, 'resolved', `a heartbeat's resolved-ts reached the rotated end of binlog ${formatCoordinate(target)} before any commit (${seen.join(', ')})`);
    // MariaDB may append its Binlog_checkpoint event to the new file a moment after FLUSH returns (no commit): the
    // heartbeat's position is the end of binlog as of its read, between the end after FLUSH and the end now
    const now = await masterStatus();
    assert.ok(reached.ts >= target && reached.ts <= makeTs(fileSeqOf(now.file), now.pos), `the end of binlog at the heartbeat: ${formatCoordinate(reached.ts)}, between ${formatCoordinate(target)} and ${now.file}:${now.pos}`);
  });

  it('pauses the socket when the consumer is slow, and loses nothing', async () => {
    const start = await masterStatus();
    // 20 transactions of 300 rows, each row with its own value
    const expected: [number, string][] = [];
    for (let i = 0; i < 20; i++) {
      const rows = Array.from({ length: 300 }, (_, r): [number, string] => [1000 + i * 1000 + r, `r${i}-${r}`]);
      expected.push(...rows);
      await conn.query(`INSERT INTO ${db}.t VALUES ${rows.map(([id, v]) => `(${id}, '${v}')`).join(',')}`);
    }
    // decoded while each body is valid: every row of our table, in binlog order
    const maps = new Map<bigint, TableMap>();
    const received: [number, string][] = [];
    const decode = (e: RawBinlogEvent): void => {
      if (e.type === EventType.TABLE_MAP) {
        const map = decodeTableMap(e.body);
        maps.set(map.tableId, map);
      } else if (e.type === EventType.WRITE_ROWS_V1 || e.type === EventType.WRITE_ROWS_V2) {
        const rows = decodeRows(e.type, e.body, maps);
        const map = maps.get(rows.tableId);
        if (map?.schema === db && map.table === 't') for (const row of rows.rows) received.push([Number(row.after![0]), String(row.after![1])]);
      }
    };
    // (other writers may share the upstream: read until our last transaction's commit, not a count of commits)
    const { reader } = await readUntil(start, (e) => e.type === EventType.XID && received.length >= expected.length, { highWaterMark: 8 }, 2, decode);
    assert.ok(reader.stats.pauses > 0, 'the reader never paused the socket');
    assert.equal(received.length, expected.length, 'every row of the 20 transactions arrived once');
    assert.deepEqual(received, expected, 'the rows arrived with their values, in commit order');
  });

  it('pauses the socket on the bytes queued too, however few the events (a backlog\'s rows events are tens of KiB)', async () => {
    const start = await masterStatus();
    // 10 transactions of 2,000 rows: rows events of several KiB each, about 40 events in all
    for (let i = 0; i < 10; i++) {
      const rows = Array.from({ length: 2000 }, (_, r) => `(${100_000 + i * 10_000 + r}, 'row ${i}-${r}')`);
      await conn.query(`INSERT INTO ${db}.t VALUES ${rows.join(',')}`);
    }
    const end = await masterStatus();
    let bodyBytes = 0;
    // far more events allowed than there are: only the bytes bound (16 KiB) can pause it
    const { events, reader } = await readUntil(start, (e) => e.file === end.file && e.endPos >= end.pos, { highWaterMark: 4096, highWaterBytes: 16 << 10 }, 2, (e) => (bodyBytes += e.body.length));
    assert.ok(bodyBytes > 200 << 10, `the transactions' events are ${bodyBytes} bytes`);
    assert.ok(events.length < 4096 / 2);
    assert.ok(reader.stats.pauses > 0, 'the reader never paused the socket');
  });

  it('a reader whose signal aborts while it connects ends at once instead of reading on', async () => {
    const start = await masterStatus();
    const controller = new AbortController();
    const opening = BinlogReader.open(options(), start.file, start.pos, controller.signal);
    controller.abort(new Error('restart'));
    const reader = await opening;
    await conn.query(`INSERT INTO ${db}.t VALUES (900, 'after the abort')`);
    const read: number[] = [];
    const ended = (async () => {
      for await (const e of reader) read.push(e.type);
      return 'ended';
    })();
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([ended, new Promise((resolve) => (timer = setTimeout(resolve, 10_000, 'still reading')))]);
    clearTimeout(timer);
    reader.close();
    assert.equal(outcome, 'ended', `the aborted reader went on reading (${read.length} events)`);
    assert.ok(!read.includes(EventType.XID), 'it delivered no transaction after the abort');
  });

  it('fails with typed errors: purged position, wrong password, unreachable upstream', async () => {
    await assert.rejects(readUntil({ file: 'mysql-bin.999999', pos: 4 }, () => true), { code: 'ErrBinlogPurged' });
    await assert.rejects(BinlogReader.open({ ...options(), password: 'wrong' }, 'mysql-bin.000001', 4), {
      code: 'ErrReplicationPrivilege',
      message: /the upstream refused user "root"/,
    });
    const port = await freePort();
    await assert.rejects(BinlogReader.open({ ...options(), port }, 'mysql-bin.000001', 4), {
      code: 'ErrUpstreamUnreachable',
      message: new RegExp(`cannot connect to the upstream 127\\.0\\.0\\.1:${port}: ECONNREFUSED`),
    });
  });
});
