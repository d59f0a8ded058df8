import type mysql from 'mysql2/promise';
import { TidemarkError } from '../errors/index.js';
import type { Upstream } from './upstream.js';
import { replicaServerId } from './resumable-reader.js';
import { makeTs, tsFileSeq, type Ts } from '../model/ts.js';
import { BinlogReader, EventType, fileSeqOf } from './binlog-reader.js';
import { readTransactions } from './transaction-reader.js';

/** `--start-ts 2026-11-23T06:00:00Z`: an ISO 8601 time (UTC when it names no zone). */
export function parseTimeForm(text: string): number | undefined {
  const t = text.trim();
  if (!/^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/.test(t)) return undefined;
  const zoned = /(Z|[+-]\d{2}:?\d{2})$/.test(t) ? t : `${t}Z`;
  const ms = Date.parse(zoned.replace(' ', 'T'));
  return Number.isNaN(ms) ? undefined : ms;
}

/**
 * The ts of the last transaction the upstream committed at or before `timeMs` (DESIGN §2: `--start-ts`
 * accepts a time): the binlog file is found by the time of its first event, then read (rows skipped undecoded)
 * up to the first commit after `timeMs`. Binlog timestamps have a one-second resolution. A time before the
 * oldest binlog is refused: that history is purged.
 */
export async function tsAtTime(upstream: Upstream, timeMs: number, signal?: AbortSignal): Promise<Ts> {
  const options = { ...upstream.readerOptions('', replicaServerId(`ts-at-time/${process.pid}/${Date.now()}`)), heartbeatMs: 200 };
  const { files, end } = await upstream.with('list the binary logs', async (conn) => {
    const [logs] = await conn.query<mysql.RowDataPacket[]>('SHOW BINARY LOGS');
    const [status] = await conn.query<mysql.RowDataPacket[]>('SHOW MASTER STATUS');
    return { files: logs.map((r) => String(r['Log_name'])), end: makeTs(fileSeqOf(String(status[0]?.['File'])), Number(status[0]?.['Position'])) };
  });
  if (files.length === 0) throw new TidemarkError('ErrBinlogDisabled', `the upstream ${upstream.shown} has no binary logs`);

  const firstEventTime = async (file: string): Promise<number> => {
    const reader = await BinlogReader.open(options, file, 4, signal);
    try {
      for await (const e of reader) if (e.type === EventType.FORMAT_DESCRIPTION) return e.timestamp * 1000;
    } finally {
      reader.close();
    }
    return 0;
  };
  // the newest file that started at or before the time
  let index = -1;
  for (let i = files.length - 1; i >= 0; i--) {
    if ((await firstEventTime(files[i])) <= timeMs) {
      index = i;
      break;
    }
  }
  if (index < 0) {
    throw new TidemarkError('ErrBinlogPurged', `--start-ts ${new Date(timeMs).toISOString()} is before the oldest binary log the upstream keeps (${files[0]}): that history is purged`);
  }
  const file = files[index];
  const seq = fileSeqOf(file);
  let found = makeTs(seq, 4);
  const reader = await BinlogReader.open(options, file, 4, signal);
  try {
    for await (const e of readTransactions(reader, { rows: false })) {
      if (e.kind === 'resolved') break; // caught up with the upstream: the time is at or after its end
      if (e.kind !== 'commit' && e.kind !== 'ddl') continue;
      if (e.commitTime > timeMs || tsFileSeq(e.ts) !== seq) break;
      found = e.ts;
      if (found >= end) break;
    }
  } finally {
    reader.close();
  }
  return found;
}
